import pytest


@pytest.fixture
def patient_retries(monkeypatch):
    """Retry delays like production's (1,5,30,120s) in spirit: long enough to outlast the
    faults these tests cause. The suite's test default (0.2,0.4s) would park events that
    only wait for another one delayed by the fault (a complaint about a guest whose
    registration is still on its way), and a human would have to replay them."""
    monkeypatch.setenv("EVENT_RETRY_DELAYS", "1,3,10")
