"""ClassificationModel: torchvision by name, config CNNs, weights loading, loss; and the top-k metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from trainer_engine.models.classify.metrics import TOP1, TOP5, ClassifyMetrics, topk_indices
from trainer_engine.nn.classification import ClassificationModel
from trainer_engine.nn.classify_cnn import ModelConfigError
from trainer_engine.nn.tasks import ClassificationModel as FromTasks


def test_default_model_is_the_tiny_cnn() -> None:
    model = ClassificationModel(None, nc=3, verbose=False)
    assert model.describe() == "tiny-cls.yaml" and FromTasks is ClassificationModel
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
    loss, items = model({"img": torch.zeros(2, 3, 32, 32), "cls": torch.tensor([0, 2])})
    assert loss.requires_grad and items.shape == (1,)


def test_torchvision_model_by_name_at_tiny_imgsz() -> None:
    model = ClassificationModel("resnet18", nc=5, verbose=False).eval()
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 5)
    assert model.yaml["torchvision"] == "resnet18" and model.names[4] == "4"


BAD_MODELS = [
    ("resnet19", "did you mean 'resnet18'"),
    ("no-such.yaml", "not found"),
    ("best.pt", "is a weights file"),
    ({"backbone": []}, "non-empty 'backbone'"),
    ({"backbone": [["Dense", [8]]]}, "unknown layer 'Dense'; use one of Conv, ResBlock, MaxPool"),
    ({"backbone": [["Conv", ["wide"]]]}, "backbone layer 0 (Conv): bad arguments"),
    ({"backbone": [["Conv", [8]]], "head": [1]}, "'head' must be a mapping"),
]


@pytest.mark.parametrize(("cfg", "message"), BAD_MODELS, ids=[str(c[0]) for c in BAD_MODELS])
def test_bad_model_names_and_configs(cfg: object, message: str) -> None:
    with pytest.raises(ModelConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ClassificationModel(cfg, nc=2, verbose=False)


def test_weights_from_bare_torchvision_state_dict(tmp_path: Path) -> None:
    net = torchvision.models.get_model("mobilenet_v3_small", weights=None, num_classes=1000)
    path = tmp_path / "mnv3.pth"
    torch.save(net.state_dict(), path)
    model = ClassificationModel("mobilenet_v3_small", nc=4, verbose=False).load(path, verbose=False)
    # Every tensor but the 1000-class head was copied.
    first = next(k for k in net.state_dict() if k.endswith("weight"))
    assert torch.equal(model.model.state_dict()[first], net.state_dict()[first])
    assert model.model.classifier[-1].out_features == 4


def test_rebuild_from_checkpoint_dict(tmp_path: Path) -> None:
    model = ClassificationModel(nc=3, verbose=False)
    model.names = ["a", "b", "c"]
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "model_cfg": model.yaml, "epoch": 1}, path)
    again = ClassificationModel.from_checkpoint(path)
    assert again.names == {0: "a", 1: "b", 2: "c"}
    x = torch.rand(1, 3, 16, 16)
    assert torch.allclose(model.eval()(x), again.eval()(x))
    torch.save({"epoch": 1}, tmp_path / "empty.pt")
    with pytest.raises(ModelConfigError, match="holds no model config"):
        ClassificationModel.from_checkpoint(tmp_path / "empty.pt")


def test_metrics_on_a_known_case() -> None:
    logits = torch.tensor(
        [
            [9.0, 1, 0, 0, 0, 0],  # target 0: top1 hit
            [0.0, 9, 8, 7, 6, 5],  # target 5: only in the top 5
            [9.0, 8, 7, 6, 5, 0],  # target 5: missed even by top 5
            [0.0, 0, 9, 0, 0, 0],  # target 2: top1 hit
        ]
    )
    metrics = ClassifyMetrics()
    metrics.process(torch.tensor([0, 5, 5, 2]), topk_indices(logits))
    assert metrics.results_dict == {TOP1: 0.5, TOP5: 0.75, "fitness": 0.625}
    few = ClassifyMetrics()  # three classes: top-5 covers all of them
    few.process(torch.tensor([1, 2]), topk_indices(torch.tensor([[0.0, 1, 0], [1.0, 0, 0]])))
    assert (few.top1, few.top5) == (0.5, 1.0)
