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
def gateway_processes(monkeypatch, asked):
    """`gateway_processes(count, **limits)`: that many limiters, as as many gateway
    processes have, with the given settings, on one Redis and buckets of their own."""
    started = []

    def start(count: int, **limits: float) -> list[RateLimiter]:
        for name, value in limits.items():
            monkeypatch.setenv(name, str(value))
        monkeypatch.setenv("RATE_LIMIT_PREFIX", f"hotelcs:test:{uuid.uuid4()}")
        for _ in range(count):
            started.append(RateLimiter())
            started[-1].setup()
        return started[-count:]

    yield start
    for limiter in started:
        limiter.stop()


@pytest.fixture
def two_gateway_processes(gateway_processes):
    return gateway_processes(2, RATE_LIMIT_PER_TOKEN=RATE, RATE_LIMIT_BURST=BURST)


def refusal(limiter: RateLimiter, request=None, principal=AGENT) -> HttpError | None:
    """None if `limiter` lets the request through, else its refusal."""
    try:
        limiter.check(request, principal)
        return None
    except HttpError as refused:
        return refused


def test_a_process_asks_redis_once_for_a_few_requests(two_gateway_processes, asked):
    gateway = two_gateway_processes[0]

    for _ in range(48):
        gateway.check(None, AGENT)

    assert taken_at_once(RATE, BURST) == 6
    assert len(asked) == 48 // 6


def test_processes_sharing_a_bucket_let_through_no_more_than_its_limit(two_gateway_processes):
    requests = 400

    started = time.monotonic()
    answers = list(
        eventlet.GreenPool(16).imap(
            lambda n: refusal(two_gateway_processes[n % 2]), range(requests)
        )
    )
    elapsed = time.monotonic() - started
    allowed = answers.count(None)
    for refused in filter(None, answers):
        assert refused.code == "RATE_LIMITED"
        assert int(refused.headers["Retry-After"]) >= 1

    # every request let through was paid for with a token of the one bucket: the burst and
    # what refilled meanwhile, and no fewer (the other process's kept tokens are spent too)
    assert BURST <= allowed <= BURST + RATE * elapsed + 1, (allowed, elapsed)
    assert allowed < requests


def test_a_caller_within_its_burst_is_never_refused_however_many_requests_at_once(
    two_gateway_processes, asked
):
    at_once = BURST - 10

    answers = list(
        eventlet.GreenPool(at_once).imap(
            lambda n: refusal(two_gateway_processes[n % 2]), range(at_once)
        )
    )

    assert answers == [None] * at_once, answers
    assert all(gateway.asking == {} for gateway in two_gateway_processes)
    # each process's requests waited for one asking at a time, six tokens an answer
    per_process = at_once // 2
    assert len(asked) <= 2 * -(-per_process // 6)


def test_a_caller_past_its_limit_is_refused_without_asking_redis_until_a_token_refills(
    gateway_processes, asked
):
    [gateway] = gateway_processes(1, RATE_LIMIT_PER_ADDRESS=2, RATE_LIMIT_ADDRESS_BURST=2)
    guesser = SimpleNamespace(remote_addr="10.0.0.9")

    gateway.check(guesser, None)
    gateway.check(guesser, None)
    assert refusal(gateway, guesser, None)  # the burst spent: Redis says so
    assert len(asked) == 3

    for _ in range(20):
        refused = refusal(gateway, guesser, None)
        assert refused and refused.headers["Retry-After"] == "1"
    assert len(asked) == 3

    time.sleep(0.6)  # a token refilled at 2 a second
    gateway.check(guesser, None)
    assert len(asked) == 4
    assert gateway.asking == {}  # nothing left behind per address


def test_set_up_says_plainly_when_redis_cannot_be_reached(monkeypatch):
    from servicekit import provision

    assert provision.check_redis() is None
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    said = provision.check_redis()
    assert said.startswith("Redis cannot be reached at 127.0.0.1:1") and "REDIS_URL" in said
