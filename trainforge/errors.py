"""Errors that carry their HTTP status, raised by services and turned into JSON by the API."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A request the service refuses; `detail` says what is wrong and how to fix it."""

    status_code = 400

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(ServiceError):
    """The resource does not exist (or belongs to another tenant)."""

    status_code = 404


class Conflict(ServiceError):
    """The request conflicts with the resource's current state."""

    status_code = 409


class Invalid(ServiceError):
    """The request is well-formed but its content cannot be accepted."""

    status_code = 422


class TooManyRequests(ServiceError):
    """The caller holds as much of a shared resource as it may; `retry_after_s` says when to try again."""

    status_code = 429

    def __init__(self, detail: str, retry_after_s: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        """Return the Retry-After header of the answer."""
        return {"Retry-After": str(self.retry_after_s)}
