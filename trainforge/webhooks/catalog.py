"""The event types a webhook can subscribe to, and the closest valid name for a typo."""

from __future__ import annotations

import difflib

from trainer_engine.cfg.events import BATCH_EVENTS, TRAINER_EVENTS
from trainforge.vocab import ENDPOINT_DISABLED_EVENT, LIFECYCLE_EVENTS

# The engine's non-batch trainer events, in declared order: what the worker's bridge records as job
# events (batch events only update the job's progress). cfg.events is the engine's torch-free part.
TRAINER_EVENT_TYPES: tuple[str, ...] = tuple(e for e in TRAINER_EVENTS if e not in BATCH_EVENTS)
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
