"""Signing the browser in and out, and the dependency every dashboard page takes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from api.deps import SettingsDep, authenticate
from api.ui.render import form_fields, page, redirect
from api.ui.session import CSRF_FIELD, clear_session, cookie_token, csrf_matches, csrf_token, set_session
from trainforge.auth import Principal

router = APIRouter(prefix="/ui", include_in_schema=False)
HOME = "/ui"


@dataclass(frozen=True)
class UiUser:
    """The signed-in browser: its API token, tenant and the CSRF token its forms carry."""

    token: str
    principal: Principal

    @property
    def csrf(self) -> str:
        """Return the CSRF token of this session."""
        return csrf_token(self.token)


def safe_next(target: str | None) -> str:
    """Return `target` if it is a dashboard path, else the jobs page (no redirects to other sites)."""
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


def sign_in_required(request: Request, reason: str | None = None) -> HTTPException:
    """Return the 303 to the sign-in form that comes back to this page afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"/ui/login?next={quote(here, safe='')}" + (f"&reason={reason}" if reason else "")
    return HTTPException(status_code=303, detail="sign in first", headers={"Location": location})


def check_token(settings: SettingsDep, token: str) -> Principal | None:
    """Return the tenant of `token`, or None when it is not a valid API token."""
    try:
        return authenticate(settings, token)
    except HTTPException:
        return None


async def current_user(request: Request, settings: SettingsDep) -> UiUser:
    """Return the signed-in browser's session; redirect to the sign-in form without a valid one."""
    token = cookie_token(request)
    if token is None:
        raise sign_in_required(request)
    principal = check_token(settings, token)
    if principal is None:
        raise sign_in_required(request, reason="expired")
    return UiUser(token, principal)


UiUserDep = Annotated[UiUser, Depends(current_user)]

REASONS = {"expired": "Your session's token is no longer valid; sign in with a current one."}


@router.get("/login")
def login_page(
    request: Request,
    settings: SettingsDep,
    token: Annotated[str | None, Query(max_length=500)] = None,
    next_: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
    reason: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """Show the sign-in form; with `?token=` (the link `trainforge up` prints) sign in at once.

    Not when another site sent the browser here: a page elsewhere could otherwise sign its visitor
    in with the page's own token (a login CSRF), and what they then submit would land in its tenant.
    """
    if token is None or _sent_from_another_site(request):
        error = REASONS.get(reason or "") or (CROSS_SITE if token is not None else None)
        return page(request, "login.html", next=safe_next(next_), error=error)
    return _sign_in(request, settings, token.strip(), next_)


@router.post("/login")
async def login_form(request: Request, settings: SettingsDep) -> Response:
    """Sign in with the token typed into the form (posted from this site's own form only)."""
    fields = await form_fields(request)
    if _sent_from_another_site(request):
        return page(
            request, "login.html", status_code=403, next=safe_next(fields.get("next")), error=CROSS_SITE
        )
    return _sign_in(request, settings, fields.get("token", "").strip(), fields.get("next"))


CROSS_SITE = "Another site sent you to this sign-in, so it was not used; sign in here with your own token."


def _sent_from_another_site(request: Request) -> bool:
    """Return whether the browser says a page of another site started this request.

    Sec-Fetch-Site is set by the browser itself (a page cannot forge it) and survives proxies that
    rewrite Host, which an Origin check would not; a link opened from a terminal says "none".
    """
    return request.headers.get("sec-fetch-site") == "cross-site"


def _sign_in(request: Request, settings: SettingsDep, token: str, next_: str | None) -> Response:
    """Set the session cookie and go on to `next_` (without the token in the URL), or show the error."""
    if not token or check_token(settings, token) is None:
        error = (
            "Enter an API token."
            if not token
            else "That token is not valid (revoked, or mistyped). "
            "Create one with `trainforge token create --tenant NAME`."
        )
        return page(request, "login.html", status_code=401, next=safe_next(next_), error=error)
    response = redirect(safe_next(next_))
    set_session(response, request, token)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Sign out: clear the session cookie (the API token itself stays valid)."""
    token = cookie_token(request)
    fields = await form_fields(request)
    if token is not None and not csrf_matches(token, fields.get(CSRF_FIELD)):
        return page(request, "error.html", status_code=403, message="The form's CSRF token is wrong; reload.")
    response = redirect("/ui/login")
    clear_session(response)
    return response
