"""Stopping a training loop cleanly: Ctrl-C or SIGTERM asks it to stop after its current step, at a checkpoint."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from tqdm import tqdm


class StopRequests:
    """While entered, the first SIGINT or SIGTERM is recorded in :attr:`signal` for the training loop to act on
    after its current step; a second one gets the signal's usual handling. A no-op off the main thread."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signal: str | None = None
        self.previous: dict[int, object] = {}

    def _request(self, number: int, frame: FrameType | None) -> None:
        if self.signal is not None:  # asked twice: do what the signal would have done
            self._restore()
            signal.raise_signal(number)
            return
        self.signal = signal.Signals(number).name
        tqdm.write(
            f"{self.signal}: stopping after this step with a checkpoint (send it again to stop at once)",
            file=sys.stderr,
        )

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
