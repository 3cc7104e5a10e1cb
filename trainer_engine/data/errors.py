"""The error raised for a missing or malformed dataset, of any task."""


class DatasetError(ValueError):
    """A dataset cannot be used; the message names the problem and how to fix it."""
