"""Datasets and uploaded models as tenant resources: storage, archives, references, validation records."""
