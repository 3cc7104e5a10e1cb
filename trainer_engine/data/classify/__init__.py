"""Classification data: ImageFolder datasets, the synthetic set, transforms and loaders."""

from trainer_engine.data.classify.dataset import ClassificationDataset
from trainer_engine.data.classify.folder import IMG_EXTENSIONS, check_cls_dataset, verify_image
from trainer_engine.data.classify.loader import build_dataloader
from trainer_engine.data.classify.synthetic import SyntheticSpec, ensure_synthetic, is_synthetic, parse_spec
from trainer_engine.data.classify.transforms import classify_augmentations, classify_transforms
from trainer_engine.data.errors import DatasetError

__all__ = [
    "IMG_EXTENSIONS",
    "ClassificationDataset",
    "DatasetError",
    "SyntheticSpec",
    "build_dataloader",
    "check_cls_dataset",
    "classify_augmentations",
    "classify_transforms",
    "ensure_synthetic",
    "is_synthetic",
    "parse_spec",
    "verify_image",
]
