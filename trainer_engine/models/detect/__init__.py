"""The detection task: trainer, validator and predictor of the anchor-free tiny-det models."""

from trainer_engine.models.detect.predict import DetectionPredictor
from trainer_engine.models.detect.results import Boxes, Results
from trainer_engine.models.detect.train import DetectionTrainer
from trainer_engine.models.detect.val import DetectionValidator

__all__ = ["Boxes", "DetectionPredictor", "DetectionTrainer", "DetectionValidator", "Results"]
