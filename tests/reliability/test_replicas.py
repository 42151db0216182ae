"""Two processes of every service at once (real `nameko run` processes on this test's vhost
and databases): concurrent registrations keep file numbers gapless, concurrent bookings never
overbook, and the timers of both replicas do each job once."""

import os
import signal
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import eventlet
import pytest
from eventlet.green import subprocess
from kombu import Connection
from nameko import config
from sqlalchemy import create_engine, text

from servicekit import settings
from tests.reliability.faults import (
    duplicated_side_effects,
    event_books,
    gapless_file_numbers,
    new_phone,
    query,
)
from tests.support import Api, wait_for

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "guests": "services.guests.service:GuestsService",
    "reservations": "services.reservations.service:ReservationsService",
    "complaints": "services.complaints.service:ComplaintsService",
    "revisits": "services.revisits.service:RevisitsService",
    "notifications": "services.notifications.service:NotificationsService",
}
REPLICAS = 2


def start_replicas(log_dir: Path) -> list[subprocess.Popen]:
    env = {
        **os.environ,
        "AMQP_URI": config["AMQP_URI"],
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "WARNING",
        # ten processes with 50 workers each could ask PostgreSQL for more connections
        # than its default 100; ten each is plenty for this test's traffic
        "MAX_WORKERS": "10",
        # the timers under test run every second instead of every few
        "HOTEL_HOLD_RELEASE_SECONDS": "1",
        "COMPLAINTS_ESCALATION_SECONDS": "1",
    }
    env.update({f"{name.upper()}_METRICS_PORT": "0" for name in SERVICES})
    nameko = str(Path(sys.executable).parent / "nameko")
    processes = []
    for name, path in SERVICES.items():
        for n in range(REPLICAS):
            log = (log_dir / f"{name}-{n}.log").open("w")
            processes.append(
                subprocess.Popen(
                    [nameko, "run", "--config", str(ROOT / "infra" / "nameko.yaml"), path],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return processes


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def consumers() -> dict[str, int]:
    with Connection(config["AMQP_URI"]) as conn:
        channel = conn.default_channel
        counts = {}
        for name in SERVICES:
            try:
                counts[name] = channel.queue_declare(f"rpc-{name}", passive=True).consumer_count
            except Exception:
                counts[name] = 0
                channel = conn.channel()
        return counts


def concurrently(calls) -> list:
    pool = eventlet.GreenPool(20)
    return list(pool.imap(lambda call: call(), calls))


def test_two_replicas_of_every_service_keep_every_promise(start_services, suite_config, tmp_path):
    from gateway.service import GatewayService

    start_services(GatewayService)
    processes = start_replicas(tmp_path)
    try:
        wait_for(lambda: all(n == REPLICAS for n in consumers().values()), timeout=90, interval=1)
        assert all(p.poll() is None for p in processes)
        base = f"http://127.0.0.1:{suite_config['port']}"
        admin = Api(base).as_admin()
        agents = [Api(base).as_role("agent", "front_office") for _ in range(4)]
        run_the_checks(admin, agents)
    finally:
        stop(processes)
    written = {log.name: log.read_text() for log in tmp_path.glob("*.log")}
    errors = {name: text.count('"level": "ERROR"') for name, text in written.items()}
    assert not any(errors.values()), errors


def run_the_checks(admin: Api, agents: list[Api]) -> None:
    # 1. Concurrent registrations, served by both guests processes.
    registrations = concurrently(
        lambda n=n: agents[n % len(agents)].post(
            "/guests", {"name": f"Replica Guest {n}", "phone": new_phone(), "category": "vip"}
        )
        for n in range(30)
    )
    assert [r.status_code for r in registrations] == [201] * 30
    guest_ids = [r.json()["id"] for r in registrations]
    assert gapless_file_numbers()

    # 2. Concurrent bookings of a room type with 3 rooms: never more than 3 held.
    for code, rooms in (("suite", 3), ("standard", 10)):
        created = admin.post(
            "/room-types",
            {
                "code": code,
                "name": code.title(),
                "price": "100.00",
                "currency": "EUR",
                "rooms": rooms,
            },
        )
        assert created.status_code == 201, created.text
    arrival = (date.today() + timedelta(days=3)).isoformat()
    booking = {"room_type": "suite", "arrival": arrival, "nights": 2, "rooms": 1}
    bookings = concurrently(
        lambda n=n: agents[n % len(agents)].post(
            "/reservations",
            {**booking, "guest_id": guest_ids[n], "payment_method": "cash", "contact": {}},
        )
        for n in range(12)
    )
    outcomes = Counter(b.status_code for b in bookings)
    assert outcomes == {201: 3, 409: 9}, [b.text for b in bookings if b.status_code != 409]

    # 3. Timers in both replicas: holds released once, overdue complaints escalated once.
    arrival_day = datetime.now(settings.hotel_tz()).date()
    later = datetime.now(UTC) + timedelta(minutes=10)
    if later.astimezone(settings.hotel_tz()).date() != arrival_day:
        pytest.skip("too close to midnight for a hold within the arrival day")
    holds = concurrently(
        lambda n=n: agents[n % len(agents)].post(
            "/reservations",
            {
                "guest_id": guest_ids[20 + n],
                "room_type": "standard",
                "arrival": arrival_day.isoformat(),
                "nights": 1,
                "rooms": 1,
                "payment_method": "cash",
                "contact": {},
                "hold_until": later.isoformat(),
            },
        )
        for n in range(5)
    )
    assert [h.status_code for h in holds] == [201] * 5, [h.text for h in holds]
    # their time comes for both replicas' timers at once (moved, not waited for: the
    # bookings themselves may take seconds on a busy machine)
    engine = create_engine(settings.database_url("reservations"))
    with engine.begin() as conn:
        conn.execute(
            text("update reservations set hold_until = now() where id = any(:ids)"),
            {"ids": [h.json()["id"] for h in holds]},
        )
    engine.dispose()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    overdue = concurrently(
        lambda n=n: agents[0].post(
            "/complaints",
            {
                "guest_id": guest_ids[n],
                "channel": "phone",
                "category": "noise",
                "description": "Noisy pipes",
                "received_at": yesterday,
            },
        )
        for n in range(3)
    )
    assert [c.status_code for c in overdue] == [201] * 3, [c.text for c in overdue]
    wait_for(lambda: _count("reservations", "reservation_released") == 5, timeout=30)
    wait_for(lambda: _count("complaints", "complaint_escalated") == 3, timeout=30)
    eventlet.sleep(3)  # a few more rounds of both timers: nothing may happen twice
    released, escalated = (
        _count("reservations", "reservation_released"),
        _count("complaints", "complaint_escalated"),
    )
    books = event_books(timeout=60)
    duplicates = duplicated_side_effects()
    print(
        f"\n{REPLICAS} replicas of each service ({consumers()} RPC consumers): 30 concurrent "
        f"registrations, file numbers gapless; 12 concurrent bookings of 3 rooms -> "
        f"{dict(outcomes)}; holds released {released} of 5, complaints escalated {escalated} "
        f"of 3; events sent {books['sent']}, received {books['received']}, lost "
        f"{books['lost']}; duplicates {duplicates}"
    )
    assert released == 5 and escalated == 3
    assert books["lost"] == 0
    assert not any(duplicates.values()), duplicates


def _count(owner: str, event_type: str) -> int:
    return query(owner, "select count(*) from outbox where type = :t", t=event_type)[0][0]
