"""Task-aligned label assignment (TOOD, Feng et al. 2021) for the anchor-free head."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import box_iou


class TaskAlignedAssigner(nn.Module):
    """Pick, per ground-truth box, the top-k anchors by score**alpha * IoU**beta inside the box.

    An anchor claimed by several boxes goes to the one it overlaps most. Soft targets are the
    alignment metric, normalised per box so its best anchor gets that box's best IoU.
    """

    def __init__(self, topk: int = 10, alpha: float = 0.5, beta: float = 6.0, eps: float = 1e-9) -> None:
        super().__init__()
        self.topk = topk
        self.alpha = alpha
        self.beta = beta
        self.eps = eps

    @torch.no_grad()
    def forward(
        self,
        pd_scores: torch.Tensor,
        pd_bboxes: torch.Tensor,
        anc_points: torch.Tensor,
        gt_labels: torch.Tensor,
        gt_bboxes: torch.Tensor,
        mask_gt: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Assign targets.

        Shapes: pd_scores (B, A, C) probabilities, pd_bboxes (B, A, 4) xyxy, anc_points (A, 2),
        gt_labels (B, M, 1), gt_bboxes (B, M, 4) xyxy, mask_gt (B, M, 1). Returns target_labels (B, A),
        target_bboxes (B, A, 4), target_scores (B, A, C) and fg_mask (B, A) bool.
        """
        b, a, c = pd_scores.shape
        m = gt_bboxes.shape[1]
        if m == 0:
            zeros = pd_scores.new_zeros
            return (
                zeros(b, a, dtype=torch.long),
                zeros(b, a, 4),
                zeros(b, a, c),
                zeros(b, a, dtype=torch.bool),
            )
        in_gts = self._anchors_in_boxes(anc_points, gt_bboxes) * mask_gt  # (B, M, A)
        overlaps = torch.stack([box_iou(g, p) for g, p in zip(gt_bboxes, pd_bboxes, strict=True)])
        overlaps = overlaps.clamp_(0) * in_gts
        labels = gt_labels.squeeze(-1).long().clamp_(0, c - 1)
        cls_scores = pd_scores.transpose(1, 2).gather(1, labels.unsqueeze(-1).expand(b, m, a))
        align = cls_scores.pow(self.alpha) * overlaps.pow(self.beta) * in_gts
        mask_pos = self._topk_mask(align, in_gts) * in_gts
        mask_pos, gt_idx, fg_mask = self._resolve_conflicts(mask_pos, overlaps)
        target_labels = labels.gather(1, gt_idx)
        target_bboxes = gt_bboxes.gather(1, gt_idx.unsqueeze(-1).expand(b, a, 4))
        target_scores = nn.functional.one_hot(target_labels, c).to(pd_scores.dtype) * fg_mask.unsqueeze(-1)
        align = align * mask_pos
        best_align = align.amax(-1, keepdim=True)  # (B, M, 1)
        best_iou = (overlaps * mask_pos).amax(-1, keepdim=True)
        norm = (align * best_iou / (best_align + self.eps)).amax(1)  # (B, A)
        return target_labels, target_bboxes, target_scores * norm.unsqueeze(-1), fg_mask.bool()

    def _anchors_in_boxes(self, points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Return a (B, M, A) float mask of anchor points strictly inside each box."""
        lt = points[None, None] - boxes[..., None, :2]
        rb = boxes[..., None, 2:] - points[None, None]
        return (torch.cat((lt, rb), -1).amin(-1) > self.eps).to(boxes.dtype)

    def _topk_mask(self, metric: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Return a (B, M, A) mask of each box's top-k anchors by metric."""
        k = min(self.topk, metric.shape[-1])
        idx = metric.topk(k, dim=-1).indices
        mask = torch.zeros_like(metric).scatter_(-1, idx, 1.0)
        return mask * valid

    @staticmethod
    def _resolve_conflicts(
        mask_pos: torch.Tensor, overlaps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keep, for an anchor picked by several boxes, only the box with the highest IoU."""
        fg = mask_pos.sum(1)  # (B, A)
        if fg.max() > 1:
            multi = (fg > 1).unsqueeze(1).expand_as(mask_pos)
            best = nn.functional.one_hot(overlaps.argmax(1), mask_pos.shape[1]).permute(0, 2, 1).to(mask_pos)
            mask_pos = torch.where(multi, best, mask_pos)
            fg = mask_pos.sum(1)
        return mask_pos, mask_pos.argmax(1), fg > 0
