"""The validator's mAP agrees with pycocotools' COCOeval on the same detections."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torchvision.ops import box_convert

from trainer_engine.cfg import get_cfg
from trainer_engine.models.detect import DetectionValidator
from trainer_engine.models.detect.metrics import compute_metrics, match_predictions


def _scene(rng: np.random.Generator, n_images: int, nc: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random ground truth and noisy detections (jittered copies, duplicates and false positives)."""
    scenes = []
    for _ in range(n_images):
        m = int(rng.integers(0, 8))
        xy = rng.uniform(0, 200, (m, 2))
        gt = np.c_[xy, xy + rng.uniform(10, 80, (m, 2)), rng.integers(0, nc, m)]
        dets = []
        for box in gt:
            for _ in range(int(rng.integers(0, 3))):  # 0 = missed, 2 = a duplicate
                jitter = rng.normal(0, rng.uniform(1, 12), 4)
                cls = box[4] if rng.random() < 0.9 else rng.integers(0, nc)
                dets.append([*(box[:4] + jitter), rng.uniform(0.05, 1), cls])
        for _ in range(int(rng.integers(0, 5))):
            x, y = rng.uniform(0, 200, 2)
            dets.append(
                [x, y, x + rng.uniform(5, 60), y + rng.uniform(5, 60), rng.uniform(0, 0.7), rng.integers(nc)]
            )
        d = np.array(dets, np.float64).reshape(-1, 6)
        d[:, 2:4] = np.maximum(d[:, 2:4], d[:, 0:2] + 1)
        scenes.append((gt, d))
    return scenes


def _ours(scenes: list[tuple[np.ndarray, np.ndarray]], nc: int) -> tuple[float, float]:
    tps, confs, clss, targets = [], [], [], []
    for gt, det in scenes:
        pred = torch.tensor(det, dtype=torch.float64)
        tps.append(match_predictions(pred, torch.tensor(gt[:, :4]), torch.tensor(gt[:, 4])))
        confs.append(det[:, 4])
        clss.append(det[:, 5])
        targets.append(gt[:, 4])
    metrics = compute_metrics(
        np.concatenate(tps), np.concatenate(confs), np.concatenate(clss), np.concatenate(targets), {}
    )
    return metrics.map50, metrics.map


def _coco(scenes: list[tuple[np.ndarray, np.ndarray]], nc: int) -> tuple[float, float]:
    images, anns, results = [], [], []
    for img_id, (gt, det) in enumerate(scenes, 1):
        images.append({"id": img_id, "width": 300, "height": 300})
        for x1, y1, x2, y2, c in gt:
            w, h = x2 - x1, y2 - y1
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img_id,
                    "category_id": int(c),
                    "bbox": [x1, y1, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        for x1, y1, x2, y2, s, c in det:
            results.append(
                {"image_id": img_id, "category_id": int(c), "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s}
            )
    gt_api = COCO()
    gt_api.dataset = {"images": images, "annotations": anns, "categories": [{"id": i} for i in range(nc)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt_api.createIndex()
        ev = COCOeval(gt_api, gt_api.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[1]), float(ev.stats[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_matches_pycocotools(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scenes = _scene(rng, n_images=25, nc=3)
    ours, coco = _ours(scenes, 3), _coco(scenes, 3)
    assert ours == pytest.approx(coco, abs=1e-3)
    assert 0.1 < coco[1] < 0.95  # the scene is neither trivial nor hopeless


def test_perfect_predictions_score_one() -> None:
    gt = torch.tensor([[0.0, 0, 10, 10], [20, 20, 40, 50]])
    pred = torch.tensor([[0.0, 0, 10, 10, 0.9, 0], [20, 20, 40, 50, 0.8, 1]])
    tp = match_predictions(pred, gt, torch.tensor([0, 1]))
    m = compute_metrics(tp, pred[:, 4].numpy(), pred[:, 5].numpy(), np.array([0, 1]), {0: "a", 1: "b"})
    assert m.map == pytest.approx(1.0) and m.p == pytest.approx(1.0) and m.r == pytest.approx(1.0)


def test_validator_path_matches_pycocotools() -> None:
    """The same detections fed through DetectionValidator's update_metrics/get_stats and through COCOeval."""
    scenes = _scene(np.random.default_rng(3), n_images=20, nc=3)
    validator = DetectionValidator(args=get_cfg(task="detect"))
    validator.init_metrics(torch.nn.Identity())
    size = 300.0
    for gt, det in scenes:
        boxes = torch.tensor(gt[:, :4], dtype=torch.float32) / size
        batch = {
            "img": torch.zeros(1, 3, int(size), int(size)),
            "bboxes": box_convert(boxes, "xyxy", "cxcywh"),
            "cls": torch.tensor(gt[:, 4:5], dtype=torch.float32),
            "batch_idx": torch.zeros(len(gt)),
        }
        validator.update_metrics([torch.tensor(det, dtype=torch.float32)], batch)
    stats = validator.get_stats()
    map50, map5095 = _coco(scenes, 3)
    assert stats["metrics/mAP50(B)"] == pytest.approx(map50, abs=1e-3)
    assert stats["metrics/mAP50-95(B)"] == pytest.approx(map5095, abs=1e-3)
    assert stats["fitness"] == stats["metrics/mAP50-95(B)"]
