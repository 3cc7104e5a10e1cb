"""DetectionPredictor: boxes in original image pixels, scores and classes for every image of a source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from trainer_engine.data.detect.augment import letterbox, letterbox_pad, resized_size
from trainer_engine.engine.predictor import BasePredictor
from trainer_engine.models.detect.boxes import scale_boxes
from trainer_engine.models.detect.loading import load_detection_model
from trainer_engine.models.detect.results import Boxes, Results
from trainer_engine.nn.detect_ops import non_max_suppression
from trainer_engine.utils.torch_utils import select_device

PREDICT_CONF = 0.25  # the usual display threshold when `conf` is not set


class DetectionPredictor(BasePredictor):
    """Detect objects: `DetectionPredictor(overrides={"model": "best.pt", "source": "images/"})()`."""

    def load_model(self, model: str | Path | nn.Module | None) -> nn.Module:
        """Return the model (a module, or one rebuilt from a .pt checkpoint) in eval mode on this device."""
        return load_detection_model(
            model if model is not None else self.args.model, select_device(self.args.device)
        )

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        """Letterbox each RGB image to imgsz and stack them as a float batch in 0..1."""
        arrays = np.stack([letterbox(im, self.args.imgsz)[0] for im in images])
        return torch.from_numpy(arrays).permute(0, 3, 1, 2).to(self.device).float() / 255

    def postprocess(
        self, preds: Any, img: torch.Tensor, images: list[Image.Image], paths: list[str]
    ) -> list[Results]:
        """Apply NMS and map each image's boxes from the letterboxed frame back to its own pixels."""
        dets = non_max_suppression(
            preds,
            conf=PREDICT_CONF if self.args.conf is None else self.args.conf,
            iou=self.args.iou,
            max_det=self.args.max_det,
            classes=self.args.classes,
            agnostic=self.args.agnostic_nms,
        )
        names = dict(getattr(self.model, "names", None) or {})
        results = []
        for det, image, path in zip(dets, images, paths, strict=True):
            r, (w, h) = resized_size(image.width, image.height, self.args.imgsz)
            det = det.detach().cpu().clone()
            det[:, :4] = scale_boxes(
                det[:, :4], (r, letterbox_pad(w, h, self.args.imgsz)), (image.height, image.width)
            )
            results.append(Results(str(path), (image.height, image.width), names, Boxes(det)))
        return results
