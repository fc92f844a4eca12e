"""A stop signal is honoured even where its exception lands in a finaliser, which Python ignores."""

import gc
import os
import signal

import pytest

from benchmark.run.signals import Stopped, deferred, raise_if_stopped, stop_on_signals

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the point of the test


class _SignalledWhileCollected:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the handler's Stopped is raised here, and swallowed


def test_a_signal_swallowed_by_a_finaliser_still_stops_the_next_check():
    with pytest.raises(Stopped) as stop, stop_on_signals():
        _SignalledWhileCollected()
        gc.collect()
        raise_if_stopped()
        pytest.fail("the swallowed signal was lost")
    assert stop.value.code == 143


def test_a_swallowed_signal_stops_the_block_at_its_end_at_the_latest():
    with pytest.raises(Stopped), stop_on_signals():
        _SignalledWhileCollected()
        gc.collect()
    raise_if_stopped()  # outside the block, nothing is pending any more


def test_a_signal_inside_a_deferred_block_stops_the_run_when_the_block_ends():
    reached = []
    with pytest.raises(Stopped) as stop, stop_on_signals():
        with deferred():
            os.kill(os.getpid(), signal.SIGINT)
            with deferred():  # nested: only the outermost block raises
                reached.append("inner")
            reached.append("end of the block")
        pytest.fail("the held-back signal was lost")
    assert reached == ["inner", "end of the block"] and stop.value.code == 130
