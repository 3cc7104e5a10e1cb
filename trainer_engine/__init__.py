"""trainer_engine: a training engine with the Ultralytics trainer API (classification and detection)."""

__version__ = "0.1.0"
