"""The kit's green-thread lag on a real container: a worker that holds the process's CPU
shows as late turns for every other green thread, on the process's /metrics."""

import time

from nameko.standalone.rpc import ServiceRpcClient
from prometheus_client import REGISTRY

from servicekit.metrics import TurnLag
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
