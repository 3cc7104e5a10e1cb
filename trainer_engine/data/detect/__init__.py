"""Detection data: YOLO-format datasets, data YAML loading, augmentation and the synthetic shapes set."""

from trainer_engine.data.detect.dataset import YOLODataset, batch_to_device, build_dataloader, collate_fn
from trainer_engine.data.detect.yaml_data import check_det_dataset
from trainer_engine.data.errors import DatasetError

__all__ = [
    "DatasetError",
    "YOLODataset",
    "batch_to_device",
    "build_dataloader",
    "check_det_dataset",
    "collate_fn",
]
