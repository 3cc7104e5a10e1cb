"""Dashboard pages: the jobs list with the submit form, a job, and several jobs compared."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.ui import format as fmt
from api.ui.auth import UiUser, UiUserDep
from api.ui.client import ApiAnswer, ApiClient
from api.ui.render import form_fields, page, redirect
from api.ui.session import CSRF_FIELD, csrf_matches
from trainforge.cli.overrides import OverrideError, parse_override
from trainforge.vocab import JobStatus

router = APIRouter(prefix="/ui", include_in_schema=False)
STATUSES = [s.value for s in JobStatus]
MAX_COMPARE = 8
CSRF_ERROR = "This form is out of date (its CSRF token does not match your session); reload the page."


def _list_params(status: list[str], tag: list[str]) -> list[tuple[str, str]]:
    """Return the GET /v1/jobs query for the chosen filters."""
    return [("status", s) for s in status if s] + [("tag", t) for t in tag if t] + [("limit", "50")]


async def _jobs_page(
    request: Request,
    user: UiUser,
    status: list[str],
    tag: list[str],
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """Render the jobs page (filters, live list, submit form) from the API's answers."""
    async with ApiClient(request, user.token) as api:
        jobs = await api.call("GET", "/v1/jobs", params=_list_params(status, tag))
        trainers = await api.call("GET", "/v1/trainers")
    errors = dict(errors or {})
    if not jobs.ok:
        errors["filter"] = jobs.detail
    rows = [_row(job) for job in (jobs.body.get("data", []) if jobs.ok else [])]
    names = [t["name"] for t in trainers.body.get("data", [])] if trainers.ok else []
    return page(
        request,
        "jobs.html",
        status_code=status_code,
        user=user,
        rows=rows,
        statuses=STATUSES,
        chosen_status=[s for s in status if s],
        chosen_tag=", ".join(t for t in tag if t),
        trainers=names,
        form=form or {"trainer": names[0] if names else "", "overrides": ""},
        errors=errors,
    )


def _row(job: dict[str, Any]) -> dict[str, Any]:
    """Return a job of GET /v1/jobs with what its row shows beyond the API's fields (timing)."""
    return {**job, "timing": fmt.timing(job)}


@router.get("")
async def jobs_page(
    request: Request,
    user: UiUserDep,
    status: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    tag: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    """Show the tenant's jobs, newest first, live, with a form to submit one."""
    return await _jobs_page(request, user, status, _tags(tag))


def _tags(text: str) -> list[str]:
    """Split a comma- or space-separated tag field."""
    return [t for t in text.replace(",", " ").split() if t]


def parse_override_lines(text: str) -> tuple[dict[str, Any], str | None]:
    """Parse the form's `key=value` lines into overrides; return them and the first error (or None)."""
    overrides: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key, value = parse_override(line)
        except OverrideError as exc:
            return overrides, f"line {number}: {exc}"
        if key in overrides:
            return overrides, f"line {number}: {key!r} is given twice; keep one line for it"
        overrides[key] = value
    return overrides, None


def _field_of(answer: ApiAnswer) -> str:
    """Return the form field an API error belongs to (trainer, overrides, name, tags, or the form)."""
    body = answer.body if isinstance(answer.body, dict) else {}
    key = str(body.get("key") or "")
    if key == "trainer":
        return "trainer"
    if key:
        return "webhooks" if key.startswith("webhooks") else "overrides"
    for error in body.get("errors") or []:
        loc = [str(p) for p in error.get("loc", [])]
        if len(loc) > 1 and loc[1] in {"trainer", "overrides", "name", "tags"}:
            return loc[1]
    return "form"


@router.post("/jobs")
async def submit_job(request: Request, user: UiUserDep) -> Response:
    """Submit a job from the form; on an error show the form again with the message at its field."""
    form = await form_fields(request)
    if not csrf_matches(user.token, form.get(CSRF_FIELD)):
        return await _jobs_page(request, user, [], [], form, {"form": CSRF_ERROR}, 403)
    overrides, problem = parse_override_lines(form.get("overrides", ""))
    if problem is not None:
        return await _jobs_page(request, user, [], [], form, {"overrides": problem}, 422)
    body: dict[str, Any] = {"trainer": form.get("trainer", "").strip(), "overrides": overrides}
    if form.get("name", "").strip():
        body["name"] = form["name"].strip()
    if form.get("tags", "").strip():
        body["tags"] = _tags(form["tags"])
    async with ApiClient(request, user.token) as api:
        answer = await api.call("POST", "/v1/jobs", json=body)
    if not answer.ok:
        errors = {_field_of(answer): answer.detail}
        return await _jobs_page(request, user, [], [], form, errors, answer.status)
    return redirect(f"/ui/jobs/{answer.body['id']}")


async def _job_page(request: Request, user: UiUser, job_id: str, notice: str | None = None) -> Response:
    """Render a job's page, or the API's error (404 for a job that is not the tenant's)."""
    async with ApiClient(request, user.token) as api:
        answer = await api.call("GET", f"/v1/jobs/{job_id}")
    if not answer.ok:
        return page(request, "error.html", status_code=answer.status, user=user, message=answer.detail)
    job = answer.body
    return page(
        request,
        "job.html",
        user=user,
        job=job,
        timing=fmt.timing(job),
        notice=notice,
    )


@router.get("/jobs/{job_id}")
async def job_page(request: Request, user: UiUserDep, job_id: str) -> Response:
    """Show one job live: status, epochs, charts, log, artifacts, webhook deliveries."""
    return await _job_page(request, user, job_id)


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(request: Request, user: UiUserDep, job_id: str) -> Response:
    """Cancel the job (the page asks for confirmation first) and show it again."""
    form = await form_fields(request)
    if not csrf_matches(user.token, form.get(CSRF_FIELD)):
        return page(request, "error.html", status_code=403, user=user, message=CSRF_ERROR)
    async with ApiClient(request, user.token) as api:
        answer = await api.call("POST", f"/v1/jobs/{job_id}/cancel")
    if answer.status == 404 or answer.status == 422:
        return page(request, "error.html", status_code=answer.status, user=user, message=answer.detail)
    if not answer.ok:
        return await _job_page(request, user, job_id, notice=answer.detail)
    return redirect(f"/ui/jobs/{job_id}")


@router.get("/compare")
async def compare_page(
    request: Request, user: UiUserDep, jobs: Annotated[str, Query(max_length=2000)] = ""
) -> Response:
    """Overlay the same metric of several jobs (`?jobs=a,b,c`)."""
    ids = list(dict.fromkeys(j.strip() for j in jobs.split(",") if j.strip()))
    if not ids:
        return page(request, "compare.html", user=user, jobs=[], error="Pick jobs: /ui/compare?jobs=ID,ID")
    if len(ids) > MAX_COMPARE:
        message = f"Compare at most {MAX_COMPARE} jobs at once (got {len(ids)})."
        return page(request, "error.html", status_code=422, user=user, message=message)
    found = []
    async with ApiClient(request, user.token) as api:
        for job_id in ids:
            answer = await api.call("GET", f"/v1/jobs/{job_id}")
            if not answer.ok:
                return page(
                    request, "error.html", status_code=answer.status, user=user, message=answer.detail
                )
            found.append(answer.body)
    return page(request, "compare.html", user=user, jobs=found, error=None)
