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

from tests.reliability.faults import Traffic, check_books, query, rabbitmqctl
from tests.support import wait_for

pytestmark = pytest.mark.faults

OUTAGE = 6.0


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
    check_books(traffic, f"broker stopped {OUTAGE:.0f}s", during, _recovered(traffic, marks))
    assert during[503] > 0  # the outage was felt, and answered
    wait_for(lambda: suite.get("/health").status_code == 200, timeout=30)


def _recovered(traffic: Traffic, marks: dict) -> str:
    return f"; first success {traffic.recovered_after(marks['up']):.1f}s after it ended"


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
    check_books(traffic, "PostgreSQL restarted", during, _recovered(traffic, marks))
    # nothing was restarted but PostgreSQL: the same containers answered again, during the
    # traffic, a request sent after the restart (how soon depends on the machine: printed)
    assert traffic.recovered_after(marks["up"]) < float("inf")
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
