"""The routes datasets and uploaded models share: upload (streamed), list, show, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from api.deps import CurrentTenant, SessionDep, SettingsDep, open_session
from trainforge.datasets import service
from trainforge.datasets.schemas import DatasetPublic, DatasetsPublic, ModelPublic, ModelsPublic
from trainforge.datasets.storage import get_store
from trainforge.datasets.uploads import UploadRequest, receive
from trainforge.errors import Invalid

RefPath = Annotated[str, Path(description="The id, a name (its newest version), or name@version.")]
_SCHEMAS = {"dataset": (DatasetPublic, DatasetsPublic), "model": (ModelPublic, ModelsPublic)}
_WHAT = {
    "dataset": "a .zip or .tar.gz of a YOLO set (data.yaml, images/, labels/) or an ImageFolder set",
    "model": "a checkpoint (.pt) loadable with torch.load(weights_only=True)",
}


def upload_router(kind: str) -> APIRouter:
    """Return the router of /v1/datasets or /v1/models."""
    cls = service.KINDS[kind]
    one, many = _SCHEMAS[kind]
    router = APIRouter(prefix=f"/v1/{service.plural(kind)}", tags=[service.plural(kind)])

    @router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=one, summary=f"Upload a {kind}")
    async def upload(
        request: Request,
        principal: CurrentTenant,
        settings: SettingsDep,
        name: Annotated[
            str | None, Query(max_length=200, description="The name; again makes a new version.")
        ] = None,
        sha256: Annotated[str | None, Query(max_length=200, description="SHA-256 the server checks.")] = None,
    ) -> Response:
        """Stream the request body (Content-Length or chunked) as a new version; it is validated next."""
        body = await receive(
            request.stream(),
            UploadRequest(cls, principal.tenant_id, name or "", sha256),
            get_store(settings.storage_dir),
            lambda: open_session(settings),
        )
        return Response(body, status_code=202, media_type="application/json")

    upload.__doc__ = f"Upload {_WHAT[kind]} as the request body; validation runs in the background."

    @router.get("", response_model=many, summary=f"List {kind}s")
    def list_uploads(
        session: SessionDep,
        principal: CurrentTenant,
        name: Annotated[str | None, Query(max_length=100, description="Only versions of this name.")] = None,
    ) -> dict:
        """List your versions, newest first."""
        rows = service.repository.list_for_tenant(session, cls, principal.tenant_id, name)
        return {"data": [service.public(row) for row in rows]}

    @router.get("/{ref}", response_model=one, summary=f"Show a {kind}")
    def show(ref: RefPath, session: SessionDep, principal: CurrentTenant) -> object:
        """Show one version (the newest for a bare name) with its validation report."""
        return service.public(service.get_by_ref(session, cls, principal.tenant_id, ref))

    @router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT, summary=f"Delete a {kind}")
    def delete(
        ref: RefPath, session: SessionDep, principal: CurrentTenant, settings: SettingsDep
    ) -> Response:
        """Delete one version (by id or name@version); 409 while a queued or running job uses it."""
        if "@" not in ref and not _looks_like_id(ref):
            raise Invalid(
                f"say which version to delete: {ref}@N (see GET /v1/{service.plural(kind)}?name={ref})"
            )
        row = service.get_by_ref(session, cls, principal.tenant_id, ref)
        service.delete(session, row, get_store(settings.storage_dir))
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router


def _looks_like_id(ref: str) -> bool:
    """Return whether `ref` is shaped like an id (a UUID) rather than a name."""
    return service.is_uuid(ref)
