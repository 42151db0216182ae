"""`make soak`: ten minutes (`SOAK_SECONDS`) of mixed call-centre load, and how much each
service's memory grew over them (more than 10% is flagged).

Memory is first read after a warm-up (pools filled, caches loaded), then every 30 s while
the load runs; `bench/results.json` keeps the samples under `soak`.
"""

import random
import sys
import threading
from datetime import datetime

from bench import load, probes, report, suite
from bench.config import BenchConfig
from servicekit import settings

WARM_UP_SECONDS = 30
SAMPLE_SECONDS = 30


def main() -> int:
    cfg = BenchConfig()
    rng = random.Random(4)
    today = datetime.now(settings.hotel_tz()).date()
    results = report.facts(cfg, cfg.soak_seconds)
    print(f"seeding {cfg.guests:,} guests ...", flush=True)
    results["seeded"] = suite.prepare(cfg)
    requests = load.mixed(100_000, cfg.guests, today, rng)
    with suite.running(cfg) as running:
        token = running.token()
        results["cpu_nice"] = probes.cpu_priorities(running.processes())
        load.run(cfg.gateway, token, requests, WARM_UP_SECONDS, cfg.connections)
        before = probes.memory(running.processes())
        samples = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(SAMPLE_SECONDS):
                samples.append(probes.memory(running.processes()))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        print(f"mixed load: {cfg.soak_seconds} s at {cfg.connections} connections ...", flush=True)
        mixed = load.run(cfg.gateway, token, requests, cfg.soak_seconds, cfg.connections)
        done.set()
        sampler.join()
        after = probes.memory(running.processes())
    results["mixed"] = mixed.as_dict()
    results["memory"] = {"before": before, "after": after, "samples": samples}
    results["memory_growth"] = report.growth(before, after)
    results["targets"] = report.targets(results)
    report.write(results, section="soak")
    print()
    print(report.table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
