"""The detection loss: BCE classification, CIoU box and distribution focal loss over assigned anchors."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.ops import box_convert, complete_box_iou_loss

from trainer_engine.nn.detect_assigner import TaskAlignedAssigner
from trainer_engine.nn.detect_ops import bbox2dist, dist2bbox, make_anchors


def targets_to_padded(batch: dict[str, Any], batch_size: int, imgsz: torch.Tensor) -> torch.Tensor:
    """Gather flat (N, ...) targets into (B, M, 5) rows of class + xyxy pixels, zero-padded."""
    cls = batch["cls"].view(-1, 1).float()
    idx = batch["batch_idx"].view(-1).long()
    device = imgsz.device
    if cls.numel() == 0:
        return torch.zeros(batch_size, 0, 5, device=device)
    counts = torch.bincount(idx, minlength=batch_size)
    out = torch.zeros(batch_size, int(counts.max()), 5, device=device)
    boxes = box_convert(batch["bboxes"].float().to(device), "cxcywh", "xyxy") * imgsz[[1, 0, 1, 0]]
    rows = torch.cat((cls.to(device), boxes), 1)
    for i in range(batch_size):
        sel = rows[idx.to(device) == i]
        out[i, : len(sel)] = sel
    return out


class DetectionLoss:
    """Callable `criterion(preds, batch) -> (loss, loss_items)` for a DetectionModel.

    `loss` is the gained sum times the batch size (the trainer averages over its nominal batch);
    `loss_items` is the detached (box, cls, dfl) triple for logging.
    """

    def __init__(self, model: nn.Module, topk: int = 10) -> None:
        head = model.head
        args = getattr(model, "args", None)
        self.hyp = {k: float(_get(args, k, d)) for k, d in (("box", 7.5), ("cls", 0.5), ("dfl", 1.5))}
        self.nc = head.nc
        self.reg_max = head.reg_max
        self.stride = head.stride
        self.assigner = TaskAlignedAssigner(topk=topk, alpha=0.5, beta=6.0)

    def __call__(self, preds: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute the loss of raw head maps against a batch's targets."""
        maps = preds[1] if isinstance(preds, tuple) else preds
        box_logits, cls_logits, anchors, strides = self._flatten(maps)
        bsz = cls_logits.shape[0]
        imgsz = (
            torch.tensor(maps[0].shape[2:], device=cls_logits.device, dtype=torch.float32) * self.stride[0]
        )
        targets = targets_to_padded(batch, bsz, imgsz)
        gt_labels, gt_bboxes = targets.split((1, 4), 2)
        mask_gt = (gt_bboxes.sum(2, keepdim=True) > 0).float()
        pred_dist = self._decode_dist(box_logits)
        pred_bboxes = dist2bbox(pred_dist, anchors)  # in stride units
        _, tgt_bboxes, tgt_scores, fg = self.assigner(
            cls_logits.detach().sigmoid(),
            (pred_bboxes.detach() * strides).type(gt_bboxes.dtype),
            anchors * strides,
            gt_labels,
            gt_bboxes,
            mask_gt,
        )
        score_sum = tgt_scores.sum().clamp(min=1.0)
        loss = torch.zeros(3, device=cls_logits.device)
        loss[1] = F.binary_cross_entropy_with_logits(cls_logits, tgt_scores, reduction="sum") / score_sum
        if fg.any():
            tgt_bboxes = tgt_bboxes / strides
            weight = tgt_scores.sum(-1)[fg]
            ciou = complete_box_iou_loss(pred_bboxes[fg], tgt_bboxes[fg], reduction="none")
            loss[0] = (ciou * weight).sum() / score_sum
            tgt_dist = bbox2dist(anchors, tgt_bboxes, self.reg_max)[fg]
            dfl = self._dfl(box_logits[fg].view(-1, self.reg_max), tgt_dist.view(-1))
            loss[2] = (dfl.view(-1, 4).mean(-1) * weight).sum() / score_sum
        loss[0] *= self.hyp["box"]
        loss[1] *= self.hyp["cls"]
        loss[2] *= self.hyp["dfl"]
        return loss.sum() * bsz, loss.detach()

    def _flatten(self, maps: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Return box logits (B, A, 4*reg_max), class logits (B, A, nc), anchors (A, 2), strides (A, 1)."""
        anchors, strides = make_anchors(maps, self.stride)
        flat = torch.cat([m.flatten(2) for m in maps], 2).transpose(1, 2)
        box_logits, cls_logits = flat.split((4 * self.reg_max, self.nc), 2)
        return box_logits.contiguous(), cls_logits.contiguous(), anchors, strides

    def _decode_dist(self, box_logits: torch.Tensor) -> torch.Tensor:
        """Expected ltrb distance (B, A, 4) from the DFL bin logits."""
        b, a, _ = box_logits.shape
        prob = box_logits.view(b, a, 4, self.reg_max).softmax(3)
        return prob @ torch.arange(self.reg_max, device=prob.device, dtype=prob.dtype)

    @staticmethod
    def _dfl(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Distribution focal loss: cross-entropy to the two bins around the target, weighted linearly."""
        left = target.long()
        w_right = target - left
        return (
            F.cross_entropy(logits, left, reduction="none") * (1 - w_right)
            + F.cross_entropy(logits, left + 1, reduction="none") * w_right
        )


def _get(args: Any, key: str, default: float) -> Any:
    """Read a hyperparameter from a dict, an attribute object or nothing."""
    if args is None:
        return default
    if isinstance(args, dict):
        return args.get(key, default)
    value = getattr(args, key, None)
    return default if value is None else value
