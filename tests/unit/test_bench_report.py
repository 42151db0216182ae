"""The bench's arithmetic: event latencies from row timestamps, and the targets' verdicts."""

from datetime import UTC, datetime, timedelta

from bench import probes, report

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def at(ms: float) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def test_latencies_are_from_each_start_to_its_own_end_and_count_the_missing():
    filed = {1: at(0), 2: at(10), 3: at(20)}
    scheduled = {1: at(40), 2: at(110)}  # 3 never arrived
    assert probes._latencies(filed, scheduled) == {
        "count": 2,
        "missing": 1,
        "p50_ms": 100.0,
        "p99_ms": 100.0,
        "max_ms": 100.0,
    }
    assert probes._latencies(filed, {}) == {"count": 0, "missing": 3}


def latency(p99: float, missing: int = 0) -> dict:
    return {"count": 100, "missing": missing, "p50_ms": p99 / 2, "p99_ms": p99, "max_ms": p99}


def verdict(revisit: dict, notification: dict) -> bool:
    results = {
        "event_latency": {
            "complaints": 100,
            "revisit_scheduled": revisit,
            "notification_written": notification,
            "revisit_legs": {"delivered": latency(60), "handled": latency(40)},
        }
    }
    return report.targets(results)["event latency p99 <= 100 ms"]


def test_the_event_latency_target_is_both_ends_within_100_ms_and_none_missing():
    assert verdict(latency(99), latency(100))
    assert not verdict(latency(101), latency(50))
    assert not verdict(latency(50), latency(50, missing=1))


def test_the_table_shows_the_revisits_legs_under_the_revisit():
    results = {
        "at": "2026-11-24 09:00 UTC",
        "cores": 2,
        "guests": 1000,
        "connections": 16,
        "event_latency": {
            "complaints": 100,
            "revisit_scheduled": latency(90),
            "notification_written": latency(80),
            "revisit_legs": {"delivered": latency(60), "handled": latency(30)},
        },
    }
    lines = report.table(results).splitlines()
    revisit = next(i for i, line in enumerate(lines) if line.startswith("revisit scheduled"))
    assert lines[revisit + 1].split()[-2:] == ["30.0", "60.0"]
    assert lines[revisit + 2].split()[-2:] == ["15.0", "30.0"]


def test_cpu_per_request_is_each_process_s_cpu_between_two_readings_over_the_requests():
    before = {("gateway", 10): 10.0, ("postgresql", 20): 4.0, ("postgresql", 21): 30.0}
    after = {
        ("gateway", 10): 12.0,
        ("postgresql", 20): 5.5,  # backend 21 ended in between: its time is not taken off
        ("postgresql", 22): 0.5,  # started since
        ("guests", 11): 0.5,
    }
    assert probes.cpu_per_request(before, after, 1000) == {
        "gateway": 2.0,
        "guests": 0.5,
        "postgresql": 2.0,
    }
    assert probes.cpu_per_request(before, after, 0) == {}


def test_the_cpu_table_has_a_column_per_scenario_the_servers_last_and_a_total():
    results = {
        "at": "2026-11-24 09:00 UTC",
        "cores": 2,
        "guests": 1000,
        "connections": 16,
        "bookings": {
            "per_second": 100.0,
            "p50_ms": 10.0,
            "p99_ms": 20.0,
            "failed": 0,
            "ratio_to_raw_insert": 0.05,
            "cpu_ms_per_request": {"rabbitmq": 2.0, "gateway": 1.5, "postgresql": 3.0},
        },
        "caller_screen": {
            "per_second": 500.0,
            "p50_ms": 5.0,
            "p99_ms": 9.0,
            "failed": 0,
            "cpu_ms_per_request": {"guests": 1.25, "gateway": 1.0},
        },
    }
    lines = report.table(results).splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("CPU ms per request"))
    assert lines[head].split()[-2:] == ["bookings", "caller"]
    rows = [line.split() for line in lines[head + 1 : head + 6]]
    assert rows == [
        ["gateway", "1.50", "1.00"],
        ["guests", "0.00", "1.25"],
        ["postgresql", "3.00", "0.00"],
        ["rabbitmq", "2.00", "0.00"],
        ["total", "6.50", "2.25"],
    ]


def test_the_table_names_the_services_at_a_lower_cpu_priority():
    facts = {"at": "2026-11-24 09:00 UTC", "cores": 2, "guests": 1000, "connections": 16}

    lowered = report.table({**facts, "cpu_nice": {"complaints": 10}}).splitlines()
    as_started = report.table({**facts, "cpu_nice": {}}).splitlines()

    assert lowered[1] == "at a lower CPU priority: complaints (nice 10)"
    assert not any("priority" in line for line in as_started)


def test_a_booking_s_cpu_is_read_against_the_lightest_request_s():
    lightest = {"cpu_ms_per_request": {"gateway": 0.6, "reservations": 0.7, "rabbitmq": 0.3}}
    booking = {"cpu_ms_per_request": {"gateway": 1.0, "reservations": 1.6, "postgresql": 2.2}}

    assert report.cpu_ratio(booking, lightest) == 3.0
    # a scenario not measured (a run stopped early) has no ratio rather than a wrong one
    assert report.cpu_ratio(booking, {}) is None
    assert report.cpu_ratio({}, lightest) is None


def test_the_table_shows_the_lightest_request_first_and_what_a_booking_costs_beside_it():
    row = {"per_second": 900.0, "p50_ms": 16.0, "p99_ms": 60.0, "failed": 0}
    results = {
        "at": "2026-11-25 09:00 UTC",
        "cores": 2,
        "guests": 1000,
        "connections": 16,
        "raw_insert_per_second": 6000.0,
        "room_types": {**row, "cpu_ms_per_request": {"gateway": 0.75, "reservations": 1.25}},
        "bookings": {
            **row,
            "per_second": 300.0,
            "ratio_to_raw_insert": 0.05,
            "cpu_to_lightest_request": 3.5,
            "cpu_ms_per_request": {"gateway": 1.0, "reservations": 6.0},
        },
    }
    lines = report.table(results).splitlines()

    scenarios = [line.split("  ")[0] for line in lines if line.startswith(("room", "book"))]
    assert scenarios == ["room types (GET /room-types)", "bookings (POST /reservations)"]
    assert "a booking's CPU = 3.5 x the lightest request's (room types)" in lines
    head = next(line for line in lines if line.startswith("CPU ms per request"))
    assert head.split()[4:] == ["room", "types", "bookings"]
    total = next(line for line in lines if line.startswith("total")).split()
    assert total == ["total", "2.00", "7.00"]
