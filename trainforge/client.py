"""A small Python client for the trainforge job API, with the same verbs as the CLI.

    client = TrainforgeClient("http://127.0.0.1:8000", token)
    job = client.submit("classify", {"data": "synthetic:classify", "epochs": 3})
    for event in client.stream_events(job["id"]):
        print(event["seq"], event["type"], event["data"])

Every method returns the API's JSON (dicts and lists), read through the API's own response models
(`trainforge.schemas`), so a page's items and cursor are where the schema says. A 4xx/5xx answer, a
body that does not match the schema, or a server that cannot be reached raises `TrainforgeError`
carrying the HTTP status and the API's own message.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, overload
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from trainforge.datasets.schemas import DatasetPublic, DatasetsPublic, ModelPublic, ModelsPublic
from trainforge.schemas import (
    ArtifactsPublic,
    EventPublic,
    EventsPublic,
    JobAccepted,
    JobPublic,
    JobsPublic,
    TrainersPublic,
    WorkersPublic,
)
from trainforge.vocab import TERMINAL, TERMINAL_EVENTS
from trainforge.webhooks.schemas import DeliveriesPublic

DEFAULT_URL = "http://127.0.0.1:8000"

# Aliases at module level: inside the class, `list` names the method, not the type.
JSON = dict[str, Any]
JSONList = list[dict[str, Any]]
# The schemas of the two uploaded resources, by their path segment: one row, one page.
_UPLOAD_ROWS: dict[str, type[DatasetPublic | ModelPublic]] = {
    "datasets": DatasetPublic,
    "models": ModelPublic,
}
_UPLOAD_LISTS: dict[str, type[DatasetsPublic | ModelsPublic]] = {
    "datasets": DatasetsPublic,
    "models": ModelsPublic,
}
Model = TypeVar("Model", bound=BaseModel)
# The listings that page with a cursor (`data` and `next_cursor`).
Page = JobsPublic | EventsPublic | DeliveriesPublic


class TrainforgeError(Exception):
    """An error answered by the API (status set) or a failure to reach it (status None)."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status})" if self.status else self.message


def error_message(body: Any, fallback: str) -> str:
    """Pull the human message out of an API error body, whatever shape the framework gave it."""
    if isinstance(body, dict):
        for key in ("error", "detail", "message"):
            if key in body:
                return error_message(body[key], fallback)
        return fallback
    if isinstance(body, list) and body:
        # A list of pydantic validation errors: name each field and what is wrong with it.
        return "; ".join(_validation_item(item) for item in body)
    if isinstance(body, str) and body.strip():
        return body.strip()
    return fallback


def _validation_item(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    loc = [str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path")]
    msg = str(item.get("msg") or item.get("message") or item)
    return f"{'.'.join(loc)}: {msg}" if loc else msg


@dataclass
class SSEParser:
    """Incremental Server-Sent Events parser (WHATWG rules): feed lines, get finished events."""

    data: list[str] = field(default_factory=list)
    event: str = ""
    last_id: str | None = None
    retry_ms: int | None = None

    def feed(self, line: str) -> dict[str, Any] | None:
        """Consume one line (without its newline); return an event when a blank line ends one."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: servers send these as keep-alives
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self.data.append(value)
        elif name == "event":
            self.event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> dict[str, Any] | None:
        data, event = self.data, self.event or "message"
        self.data, self.event = [], ""
        if not data:
            return None
        return {"event": event, "id": self.last_id, "data": "\n".join(data)}


class TrainforgeClient:
    """Talk to a trainforge API with a Bearer token."""

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        # The one place that reads TRAINFORGE_URL / TRAINFORGE_TOKEN (the CLI passes its flags here).
        self.base_url = (base_url or os.environ.get("TRAINFORGE_URL") or DEFAULT_URL).rstrip("/")
        token = token if token is not None else os.environ.get("TRAINFORGE_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

    def __enter__(self) -> TrainforgeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- jobs -----------------------------------------------------------------------------------

    def submit(
        self,
        trainer: str,
        overrides: dict[str, Any] | None = None,
        webhooks: Sequence[str | JSON] | None = None,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        idempotency_key: str | None = None,
        resources: dict[str, Any] | None = None,
        priority: int | None = None,
    ) -> JSON:
        """Submit a training job; return the API's answer ({id, status, links})."""
        body: dict[str, Any] = {"trainer": trainer, "overrides": dict(overrides or {})}
        if webhooks:
            body["webhooks"] = [{"url": hook} if isinstance(hook, str) else hook for hook in webhooks]
        optional = {
            "name": name,
            "tags": list(tags) if tags is not None else None,
            "resources": resources,
            "priority": priority,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return _dump(self._parse(JobAccepted, "POST", "/v1/jobs", json=body, headers=headers))

    def status(self, job_id: str) -> JSON:
        """Return one job: status, epoch, progress, latest metrics, best/last, error."""
        return _dump(self._parse(JobPublic, "GET", f"/v1/jobs/{_seg(job_id)}"))

    def list(self, status: str | None = None, tag: str | None = None, limit: int | None = None) -> JSONList:
        """Return the tenant's jobs, newest first, following the cursor up to `limit` jobs."""
        return list(self.iter_jobs(status=status, tag=tag, limit=limit))

    def iter_jobs(
        self, status: str | None = None, tag: str | None = None, limit: int | None = None
    ) -> Iterator[JSON]:
        """Yield the tenant's jobs, newest first, fetching pages as needed."""
        params = {"status": status, "tag": tag, "limit": min(limit, 100) if limit else None}
        yield from self._paginate(JobsPublic, "/v1/jobs", params, limit, cursor_param="cursor")

    def cancel(self, job_id: str) -> JSON:
        """Ask the API to cancel a job; return the job as it is now (cancelling or cancelled)."""
        return _dump(self._parse(JobPublic, "POST", f"/v1/jobs/{_seg(job_id)}/cancel"))

    def wait(self, job_id: str, timeout: float | None = None, poll_s: float = 1.0) -> JSON:
        """Poll until the job ends (succeeded, failed, cancelled); return it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.status(job_id)
            if job.get("status") in TERMINAL:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TrainforgeError(f"job {job_id} still {job.get('status')} after {timeout:g} s")
            time.sleep(poll_s)

    def deliveries(self, job_id: str, status: str | None = None, limit: int | None = None) -> JSONList:
        """Return the job's webhook deliveries (oldest first), each with its attempts."""
        params = {"status": status, "limit": min(limit, 1000) if limit else None}
        path = f"/v1/jobs/{_seg(job_id)}/deliveries"
        return list(self._paginate(DeliveriesPublic, path, params, limit, cursor_param="cursor"))

    # -- events ---------------------------------------------------------------------------------

    def events(self, job_id: str, after: int | None = None, limit: int | None = None) -> JSONList:
        """Return the job's stored events in order, those with seq > `after` when given."""
        params = {"after": after, "limit": min(limit, 500) if limit else None}
        # The events page's next_cursor is a seq, passed back as `after`.
        path = f"/v1/jobs/{_seg(job_id)}/events"
        return list(self._paginate(EventsPublic, path, params, limit, cursor_param="after"))

    def stream_events(
        self,
        job_id: str,
        last_event_id: str | int | None = None,
        *,
        reconnect: bool = True,
        stop_at_end: bool = True,
        read_timeout: float = 60.0,
        max_reconnect_s: float = 300.0,
    ) -> Iterator[JSON]:
        """Yield the job's events live (SSE), resuming after `last_event_id`; reconnect when cut.

        Each event is yielded once: after a dropped connection the client reconnects with
        `Last-Event-ID`, and the server replays exactly what was missed. The stream ends after the
        job's terminal event (job.succeeded / job.failed / job.cancelled) when `stop_at_end`.
        """
        cursor = None if last_event_id is None else str(last_event_id)
        delay, down_since = 0.5, None
        while True:
            got_any = False
            try:
                for event, event_id in self._sse_once(job_id, cursor, read_timeout):
                    got_any, down_since, delay = True, None, 0.5
                    cursor = event_id if event_id is not None else cursor
                    yield event
                    if stop_at_end and event.get("type") in TERMINAL_EVENTS:
                        return
            except (httpx.TransportError, TrainforgeError) as exc:
                if not reconnect or not _retryable(exc):
                    raise _as_error(exc, self.base_url) from exc
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since > max_reconnect_s:
                    raise _as_error(exc, self.base_url) from exc
            else:
                # The server closed the stream cleanly: an ended job has nothing more to send.
                if not reconnect or (not got_any and self._ended(job_id)):
                    return
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _sse_once(
        self, job_id: str, cursor: str | None, read_timeout: float
    ) -> Iterator[tuple[JSON, str | None]]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if cursor is not None:
            headers["Last-Event-ID"] = cursor
        timeout = httpx.Timeout(self._http.timeout.connect or 10.0, read=read_timeout)
        url = f"/v1/jobs/{_seg(job_id)}/events"
        with self._http.stream("GET", url, headers=headers, timeout=timeout) as response:
            _raise_for_status(response, read=True)
            parser = SSEParser()
            for line in response.iter_lines():
                message = parser.feed(line)
                if message is not None:
                    yield _decode_event(message, self.base_url, url), message["id"]

    def _ended(self, job_id: str) -> bool:
        return self.status(job_id).get("status") in TERMINAL

    # -- logs, artifacts, trainers --------------------------------------------------------------

    @overload
    def logs(self, job_id: str, follow: Literal[False] = ...) -> str: ...
    @overload
    def logs(self, job_id: str, follow: Literal[True]) -> Iterator[str]: ...

    def logs(self, job_id: str, follow: bool = False) -> str | Iterator[str]:
        """Return the job's training log; with follow=True yield its text as it is written."""
        if follow:
            return self._follow_logs(job_id)
        response = self._request("GET", f"/v1/jobs/{_seg(job_id)}/logs")
        return response.text

    def _follow_logs(self, job_id: str, max_reconnect_s: float = 300.0) -> Iterator[str]:
        """Yield the log's text as it is written, following again from the byte reached when cut.

        The server ends a followed log when the job has ended, or earlier at the end of the stream's
        lifetime (or a dropped connection); then the client asks again with `offset` = the bytes it
        has, so no byte is repeated or skipped, until a stream that began after the job had ended.
        """
        timeout = httpx.Timeout(10.0, read=None)  # a quiet trainer may log nothing for minutes
        url = f"/v1/jobs/{_seg(job_id)}/logs"
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        offset: int | None = None
        delay, down_since = 0.5, None
        while True:
            ended_before = offset is not None and self._ended(job_id)
            params = {"follow": "true"} if offset is None else {"follow": "true", "offset": str(offset)}
            try:
                with self._http.stream("GET", url, params=params, timeout=timeout) as response:
                    _raise_for_status(response, read=True)
                    offset = int(response.headers.get("x-log-offset") or offset or 0)
                    for chunk in response.iter_bytes():
                        offset += len(chunk)
                        delay, down_since = 0.5, None
                        text = decoder.decode(chunk)
                        if text:
                            yield text
            except (httpx.TransportError, TrainforgeError) as exc:
                down_since = down_since or time.monotonic()
                if not _retryable(exc) or time.monotonic() - down_since > max_reconnect_s:
                    raise _as_error(exc, self.base_url) from exc
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if ended_before:
                rest = decoder.decode(b"", final=True)
                if rest:
                    yield rest
                return

    def artifacts(self, job_id: str) -> JSONList:
        """List the job's artifacts (best.pt, last.pt, results.csv, ...)."""
        page = self._parse(ArtifactsPublic, "GET", f"/v1/jobs/{_seg(job_id)}/artifacts")
        return [_dump(item) for item in page.data]

    def download(self, job_id: str, name: str, dest: str | os.PathLike[str] = ".") -> Path:
        """Download one artifact to `dest` (a folder, or a file path); return the file's path."""
        target = Path(dest)
        if target.is_dir():
            target = target / Path(name).name
        target.parent.mkdir(parents=True, exist_ok=True)
        url = f"/v1/jobs/{_seg(job_id)}/artifacts/{quote(name)}"
        # Write to a temporary file beside the target, so a cut download never leaves half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, self._http.stream("GET", url) as response:
                _raise_for_status(response, read=True)
                for chunk in response.iter_bytes():
                    out.write(chunk)
            os.replace(tmp, target)
        except httpx.TransportError as exc:
            raise _as_error(exc, self.base_url) from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target

    # -- datasets and models -----------------------------------------------------------------

    def upload_dataset(
        self,
        path: str | os.PathLike[str],
        name: str,
        *,
        progress: Callable[[int, int], None] | None = None,
        retries: int = 3,
    ) -> JSON:
        """Upload a folder (packed as a zip on the fly), a .zip or a .tar.gz as a new version of `name`."""
        source = Path(path)
        if source.is_dir():
            with tempfile.TemporaryDirectory(prefix="trainforge-pack-") as scratch:
                packed = pack_folder(source, Path(scratch) / f"{source.name}.zip")
                return self._upload("datasets", packed, name, progress, retries)
        if not source.is_file():
            raise TrainforgeError(f"{source}: no such file or folder")
        if not source.name.endswith(DATASET_SUFFIXES):
            raise TrainforgeError(
                f"{source}: upload a folder, a .zip or a .tar.gz (got {source.suffix or 'no suffix'})"
            )
        return self._upload("datasets", source, name, progress, retries)

    def upload_model(
        self,
        path: str | os.PathLike[str],
        name: str,
        *,
        progress: Callable[[int, int], None] | None = None,
        retries: int = 3,
    ) -> JSON:
        """Upload a checkpoint file as a new version of model `name`."""
        source = Path(path)
        if not source.is_file():
            raise TrainforgeError(f"{source}: no such file; give the path of a .pt checkpoint")
        return self._upload("models", source, name, progress, retries)

    def datasets(self, name: str | None = None) -> JSONList:
        """Return the tenant's dataset versions, newest first."""
        return self._uploads("datasets", name)

    def dataset(self, ref: str) -> JSON:
        """Return one dataset version (id, name for the newest, or name@version) with its report."""
        return self._uploaded("datasets", ref)

    def delete_dataset(self, ref: str) -> None:
        """Delete one dataset version (id or name@version)."""
        self._delete_uploaded("datasets", ref)

    def models(self, name: str | None = None) -> JSONList:
        """Return the tenant's uploaded model versions, newest first."""
        return self._uploads("models", name)

    def model(self, ref: str) -> JSON:
        """Return one uploaded model version."""
        return self._uploaded("models", ref)

    def delete_model(self, ref: str) -> None:
        """Delete one model version (id or name@version)."""
        self._delete_uploaded("models", ref)

    def wait_ready(self, kind: str, ref: str, timeout: float | None = 600.0, poll_s: float = 0.5) -> JSON:
        """Poll a dataset or model (`kind` datasets|models) until validation ends; return it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            row = self._uploaded(kind, ref)
            if row.get("status") in ("ready", "invalid"):
                return row
            if deadline is not None and time.monotonic() > deadline:
                raise TrainforgeError(f"{kind[:-1]} {ref} still {row.get('status')} after {timeout:g} s")
            time.sleep(poll_s)

    def _uploads(self, kind: str, name: str | None) -> JSONList:
        page = self._parse(_UPLOAD_LISTS[kind], "GET", f"/v1/{kind}", params={"name": name} if name else None)
        return [_dump(item) for item in page.data]

    def _uploaded(self, kind: str, ref: str) -> JSON:
        return _dump(self._parse(_UPLOAD_ROWS[kind], "GET", f"/v1/{kind}/{_seg(ref)}"))

    def _delete_uploaded(self, kind: str, ref: str) -> None:
        self._request("DELETE", f"/v1/{kind}/{_seg(ref)}")

    def _upload(
        self, kind: str, source: Path, name: str, progress: Callable[[int, int], None] | None, retries: int
    ) -> JSON:
        """Stream `source` with its SHA-256; start again from the first byte when the connection fails.

        A version of `name` with the same SHA-256 that is not invalid is that upload already done
        (an earlier attempt whose answer was lost): it is returned instead of uploading again.
        """
        digest, size = file_sha256(source)
        model = DatasetPublic if kind == "datasets" else ModelPublic
        for attempt in range(retries + 1):
            existing = [row for row in self._uploads(kind, name) if row["sha256"] == digest]
            if existing and existing[0]["status"] != "invalid":
                return existing[0]
            try:
                return _dump(
                    self._parse(
                        model,
                        "POST",
                        f"/v1/{kind}",
                        params={"name": name, "sha256": digest},
                        content=_read_chunks(source, size, progress),
                        headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
                        timeout=httpx.Timeout(30.0, write=300.0, read=300.0),
                    )
                )
            except TrainforgeError as exc:
                if attempt == retries or not _retryable(exc):
                    raise
            time.sleep(min(2.0**attempt, 10.0))
        raise AssertionError("unreachable")

    def trainers(self) -> JSONList:
        """List the trainers this server can run, each with the override keys it accepts."""
        return [_dump(item) for item in self._parse(TrainersPublic, "GET", "/v1/trainers").data]

    def workers(self) -> JSONList:
        """List the live workers: queues, devices, running jobs, last heartbeat."""
        return [_dump(item) for item in self._parse(WorkersPublic, "GET", "/v1/workers").data]

    # -- plumbing -------------------------------------------------------------------------------

    def _paginate(
        self, model: type[Page], path: str, params: dict[str, Any], limit: int | None, cursor_param: str
    ) -> Iterator[JSON]:
        query = {key: value for key, value in params.items() if value is not None}
        seen = 0
        while True:
            page = self._parse(model, "GET", path, params=query)
            for item in page.data:
                yield _dump(item)
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if page.next_cursor is None:
                return
            query[cursor_param] = page.next_cursor

    def _parse(self, model: type[Model], method: str, path: str, **kwargs: Any) -> Model:
        """Read the answer as the API's response model; a body of another shape is an error."""
        body = self._json(method, path, **kwargs)
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise _schema_error(self.base_url, path, exc) from None

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise TrainforgeError(
                f"the server at {self.base_url} answered {path} with something that is not JSON",
                response.status_code,
                response.text[:500],
            ) from exc

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise _as_error(exc, self.base_url) from exc
        _raise_for_status(response)
        return response


DATASET_SUFFIXES = (".zip", ".tar.gz", ".tgz")
_CHUNK = 1024 * 1024


def pack_folder(folder: Path, target: Path) -> Path:
    """Zip `folder` (entries under its own name, hidden files left out) into `target`; return it."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if any(part.startswith(".") for part in relative.parts) or path.is_symlink():
                continue
            if path.is_file():
                archive.write(path, f"{folder.name}/{relative.as_posix()}")
    return target


def file_sha256(path: Path) -> tuple[str, int]:
    """Return the SHA-256 (hex) and size of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _read_chunks(path: Path, size: int, progress: Callable[[int, int], None] | None) -> Iterator[bytes]:
    """Yield a file in chunks, reporting (bytes sent, total) after each."""
    sent = 0
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK):
            sent += len(chunk)
            yield chunk
            if progress is not None:
                progress(sent, size)


def _seg(value: str) -> str:
    """Quote a path segment so an id can never walk into another route."""
    return quote(str(value), safe="")


def _dump(model: BaseModel) -> JSON:
    """Return a response model as the JSON the API sent."""
    return model.model_dump(mode="json")


def _schema_error(base_url: str, path: str, exc: ValidationError) -> TrainforgeError:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return TrainforgeError(
        f"the server at {base_url} answered {path} with a body this client cannot read "
        f"({where}: {first['msg']}); is it a trainforge API of the same version?",
        200,  # answered, just not readable: not worth a reconnect
    )


def _decode_event(message: dict[str, Any], base_url: str, path: str) -> JSON:
    """Read one SSE message's data as the API's event model."""
    try:
        return _dump(EventPublic.model_validate_json(message["data"]))
    except ValidationError as exc:
        raise _schema_error(base_url, path, exc) from None


def _raise_for_status(response: httpx.Response, read: bool = False) -> None:
    if response.is_success:
        return
    if read:
        response.read()
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    reason = response.reason_phrase or "error"
    raise TrainforgeError(error_message(body, reason), response.status_code, body)


def _retryable(exc: Exception) -> bool:
    """A cut connection or a server hiccup is worth a reconnect; a 4xx answer is not."""
    if isinstance(exc, TrainforgeError):
        return exc.status is None or exc.status >= 500 or exc.status == 429
    return isinstance(exc, httpx.TransportError)


def _as_error(exc: Exception, base_url: str) -> TrainforgeError:
    if isinstance(exc, TrainforgeError):
        return exc
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return TrainforgeError(
            f"cannot reach the trainforge API at {base_url} ({exc}); start it with `trainforge up`, "
            "or point --url / TRAINFORGE_URL at a running server"
        )
    if isinstance(exc, httpx.TimeoutException):
        return TrainforgeError(f"the trainforge API at {base_url} did not answer in time ({exc!r})")
    return TrainforgeError(f"lost the connection to the trainforge API at {base_url}: {exc!r}")
