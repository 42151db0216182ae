"""The broker drops every connection while guests are registered and complaints filed
through the gateway: every request is answered within seconds, nothing is lost, nothing
happens twice. Only this test's vhost is touched."""

from collections import Counter

import eventlet

from tests.reliability.faults import (
    Traffic,
    drop_connections,
    duplicated_side_effects,
    event_books,
    gapless_file_numbers,
    query,
)
from tests.support import wait_for

ANSWER_WITHIN = 10.0  # seconds: the gateway's RPC timeout (5) and some slack for a busy host


def test_dropped_connections_lose_nothing_and_hang_nothing(patient_retries, suite):
    traffic = Traffic(suite.as_role("agent", "front_office"))
    drops, closed = 3, []

    def faults():
        eventlet.sleep(1.5)
        for _ in range(drops):
            closed.append(drop_connections())
            eventlet.sleep(1.5)

    traffic.run(workers=4, faults=faults)
    during = Counter(a.status for a in traffic.answers)
    slowest = max(a.seconds for a in traffic.answers)
    retried = traffic.complete()
    books = event_books(timeout=60)
    print(f"\nanswers during the faults: {dict(during)}, slowest {slowest:.1f}s, {retried} retried")
    duplicates = duplicated_side_effects()

    guests = query("guests", "select count(*) from guests")[0][0]
    complaints = query("complaints", "select count(*) from complaints")[0][0]
    print(
        f"\nbroker connections dropped {drops} times ({sum(closed)} connections closed) "
        f"under traffic: {len(traffic.answers)} "
        f"requests, answers {dict(during)}, slowest {slowest:.1f}s; {retried} retried "
        f"with their Idempotency-Key; events sent {books['sent']}, received "
        f"{books['received']}, lost {books['lost']}; duplicates {duplicates}"
    )
    assert all(closed), closed
    assert set(during) <= {201, 503}, during
    assert during[201] > 0 and slowest < ANSWER_WITHIN
    assert guests == len(traffic.keys("guest"))
    assert complaints == len(traffic.keys("complaint"))
    assert books["lost"] == 0
    assert not any(duplicates.values()), duplicates
    assert gapless_file_numbers()
    # and the suite is whole again, with nothing restarted
    wait_for(lambda: suite.get("/health").status_code == 200, timeout=15)
