"""Runnable trainers and the override keys each accepts."""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter

from api.deps import CurrentTenant, SettingsDep
from trainer_engine.cfg import override_schema
from trainforge.registry import builtin_trainers
from trainforge.schemas import TrainerPublic, TrainersPublic

router = APIRouter(prefix="/v1/trainers", tags=["trainers"])


@lru_cache(maxsize=1)
def _builtins() -> tuple[TrainerPublic, ...]:
    """Return the built-in trainers with their override schema (computed once: it never changes)."""
    return tuple(
        TrainerPublic(name=name, ref=ref, task=name, overrides=override_schema(name))
        for name, ref in sorted(builtin_trainers().items())
    )


@router.get("", response_model=TrainersPublic)
def list_trainers(_principal: CurrentTenant, settings: SettingsDep) -> TrainersPublic:
    """List built-in trainers with their override keys, and module prefixes allowed for custom ones."""
    return TrainersPublic(data=list(_builtins()), allowed_modules=settings.trainer_modules)
