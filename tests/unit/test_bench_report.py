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
