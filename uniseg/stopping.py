"""Ctrl-C (SIGINT) and SIGTERM as a request to stop at the next safe point.

Long jobs (training, mining) check :attr:`StopRequest.requested` between steps, save what they
have and exit 130 with a word on how to resume; a second Ctrl-C aborts at once.
"""

from __future__ import annotations

import signal
import threading


class StopRequest:
    """SIGINT/SIGTERM set a flag (the loop stops after the current iteration); a second SIGINT aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
        self._old.clear()
