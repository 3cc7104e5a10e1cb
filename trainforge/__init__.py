"""trainforge: a self-hosted service that runs training jobs on a pool of workers."""

__version__ = "0.1.0"
