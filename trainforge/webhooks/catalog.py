"""The event types a webhook can subscribe to, and the closest valid name for a typo."""

from __future__ import annotations

import difflib

from trainforge.vocab import ENDPOINT_DISABLED_EVENT, LIFECYCLE_EVENTS

# The engine's non-batch trainer callbacks, as the worker's bridge records them. The service may not
# import the engine (only its cfg), so the names are listed here; a test checks them against the engine.
TRAINER_EVENT_TYPES: tuple[str, ...] = (
    "on_pretrain_routine_start",
    "on_pretrain_routine_end",
    "on_train_start",
    "on_train_epoch_start",
    "on_train_epoch_end",
    "on_model_save",
    "on_fit_epoch_end",
    "on_params_update",
    "on_train_end",
    "teardown",
)
LIFECYCLE_EVENT_TYPES: tuple[str, ...] = tuple(LIFECYCLE_EVENTS.values())
EVENT_TYPES: tuple[str, ...] = (*TRAINER_EVENT_TYPES, *LIFECYCLE_EVENT_TYPES, ENDPOINT_DISABLED_EVENT)
FAMILIES: tuple[str, ...] = ("job.*", "webhook.*", "on_*")


def unknown_event_message(name: str) -> str | None:
    """Return why `name` is not a subscribable event filter (naming the closest valid one), or None."""
    if name == "*" or name in EVENT_TYPES or name in FAMILIES:
        return None
    if name.endswith("*") and any(t.startswith(name[:-1]) for t in EVENT_TYPES):
        return None
    close = difflib.get_close_matches(name, [*EVENT_TYPES, *FAMILIES], n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(EVENT_TYPES)}, or '*' for all"
    return f"unknown event {name!r}; {hint}"
