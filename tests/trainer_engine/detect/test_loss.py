"""Sanity of the task-aligned assigner, the detection loss and the model's shapes."""

from __future__ import annotations

import pytest
import torch

from trainer_engine.nn.detect_assigner import TaskAlignedAssigner
from trainer_engine.nn.detect_ops import make_anchors
from trainer_engine.nn.tasks import DetectionModel


def _grid(size: int = 64, stride: int = 8) -> torch.Tensor:
    points, strides = make_anchors(
        [torch.zeros(1, 1, size // stride, size // stride)], torch.tensor([stride])
    )
    return points * strides


def test_assigner_picks_topk_anchors_inside_the_box() -> None:
    anchors = _grid()
    a = len(anchors)
    gt = torch.tensor([[[8.0, 8.0, 40.0, 40.0]]])
    pd_boxes = gt.expand(1, a, 4).clone()  # every prediction is the box itself: IoU 1
    scores = torch.full((1, a, 2), 0.5)
    labels, boxes, tscores, fg = TaskAlignedAssigner(topk=5)(
        scores, pd_boxes, anchors, torch.tensor([[[1.0]]]), gt, torch.ones(1, 1, 1)
    )
    inside = ((anchors > 8) & (anchors < 40)).all(1)
    assert fg.sum() == 5 and bool(inside[fg[0]].all())
    assert (labels[fg] == 1).all() and torch.allclose(boxes[fg], gt[0].expand(5, 4))
    assert tscores[..., 0].sum() == 0 and tscores[fg][:, 1].max() == pytest.approx(1.0)


def test_assigner_gives_a_shared_anchor_to_the_box_it_overlaps_most() -> None:
    anchors = torch.tensor([[20.0, 20.0]])
    gts = torch.tensor([[[0.0, 0.0, 40.0, 40.0], [10.0, 10.0, 30.0, 30.0]]])
    pred = torch.tensor([[[11.0, 11.0, 31.0, 31.0]]])
    labels, boxes, _, fg = TaskAlignedAssigner(topk=1)(
        torch.full((1, 1, 2), 0.5), pred, anchors, torch.tensor([[[0.0], [1.0]]]), gts, torch.ones(1, 2, 1)
    )
    assert bool(fg[0, 0]) and labels[0, 0] == 1 and torch.equal(boxes[0, 0], gts[0, 1])


def test_assigner_without_boxes_assigns_nothing() -> None:
    out = TaskAlignedAssigner()(
        torch.rand(2, 10, 3),
        torch.rand(2, 10, 4),
        torch.rand(10, 2),
        torch.zeros(2, 0, 1),
        torch.zeros(2, 0, 4),
        torch.zeros(2, 0, 1),
    )
    assert not out[3].any() and out[2].sum() == 0


def _batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "img": torch.rand(2, 3, 64, 64),
        "cls": torch.tensor([[0.0], [1.0], [1.0]]),
        "bboxes": torch.tensor([[0.3, 0.3, 0.3, 0.4], [0.7, 0.6, 0.4, 0.3], [0.5, 0.5, 0.5, 0.5]]),
        "batch_idx": torch.tensor([0.0, 0.0, 1.0]),
    }


def test_loss_falls_when_fitting_one_batch() -> None:
    torch.manual_seed(0)
    model = DetectionModel("tiny-det-n.yaml", nc=2, verbose=False)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = _batch()
    first = None
    for _ in range(40):
        loss, items = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = items if first is None else first
    assert items.shape == (3,) and torch.isfinite(items).all()
    assert items.sum() < 0.5 * first.sum()


def test_loss_without_targets_is_classification_only() -> None:
    model = DetectionModel("tiny-det-n.yaml", nc=3, verbose=False)
    batch = {
        "img": torch.rand(2, 3, 64, 64),
        "cls": torch.zeros(0, 1),
        "bboxes": torch.zeros(0, 4),
        "batch_idx": torch.zeros(0),
    }
    loss, items = model(batch)
    assert torch.isfinite(loss) and items[0] == 0 and items[2] == 0 and items[1] > 0


@pytest.mark.parametrize("scale", ["n", "s"])
def test_model_scales_and_output_shape(scale: str) -> None:
    model = DetectionModel(f"tiny-det-{scale}.yaml", nc=5, verbose=False).eval()
    with torch.no_grad():
        out, maps = model(torch.rand(1, 3, 64, 64))
    assert [m.shape[-1] for m in maps] == [8, 4, 2]
    assert out.shape == (1, 4 + 5, 8 * 8 + 4 * 4 + 2 * 2)
    assert model.yaml["scale"] == scale


def test_unknown_model_config_names_the_built_in_ones() -> None:
    with pytest.raises(FileNotFoundError, match=r"tiny-det\.yaml"):
        DetectionModel("no-such-model.yaml")
