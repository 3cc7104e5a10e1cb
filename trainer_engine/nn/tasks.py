"""Task models under the import path Ultralytics users know (`from ...nn.tasks import DetectionModel`)."""

from trainer_engine.nn.base import BaseModel
from trainer_engine.nn.classification import ClassificationModel
from trainer_engine.nn.detection import DetectionModel

__all__ = ["BaseModel", "ClassificationModel", "DetectionModel"]
