"""DetectionValidator: COCO-style mAP50 / mAP50-95, precision, recall and the validation losses."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision.ops import box_convert

from trainer_engine.data.detect import (
    DatasetError,
    YOLODataset,
    batch_to_device,
    build_dataloader,
    check_det_dataset,
)
from trainer_engine.engine.validator import BaseValidator
from trainer_engine.models.detect.loading import load_detection_model
from trainer_engine.models.detect.metrics import DetMetrics, DetStats
from trainer_engine.nn.detect_ops import non_max_suppression
from trainer_engine.utils.plots import ConfusionMatrix

LOGGER = logging.getLogger("trainer_engine")
LOSS_NAMES = ("box_loss", "cls_loss", "dfl_loss")
VAL_CONF = 0.001  # keep nearly every detection: AP integrates over the whole score range


class DetectionValidator(BaseValidator):
    """Validate a detector: during training on the trainer's EMA model, or standalone on `model=best.pt`.

    Predictions are matched in the letterboxed frame the network sees (a uniform scale and shift do not
    change IoU), so no box is mapped back to the original image for metrics.
    """

    def get_dataset(self) -> dict[str, Any]:
        """Check `args.data` and return its dict; the split to validate must be in it."""
        if not self.args.data:
            raise DatasetError(
                "no data given; pass data=path/to/data.yaml (YOLO format) or data=synthetic:shapes"
            )
        data = check_det_dataset(self.args.data, self.args.single_cls)
        if not data.get(self.args.split):
            raise DatasetError(
                f"{self.args.data}: no '{self.args.split}' split; add '{self.args.split}:' or pass split=val"
            )
        self.data = data
        return data

    def get_dataloader(self, dataset_path: str | list[str], batch_size: int) -> DataLoader:
        """Return an unshuffled, unaugmented loader of letterboxed images."""
        dataset = YOLODataset(
            dataset_path,
            imgsz=self.args.imgsz,
            nc=self.data.get("label_nc", self.data["nc"]),
            augment=False,
            split=self.args.split,
            single_cls=self.args.single_cls,
        )
        return build_dataloader(dataset, batch_size, self.args.workers, shuffle=False)

    def load_model(self, model: str | Path | nn.Module | None) -> nn.Module:
        """Return the model to validate (a module, or one rebuilt from a .pt checkpoint) on this device."""
        device = self.device or self.device_for_args()
        return load_detection_model(model if model is not None else self.args.model, device)

    def preprocess(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Move the batch to the device with images scaled to 0..1."""
        return batch_to_device(batch, self.device)

    def init_metrics(self, model: nn.Module) -> None:
        """Start a fresh accumulation; refuse a model whose class count differs from the data's."""
        data = self.data or {}
        names = data.get("names") or getattr(model, "names", None) or {}
        model_nc = getattr(model, "nc", None)
        if data and model_nc is not None and model_nc != data["nc"]:
            raise DatasetError(
                f"model predicts nc={model_nc} classes but the data has nc={data['nc']} ({self.args.data}); "
                "validate with the data the model was trained on, or fine-tune it first: "
                f"train model=<this .pt> data={self.args.data}"
            )
        self.names = dict(names)
        self.stats = DetStats(self.names)
        self.metrics = DetMetrics(names=self.names)
        self.n_images = 0
        # For the run's plots (plots=True): the confusion matrix, and the first batch with its boxes.
        self.confusion = ConfusionMatrix(len(self.names), detection=True) if self.args.plots else None
        self.plot_batch: dict[str, Any] | None = None

    def postprocess(self, preds: Any) -> list[torch.Tensor]:
        """Apply confidence filtering and NMS: per image an (n, 6) tensor of xyxy, score, class."""
        conf = VAL_CONF if self.args.conf is None else self.args.conf
        return non_max_suppression(
            preds,
            conf=conf,
            iou=self.args.iou,
            max_det=self.args.max_det,
            agnostic=self.args.agnostic_nms or self.args.single_cls,
        )

    def update_metrics(self, preds: list[torch.Tensor], batch: dict[str, Any]) -> None:
        """Match each image's detections to its labels (both in letterboxed pixels)."""
        h, w = batch["img"].shape[2:]
        scale = torch.tensor([w, h, w, h], device=batch["bboxes"].device, dtype=torch.float32)
        for i, pred in enumerate(preds):
            sel = batch["batch_idx"] == i
            gt_boxes = box_convert(batch["bboxes"][sel].float(), "cxcywh", "xyxy") * scale
            self.stats.update(pred.detach().float(), gt_boxes, batch["cls"][sel].view(-1))
            if self.confusion is not None:
                self.confusion.update_detections(pred.detach().float(), gt_boxes, batch["cls"][sel].view(-1))
            self.n_images += 1
        if self.args.plots and self.plot_batch is None:
            self.plot_batch = {"img": batch["img"][:16].cpu(), "pred": [p.detach().cpu() for p in preds[:16]]}

    def get_stats(self) -> dict[str, float]:
        """Return precision, recall, mAP50 and mAP50-95 under the Ultralytics keys, plus `fitness`."""
        self.metrics = self.stats.compute()
        return {**self.metrics.results_dict(), "fitness": self.metrics.fitness}

    def print_results(self) -> None:
        """Log the overall metrics and each class's AP."""
        m = self.metrics
        n_labels = sum(len(t) for t in self.stats.target_cls)
        LOGGER.info(
            "%-12s images %d labels %d  P %.3f  R %.3f  mAP50 %.3f  mAP50-95 %.3f",
            "all",
            self.n_images,
            n_labels,
            m.p,
            m.r,
            m.map50,
            m.map,
        )
        for c, ap in zip(m.ap_class, m.ap, strict=True):
            LOGGER.info("%-12s mAP50 %.3f  mAP50-95 %.3f", self.names.get(int(c), str(c)), ap[0], ap.mean())
