"""The dashboard's sign-in: a session cookie holding the API token, and the CSRF token derived from it.

The cookie is HttpOnly (page scripts never see the token) and SameSite=Strict (other sites cannot
make the browser send it). On top of that, every state-changing request signed in by the cookie
must carry the CSRF token: an HMAC of the session token, so it needs no server-side state, is the
same in every API process, and reveals nothing about the token.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request, Response

COOKIE = "trainforge_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
MAX_AGE_S = 7 * 24 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(session_token: str) -> str:
    """Return the CSRF token that goes with a session token."""
    return hmac.new(session_token.encode(), b"trainforge-ui-csrf", hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, given: str | None) -> bool:
    """Return whether `given` is the CSRF token of `session_token` (constant-time)."""
    return given is not None and hmac.compare_digest(csrf_token(session_token), given)


def cookie_token(request: Request) -> str | None:
    """Return the API token of the request's session cookie, or None."""
    token = request.cookies.get(COOKIE, "").strip()
    return token or None


def set_session(response: Response, request: Request, token: str) -> None:
    """Sign the browser in: store the token in an HttpOnly, SameSite=Strict cookie."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_session(response: Response) -> None:
    """Sign the browser out: expire the session cookie."""
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
