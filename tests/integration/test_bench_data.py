"""The bench's reused data, read on a real reservations database: a run reseeds once a
night to come is nearly full, as every earlier run's bookings stay in it. And the CPU
priorities a run reports, read from real processes."""

import os
import subprocess
import sys
from datetime import date, timedelta

from sqlalchemy import create_engine, text

from bench import probes
from bench.suite import fullest_coming_night
from servicekit import settings


def test_the_fullest_coming_night_is_read_from_the_inventory(clean_databases):
    url = settings.database_url("reservations")
    assert fullest_coming_night(url) == 0  # nothing booked yet
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into room_types (code, name, price, currency, rooms) "
                "values ('double', 'Double', 100, 'EUR', 10)"
            )
        )
        today = date.today()
        for night, booked in (
            (today - timedelta(days=1), 10),  # past: never booked again
            (today, 4),
            (today + timedelta(days=30), 9),
        ):
            conn.execute(
                text(
                    "insert into room_nights (room_type_id, night, total, booked) "
                    "select id, :night, 10, :booked from room_types"
                ),
                {"night": night, "booked": booked},
            )
    engine.dispose()
    assert fullest_coming_night(url) == 0.9


def test_the_services_at_a_lower_cpu_priority_are_read_from_their_processes():
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    lowered = subprocess.Popen(
        [sys.executable, "-c", "import os, time; os.nice(4); print(flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
    )
    try:
        lowered.stdout.readline()  # it has lowered itself
        found = probes.cpu_priorities({"complaints": [lowered.pid], "guests": [os.getpid()]})
    finally:
        lowered.kill()
        lowered.communicate()

    assert found == {"complaints": min(ours + 4, 19), **({"guests": ours} if ours else {})}
