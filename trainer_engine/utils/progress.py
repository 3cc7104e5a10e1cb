"""A live per-batch progress bar for each epoch on a terminal (batch i/n, running losses, it/s, time left).

Only when stderr is a terminal: in a log file (the service's train.log, CI) a redrawn bar is
carriage-return noise, and the trainer's own line per epoch says the same once.
"""

from __future__ import annotations

import sys
from typing import Any

BAR = "bar"  # the trainer attribute holding the epoch's bar


def on_terminal() -> bool:
    """Return whether stderr is an interactive terminal."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _start(trainer: Any) -> None:
    """Open the epoch's bar (`on_train_epoch_start`)."""
    if not on_terminal():
        return
    from tqdm import tqdm

    total = len(trainer.train_loader)
    setattr(
        trainer,
        f"_progress_{BAR}",
        tqdm(total=total, desc=f"epoch {trainer.epoch + 1}/{trainer.epochs}", unit="batch",
             dynamic_ncols=True, leave=True, file=sys.stderr),
    )  # fmt: skip


def _advance(trainer: Any) -> None:
    """Step the bar with the running mean losses (`on_train_batch_end`)."""
    bar = getattr(trainer, f"_progress_{BAR}", None)
    if bar is None:
        return
    bar.update(1)
    # Refresh the losses a few times a second at most: reading tloss waits for the device.
    if bar.n == bar.total or bar.n % max(1, bar.total // 20) == 0:
        losses = trainer.label_loss_items(trainer.tloss, prefix="") if trainer.tloss is not None else {}
        bar.set_postfix({k.lstrip("/"): f"{v:.4g}" for k, v in losses.items()}, refresh=False)


def _close(trainer: Any) -> None:
    """Close the epoch's bar (`on_train_epoch_end`, and on the way out after a stop or an error)."""
    bar = getattr(trainer, f"_progress_{BAR}", None)
    if bar is not None:
        bar.close()
        setattr(trainer, f"_progress_{BAR}", None)


callbacks = {
    "on_train_epoch_start": [_start],
    "on_train_batch_end": [_advance],
    "on_train_epoch_end": [_close],
    "teardown": [_close],
}


def add_callbacks(trainer: Any, *integrations: dict[str, list[Any]]) -> None:
    """Add each integration's callbacks to `trainer` (after the ones it has)."""
    for integration in integrations:
        for event, functions in integration.items():
            for fn in functions:
                trainer.add_callback(event, fn)
