"""Fixtures for integration and end-to-end tests: real RabbitMQ (a vhost per test, from
nameko's pytest plugin) and real PostgreSQL (one test database per owner, emptied
between tests)."""

import os
import socket
import time

import pytest
from nameko import config

from tests import support

support.use_test_databases()
# Each container serves /metrics on a port of its own; 0 lets the OS choose.
for _owner in support.OWNERS:
    os.environ[f"{_owner.upper()}_METRICS_PORT"] = "0"
os.environ.setdefault("EVENT_RETRY_DELAYS", "0.2,0.4")
# The tests reckon "today" with `date.today()` and write offsets as "+00:00": the hotel's
# day and the process's are UTC's whatever the machine or a developer's shell says (a test
# of another time zone sets HOTEL_TZ itself).
os.environ["HOTEL_TZ"] = "UTC"
os.environ["TZ"] = "UTC"
time.tzset()
os.environ.setdefault("HOTELCS_JWT_SECRET", "test-secret-key-that-is-long-enough-for-hs256")


@pytest.fixture(scope="session")
def test_databases():
    support.recreate_test_databases()


@pytest.fixture
def clean_databases(test_databases):
    support.truncate_all()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def suite_config(rabbit_config, clean_databases, request):
    """nameko config for one test: its own vhost, its own HTTP port, its own rate buckets."""
    port = _free_port()
    os.environ["RATE_LIMIT_PREFIX"] = f"hotelcs:test:{request.node.nodeid}"
    with config.patch({"WEB_SERVER_ADDRESS": f"127.0.0.1:{port}", "max_workers": 50}):
        yield {"port": port}


@pytest.fixture
def start_services(suite_config, runner_factory):
    """Start the given service classes together; returns the runner."""

    def start(*service_classes):
        runner = runner_factory(*service_classes)
        runner.start()
        return runner

    return start


@pytest.fixture
def suite(start_services, suite_config):
    """The whole suite running (every service and the gateway); an `Api` to the gateway."""
    start_services(*support.every_service())
    return support.Api(f"http://127.0.0.1:{suite_config['port']}")
