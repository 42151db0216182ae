"""`make bench`: seed, start the suite, load it scenario by scenario, print the table.

    BENCH_GUESTS=1000 BENCH_SECONDS=5 make bench     # a quick try
    make bench                                       # 1,000,000 guests, 30 s a scenario

Each scenario runs for `BENCH_SECONDS` at `BENCH_CONNECTIONS` (16) after a short warm-up;
see `bench/__init__.py` for what each module does.
"""

import random
import sys
from datetime import datetime

from bench import load, probes, report, suite
from bench.config import BenchConfig
from servicekit import settings

REQUESTS_PER_SCENARIO = 20_000
WARM_UP_SECONDS = 5


def main() -> int:
    cfg = BenchConfig()
    rng = random.Random(3)
    today = datetime.now(settings.hotel_tz()).date()
    results = report.facts(cfg, cfg.seconds)
    print(f"seeding {cfg.guests:,} guests ...", flush=True)
    results["seeded"] = suite.prepare(cfg)
    print("measuring PostgreSQL's raw insert rate ...", flush=True)
    results["raw_insert_per_second"] = round(probes.raw_insert_rate(cfg), 1)

    def measure(name: str, requests: list) -> dict:
        probes.wait_for_quiet_bus(cfg)
        print(f"{name}: {cfg.seconds} s at {cfg.connections} connections ...", flush=True)
        processes = running.processes()
        cpu_before = probes.cpu_seconds(processes)
        outcome = load.run(cfg.gateway, token, requests, cfg.seconds, cfg.connections)
        # what the requests set going counts too: their events handled, their messages sent
        probes.wait_for_quiet_bus(cfg)
        cpu = probes.cpu_per_request(cpu_before, probes.cpu_seconds(processes), outcome.requests)
        results[name] = {**outcome.as_dict(), "cpu_ms_per_request": cpu}
        return results[name]

    with suite.running(cfg) as running:
        token = running.token()
        results["processes"] = {s: len(p) for s, p in running.processes().items()}
        results["cpu_nice"] = probes.cpu_priorities(running.processes())
        before = probes.memory(running.processes())
        load.run(
            cfg.gateway,
            token,
            load.mixed(2000, cfg.guests, today, rng),
            WARM_UP_SECONDS,
            cfg.connections,
        )
        lightest = measure("room_types", load.room_types(REQUESTS_PER_SCENARIO))
        bookings = measure("bookings", load.bookings(REQUESTS_PER_SCENARIO, cfg.guests, today, rng))
        bookings["ratio_to_raw_insert"] = round(
            bookings["per_second"] / results["raw_insert_per_second"], 3
        )
        bookings["cpu_to_lightest_request"] = report.cpu_ratio(bookings, lightest)
        measure("caller_screen", load.caller_screen(REQUESTS_PER_SCENARIO, cfg.guests, rng))
        since = probes.database_now(cfg)
        measure("complaints", load.complaints(REQUESTS_PER_SCENARIO, cfg.guests, rng))
        results["event_latency"] = probes.event_latency(cfg, since)
        after = probes.memory(running.processes())
        results["memory"] = {"before": before, "after": after}
    results["targets"] = report.targets(results)
    report.write(results)
    print()
    print(report.table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
