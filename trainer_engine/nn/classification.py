"""ClassificationModel: a torchvision network by name, or a small CNN from a model config file."""

from __future__ import annotations

import difflib
import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from trainer_engine.nn.base import BaseModel
from trainer_engine.nn.classify_cnn import ModelConfigError, build_cnn
from trainer_engine.utils.checkpoint import load_torch_file
from trainer_engine.utils.yaml_file import read_yaml

LOGGER = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parents[1] / "cfg" / "models"
DEFAULT_MODEL = "tiny-cls.yaml"
# torchvision networks that add auxiliary heads in training mode; we train their main head only.
_AUX_LOGIT_MODELS = {"googlenet", "inception_v3"}


class ClassificationLoss:
    """Cross-entropy on logits; returns `(loss, loss_items)` with one item, the mean loss."""

    def __call__(self, preds: torch.Tensor, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute the mean cross-entropy of `preds` against `batch["cls"]`."""
        loss = F.cross_entropy(preds, batch["cls"].long())
        return loss, loss.detach().reshape(1)


def torchvision_names() -> list[str]:
    """Return the torchvision classification model names that `model=` accepts."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def config_names() -> list[str]:
    """Return the bundled model config files (e.g. `tiny-cls.yaml`)."""
    return sorted(p.name for p in MODELS_DIR.glob("*.yaml"))


def resolve_model_cfg(cfg: str | Path | dict[str, Any] | None) -> dict[str, Any]:
    """Turn `model=` (None, a torchvision name, a config file or a config dict) into a config dict."""
    if cfg is None or cfg == "":
        cfg = DEFAULT_MODEL
    if isinstance(cfg, dict):
        return dict(cfg)
    name = str(cfg)
    if name.endswith((".yaml", ".yml")):
        return _load_yaml_cfg(name)
    if name.endswith((".pt", ".pth")):
        raise ModelConfigError(
            f"model {name!r} is a weights file; load it with ClassificationModel.from_checkpoint(), "
            "or pass model=<name or config> with pretrained=<file>"
        )
    if name in torchvision_names():
        return {"torchvision": name}
    choices = torchvision_names() + config_names()
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise ModelConfigError(
        f"unknown classification model {name!r}; {hint}use a torchvision model name "
        "(resnet18, mobilenet_v3_small, efficientnet_b0, ...), a model config file "
        f"({', '.join(config_names())}) or a .pt checkpoint"
    )


def _load_yaml_cfg(name: str) -> dict[str, Any]:
    path = Path(name)
    if not path.is_file():
        path = MODELS_DIR / Path(name).name
    if not path.is_file():
        raise ModelConfigError(
            f"model config file {name!r} not found; give an existing path or a bundled config "
            f"({', '.join(config_names())})"
        )
    data = read_yaml(path, ModelConfigError)
    if not isinstance(data, dict):
        raise ModelConfigError(
            f"model config file {str(path)!r} must hold a mapping, got {type(data).__name__}"
        )
    data.setdefault("yaml_file", path.name)
    return data


def extract_state_dict(obj: Any) -> dict[str, torch.Tensor]:
    """Return the model state dict inside a checkpoint dict, a plain state dict or a module."""
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        # A checkpoint: prefer the EMA weights, as they are what validation scored.
        for key in ("ema", "model", "state_dict"):
            found = obj.get(key)
            if isinstance(found, nn.Module):
                return found.state_dict()
            if isinstance(found, dict) and found and all(isinstance(v, torch.Tensor) for v in found.values()):
                return found
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise ModelConfigError("weights hold no model state dict (expected a checkpoint or a state dict)")


def checkpoint_model_cfg(ckpt: dict[str, Any]) -> dict[str, Any] | None:
    """Return the model config stored in one of our checkpoints, if any."""
    for key in ("model_cfg", "model_yaml", "yaml"):
        if isinstance(ckpt.get(key), dict):
            return dict(ckpt[key])
    return None


def load_weights_file(path: str | Path) -> dict[str, Any]:
    """Load a local weights file safely (tensors and plain values only, no pickled code)."""
    weights = load_torch_file(path)
    if not isinstance(weights, dict):
        raise ModelConfigError(f"weights file '{path}' holds a {type(weights).__name__}, not a state dict")
    return weights


class ClassificationModel(BaseModel):
    """Image classifier: `model(images)` gives logits, `model(batch)` gives `(loss, loss_items)`."""

    def __init__(
        self,
        cfg: str | Path | dict[str, Any] | None = DEFAULT_MODEL,
        ch: int = 3,
        nc: int | None = None,
        verbose: bool = True,
    ) -> None:
        super().__init__()
        self.yaml = resolve_model_cfg(cfg)
        if nc is not None:
            self.yaml["nc"] = int(nc)
        nc = int(self.yaml.get("nc") or 1000)
        self.yaml["nc"] = nc
        self.yaml.setdefault("ch", ch)
        self.model = self._build(self.yaml, nc, int(self.yaml["ch"]))
        self.nc = nc
        self.names = self.yaml.get("names") or {i: str(i) for i in range(nc)}
        self.args: Any = None
        if verbose:
            n_params = sum(p.numel() for p in self.parameters())
            LOGGER.info("ClassificationModel %s: %d classes, %d parameters", self.describe(), nc, n_params)

    @staticmethod
    def _build(cfg: dict[str, Any], nc: int, ch: int) -> nn.Module:
        if "custom" in cfg:
            raise ModelConfigError(
                f"this model is a custom class ({cfg['custom']}) that no config rebuilds; build it with your "
                "trainer's get_model() and load the checkpoint's 'model' state dict into it"
            )
        name = cfg.get("torchvision")
        if name is None:
            return build_cnn(cfg, nc=nc, ch=ch)
        if name not in torchvision_names():
            resolve_model_cfg(name)  # raises the "did you mean" error
        kwargs: dict[str, Any] = {"weights": None, "num_classes": nc}
        if name in _AUX_LOGIT_MODELS:
            kwargs.update(aux_logits=False, init_weights=True)
        return torchvision.models.get_model(name, **kwargs)

    @property
    def names(self) -> dict[int, str]:
        """Class index -> class name."""
        return self._names

    @names.setter
    def names(self, value: dict[int, str] | list[str]) -> None:
        names = dict(enumerate(value)) if isinstance(value, list | tuple) else dict(value)
        self._names = {int(k): str(v) for k, v in names.items()}
        # Kept in the config so a checkpoint alone can label predictions.
        self.yaml["names"] = dict(self._names)

    def describe(self) -> str:
        """Return a short name: the torchvision model or the config file."""
        return str(self.yaml.get("torchvision") or self.yaml.get("yaml_file") or "custom")

    def predict(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Return class logits of shape (batch, nc)."""
        out = self.model(x)
        return getattr(out, "logits", out)

    def init_criterion(self) -> ClassificationLoss:
        """Build the cross-entropy loss."""
        return ClassificationLoss()

    def load(self, weights: Any, verbose: bool = True) -> ClassificationModel:
        """Copy matching tensors from a checkpoint, state dict, module or weights file into this model."""
        source = weights
        if isinstance(weights, str | Path):
            source = load_weights_file(weights)
        state = _align_keys(extract_state_dict(source), self.state_dict())
        own = self.state_dict()
        matched = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
        self.load_state_dict(matched, strict=False)
        if verbose:
            LOGGER.info("Transferred %d/%d items from pretrained weights", len(matched), len(own))
        if not matched:
            raise ModelConfigError(
                f"no tensor in the weights matches model {self.describe()!r}; "
                "check that the weights were saved from the same architecture"
            )
        return self

    @classmethod
    def wrap(cls, module: nn.Module, nc: int, names: dict[int, str] | None = None) -> ClassificationModel:
        """Wrap a plain module that maps images to logits, so the engine trains it with cross-entropy."""
        model = cls.__new__(cls)
        BaseModel.__init__(model)
        # No config can rebuild a user's own class: a checkpoint of it loads through their get_model().
        model.yaml = {"custom": f"{type(module).__module__}.{type(module).__qualname__}", "nc": nc}
        model.model = module
        model.nc = nc
        model.names = names or {i: str(i) for i in range(nc)}
        model.args = None
        return model

    @classmethod
    def from_checkpoint(
        cls, weights: str | Path | dict[str, Any], verbose: bool = False
    ) -> ClassificationModel:
        """Rebuild a model from one of our checkpoints (its stored config) and load its weights."""
        ckpt = load_weights_file(weights) if isinstance(weights, str | Path) else weights
        cfg = checkpoint_model_cfg(ckpt) if isinstance(ckpt, dict) else None
        if cfg is None:
            raise ModelConfigError(
                f"{weights if isinstance(weights, str | Path) else 'checkpoint'} holds no model config; "
                "pass model=<torchvision name or config file> with pretrained=<this file> instead"
            )
        model = cls(cfg, verbose=verbose)
        model.load(ckpt, verbose=verbose)
        return model


def _align_keys(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop DDP's 'module.' prefix and add our 'model.' prefix to a bare torchvision state dict."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if not any(k.startswith("model.") for k in state) and all(k.startswith("model.") for k in own):
        state = {f"model.{k}": v for k, v in state.items()}
    return state
