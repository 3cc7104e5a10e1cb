"""The one declaration of every engine event, and the dispatcher that runs their callbacks.

A callback is a plain function `fn(obj)` that receives the trainer, validator or predictor firing the
event. `trainer.add_callback(event, fn)` appends (built-in callbacks stay); `set_callback` replaces.

Order of the trainer events (`BaseTrainer.train()` reads the same way)::

    on_pretrain_routine_start       # args validated, save_dir not created yet
    on_pretrain_routine_end         # model, data loaders, optimizer, scheduler, EMA built; resumed if asked
    on_train_start
    for epoch in range(start_epoch, epochs):
        on_train_epoch_start
        for batch in train_loader:
            on_train_batch_start
            loss.backward()
            if an optimizer step is due (every `accumulate` batches):
                optimizer_step          # weights updated (and EMA followed them)
                on_before_zero_grad     # gradients are about to be zeroed
            on_train_batch_end
            if trainer.stop: break      # a stop request ends the epoch at this batch boundary
        if the epoch ran to its end:
            on_train_epoch_end          # the epoch's training losses and learning rates
            validate()                  # validator events: on_val_start, on_val_batch_*, on_val_end
            save_model() -> on_model_save   # last.pt (and best.pt / epoch<N>.pt) written
            on_fit_epoch_end            # once per epoch, with validation metrics
        else (stopped inside it):
            save_model() -> on_model_save   # last.pt records the last *completed* epoch, so a resume
                                            # trains the interrupted one again
        on_params_update                # scheduler stepped: lr for the next epoch set
        if trainer.stop: break          # stop request, patience or time limit; trainer.stop_reason says which
    final evaluation of best.pt         # its own step: it never re-fires on_fit_epoch_end
    on_train_end
    teardown                            # always, also after an exception

Under DDP only rank 0 fires the events (other ranks train and synchronise only); the per-batch
events of rank 0 still fire.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from trainer_engine.cfg.events import (
    BATCH_EVENTS,
    EVENTS,
    PREDICTOR_EVENTS,
    TRAINER_EVENTS,
    VALIDATOR_EVENTS,
)

__all__ = [
    "BATCH_EVENTS",
    "EVENTS",
    "PREDICTOR_EVENTS",
    "TRAINER_EVENTS",
    "VALIDATOR_EVENTS",
    "Callback",
    "CallbackMixin",
    "check_event",
    "default_callbacks",
]

Callback = Callable[[Any], Any]


def default_callbacks() -> dict[str, list[Callback]]:
    """Return a fresh dict with an empty callback list for every declared event."""
    return {event: [] for event in EVENTS}


def check_event(event: str) -> None:
    """Raise ValueError, naming the closest declared event, when `event` is not declared."""
    if event not in EVENTS:
        close = difflib.get_close_matches(event, list(EVENTS), n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else "see trainer_engine.cfg.events.EVENTS"
        raise ValueError(f"unknown event '{event}'; {hint}")


class CallbackMixin:
    """`add_callback` / `set_callback` / `run_callbacks` over a `self.callbacks` dict of lists."""

    callbacks: dict[str, list[Callback]]

    def add_callback(self, event: str, callback: Callback) -> None:
        """Append `callback` to the callbacks of `event`."""
        check_event(event)
        self.callbacks.setdefault(event, []).append(callback)

    def set_callback(self, event: str, callback: Callback) -> None:
        """Replace every callback of `event` with `callback`."""
        check_event(event)
        self.callbacks[event] = [callback]

    def run_callbacks(self, event: str) -> None:
        """Call every callback of `event` with this object, in the order they were added."""
        check_event(event)
        for callback in self.callbacks.get(event, ()):
            callback(self)
