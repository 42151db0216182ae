"""The gateway's rate limiter on a real Redis: gateway processes that share a caller's
bucket never let it through more often than its limit, and take their tokens from Redis a
few at a time, and a caller past its limit costs Redis one check per refill."""

import time
import uuid
from types import SimpleNamespace

import eventlet
import pytest

from gateway.auth import Principal
from gateway.http import HttpError
from gateway.rate_limit import RateLimiter, taken_at_once

RATE, BURST = 100, 60
AGENT = Principal(staff_id=7, username="maria", role="agent", department=None)


@pytest.fixture
def asked(monkeypatch) -> list[str]:
    """The buckets the limiters asked Redis about, one entry a call, counted on their own
    clients (anything else using the same Redis does not count)."""
    calls = []
    real = RateLimiter._client

    def counted(limiter):
        script = real(limiter)

        def take(**kwargs):
            calls.append(kwargs["keys"][0])
            return script(**kwargs)

        take.registered_client = script.registered_client
        return take

    monkeypatch.setattr(RateLimiter, "_client", counted)
    return calls


@pytest.fixture
def two_gateway_processes(monkeypatch, asked):
    """Two limiters, as two gateway processes have, on one Redis and one set of buckets."""
    monkeypatch.setenv("RATE_LIMIT_PER_TOKEN", str(RATE))
    monkeypatch.setenv("RATE_LIMIT_BURST", str(BURST))
    monkeypatch.setenv("RATE_LIMIT_PREFIX", f"hotelcs:test:{uuid.uuid4()}")
    limiters = [RateLimiter(), RateLimiter()]
    for limiter in limiters:
        limiter.setup()
    yield limiters
    for limiter in limiters:
        limiter.stop()


def test_a_process_asks_redis_once_for_a_few_requests(two_gateway_processes, asked):
    gateway = two_gateway_processes[0]

    for _ in range(48):
        gateway.check(None, AGENT)

    assert taken_at_once(RATE, BURST) == 6
    assert len(asked) == 48 // 6


def test_processes_sharing_a_bucket_let_through_no_more_than_its_limit(two_gateway_processes):
    requests = 400

    def check(number: int) -> bool:
        try:
            two_gateway_processes[number % 2].check(None, AGENT)
            return True
        except HttpError as refused:
            assert refused.code == "RATE_LIMITED"
            assert int(refused.headers["Retry-After"]) >= 1
            return False

    started = time.monotonic()
    allowed = sum(eventlet.GreenPool(16).imap(check, range(requests)))
    elapsed = time.monotonic() - started

    # every request let through was paid for with a token of the one bucket: the burst and
    # what refilled meanwhile, and no fewer (the other process's kept tokens are spent too)
    assert BURST <= allowed <= BURST + RATE * elapsed + 1, (allowed, elapsed)
    assert allowed < requests


def test_a_caller_within_its_burst_is_never_refused_however_many_requests_at_once(
    two_gateway_processes, asked
):
    at_once = BURST - 10

    def check(number: int) -> int:
        try:
            two_gateway_processes[number % 2].check(None, AGENT)
            return 200
        except HttpError as refused:
            return refused.code

    statuses = list(eventlet.GreenPool(at_once).imap(check, range(at_once)))

    assert statuses == [200] * at_once, statuses
    assert all(gateway.asking == {} for gateway in two_gateway_processes)
    # each process's requests waited for one asking at a time, six tokens an answer
    per_process = at_once // 2
    assert len(asked) <= 2 * -(-per_process // 6)


def test_a_caller_past_its_limit_is_refused_without_asking_redis_until_a_token_refills(
    monkeypatch, asked
):
    monkeypatch.setenv("RATE_LIMIT_PER_ADDRESS", "2")
    monkeypatch.setenv("RATE_LIMIT_ADDRESS_BURST", "2")
    monkeypatch.setenv("RATE_LIMIT_PREFIX", f"hotelcs:test:{uuid.uuid4()}")
    gateway = RateLimiter()
    gateway.setup()
    guesser = SimpleNamespace(remote_addr="10.0.0.9")
    try:
        gateway.check(guesser, None)
        gateway.check(guesser, None)
        with pytest.raises(HttpError):
            gateway.check(guesser, None)  # the burst spent: Redis says so
        assert len(asked) == 3

        for _ in range(20):
            with pytest.raises(HttpError) as refused:
                gateway.check(guesser, None)
            assert refused.value.headers["Retry-After"] == "1"
        assert len(asked) == 3

        time.sleep(0.6)  # a token refilled at 2 a second
        gateway.check(guesser, None)
        assert len(asked) == 4
        assert gateway.asking == {}  # nothing left behind per address
    finally:
        gateway.stop()
