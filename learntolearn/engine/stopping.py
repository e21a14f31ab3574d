"""Stopping a training loop cleanly: Ctrl-C or SIGTERM asks it to stop after its current step, at a checkpoint."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

import torch
from tqdm import tqdm


class StopRequests:
    """While entered, the first SIGINT or SIGTERM is recorded in :attr:`signal` for the training loop to act on
    after its current step; a second one gets the signal's usual handling. A no-op off the main thread.

    In a process of a distributed job (``rank`` given) later signals are ignored: the launcher forwards a
    terminal's Ctrl-C that the process also receives itself, and it kills processes that outlast its shutdown
    timeout. Only rank 0 says that it is stopping; the ranks agree on the step with :func:`stop_agreed`."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled: bool = True, rank: int | None = None) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.rank = rank
        self.signal: str | None = None
        self.previous: dict[int, object] = {}

    def _request(self, number: int, frame: FrameType | None) -> None:
        if self.signal is not None:
            if self.rank is None:  # asked twice: do what the signal would have done
                self._restore()
                signal.raise_signal(number)
            return
        self.signal = signal.Signals(number).name
        if self.rank is None:
            tqdm.write(
                f"{self.signal}: stopping after this step with a checkpoint (send it again to stop at once)",
                file=sys.stderr,
            )
        elif self.rank == 0:
            tqdm.write(f"{self.signal}: every process stops after this step with a checkpoint", file=sys.stderr)

    def _restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
        self.previous.clear()

    def __enter__(self) -> StopRequests:
        if self.enabled:
            self.previous = {number: signal.getsignal(number) for number in self.SIGNALS}
            for number in self.SIGNALS:
                signal.signal(number, self._request)
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()


def stop_agreed(stop_requests: StopRequests, reduce: Callable[[torch.Tensor], torch.Tensor] | None) -> bool:
    """Whether to stop after this step: this process was asked to, or (``reduce`` summing over the ranks of a
    distributed job) any process was, so that every rank stops at the same step."""
    asked = stop_requests.signal is not None
    if reduce is None:
        return asked
    return bool(reduce(torch.tensor([float(asked)])).item() > 0)
