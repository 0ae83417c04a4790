"""Ctrl-C as a stop request (``uniseg.stopping.StopRequest``), with real signals: the first sets the
flag, a second SIGINT aborts, SIGTERM only asks, and the handlers before it come back."""

from __future__ import annotations

import os
import signal

import pytest


def test_first_ctrl_c_asks_a_second_aborts_and_the_old_handlers_return():
    from uniseg.stopping import StopRequest

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with StopRequest() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)  # a scheduler's polite stop: a request, never an abort
        assert stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested  # the job goes on to its next safe point
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C
    assert {sig: signal.getsignal(sig) for sig in before} == before
