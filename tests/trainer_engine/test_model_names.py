"""The torch-free list of model names the service checks at submit matches what the engine accepts."""

from __future__ import annotations

from trainer_engine.cfg.model_names import TORCHVISION_CLASSIFIERS, bundled_configs
from trainer_engine.nn.classification import ClassificationModel, torchvision_names
from trainer_engine.nn.detection import DetectionModel


def test_the_torchvision_list_is_the_installed_torchvisions() -> None:
    assert sorted(TORCHVISION_CLASSIFIERS) == torchvision_names()


def test_every_bundled_name_builds_a_model() -> None:
    names = sorted(set(bundled_configs().values()))
    assert names == [
        "tiny-cls.yaml",
        "tiny-det-m.yaml",
        "tiny-det-n.yaml",
        "tiny-det-s.yaml",
        "tiny-det.yaml",
    ]
    for name in names:
        model = (ClassificationModel if name.startswith("tiny-cls") else DetectionModel)(
            name, nc=2, verbose=False
        )
        assert sum(p.numel() for p in model.parameters()) > 0
