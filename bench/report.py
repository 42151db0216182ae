"""`bench/results.json` and the table printed at the end of a run."""

import json
import os
from datetime import UTC, datetime

from bench import load, probes, suite
from bench.config import RESULTS, BenchConfig

# The targets on this kind of machine (measured, never asserted by the tests).
BOOKINGS_RATIO_TARGET = 0.10
CALLER_SCREEN_P99_MS = 50
EVENT_P99_MS = 100
# what the event-latency target is about: from a complaint's commit to these
EVENT_ENDS = ("revisit_scheduled", "notification_written")
RSS_GROWTH_LIMIT = 0.10


def facts(cfg: BenchConfig, seconds: float) -> dict:
    """What a run's figures depend on: when, where, how much, with what, at which commit."""
    return {
        "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "guests": cfg.guests,
        "connections": cfg.connections,
        "seconds": seconds,
        "tool": "wrk" if load.wrk_available() else "python",
        "commit": suite.commit(),
    }


def write(results: dict, section: str | None = None) -> None:
    """Write a bench's results; a soak's go under `section`, beside the last bench's."""
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if section is not None:
        results = {**previous, section: results}
    elif "soak" in previous:
        results = {**results, "soak": previous["soak"]}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


def targets(results: dict) -> dict[str, bool]:
    met = {}
    if "bookings" in results:
        met["bookings >= 0.10 x raw inserts"] = (
            results["bookings"]["ratio_to_raw_insert"] >= BOOKINGS_RATIO_TARGET
        )
    if "caller_screen" in results:
        met["caller screen p99 <= 50 ms"] = (
            results["caller_screen"]["p99_ms"] <= CALLER_SCREEN_P99_MS
        )
    if "event_latency" in results:
        met["event latency p99 <= 100 ms"] = all(
            e.get("p99_ms", float("inf")) <= EVENT_P99_MS and not e.get("missing")
            for e in (results["event_latency"][key] for key in EVENT_ENDS)
        )
    if "memory_growth" in results:
        met["no service's RSS grows > 10%"] = not any(
            g["flagged"] for g in results["memory_growth"].values()
        )
    return met


def cpu_ratio(scenario: dict, lightest: dict) -> float | None:
    """How many times the lightest request's CPU (over all processes) one of `scenario`'s
    requests costs: what it does beyond what every request pays, in a figure that, like the
    ratio to raw inserts, means much the same on a faster or slower machine."""
    used = sum(scenario.get("cpu_ms_per_request", {}).values())
    floor = sum(lightest.get("cpu_ms_per_request", {}).values())
    return round(used / floor, 2) if used and floor else None


def table(results: dict) -> str:
    lines = [
        f"hotelcs bench, {results['at']}: {results['cores']} cores, "
        f"{results['guests']:,} guests, {results['connections']} connections, "
        f"{results.get('seconds', '?')} s a scenario ({results.get('tool', '?')})",
        *_priorities(results),
        "",
        f"{'scenario':<40}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}",
    ]
    for key, label in (
        ("room_types", "room types (GET /room-types)"),
        ("bookings", "bookings (POST /reservations)"),
        ("caller_screen", "caller screen (GET /callers/{phone})"),
        ("complaints", "complaint intake (POST /complaints)"),
        ("mixed", "mixed call-centre load"),
    ):
        if key in results:
            r = results[key]
            lines.append(
                f"{label:<40}{r['per_second']:>9.1f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
                f"{r['failed']:>8}"
            )
    if "event_latency" in results:
        lines.append("")
        lines.append(f"{'event latency (complaint committed ->)':<40}{'p50 ms':>9}{'p99 ms':>9}")
        latency = results["event_latency"]
        for label, e in (
            ("revisit scheduled", latency["revisit_scheduled"]),
            ("  of it: delivered to revisits", latency["revisit_legs"]["delivered"]),
            ("  of it: revisits' transaction", latency["revisit_legs"]["handled"]),
            ("notification written", latency["notification_written"]),
        ):
            missing = f"   ({e['missing']} missing)" if e.get("missing") else ""
            lines.append(
                f"{label:<40}{e.get('p50_ms', float('nan')):>9.1f}"
                f"{e.get('p99_ms', float('nan')):>9.1f}{missing}"
            )
    if "raw_insert_per_second" in results:
        lines.append("")
        lines.append(
            f"raw PostgreSQL inserts (pgbench -c1): {results['raw_insert_per_second']:.0f}/s; "
            f"bookings = {results['bookings']['ratio_to_raw_insert']:.2f} x that"
        )
    if results.get("bookings", {}).get("cpu_to_lightest_request"):
        lines.append(
            f"a booking's CPU = {results['bookings']['cpu_to_lightest_request']:.1f} x "
            "the lightest request's (room types)"
        )
    lines.extend(_cpu_table(results))
    if "memory" in results:
        lines.append("")
        lines.append(f"{'RSS MB':<16}{'before':>9}{'after':>9}{'growth':>9}")
        before, after = results["memory"]["before"], results["memory"]["after"]
        for service in before:
            grown = (after.get(service, 0) - before[service]) / before[service]
            flag = "  over 10%" if grown > RSS_GROWTH_LIMIT else ""
            lines.append(
                f"{service:<16}{before[service]:>9.1f}{after.get(service, 0):>9.1f}"
                f"{grown:>8.1%}{flag}"
            )
    met = targets(results)
    if met:
        lines.append("")
        for name, ok in met.items():
            lines.append(f"{'met   ' if ok else 'MISSED'}  {name}")
    return "\n".join(lines)


def _priorities(results: dict) -> list[str]:
    lowered = results.get("cpu_nice")
    if not lowered:
        return []
    return [
        "at a lower CPU priority: "
        + ", ".join(f"{service} (nice {nice})" for service, nice in lowered.items())
    ]


# the servers after the suite's own processes, in the table of CPU per request
_SERVER_ROWS = tuple(probes.SERVERS.values())


def _cpu_table(results: dict) -> list[str]:
    """CPU per request by process, a column per scenario: where a request's cost goes."""
    scenarios = [
        (key, label)
        for key, label in (
            ("room_types", "room types"),
            ("bookings", "bookings"),
            ("caller_screen", "caller"),
            ("complaints", "complaints"),
        )
        if results.get(key, {}).get("cpu_ms_per_request")
    ]
    if not scenarios:
        return []
    processes = sorted(
        {who for key, _ in scenarios for who in results[key]["cpu_ms_per_request"]},
        key=lambda who: (_SERVER_ROWS.index(who) + 1 if who in _SERVER_ROWS else 0, who),
    )
    lines = ["", f"{'CPU ms per request':<20}" + "".join(f"{label:>12}" for _, label in scenarios)]
    for who in (*processes, "total"):
        cells = []
        for key, _ in scenarios:
            cpu = results[key]["cpu_ms_per_request"]
            cells.append(sum(cpu.values()) if who == "total" else cpu.get(who, 0.0))
        lines.append(f"{who:<20}" + "".join(f"{ms:>12.2f}" for ms in cells))
    return lines


def growth(before: dict[str, float], after: dict[str, float]) -> dict:
    return {
        service: {
            "before_mb": before[service],
            "after_mb": after.get(service, 0.0),
            "growth": round((after.get(service, 0.0) - before[service]) / before[service], 3),
            "flagged": (after.get(service, 0.0) - before[service]) / before[service]
            > RSS_GROWTH_LIMIT,
        }
        for service in before
    }
