"""The broker drops every connection while guests are registered and complaints filed
through the gateway: every request is answered within seconds, nothing is lost, nothing
happens twice. Only this test's vhost is touched."""

from collections import Counter

import eventlet

from tests.reliability.faults import Traffic, check_books, drop_connections
from tests.support import wait_for


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
    check_books(
        traffic, f"broker connections dropped {drops} times", during, f" ({sum(closed)} closed)"
    )
    assert all(closed), closed
    assert during[201] > 0
    # and the suite is whole again, with nothing restarted
    wait_for(lambda: suite.get("/health").status_code == 200, timeout=15)
