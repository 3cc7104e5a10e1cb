"""A job's files: list them and download one (best.pt, last.pt, results.csv, train.log, ...)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.deps import JobDep, SettingsDep
from trainforge.errors import NotFound
from trainforge.rundir import ARTIFACT_ALIASES, RunDir
from trainforge.schemas import ArtifactPublic, ArtifactsPublic

router = APIRouter(prefix="/v1/jobs", tags=["artifacts"])


def _hidden(rel: PurePosixPath) -> bool:
    """Return whether a run file is the service's own (.runspec.json holds the lease owner) or a temp file."""
    return any(part.startswith(".") for part in rel.parts)


def _files(folder: Path) -> list[Path]:
    """Return the job's own regular files under `folder` (links are skipped: they could point anywhere)."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink() and not _hidden(PurePosixPath(p.relative_to(folder).as_posix()))
    )


def _public_name(folder: Path, path: Path) -> str:
    """Return the name a file is listed (and downloaded) under."""
    rel = path.relative_to(folder).as_posix()
    return next((alias for alias, target in ARTIFACT_ALIASES.items() if target == rel), rel)


@router.get("/{job_id}/artifacts", response_model=ArtifactsPublic)
def list_artifacts(job: JobDep, settings: SettingsDep) -> ArtifactsPublic:
    """List the files the job produced so far."""
    folder = RunDir.of(settings.artifacts_dir, job.id).path
    data = []
    for path in _files(folder):
        name = _public_name(folder, path)
        data.append(
            ArtifactPublic(name=name, size=path.stat().st_size, url=f"/v1/jobs/{job.id}/artifacts/{name}")
        )
    return ArtifactsPublic(data=data)


def resolve_artifact(folder: Path, name: str) -> Path | None:
    """Return the file `name` names inside `folder`, or None (absolute paths, '..' and links never match)."""
    rel = PurePosixPath(ARTIFACT_ALIASES.get(name, name))
    if rel.is_absolute() or ".." in rel.parts or "\\" in name or not rel.parts or _hidden(rel):
        return None
    path = folder.joinpath(*rel.parts)
    try:
        inside = path.resolve(strict=True).is_relative_to(folder.resolve(strict=True))
    except (FileNotFoundError, OSError, RuntimeError):
        return None
    return path if inside and path.is_file() and not path.is_symlink() else None


@router.get("/{job_id}/artifacts/{name:path}", response_class=FileResponse)
def download_artifact(job: JobDep, settings: SettingsDep, name: str) -> FileResponse:
    """Download one file of the job (`best.pt` and `last.pt` are the checkpoints)."""
    folder = RunDir.of(settings.artifacts_dir, job.id).path
    path = resolve_artifact(folder, name)
    if path is None:
        available = ", ".join(_public_name(folder, p) for p in _files(folder)) or "none yet"
        raise NotFound(f"job {job.id} has no artifact {name!r}; available: {available}")
    return FileResponse(path, filename=PurePosixPath(name).name, media_type=_media_type(path))


def _media_type(path: Path) -> str:
    """Return the content type for a downloaded file."""
    return {
        ".csv": "text/csv",
        ".log": "text/plain",
        ".txt": "text/plain",
        ".png": "image/png",
        ".jpg": "image/jpeg",
    }.get(path.suffix, "application/octet-stream")
