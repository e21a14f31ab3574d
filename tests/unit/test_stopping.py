"""Stop requests: one signal asks for a checkpointed stop; the ranks of a distributed job agree on the step."""

import signal

import pytest

from learntolearn.engine.stopping import StopRequests, stop_agreed


class Handled(Exception):
    """Raised by the handler that was in place before: the signal's usual handling."""


def usual_handling(number, frame):
    raise Handled(signal.Signals(number).name)


def test_a_second_signal_gets_its_usual_handling_in_a_lone_process():
    previous = signal.signal(signal.SIGTERM, usual_handling)
    try:
        with StopRequests() as requests:
            signal.raise_signal(signal.SIGTERM)
            assert requests.signal == "SIGTERM"
            with pytest.raises(Handled, match="SIGTERM"):
                signal.raise_signal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) is usual_handling
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_rank_takes_repeated_signals_as_the_one_request_its_launcher_also_forwards():
    previous = {number: signal.signal(number, usual_handling) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        with StopRequests(rank=1) as requests:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)  # the terminal's Ctrl-C, then the launcher passing it on
            signal.raise_signal(signal.SIGTERM)
            assert requests.signal == "SIGINT"
        assert signal.getsignal(signal.SIGTERM) is usual_handling
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def test_every_rank_stops_when_any_rank_was_asked():
    def others_asked(count: int):
        return lambda flag: flag + count  # the sum over ranks, as all_reduce gives it

    quiet = StopRequests(enabled=False)
    assert not stop_agreed(quiet, None)
    assert not stop_agreed(quiet, others_asked(0))
    assert stop_agreed(quiet, others_asked(1)), "another rank got the signal first"
    asked = StopRequests(enabled=False)
    asked.signal = "SIGTERM"
    assert stop_agreed(asked, None) and stop_agreed(asked, others_asked(0))
