"""API tokens: created once in plaintext, stored as SHA-256, resolved from `Authorization: Bearer`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from trainforge.db.models import ApiToken, Tenant
from trainforge.db.types import new_id, utcnow

TOKEN_PREFIX = "tf_"
PREFIX_LEN = 12  # "tf_" + 9 characters: enough to find the row, useless to an attacker


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant a token belongs to."""

    tenant_id: str
    tenant_name: str
    token_id: str
    # When the token stops working (None: never); a cached principal is checked against it too.
    expires_at: datetime | None = None

    def expired(self) -> bool:
        """Return whether the token has expired."""
        return self.expires_at is not None and self.expires_at <= utcnow()


def hash_token(token: str) -> str:
    """Return the hex SHA-256 of a token (tokens are random, so no salt or slow hash is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def get_or_create_tenant(session: Session, name: str) -> Tenant:
    """Return the tenant called `name`, creating it if needed (flushes, never commits)."""
    name = name.strip()
    if not name:
        raise ValueError("tenant name must not be empty")
    tenant = session.execute(select(Tenant).where(Tenant.name == name)).scalar_one_or_none()
    if tenant is None:
        tenant = Tenant(id=new_id(), name=name)
        session.add(tenant)
        session.flush()
    return tenant


def create_token(
    session: Session, tenant_name: str, name: str | None = None, expires_at: datetime | None = None
) -> str:
    """Create an API token for tenant `tenant_name` (created if missing); return the plaintext, shown once."""
    tenant = get_or_create_tenant(session, tenant_name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            id=new_id(),
            tenant_id=tenant.id,
            name=name,
            prefix=token[:PREFIX_LEN],
            token_hash=hash_token(token),
            expires_at=expires_at,
        )
    )
    session.flush()
    return token


def list_tokens(
    session: Session, tenant_name: str | None = None, include_inactive: bool = False
) -> list[tuple[ApiToken, str]]:
    """Return (token row, tenant name) pairs, oldest first; only usable tokens unless `include_inactive`."""
    query = select(ApiToken, Tenant.name).join(Tenant, Tenant.id == ApiToken.tenant_id)
    if tenant_name is not None:
        query = query.where(Tenant.name == tenant_name)
    if not include_inactive:
        query = query.where(
            ApiToken.revoked_at.is_(None), or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > utcnow())
        )
    return [(row, name) for row, name in session.execute(query.order_by(ApiToken.created_at, ApiToken.id))]


class TokenNotFound(LookupError):
    """No token, or more than one, matches what was given to revoke."""


def revoke_token(session: Session, id_or_prefix: str) -> ApiToken:
    """Revoke the token whose id or shown prefix is `id_or_prefix`; TokenNotFound if none or several match.

    API processes that resolved it in the last `auth_cache_s` seconds go on accepting it until then.
    """
    key = id_or_prefix.strip()
    rows = list(
        session.execute(select(ApiToken).where(or_(ApiToken.id == key, ApiToken.prefix == key))).scalars()
    )
    if len(rows) != 1:
        why = "no token has" if not rows else f"{len(rows)} tokens have"
        raise TokenNotFound(f"{why} the id or prefix {key!r}; see `trainforge token list --all`")
    token = rows[0]
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
    return token


class _Cache:
    """A small TTL cache of resolved tokens so hot read paths skip a DB round trip."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, ttl: float) -> Principal | None:
        """Return the cached principal for `key` if younger than `ttl` seconds."""
        with self._lock:
            item = self._items.get(key)
        if item is None or time.monotonic() - item[0] > ttl or item[1].expired():
            return None
        return item[1]

    def put(self, key: str, principal: Principal) -> None:
        """Remember `principal` for `key` (bounded: cleared when it grows large)."""
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key] = (time.monotonic(), principal)

    def clear(self) -> None:
        """Forget everything (after revoking a token, or between tests)."""
        with self._lock:
            self._items.clear()


token_cache = _Cache()


def cached_principal(token: str, cache_ttl_s: float) -> Principal | None:
    """Return the principal of a token resolved within the last `cache_ttl_s` seconds, without the DB."""
    return token_cache.get(hash_token(token), cache_ttl_s) if cache_ttl_s > 0 else None


def resolve_token(session: Session, token: str, cache_ttl_s: float = 0.0) -> Principal | None:
    """Return the principal of a valid, unrevoked token, or None.

    With `cache_ttl_s` > 0 a resolved token is trusted for that long without reading the DB
    (a revocation then takes effect within that delay).
    """
    if not token.startswith(TOKEN_PREFIX) or len(token) < PREFIX_LEN + 8:
        return None
    digest = hash_token(token)
    if cache_ttl_s > 0:
        cached = token_cache.get(digest, cache_ttl_s)
        if cached is not None:
            return cached
    rows = session.execute(
        select(ApiToken.id, ApiToken.token_hash, ApiToken.tenant_id, Tenant.name, ApiToken.expires_at)
        .join(Tenant, Tenant.id == ApiToken.tenant_id)
        .where(
            ApiToken.prefix == token[:PREFIX_LEN],
            ApiToken.revoked_at.is_(None),
            or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > utcnow()),
        )
    ).all()
    for token_id, stored, tenant_id, tenant_name, expires_at in rows:
        if hmac.compare_digest(stored, digest):
            principal = Principal(
                tenant_id=tenant_id, tenant_name=tenant_name, token_id=token_id, expires_at=expires_at
            )
            if cache_ttl_s > 0:
                token_cache.put(digest, principal)
            return principal
    return None
