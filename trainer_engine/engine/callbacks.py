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

Callback = Callable[[Any], Any]

TRAINER_EVENTS: dict[str, str] = {
    "on_pretrain_routine_start": (
        "Called when train() starts, before anything is built: trainer.args holds the validated config "
        "and trainer.save_dir the run folder (not created yet)."
    ),
    "on_pretrain_routine_end": (
        "Called when setup is done: trainer.model, train_loader, test_loader, optimizer, scheduler, ema, "
        "start_epoch (after a resume) are ready and save_dir exists."
    ),
    "on_train_start": "Called when the training loop is about to start its first epoch.",
    "on_train_epoch_start": (
        "Called when an epoch starts: trainer.epoch is the 0-based epoch, the model is in train mode."
    ),
    "on_train_batch_start": "Called when a batch is about to be preprocessed and run forward.",
    "optimizer_step": (
        "Called when the optimizer has stepped: the weights (and the EMA) hold the update; "
        "fires every `accumulate` batches."
    ),
    "on_before_zero_grad": (
        "Called when the gradients of the step just taken are about to be zeroed: trainer.model's "
        ".grad tensors still hold them."
    ),
    "on_train_batch_end": (
        "Called when a batch is done: trainer.loss_items holds its losses, trainer.tloss the epoch's "
        "running mean."
    ),
    "on_train_epoch_end": (
        "Called when an epoch's batches are done: trainer.tloss holds its mean training losses, "
        "trainer.lr its learning rates; not yet validated or saved."
    ),
    "on_model_save": (
        "Called when the checkpoints of the epoch are written: trainer.last exists (and trainer.best "
        "when this epoch improved fitness)."
    ),
    "on_fit_epoch_end": (
        "Called once per epoch when it is trained, validated and saved: trainer.metrics holds the "
        "validation metrics, trainer.fitness and trainer.best_fitness are set."
    ),
    "on_params_update": (
        "Called when the learning-rate scheduler has stepped at the end of an epoch: the parameters "
        "and learning rates the next epoch starts from are final."
    ),
    "on_train_end": (
        "Called when training has finished (all epochs, early stop or stop request) and best.pt was "
        "evaluated: trainer.metrics holds that final evaluation, trainer.stop_reason says why it ended."
    ),
    "teardown": "Called when train() is about to return or raise: release what callbacks opened.",
}

VALIDATOR_EVENTS: dict[str, str] = {
    "on_val_start": "Called when validation starts: validator.dataloader and the model are ready.",
    "on_val_batch_start": "Called when a validation batch is about to be preprocessed and run.",
    "on_val_batch_end": "Called when a validation batch's predictions were added to the metrics.",
    "on_val_end": "Called when validation is done: validator.metrics holds the final metrics.",
}

PREDICTOR_EVENTS: dict[str, str] = {
    "on_predict_start": "Called when prediction starts: predictor.model is loaded and in eval mode.",
    "on_predict_batch_start": "Called when a batch of images is about to be preprocessed and run.",
    "on_predict_postprocess_end": "Called when a batch's raw outputs were turned into results objects.",
    "on_predict_batch_end": "Called when a batch's results were appended to predictor.results.",
    "on_predict_end": "Called when every source was predicted: predictor.results holds all results.",
}

EVENTS: dict[str, str] = {**TRAINER_EVENTS, **VALIDATOR_EVENTS, **PREDICTOR_EVENTS}

# Events fired for every batch (or optimizer step): the service throttles these into progress.
BATCH_EVENTS = frozenset(
    {
        "on_train_batch_start",
        "optimizer_step",
        "on_before_zero_grad",
        "on_train_batch_end",
        "on_val_batch_start",
        "on_val_batch_end",
        "on_predict_batch_start",
        "on_predict_postprocess_end",
        "on_predict_batch_end",
    }
)


def default_callbacks() -> dict[str, list[Callback]]:
    """Return a fresh dict with an empty callback list for every declared event."""
    return {event: [] for event in EVENTS}


def check_event(event: str) -> None:
    """Raise ValueError, naming the closest declared event, when `event` is not declared."""
    if event not in EVENTS:
        close = difflib.get_close_matches(event, list(EVENTS), n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else "see trainer_engine.engine.callbacks.EVENTS"
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
