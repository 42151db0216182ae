"""PostgreSQL drops every connection of this test's databases while requests flow (what a
restart does to them, without stopping the server others share): answers are successes or
503, never 500 and never a hang; pooled connections recover with no service restarted; no
event is lost and nothing happens twice."""

import time
from collections import Counter
from contextlib import contextmanager

import eventlet
from sqlalchemy import create_engine, text

from servicekit import settings
from tests.reliability.faults import ANSWER_WITHIN, Traffic, check_books, query
from tests.support import TEST_DB_PREFIX, wait_for


def drop_database_connections() -> int:
    """Terminate every server process serving one of this test run's databases."""
    rows = query(
        "gateway",
        "select pg_terminate_backend(pid) from pg_stat_activity "
        "where datname like :prefix and pid <> pg_backend_pid()",
        prefix=f"{TEST_DB_PREFIX}\\_%",
    )
    return sum(1 for (done,) in rows if done)


def test_database_connections_dropped_under_traffic(patient_retries, suite):
    assert settings.database_url("guests").endswith(f"/{TEST_DB_PREFIX}_guests")
    traffic = Traffic(suite.as_role("agent", "front_office"))
    dropped = []

    def faults():
        eventlet.sleep(1.5)
        for _ in range(3):
            dropped.append(drop_database_connections())
            eventlet.sleep(1.5)

    traffic.run(workers=4, faults=faults)
    during = Counter(a.status for a in traffic.answers)
    check_books(
        traffic,
        "database connections dropped 3 times",
        during,
        f" ({sum(dropped)} server processes ended)",
    )
    assert all(dropped), dropped
    wait_for(lambda: suite.get("/health").status_code == 200, timeout=15)


# An endpoint of each owner's that needs its database, and its answer when all is well.
NEEDS = {
    "gateway": ("/staff", 200),
    "guests": ("/guests?name=nobody", 200),
    "reservations": ("/room-types", 200),
    "complaints": ("/complaints", 200),
    "revisits": ("/revisits", 200),
    "notifications": ("/notifications", 200),
}


@contextmanager
def refusing_connections(owner: str):
    """The owner's test database refuses every connection, as a server that is restarting
    does, until the block ends."""
    name = f"{TEST_DB_PREFIX}_{owner}"
    admin = create_engine(f"{settings.DEFAULT_PG}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'alter database "{name}" allow_connections false'))
            conn.execute(
                text("select pg_terminate_backend(pid) from pg_stat_activity where datname = :n"),
                {"n": name},
            )
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'alter database "{name}" allow_connections true'))
        admin.dispose()


def test_a_database_that_refuses_connections_is_a_503_then_recovers(suite):
    admin = suite.as_admin()
    answers = {}
    for owner, (path, healthy) in NEEDS.items():
        with refusing_connections(owner):
            started = time.monotonic()
            down = admin.get(path)
            seconds = time.monotonic() - started
        back = wait_for(lambda p=path, h=healthy: (a := admin.get(p)).status_code == h and a)
        answers[owner] = (down.status_code, round(seconds, 1), back.status_code)
    print(f"\na database refusing connections, per owner: (answer, seconds, then) {answers}")
    assert all(down == 503 and seconds < ANSWER_WITHIN for down, seconds, _ in answers.values())
