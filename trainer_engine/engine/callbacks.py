"""The dispatcher of the engine events, and the order in which the trainer fires them.

The events are declared in `trainer_engine.cfg.events` (no torch there, so the service can read
them). A callback is a plain function `fn(obj)` that receives the trainer, validator or predictor
firing the event. `trainer.add_callback(event, fn)` appends (built-in callbacks stay);
`set_callback` replaces. `trainer_event_order()` spells the order below out for one run.

Order of the trainer events (`BaseTrainer.train()` reads the same way)::

    on_pretrain_routine_start       # args validated, save_dir not created yet
    on_pretrain_routine_end         # model, data loaders, optimizer, scheduler, EMA built; resumed if asked
    on_train_start
    for epoch in range(start_epoch, epochs):    # no epoch when a resumed checkpoint holds all epochs
        on_train_epoch_start
        for batch in train_loader:
            on_train_batch_start
            loss.backward()
            if an optimizer step is due (`accumulate` batches since the last one; the first batch of
            a train() call counts from batch -1):
                optimizer_step          # weights updated (and EMA followed them)
                on_before_zero_grad     # gradients are about to be zeroed
            on_train_batch_end
            if should_stop(): break     # a stop request or the time limit ends the epoch at this batch
        if the epoch ran to its end:
            on_train_epoch_end          # the epoch's training losses and learning rates
            validate()                  # validator events: on_val_start, on_val_batch_*, on_val_end
            save_model() -> on_model_save   # last.pt (and best.pt / epoch<N>.pt) written; with
                                            # save=False only after the last epoch
            on_fit_epoch_end            # once per epoch, with validation metrics
        else (stopped inside it):
            save_model() -> on_model_save   # last.pt records the last *completed* epoch, so a resume
                                            # trains the interrupted one again
        on_params_update                # scheduler stepped: lr for the next epoch set
        if should_stop(): break         # stop request, time limit, patience or the last epoch;
                                        # trainer.stop_reason says which (None: all epochs trained)
    final evaluation of best.pt         # its own step: it never re-fires on_fit_epoch_end; skipped
                                        # after a stop request and when nothing was trained
    on_train_end
    teardown                            # always, also after an exception

Resuming a run whose checkpoint already holds all its epochs trains nothing: train() fires
on_pretrain_routine_start, on_pretrain_routine_end, on_train_start, on_train_end and teardown, and
leaves trainer.epoch, epochs, metrics, best and last as the finished run left them (stop_reason None).

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


def trainer_event_order(
    epochs: int,
    batches: int,
    start_epoch: int = 0,
    accumulate: int = 1,
    stopped_at: tuple[int, int] | None = None,
) -> list[str]:
    """Return every trainer event one train() call fires, in order, as the pseudocode above says.

    `batches` per epoch (rank 0's share under DDP); `accumulate` fixed for the whole call (warm-up
    ramps it, so runs with warm-up and accumulate > 1 are not described); `stopped_at` = (epoch,
    batch), 0-based, when a stop is requested at that batch's on_train_batch_end. A `start_epoch`
    at or past `epochs` is the resume of a finished run. Assumes save=True and no patience or time
    limit stop.
    """
    order = ["on_pretrain_routine_start", "on_pretrain_routine_end", "on_train_start"]
    last_step = -1  # the trainer counts steps from batch -1 of each train() call
    for epoch in range(start_epoch, epochs):
        order.append("on_train_epoch_start")
        for i in range(batches):
            ni = epoch * batches + i
            order.append("on_train_batch_start")
            if ni - last_step >= accumulate:
                order += ["optimizer_step", "on_before_zero_grad"]
                last_step = ni
            order.append("on_train_batch_end")
            if stopped_at == (epoch, i):
                break
        stopped = stopped_at is not None and stopped_at[0] == epoch
        if stopped and stopped_at[1] < batches - 1:
            order += ["on_model_save", "on_params_update"]
        else:
            order += ["on_train_epoch_end", "on_model_save", "on_fit_epoch_end", "on_params_update"]
        if stopped:
            break
    return [*order, "on_train_end", "teardown"]
