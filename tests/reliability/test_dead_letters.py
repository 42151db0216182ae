"""A handler that keeps failing: its message is retried after each backoff delay, then
parked in a dead-letter queue that the service's own /metrics shows, while the messages
behind it keep flowing; the documented command replays it once the cause is fixed.
(tests/integration/test_kit_bus.py covers the kit's parts one by one.)"""

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from nameko import config

from servicekit import bus, events
from servicekit.database import Database
from servicekit.idempotency import handle_each_once
from servicekit.metrics import Metrics
from services.complaints.models import KIT
from tests import support
from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[2]
DELAYS = (0.3, 0.9)
QUEUE = bus.queue_name("complaints", "staff_updated")

attempts: list[float] = []
handled: dict[str, float] = {}
broken = {"on": True}


class StaffUpdates:
    """Stands in for the complaints service's staff handler; breaks on one staff member."""

    name = "complaints"
    db = Database("complaints")
    metrics = Metrics("complaints")

    @bus.subscribe("staff_updated")
    def on_staff_updated(self, events):
        def handle(session, event):
            if event.data["username"] == "poison" and broken["on"]:
                # A batch holding it fails and is handled again one event at a time:
                # the attempts that count are those at it alone.
                if len(events) == 1:
                    attempts.append(time.monotonic())
                raise RuntimeError("cannot handle this one until someone fixes the handler")
            handled[event.data["username"]] = time.monotonic()

        handle_each_once(self.db, KIT, events, handle)


@pytest.fixture
def slow_backoff(monkeypatch):
    monkeypatch.setenv("EVENT_RETRY_DELAYS", ",".join(str(d) for d in DELAYS))
    attempts.clear()
    handled.clear()
    broken["on"] = True


def publish(username: str) -> None:
    support.publish(
        events.envelope(
            "staff_updated", {"staff_id": 1, "username": username, "name": "X", "role": "agent"}
        )
    )


def scrape(port: int, sample: str) -> float | None:
    for line in requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return None


def cli(*args: str) -> str:
    env = {**os.environ, "AMQP_URI": config["AMQP_URI"], "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "servicekit.bus", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_a_failing_handler_backs_off_parks_shows_in_metrics_and_replays(
    slow_backoff, start_services
):
    runner = start_services(StaffUpdates)
    (container,) = runner.containers
    port = next(e for e in container.extensions if isinstance(e, Metrics)).port

    publish("poison")
    for n in range(5):
        publish(f"fine-{n}")
    gauge = f'hotelcs_dead_letter_messages{{queue="{QUEUE}.dead"}}'
    wait_for(lambda: scrape(port, gauge) == 1.0, timeout=20, interval=0.2)
    parked_at = time.monotonic()

    gaps = [round(b - a, 2) for a, b in itertools.pairwise(attempts)]
    dead_lettered = scrape(
        port,
        'hotelcs_events_handled_total{event_type="staff_updated",outcome="dead_lettered",'
        'service="complaints"}',
    )
    listed = cli("dead")
    print(
        f"\npoisoned message: {len(attempts)} attempts, gaps {gaps}s for delays {DELAYS}s, "
        f"then parked; 5 messages behind it handled first: "
        f"{all(t < parked_at for t in handled.values())}; metrics: parked 1, "
        f"dead_lettered {dead_lettered}"
    )
    assert len(attempts) == 1 + len(DELAYS)
    assert all(gap >= delay * 0.9 for gap, delay in zip(gaps, DELAYS, strict=True)), gaps
    assert sorted(handled) == [f"fine-{n}" for n in range(5)]
    assert max(handled.values()) < attempts[-1]  # they did not wait for the poisoned one
    assert dead_lettered == 1.0
    assert f"1  {QUEUE}.dead" in listed

    # The documented command (`make replay-dead-letters QUEUE=...` runs this).
    make = subprocess.run(
        ["make", "-n", "replay-dead-letters", f"QUEUE={QUEUE}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"-m servicekit.bus replay {QUEUE}" in make.stdout
    broken["on"] = False
    assert cli("replay", QUEUE).strip() == "replayed 1 messages"
    wait_for(lambda: "poison" in handled, timeout=10)
    wait_for(lambda: scrape(port, gauge) == 0.0, timeout=10, interval=0.2)
    assert cli("dead").strip() == ""
