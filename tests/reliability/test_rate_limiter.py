"""The rate limiter's Redis away or silent: the gateway lets requests through (the limiter
must not become an outage), and a Redis that stops answering holds each check up on its
own, never every request behind one connection."""

import socket
from collections import Counter

import eventlet
import pytest

from gateway.service import GatewayService
from tests.support import Api

WRONG_LOGIN = {"username": "admin", "password": "not-the-password"}


@pytest.fixture
def tight_limits(monkeypatch):
    """Limits that a working Redis would enforce within these tests' few requests."""
    monkeypatch.setenv("RATE_LIMIT_PER_ADDRESS", "1")
    monkeypatch.setenv("RATE_LIMIT_ADDRESS_BURST", "2")


@pytest.fixture
def silent_redis(monkeypatch):
    """A server at REDIS_URL that takes connections and commands and never answers; how
    many commands it has had waiting at once, at most."""
    listener = eventlet.listen(("127.0.0.1", 0))
    waiting = Counter()

    def ignore(connection):
        asked = False
        try:
            while connection.recv(4096):  # until the client gives up and hangs up
                if not asked:
                    asked = True
                    waiting["now"] += 1
                    waiting["most"] = max(waiting["most"], waiting["now"])
        finally:
            waiting["now"] -= asked
            connection.close()

    def accept():
        while True:
            connection, _ = listener.accept()
            eventlet.spawn(ignore, connection)

    acceptor = eventlet.spawn(accept)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{listener.getsockname()[1]}/0")
    yield waiting
    acceptor.kill()
    listener.close()


def test_with_redis_away_every_request_is_let_through(
    tight_limits, monkeypatch, suite_config, start_services
):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{closed_port}/0")
    start_services(GatewayService)
    api = _gateway(suite_config)

    statuses = [api.post("/auth/token", WRONG_LOGIN).status_code for _ in range(6)]
    assert statuses == [401] * 6  # past the burst of 2, yet none refused with 429
    assert api.post("/auth/token", {"username": "admin", "password": "admin"}).status_code == 200


def test_a_silent_redis_holds_checks_side_by_side(
    tight_limits, silent_redis, suite_config, start_services
):
    start_services(GatewayService)
    api = _gateway(suite_config)
    at_once = 8

    statuses = list(
        eventlet.GreenPool(at_once).imap(
            lambda _: api.anonymous().post("/auth/token", WRONG_LOGIN).status_code,
            range(at_once),
        )
    )

    assert statuses == [401] * at_once  # each let through when its check timed out
    # the checks waited side by side, each on a connection of its own, not one by one
    assert silent_redis["most"] == at_once


def test_a_silent_redis_holds_a_callers_requests_behind_one_check(
    tight_limits, silent_redis, suite_config, start_services
):
    start_services(GatewayService)
    admin = _gateway(suite_config).as_admin()  # let through once its check timed out
    at_once = 8

    statuses = list(
        eventlet.GreenPool(at_once).imap(lambda _: admin.get("/staff").status_code, range(at_once))
    )

    assert statuses == [200] * at_once
    # one of the caller's requests asked for tokens; the others shared its answer (Redis
    # away: all through) rather than each waiting out a timeout of its own
    assert silent_redis["most"] == 1


def _gateway(suite_config) -> Api:
    return Api(f"http://127.0.0.1:{suite_config['port']}")
