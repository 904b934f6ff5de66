"""A SIGTERM whose KeyboardInterrupt Python swallows (raised inside a finaliser or a gc callback) still stops
the run at its next progress callback."""

from __future__ import annotations

import gc
import io
import os
import signal
from collections.abc import Iterator

import pytest

from bilevel.runs import stop
from bilevel.runs.progress import Progress


@pytest.fixture()
def installed() -> Iterator[None]:
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    stop.install()
    yield
    stop._REQUESTED.clear()
    for sig, handler in old.items():
        signal.signal(sig, handler)


class _SignalOnCollect:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here; its exception is swallowed


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_swallowed_sigterm_is_raised_at_the_next_progress_callback(installed: None) -> None:
    progress = Progress(stream=io.StringIO())
    progress.stage("before")  # no stop asked: nothing raised
    obj = _SignalOnCollect()
    obj.self = obj  # type: ignore[attr-defined]  # a cycle: freed by the collector, where raising is lost
    del obj
    gc.collect()  # "Exception ignored in ... KeyboardInterrupt": the interrupt did not reach us
    with pytest.raises(KeyboardInterrupt):
        progress.evaluation(1, 2)
    with pytest.raises(KeyboardInterrupt):
        progress.stage("still stopping")


def test_a_delivered_sigterm_interrupts_at_once(installed: None) -> None:
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs at the next bytecode boundary
            pass
    assert stop._REQUESTED == [signal.SIGTERM]
