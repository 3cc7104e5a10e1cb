"""The worker: Celery app and tasks, the run_job supervisor, the training child and its event bridge."""
