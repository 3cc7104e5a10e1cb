"""The error raised for a missing or malformed detection dataset."""


class DatasetError(ValueError):
    """A detection dataset cannot be used; the message names the file, the problem and the fix."""
