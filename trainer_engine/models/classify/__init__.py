"""Classification task: trainer, validator and predictor."""

from trainer_engine.models.classify.predict import ClassificationPredictor, ClassifyResult
from trainer_engine.models.classify.train import ClassificationTrainer
from trainer_engine.models.classify.val import ClassificationValidator

__all__ = ["ClassificationPredictor", "ClassificationTrainer", "ClassificationValidator", "ClassifyResult"]
