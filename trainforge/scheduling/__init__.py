"""Scheduling: what workers offer (inventory, registry), which job each takes next, why a job waits."""
