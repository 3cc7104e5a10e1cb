"""Our signatures verify with the `standardwebhooks` reference library, including during secret rotation."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from trainforge.webhooks import signing

BODY = json.dumps({"type": "on_fit_epoch_end", "data": {"job_id": "j1", "epoch": 1}}).encode()


def test_generated_secret_has_prefix_and_32_random_bytes() -> None:
    secret = signing.generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[len("whsec_") :])) == 32
    assert secret != signing.generate_secret()


def test_standardwebhooks_library_verifies_our_headers() -> None:
    secret = signing.generate_secret()
    headers = signing.build_headers([secret], "msg_abc", BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    signing.verify(secret, headers, BODY)


def test_signature_matches_the_library_for_a_fixed_timestamp() -> None:
    secret = signing.generate_secret()
    ts = 1_700_000_000
    expected = Webhook(secret).sign("msg_1", datetime.fromtimestamp(ts, UTC), BODY.decode())
    assert signing.sign(secret, "msg_1", ts, BODY) == expected


def test_tampered_body_or_wrong_secret_fails() -> None:
    secret = signing.generate_secret()
    headers = signing.build_headers([secret], "msg_abc", BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.generate_secret()).verify(BODY, headers)
    with pytest.raises(signing.SignatureError, match="no webhook-signature matches"):
        signing.verify(signing.generate_secret(), headers, BODY)


def test_rotation_sends_two_signatures_both_secrets_verify() -> None:
    old, new = signing.generate_secret(), signing.generate_secret()
    now = datetime.now(UTC)
    secrets = signing.active_secrets(new, old, now + timedelta(hours=1), now)
    assert secrets == [new, old]
    headers = signing.build_headers(secrets, "msg_rot", BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    # A receiver still configured with the old secret and one already updated both accept it.
    Webhook(old).verify(BODY, headers)
    Webhook(new).verify(BODY, headers)


def test_previous_secret_dropped_after_grace_period() -> None:
    old, new = signing.generate_secret(), signing.generate_secret()
    now = datetime.now(UTC)
    secrets = signing.active_secrets(new, old, now - timedelta(seconds=1), now)
    assert secrets == [new]
    headers = signing.build_headers(secrets, "msg_rot", BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(BODY, headers)
    # SQLite hands back naive datetimes: they are treated as UTC, not refused.
    naive = (now + timedelta(hours=1)).replace(tzinfo=None)
    assert signing.active_secrets(new, old, naive, now) == [new, old]


def test_timestamp_is_fresh_per_attempt_and_checked() -> None:
    secret = signing.generate_secret()
    stale = signing.build_headers([secret], "msg_old", BODY, timestamp=int(time.time()) - 3600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, stale)
    with pytest.raises(signing.SignatureError, match="more than 300 s"):
        signing.verify(secret, stale, BODY)


SIZE_RULE = "use 24-64 random bytes, base64-encoded"


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("abc", "webhook secret must start with 'whsec_'"),
        ("whsec_***", "webhook secret is not valid base64 after 'whsec_': Only base64 data is allowed"),
        ("whsec_abc", "webhook secret is not valid base64 after 'whsec_': Incorrect padding"),
        ("whsec_" + base64.b64encode(b"short").decode(), f"webhook secret holds 5 bytes: {SIZE_RULE}"),
        ("whsec_" + base64.b64encode(bytes(23)).decode(), f"webhook secret holds 23 bytes: {SIZE_RULE}"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), f"webhook secret holds 65 bytes: {SIZE_RULE}"),
        ("whsec_" + "A" * 296, f"webhook secret is too long: {SIZE_RULE}"),
    ],
)
def test_bad_secrets_are_named(secret: str, message: str) -> None:
    with pytest.raises(signing.SignatureError) as caught:
        signing.sign(secret, "msg", 1, b"{}")
    assert str(caught.value) == message


def test_secrets_of_every_allowed_size_sign() -> None:
    for size in (signing.MIN_SECRET_BYTES, signing.SECRET_BYTES, signing.MAX_SECRET_BYTES):
        secret = "whsec_" + base64.b64encode(bytes(range(size))).decode()
        assert len(secret) <= 200  # the column that stores secrets
        assert signing.sign(secret, "msg", 1, b"{}").startswith("v1,")


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing webhook-id"),
        ({"webhook-id": "m", "webhook-timestamp": "soon", "webhook-signature": "v1,x"}, "not an integer"),
    ],
)
def test_verify_names_bad_headers(headers: dict[str, str], message: str) -> None:
    with pytest.raises(signing.SignatureError, match=message):
        signing.verify(signing.generate_secret(), headers, BODY)
