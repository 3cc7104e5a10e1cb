"""Tokens: shown once, stored hashed, resolved to their tenant; revoked and wrong tokens resolve to None."""

from __future__ import annotations

from sqlalchemy import select

from trainforge.auth import create_token, hash_token, resolve_token
from trainforge.db.models import ApiToken
from trainforge.db.session import session_scope
from trainforge.db.types import utcnow


def test_token_is_stored_hashed_and_resolves(settings_env) -> None:
    with session_scope() as s:
        token = create_token(s, "acme-auth")
    with session_scope() as s:
        row = s.execute(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).scalar_one()
        assert token not in (row.token_hash, row.prefix) and token.startswith(row.prefix)
        principal = resolve_token(s, token)
        assert principal is not None and principal.tenant_name == "acme-auth"


def test_bad_and_revoked_tokens_do_not_resolve(settings_env) -> None:
    with session_scope() as s:
        token = create_token(s, "acme-auth2")
    with session_scope() as s:
        assert resolve_token(s, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert resolve_token(s, "nonsense") is None
        s.execute(select(ApiToken)).scalars().first()
        for row in s.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(token))):
            row.revoked_at = utcnow()
    with session_scope() as s:
        assert resolve_token(s, token) is None


def test_two_tokens_one_tenant(settings_env) -> None:
    with session_scope() as s:
        a, b = create_token(s, "acme-auth3"), create_token(s, "acme-auth3")
    with session_scope() as s:
        assert resolve_token(s, a).tenant_id == resolve_token(s, b).tenant_id
