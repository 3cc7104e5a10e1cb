"""The error raised for a missing or malformed classification dataset."""


class DatasetError(ValueError):
    """A dataset cannot be used; the message names the problem and how to fix it."""
