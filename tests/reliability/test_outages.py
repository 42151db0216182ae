"""Outages of the whole broker and of PostgreSQL while guests are registered and complaints
filed through the gateway. Both stop a server every test on this machine shares, so they
are marked `faults` (deselect with `-m "not faults"` while others run tests) and always
start it again, whatever happens."""

import contextlib
import time
from collections import Counter
from pathlib import Path

import eventlet
import pytest
from eventlet.green import subprocess

from tests.reliability.faults import (
    Traffic,
    duplicated_side_effects,
    event_books,
    gapless_file_numbers,
    query,
    rabbitmqctl,
)
from tests.support import wait_for

pytestmark = pytest.mark.faults

ANSWER_WITHIN = 10.0  # seconds: the gateway's RPC timeout (5) and some slack for a busy host
OUTAGE = 6.0


def check_books(traffic: Traffic, name: str, during: Counter, recovered: float) -> None:
    slowest = max(a.seconds for a in traffic.answers)
    retried = traffic.complete(timeout=60)
    books = event_books(timeout=90)
    duplicates = duplicated_side_effects()
    guests = query("guests", "select count(*) from guests")[0][0]
    complaints = query("complaints", "select count(*) from complaints")[0][0]
    print(
        f"\n{name}: {sum(during.values())} requests during it, answers {dict(during)}, "
        f"slowest {slowest:.1f}s; first success {recovered:.1f}s after it ended; {retried} "
        f"retried with their Idempotency-Key; events sent {books['sent']}, received "
        f"{books['received']}, lost {books['lost']}; duplicates {duplicates}"
    )
    assert set(during) <= {201, 503}, during
    assert slowest < ANSWER_WITHIN
    assert guests == len(traffic.keys("guest"))
    assert complaints == len(traffic.keys("complaint"))
    assert books["lost"] == 0
    assert not any(duplicates.values()), duplicates
    assert gapless_file_numbers()


def test_the_broker_stopped_for_seconds_under_traffic(patient_retries, suite):
    traffic = Traffic(suite.as_role("agent", "front_office"))
    marks = {}

    def outage():
        eventlet.sleep(1.5)
        try:
            rabbitmqctl("stop_app")
            marks["down"] = time.monotonic()
            eventlet.sleep(OUTAGE)
        finally:
            start_broker()
            marks["up"] = time.monotonic()
        eventlet.sleep(6)

    traffic.run(workers=4, faults=outage)
    during = Counter(a.status for a in traffic.answers)
    check_books(
        traffic, f"broker stopped {OUTAGE:.0f}s", during, traffic.recovered_after(marks["up"])
    )
    assert during[503] > 0  # the outage was felt, and answered
    wait_for(lambda: suite.get("/health").status_code == 200, timeout=30)


def start_broker() -> None:
    for _ in range(5):
        try:
            rabbitmqctl("start_app", timeout=120)
            rabbitmqctl("await_startup", timeout=120)
            return
        except Exception:
            time.sleep(2)
    raise AssertionError("RabbitMQ did not start again: run `rabbitmqctl start_app`")


def pg_cluster(action: str) -> None:
    (version,) = [p.name for p in Path("/etc/postgresql").iterdir()]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_postgresql_restarted_under_traffic(patient_retries, suite):
    traffic = Traffic(suite.as_role("agent", "front_office"))
    marks = {}

    def restart():
        eventlet.sleep(1.5)
        marks["down"] = time.monotonic()
        try:
            pg_cluster("restart")
        finally:
            marks["up"] = time.monotonic()
            ensure_postgresql()
        eventlet.sleep(6)

    traffic.run(workers=4, faults=restart)
    during = Counter(a.status for a in traffic.answers)
    unavailable = [a for a in traffic.answers if a.status == 503]
    window = max(a.at for a in unavailable) - min(a.at for a in unavailable) if unavailable else 0
    print(
        f"\n503 answers over {window:.1f}s around a restart that took {marks['up'] - marks['down']:.1f}s"
    )
    check_books(traffic, "PostgreSQL restarted", during, traffic.recovered_after(marks["up"]))
    # nothing was restarted but PostgreSQL: the same containers answer again
    assert window < 15
    wait_for(lambda: suite.get("/health").status_code == 200, timeout=30)


def ensure_postgresql() -> None:
    for _ in range(10):
        try:
            query("gateway", "select 1")
            return
        except Exception:
            with contextlib.suppress(subprocess.CalledProcessError):
                pg_cluster("start")  # refused when it is already starting: then wait
            time.sleep(1)
    raise AssertionError("PostgreSQL did not come back: run pg_ctlcluster ... main start")
