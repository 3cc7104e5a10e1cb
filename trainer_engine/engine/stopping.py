"""The stop causes a trainer weighs in `should_stop`: patience, the time limit and SIGTERM."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any


class EarlyStopping:
    """Stop when fitness has not improved for `patience` epochs (0 disables)."""

    def __init__(self, patience: int = 50) -> None:
        self.patience = patience
        self.best_fitness = -math.inf
        self.best_epoch = 0

    def __call__(self, epoch: int, fitness: float | None) -> bool:
        """Record `fitness` of `epoch` (1-based); return True when training should stop."""
        if fitness is None:
            return False
        if fitness >= self.best_fitness:
            self.best_fitness, self.best_epoch = fitness, epoch
        return self.patience > 0 and epoch - self.best_epoch >= self.patience


def epochs_in_time(epoch: int, start_epoch: int, elapsed_s: float, time_h: float) -> int:
    """Return how many epochs fit in `time_h` hours, measured on the epochs start_epoch..epoch (0-based)."""
    per_epoch = elapsed_s / (epoch - start_epoch + 1)
    return max(epoch + 1, math.ceil(time_h * 3600 / per_epoch) + start_epoch)


@contextlib.contextmanager
def sigterm_calls(on_sigterm: Callable[[], None]) -> Iterator[None]:
    """While inside, SIGTERM calls `on_sigterm` instead of ending the process (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        on_sigterm()

    previous: Callable[..., Any] | int | None = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
