"""The kit's green-thread lag on a real container: a worker that holds the process's CPU
shows as late turns for every other green thread, on the process's /metrics; /health says
when the broker is away."""

import time
import urllib.error
import urllib.request

from nameko import config
from nameko.standalone.rpc import ServiceRpcClient
from nameko.testing.services import dummy
from prometheus_client import REGISTRY

from servicekit.metrics import Metrics, TurnLag
from servicekit.rpc import rpc
from tests.support import wait_for


class NightAudit:
    name = "night_audit"
    turn_lag = TurnLag()

    @rpc
    def close_the_day(self, seconds: float) -> float:
        """Work that never yields for `seconds` (as a long computation would)."""
        until = time.perf_counter() + seconds
        while time.perf_counter() < until:
            pass
        return seconds


def lag(sample: str, **labels) -> float:
    value = REGISTRY.get_sample_value(
        f"hotelcs_green_thread_lag_seconds_{sample}", {"service": "night_audit", **labels}
    )
    return value or 0.0


def test_a_worker_holding_the_cpu_shows_as_late_turns(rabbit_config, container_factory):
    container_factory(NightAudit).start()
    late_before = lag("count") - lag("bucket", le="0.1")
    wait_for(lambda: lag("count") >= 3)  # ten turns a second while nothing else runs

    with ServiceRpcClient("night_audit") as audit:
        audit.close_the_day(0.4)

    # the turn that fell during the 0.4 s of work woke more than a tenth of a second late
    wait_for(lambda: lag("count") - lag("bucket", le="0.1") > late_before)
    assert lag("sum") >= 0.2


class Concierge:
    name = "concierge"
    metrics = Metrics("guests")

    @dummy
    def greet(self):
        return "hello"


def test_a_service_without_its_broker_is_not_healthy(rabbit_config, container_factory, monkeypatch):
    monkeypatch.setenv("GUESTS_METRICS_PORT", "0")  # any free port
    container = container_factory(Concierge)
    container.start()
    [metrics] = [d for d in container.dependencies if isinstance(d, Metrics)]

    def health() -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics.port}/health") as answer:
                return answer.status
        except urllib.error.HTTPError as refused:
            return refused.code

    assert health() == 200
    with config.patch({"AMQP_URI": "amqp://guest:guest@127.0.0.1:1/"}):  # nothing listens
        assert health() == 503
    assert health() == 200
