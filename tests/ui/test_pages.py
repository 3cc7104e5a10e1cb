"""The dashboard's pages through the app: sign-in, tenant isolation, CSRF, escaping, bad input."""

from __future__ import annotations

import re
from typing import Any

import pytest

from api.ui.session import COOKIE, csrf_token

EVIL = "<script>alert(1)</script>"


@pytest.fixture
def client(api_client: Any) -> Any:
    """Return the TestClient without following redirects (the tests look at them)."""
    api_client.follow_redirects = False
    api_client.cookies.clear()
    return api_client


def sign_in(client: Any, token: str) -> str:
    """Sign `client` in with the token link; return the session's CSRF token."""
    response = client.get("/ui/login", params={"token": token})
    assert response.status_code == 303
    return csrf_token(token)


def test_the_token_link_sets_a_strict_httponly_cookie_and_drops_the_token_from_the_url(
    client: Any, make_token
) -> None:
    token = make_token()
    response = client.get("/ui/login", params={"token": token, "next": "/ui/compare?jobs=x"})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/compare?jobs=x"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={token};")
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Path=/" in cookie
    assert response.headers["referrer-policy"] == "no-referrer"
    assert client.get("/ui").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/ui", "/v1/jobs", "/ui\\@evil"])
def test_sign_in_never_redirects_off_the_dashboard(client: Any, make_token, target: str) -> None:
    response = client.get("/ui/login", params={"token": make_token(), "next": target})
    assert response.headers["location"] == "/ui"


def test_a_bad_token_gets_the_form_again_with_a_message_and_no_cookie(client: Any) -> None:
    response = client.get("/ui/login", params={"token": "tf_not-a-token"})
    assert response.status_code == 401
    assert "not valid" in response.text and "set-cookie" not in response.headers
    form = client.post("/ui/login", data={"token": ""})
    assert form.status_code == 401 and "Enter an API token" in form.text


@pytest.mark.parametrize("site", ["none", "same-origin", None])
def test_the_token_link_signs_in_when_opened_directly_or_from_the_dashboard(
    client: Any, make_token, site: str | None
) -> None:
    headers = {} if site is None else {"Sec-Fetch-Site": site}
    response = client.get("/ui/login", params={"token": make_token()}, headers=headers)
    assert response.status_code == 303 and "set-cookie" in response.headers


def test_another_site_cannot_sign_a_browser_in_with_its_own_token(client: Any, make_token) -> None:
    token = make_token()  # the other site's token: signing its visitor in would file their work under it
    cross = {"Sec-Fetch-Site": "cross-site"}
    link = client.get("/ui/login", params={"token": token}, headers=cross)
    assert link.status_code == 200 and "set-cookie" not in link.headers
    assert "Another site sent you to this sign-in" in link.text and token not in link.text
    form = client.post("/ui/login", data={"token": token, "next": "/ui"}, headers=cross)
    assert form.status_code == 403 and "set-cookie" not in form.headers
    assert client.get("/ui").status_code == 303  # still signed out


def test_the_sign_in_form_signs_in(client: Any, make_token) -> None:
    token = make_token()
    response = client.post("/ui/login", data={"token": f"  {token} ", "next": "/ui"})
    assert response.status_code == 303 and response.headers["location"] == "/ui"
    assert client.get("/ui").status_code == 200


@pytest.mark.parametrize("path", ["/ui", "/ui/jobs/00000000-0000-0000-0000-000000000000", "/ui/compare"])
def test_pages_send_a_browser_without_a_session_to_the_sign_in_form(client: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/login?next=")


def test_a_revoked_or_made_up_cookie_asks_to_sign_in_again(client: Any) -> None:
    client.cookies.set(COOKIE, "tf_made-up")
    response = client.get("/ui")
    assert response.status_code == 303 and "reason=expired" in response.headers["location"]
    assert "no longer valid" in client.get(response.headers["location"]).text


def test_every_page_sends_a_csp_without_inline_scripts(client: Any, make_token, make_job) -> None:
    token = make_token("csp-tenant")
    sign_in(client, token)
    job = make_job(tenant="csp-tenant")
    for path in ["/ui/login", "/ui", f"/ui/jobs/{job}", f"/ui/compare?jobs={job}", "/ui/jobs/not-a-uuid"]:
        response = client.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert "frame-ancestors 'none'" in csp
        assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)", response.text), path


def test_the_jobs_page_shows_only_the_tenants_jobs_newest_first(client: Any, make_token, make_job) -> None:
    sign_in(client, make_token("alpha"))
    older = make_job(tenant="alpha", name="older", tags=["x"])
    best = {"metric": "accuracy_top1", "value": 0.9, "epoch": 1}
    newer = make_job(
        tenant="alpha", name="newer", status="running", epoch=2, epochs=4,
        metrics={"metrics/accuracy_top1": 0.6}, best=best,
    )  # fmt: skip
    foreign = make_job(tenant="beta", name="foreign")
    text = client.get("/ui").text
    ids = re.findall(r'data-testid="job-row" data-job-id="([^"]+)"', text)
    assert ids.index(newer) < ids.index(older) and foreign not in ids
    assert "2/4" in text
    assert "accuracy_top1 0.9" in text and "accuracy_top1 0.6" not in text  # the best, not the latest
    tagged = client.get("/ui", params={"tag": "x"}).text
    assert re.findall(r'data-job-id="([^"]+)"', tagged) == [older]
    running = client.get("/ui", params={"status": "running"}).text
    assert re.findall(r'data-job-id="([^"]+)"', running) == [newer]


def test_a_bad_filter_shows_the_apis_message_not_a_500(client: Any, make_token) -> None:
    sign_in(client, make_token())
    response = client.get("/ui", params={"status": "sleeping"})
    assert response.status_code == 200 and "unknown status" in response.text


def test_names_and_tags_render_as_text(client: Any, make_token, make_job) -> None:
    sign_in(client, make_token("escape"))
    job = make_job(tenant="escape", name=EVIL, overrides={"name": EVIL})
    for path in ["/ui", f"/ui/jobs/{job}", f"/ui/compare?jobs={job}"]:
        text = client.get(path).text
        assert EVIL not in text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, path


def test_another_tenants_job_page_is_a_404(client: Any, make_token, make_job) -> None:
    sign_in(client, make_token("mine"))
    theirs = make_job(tenant="theirs", name="secret-name")
    for path in [f"/ui/jobs/{theirs}", f"/ui/compare?jobs={theirs}"]:
        response = client.get(path)
        assert response.status_code == 404 and "not found" in response.text
        assert "secret-name" not in response.text
    assert client.get("/ui/jobs/not-a-uuid").status_code == 422


def test_the_job_page_marks_its_parts_for_tests(client: Any, make_token, make_job) -> None:
    sign_in(client, make_token("hooks"))
    metrics = {"metrics/accuracy_top1": 0.5}
    best = {"metric": "accuracy_top1", "value": 0.75, "epoch": 1}
    job = make_job(tenant="hooks", status="running", epoch=2, epochs=5, metrics=metrics, best=best)
    text = client.get(f"/ui/jobs/{job}").text
    for testid in ["job-status", "epoch-progress", "log-tail", "artifact-list", "deliveries"]:
        assert f'data-testid="{testid}"' in text
    assert text.count('data-testid="metric-chart"') == 3
    assert 'data-epoch="2" data-epochs="5"' in text and "accuracy_top1 0.75 (epoch 1)" in text


def test_submitting_needs_the_forms_csrf_token(client: Any, make_token) -> None:
    sign_in(client, make_token())
    body = {"trainer": "classify", "overrides": "data=synthetic:classify\nepochs=1"}
    assert client.post("/ui/jobs", data=body).status_code == 403
    assert client.post("/ui/jobs", data={**body, "csrf_token": "0" * 64}).status_code == 403


@pytest.mark.parametrize(
    ("overrides", "trainer", "field", "message"),
    [
        ("epoch=3", "classify", "overrides", "did you mean &#39;epochs&#39;"),
        ("epochs", "classify", "overrides", "line 1: override &#39;epochs&#39; has no &#39;=&#39;"),
        ("epochs=1\nepochs=2", "classify", "overrides", "line 2: &#39;epochs&#39; is given twice"),
        ("epochs=-4", "classify", "overrides", "epochs"),
        ("epochs=1", "no_such_trainer", "trainer", "no_such_trainer"),
    ],
)
def test_a_bad_form_shows_the_apis_error_next_to_its_field(
    client: Any, make_token, overrides: str, trainer: str, field: str, message: str
) -> None:
    csrf = sign_in(client, make_token())
    response = client.post(
        "/ui/jobs", data={"trainer": trainer, "overrides": overrides, "csrf_token": csrf, "name": EVIL}
    )
    assert 400 <= response.status_code < 500
    error = re.search(rf'data-testid="{field}-error">([^<]*)<', response.text)
    assert error is not None and message in error.group(1), response.text[-2000:]
    assert EVIL not in response.text and 'value="&lt;script&gt;' in response.text  # kept, as text


def test_a_good_form_creates_the_job_and_opens_its_page(client: Any, make_token) -> None:
    token = make_token()
    csrf = sign_in(client, token)
    form = {"trainer": "classify", "overrides": "# tiny\ndata=synthetic:classify\n\nepochs=2\nimgsz=32",
            "name": "from the form", "tags": "a, b", "csrf_token": csrf}  # fmt: skip
    response = client.post("/ui/jobs", data=form)
    assert response.status_code == 303
    job_id = response.headers["location"].rsplit("/", 1)[1]
    job = client.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}).json()
    assert job["overrides"] == {"data": "synthetic:classify", "epochs": 2, "imgsz": 32}
    assert job["name"] == "from the form" and job["tags"] == ["a", "b"]


def test_the_api_accepts_the_cookie_and_asks_a_csrf_header_of_unsafe_methods(
    client: Any, make_token, make_job
) -> None:
    token = make_token("cookie-api")
    csrf = sign_in(client, token)
    job = make_job(tenant="cookie-api")
    assert client.get(f"/v1/jobs/{job}").status_code == 200  # the fast path reads the cookie too
    assert [j["id"] for j in client.get("/v1/jobs").json()["data"]] == [job]
    refused = client.post(f"/v1/jobs/{job}/cancel")
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    assert client.post(f"/v1/jobs/{job}/cancel", headers={"X-CSRF-Token": "f" * 64}).status_code == 403
    assert client.post(f"/v1/jobs/{job}/cancel", headers={"X-CSRF-Token": csrf}).status_code == 202
    client.cookies.clear()
    other = make_job(tenant="cookie-api")
    bearer = client.post(f"/v1/jobs/{other}/cancel", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 202  # API clients need no CSRF token


def test_cancel_from_the_page_needs_csrf_and_reports_a_finished_job(
    client: Any, make_token, make_job
) -> None:
    csrf = sign_in(client, make_token("cancel"))
    job = make_job(tenant="cancel")
    assert client.post(f"/ui/jobs/{job}/cancel", data={}).status_code == 403
    done = client.post(f"/ui/jobs/{job}/cancel", data={"csrf_token": csrf})
    assert done.status_code == 303 and done.headers["location"] == f"/ui/jobs/{job}"
    again = client.post(f"/ui/jobs/{job}/cancel", data={"csrf_token": csrf})
    assert again.status_code == 200 and "already ended" in again.text
    foreign = make_job(tenant="someone-else")
    assert client.post(f"/ui/jobs/{foreign}/cancel", data={"csrf_token": csrf}).status_code == 404


def test_sign_out_needs_csrf_and_clears_the_cookie(client: Any, make_token) -> None:
    csrf = sign_in(client, make_token())
    assert client.post("/ui/logout", data={}).status_code == 403
    response = client.post("/ui/logout", data={"csrf_token": csrf})
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    assert f'{COOKIE}=""' in response.headers["set-cookie"] and "Max-Age=0" in response.headers["set-cookie"]


def test_compare_checks_its_list(client: Any, make_token, make_job) -> None:
    sign_in(client, make_token("cmp"))
    jobs = [make_job(tenant="cmp", name=f"run-{i}") for i in range(2)]
    ok = client.get("/ui/compare", params={"jobs": ",".join(jobs)})
    assert ok.status_code == 200 and "run-0" in ok.text and "run-1" in ok.text
    assert 'data-testid="metric-chart"' in ok.text
    assert "Pick jobs" in client.get("/ui/compare").text
    too_many = client.get("/ui/compare", params={"jobs": ",".join(jobs * 5)})
    assert too_many.status_code == 200  # duplicates collapse to two
    many = ",".join(make_job(tenant="cmp") for _ in range(9))
    assert client.get("/ui/compare", params={"jobs": many}).status_code == 422


def test_the_static_files_are_served_from_the_package(client: Any) -> None:
    for path in ["/ui/static/ui.js", "/ui/static/job.js", "/ui/static/vendor/uPlot.iife.min.js"]:
        assert client.get(path).status_code == 200, path


def test_the_job_header_says_why_a_job_waits_and_where_one_runs(client: Any, make_token, make_job) -> None:
    sign_in(client, make_token("waits"))
    waiting = make_job(tenant="waits", queue="nobody-serves-this")
    text = client.get(f"/ui/jobs/{waiting}").text
    assert 'id="pending-box" hidden' not in text
    assert "no live worker serves queue nobody-serves-this" in text
    running = make_job(tenant="waits", status="running", worker_id="gpu-7@host")
    text = client.get(f"/ui/jobs/{running}").text
    assert '<dd id="worker">gpu-7@host</dd>' in text and 'id="pending-box" hidden' in text
