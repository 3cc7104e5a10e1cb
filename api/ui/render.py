"""Render dashboard pages from Jinja2 templates, with the security headers every page carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.ui import format as fmt
from api.ui.session import CSRF_FIELD
from trainforge.metrics import PRIMARY_METRICS

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
# Autoescaping is on for .html: a job named "<script>" renders as text.
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(
    duration=fmt.duration, metric=fmt.metric_value, when=fmt.when, size=fmt.size, overrides=fmt.overrides
)
templates.env.globals.update(
    CSRF_FIELD=CSRF_FIELD, status_class=fmt.status_class, PRIMARY_METRICS=",".join(PRIMARY_METRICS)
)

# No inline scripts or styles anywhere: scripts and styles come from /ui/static only, data comes
# from the same origin, and no other site may frame the pages.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    # The sign-in link carries the token in its query: never pass page URLs on to other sites.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def secure(response: Response) -> Response:
    """Add the dashboard's security headers to `response`."""
    response.headers.update(SECURITY_HEADERS)
    return response


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render `template` with `context` as an HTML page."""
    response = templates.TemplateResponse(
        request, template, {**context, "status_code": status_code}, status_code=status_code
    )
    secure(response)
    return response


def redirect(url: str) -> RedirectResponse:
    """Answer 303 See Other to `url` (after a form POST the browser GETs it)."""
    response = RedirectResponse(url, status_code=303)
    secure(response)
    return response


async def form_fields(request: Request) -> dict[str, str]:
    """Return the fields of a submitted urlencoded form (the last value of each name).

    Read from the raw body: the API treats urlencoded bodies as JSON (what `curl -d` sends), so the
    content type a form arrives with cannot be trusted to be the browser's.
    """
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()}
