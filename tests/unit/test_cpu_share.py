"""Setting a session's CPU priority when Linux refuses it for a moment: without privileges
it takes one change a tenth of a second machine-wide, so replicas starting together wait."""

import pytest

from servicekit import cpu_share


class BusySessionWeight:
    """/proc/self/autogroup as an unprivileged process finds it while others change theirs."""

    def __init__(self, refusals: int):
        self.refusals = refusals
        self.written: list[str] = []

    def write_text(self, value: str) -> None:
        if self.refusals:
            self.refusals -= 1
            raise BlockingIOError(11, "Resource temporarily unavailable")
        self.written.append(value)


@pytest.fixture
def session_weight(monkeypatch):
    def make(refusals: int) -> BusySessionWeight:
        weight = BusySessionWeight(refusals)
        monkeypatch.setattr(cpu_share, "OWN_AUTOGROUP", weight)
        monkeypatch.setattr(cpu_share, "AUTOGROUP_WAIT", 0)
        return weight

    return make


def test_the_session_priority_is_set_once_the_kernel_takes_it(session_weight):
    weight = session_weight(refusals=3)

    cpu_share._set_session_nice(10)

    assert weight.written == ["10"]


def test_a_session_priority_never_taken_is_reported_and_the_service_goes_on(session_weight, caplog):
    weight = session_weight(refusals=cpu_share.AUTOGROUP_TRIES)

    cpu_share._set_session_nice(10)

    assert weight.written == []
    assert "could not be set" in caplog.text
