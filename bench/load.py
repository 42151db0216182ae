"""HTTP load through the gateway at N connections, and the requests each scenario sends.

Requests are written once, here, as `(method, path, body)`; wrk replays them
(`wrk/replay.lua`), or, where wrk cannot be had, a Python generator keeps the same number
of connections busy with the same requests. Either way the figures are the same:
requests, throughput, latency percentiles, and every answer that was not a success.
"""

import http.client
import json
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

from bench.seed import ROOM_TYPES, phone_of
from servicekit.settings import DEFAULT_COMPLAINT_CATEGORIES

REPLAY = Path(__file__).resolve().parent / "wrk" / "replay.lua"
Request = tuple[str, str, str]


# --- what each scenario sends ---------------------------------------------------------


def bookings(count: int, guests: int, today: date, rng: random.Random) -> list[Request]:
    """Holds for known guests, arrivals spread over the coming year, every room type."""
    codes = [code for code, *_ in ROOM_TYPES]
    requests = []
    for _ in range(count):
        body = {
            "guest_id": rng.randint(1, guests),
            "room_type": rng.choice(codes),
            "arrival": (today + timedelta(days=rng.randint(2, 360))).isoformat(),
            "nights": rng.randint(1, 4),
            "rooms": 1,
            "payment_method": rng.choice(("credit_card", "debit_card", "cash")),
            "channel": "phone",
        }
        requests.append(("POST", "/reservations", json.dumps(body)))
    return requests


def caller_screen(count: int, guests: int, rng: random.Random) -> list[Request]:
    """Known callers, picked at random among every guest on file."""
    return [
        ("GET", f"/callers/{phone_of(rng.randint(1, guests)).replace('+', '%2B')}", "")
        for _ in range(count)
    ]


def room_types(count: int) -> list[Request]:
    """The room types an agent offers, highest price first: the lightest request a signed-in
    caller makes (its token checked, its rate counted, one RPC, one small read), so what it
    costs is what the gateway and a service's machinery cost any request at least."""
    return [("GET", "/room-types", "")] * count


def complaints(count: int, guests: int, rng: random.Random) -> list[Request]:
    """Complaints from known guests, by phone, of every category."""
    categories = list(DEFAULT_COMPLAINT_CATEGORIES)
    requests = []
    for _ in range(count):
        category = rng.choice(categories)
        body = {
            "guest_id": rng.randint(1, guests),
            "channel": "phone",
            "category": category,
            "description": f"The guest reports a {category} problem and asks for it to be fixed.",
        }
        requests.append(("POST", "/complaints", json.dumps(body)))
    return requests


def mixed(count: int, guests: int, today: date, rng: random.Random) -> list[Request]:
    """What a call centre does all day: mostly looking callers up, some bookings and
    complaints."""
    requests = (
        caller_screen(count * 6 // 10, guests, rng)
        + bookings(count * 3 // 10, guests, today, rng)
        + complaints(count // 10, guests, rng)
    )
    rng.shuffle(requests)
    return requests


# --- sending them ---------------------------------------------------------------------


@dataclass
class LoadResult:
    requests: int
    seconds: float
    failed: int  # answers other than 2xx/3xx, and connection errors and timeouts
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    tool: str

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "per_second": round(self.per_second, 1)}


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run(
    gateway: str, token: str, requests: list[Request], seconds: int, connections: int
) -> LoadResult:
    if wrk_available():
        return _wrk(gateway, token, requests, seconds, connections)
    return _python(gateway, token, requests, seconds, connections)


def _wrk(gateway, token, requests, seconds, connections) -> LoadResult:
    threads = min(connections, os.cpu_count() or 1)
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as file:
        file.writelines(f"{m}\t{p}\t{b}\n" for m, p, b in requests)
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(REPLAY),
                gateway,
            ],
            env={
                **os.environ,
                "BENCH_REQUESTS": file.name,
                "BENCH_TOKEN": token,
                "BENCH_THREADS": str(threads),
            },
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(file.name)
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    figures = json.loads(line.removeprefix("BENCH "))
    latency = figures["latency_us"]
    return LoadResult(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        failed=sum(figures["errors"].values()),
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        tool="wrk",
    )


def _python(gateway, token, requests, seconds, connections) -> LoadResult:
    """One thread per connection, each replaying its share of the requests."""
    host, port = gateway.removeprefix("http://").split(":")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    failed = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def connection(offset: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        mine, bad = [], 0
        i = offset
        while time.monotonic() < deadline:
            method, path, body = requests[i % len(requests)]
            i += 1
            started = time.perf_counter()
            try:
                conn.request(method, path, body or None, headers)
                answer = conn.getresponse()
                answer.read()
                bad += answer.status >= 400
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
            failed[0] += bad

    started = time.monotonic()
    workers = [
        threading.Thread(target=connection, args=(n * len(requests) // connections,))
        for n in range(connections)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    latencies.sort()

    def percentile(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else 0
        )

    return LoadResult(
        requests=len(latencies),
        seconds=elapsed,
        failed=failed[0],
        p50_ms=percentile(0.50),
        p90_ms=percentile(0.90),
        p99_ms=percentile(0.99),
        max_ms=latencies[-1] * 1000 if latencies else 0,
        tool="python",
    )
