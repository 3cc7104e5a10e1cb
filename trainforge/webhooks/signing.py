"""Standard Webhooks signatures: `whsec_` secrets and `v1,<base64 HMAC-SHA256>` of `id.timestamp.body`."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

SECRET_PREFIX = "whsec_"
# 32 random bytes: the HMAC-SHA256 block is 64 bytes, so this is well inside the recommended 24-64 range.
SECRET_BYTES = 32
# What Standard Webhooks recommends for a key; the longest (88 base64 characters) fits the 200-character
# column that stores secrets with room to spare.
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64
SIZE_RULE = f"use {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} random bytes, base64-encoded"
# Receivers refuse timestamps further than this from their clock (the Standard Webhooks default).
TOLERANCE_S = 300


class SignatureError(ValueError):
    """A webhook's headers or signature do not verify."""


def generate_secret() -> str:
    """Return a new random `whsec_` secret."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """Decode a `whsec_<base64>` secret into its key bytes; SignatureError says what is wrong with it.

    The one check of a secret, whoever supplies it: a job's inline webhook, or a stored row about to sign.
    """
    if not secret.startswith(SECRET_PREFIX):
        raise SignatureError(f"webhook secret must start with {SECRET_PREFIX!r}")
    encoded = secret[len(SECRET_PREFIX) :]
    if len(encoded) > 4 * MAX_SECRET_BYTES:  # refuse before decoding a huge string
        raise SignatureError(f"webhook secret is too long: {SIZE_RULE}")
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise SignatureError(f"webhook secret is not valid base64 after {SECRET_PREFIX!r}: {exc}") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise SignatureError(f"webhook secret holds {len(key)} bytes: {SIZE_RULE}")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `v1,<base64>` signature of `msg_id.timestamp.body` under one secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` value: one signature per secret, space-separated."""
    values = [sign(secret, msg_id, timestamp, body) for secret in secrets_]
    if not values:
        raise SignatureError("no webhook secret to sign with")
    return " ".join(values)


def build_headers(
    secrets_: Iterable[str], msg_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """Return the three Standard Webhooks headers (plus content-type) for one attempt."""
    # The timestamp is the attempt's time, not the event's: receivers reject old timestamps (replay guard),
    # so a retry hours later must carry a fresh one while webhook-id stays the same.
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature_header(secrets_, msg_id, ts, body),
    }


def active_secrets(
    secret: str, previous_secret: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """Return the secrets to sign with: the current one, plus the previous one during its grace period."""
    out = [secret]
    if previous_secret and previous_expires_at is not None and _aware(now) < _aware(previous_expires_at):
        out.append(previous_secret)
    return out


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None) -> None:
    """Check a received webhook's headers against its body; raise SignatureError when they do not match."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, ts, sigs = (lower.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and ts and sigs):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(ts)
    except ValueError:
        raise SignatureError(f"webhook-timestamp {ts!r} is not an integer number of seconds") from None
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_S:
        raise SignatureError(f"webhook-timestamp {timestamp} is more than {TOLERANCE_S} s from now")
    expected = sign(secret, msg_id, timestamp, body).encode()
    if not any(hmac.compare_digest(expected, s.encode()) for s in sigs.split(" ")):
        raise SignatureError("no webhook-signature matches this secret")


def _aware(value: datetime) -> datetime:
    """Treat naive datetimes (as SQLite returns them) as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
