"""What the bench reads besides HTTP answers: PostgreSQL's raw insert rate on this machine,
event latency from the rows' own timestamps, and the memory and CPU time of each process."""

import os
import re
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import psycopg2
from sqlalchemy.engine import make_url

from bench.config import BenchConfig
from servicekit import settings


def _connect(url: str):
    return psycopg2.connect(url.replace("postgresql+psycopg2", "postgresql"))


# --- raw insert rate ------------------------------------------------------------------


def raw_insert_rate(cfg: BenchConfig, seconds: int = 10) -> float:
    """One-row inserts a second on one connection (`pgbench -c1`), on a scratch table."""
    database = f"{cfg.prefix}_scratch"
    admin = _connect(f"{settings.database_server()}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("select 1 from pg_database where datname = %s", (database,))
        if cur.fetchone() is None:
            cur.execute(f'create database "{database}"')
    admin.close()
    conn = _connect(f"{settings.database_server()}/{database}")
    with conn, conn.cursor() as cur:
        cur.execute(
            "create table if not exists one_row_inserts (id bigserial primary key, "
            "at timestamptz not null default now(), note text not null)"
        )
        cur.execute("truncate one_row_inserts")
    conn.close()
    url = make_url(settings.database_server())
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write("insert into one_row_inserts (note) values ('one row');\n")
    try:
        out = subprocess.run(
            [
                *("pgbench", "-n", "-c1", f"-T{seconds}", "-f", script.name),
                *("-h", url.host or "127.0.0.1", "-p", str(url.port or 5432)),
                *("-U", url.username or "postgres", database),
            ],
            env={**os.environ, **({"PGPASSWORD": url.password} if url.password else {})},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


# --- event latency --------------------------------------------------------------------


def database_now(cfg: BenchConfig) -> datetime:
    conn = _connect(cfg.database_url("complaints"))
    with conn.cursor() as cur:
        cur.execute("select clock_timestamp()")
        now = cur.fetchone()[0]
    conn.close()
    return now


def _rows(
    cfg: BenchConfig, owner: str, query: str, since: datetime, event_type: str | None = None
) -> list[tuple]:
    conn = _connect(cfg.database_url(owner))
    with conn.cursor() as cur:
        cur.execute(query, (since,) if event_type is None else (event_type, since))
        rows = cur.fetchall()
    conn.close()
    return rows


def event_latency(cfg: BenchConfig, since: datetime, wait: float = 30) -> dict:
    """From each complaint's commit since `since` to its revisit being scheduled and its
    notification being written, in milliseconds.

    A commit is read from the event's outbox row, written by the last statement before
    COMMIT with the clock of that moment: the complaint's `complaint_filed`, the revisit's
    `revisit_scheduled`. The notification announces nothing until it is sent, so its end
    is its row's time, when its transaction began: a few milliseconds short of its commit.
    Waits up to `wait` seconds for the events still on their way; those that never
    arrive are counted as `missing`.

    The way to the revisit is also split in two legs (`revisit_legs`): to the start of the
    revisits service's transaction that handled the event (its `handled_events` row, whose
    time is the transaction's start, `now()`, though it is written with the COMMIT), and
    that transaction itself, to the revisit's commit.
    """
    by_complaint = (
        "select (envelope->'data'->>'complaint_id')::bigint, created_at from outbox "
        "where type = %s and created_at >= %s"
    )
    complaints = _rows(
        cfg,
        "complaints",
        "select event_id::text, (envelope->'data'->>'complaint_id')::bigint, created_at "
        "from outbox where type = %s and created_at >= %s",
        since,
        "complaint_filed",
    )
    filed = {complaint_id: at for _, complaint_id, at in complaints}
    complaint_of = {event_id: complaint_id for event_id, complaint_id, _ in complaints}
    deadline = time.monotonic() + wait
    while True:
        revisits = dict(_rows(cfg, "revisits", by_complaint, since, "revisit_scheduled"))
        notices = {
            int(ref.removeprefix("complaint:")): at
            for ref, at in _rows(
                cfg,
                "notifications",
                "select ref, created_at from notifications "
                "where kind = 'complaint_received' and created_at >= %s",
                since,
            )
        }
        if (len(revisits) >= len(filed) and len(notices) >= len(filed)) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(1)
    handled = {
        complaint_of[event_id]: at
        for event_id, at in _rows(
            cfg,
            "revisits",
            "select event_id::text, handled_at from handled_events "
            "where type = %s and handled_at >= %s",
            since,
            "complaint_filed",
        )
        if event_id in complaint_of
    }
    return {
        "complaints": len(filed),
        "revisit_scheduled": _latencies(filed, revisits),
        "notification_written": _latencies(filed, notices),
        "revisit_legs": {
            "delivered": _latencies(filed, handled),
            "handled": _latencies(handled, revisits),
        },
    }


def _latencies(filed: dict, effects: dict) -> dict:
    millis = sorted(
        (effects[cid] - at).total_seconds() * 1000 for cid, at in filed.items() if cid in effects
    )
    if not millis:
        return {"count": 0, "missing": len(filed)}
    return {
        "count": len(millis),
        "missing": len(filed) - len(millis),
        "p50_ms": round(percentile(millis, 0.50), 1),
        "p99_ms": round(percentile(millis, 0.99), 1),
        "max_ms": round(millis[-1], 1),
    }


def percentile(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


# --- the bus -------------------------------------------------------------------------


def wait_for_quiet_bus(cfg: BenchConfig, timeout: float = 120) -> float:
    """Wait until no message waits in the bench's vhost (the last scenario's events are
    all handled), so one scenario's backlog is not the next one's load; seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        listed = subprocess.run(
            [
                *("rabbitmqctl", "-q", "list_queues", "-p", cfg.vhost),
                *("--no-table-headers", "name", "messages"),
            ],
            capture_output=True,
            text=True,
        ).stdout.split()
        waiting = sum(
            int(count)
            for name, count in zip(listed[::2], listed[1::2], strict=False)
            if count.isdigit() and not name.endswith(".dead")
        )
        if waiting == 0:
            break
        time.sleep(1)
    return round(time.monotonic() - started, 1)


# --- memory ---------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def memory(processes: dict[str, list[int]]) -> dict[str, float]:
    """Each service's resident memory in MB (all its processes together)."""
    return {
        service: round(sum(rss_mb(pid) for pid in pids), 1)
        for service, pids in sorted(processes.items())
    }


# --- CPU ------------------------------------------------------------------------------


def stat_fields(stat: str) -> list[str]:
    """The fields of a `/proc/<pid>/stat` line after the command's name (which may hold
    spaces and parentheses): [1] the parent, [11] and [12] user and system CPU in clock
    ticks, [16] the nice value."""
    return stat.rsplit(")", 1)[1].split()


def cpu_priorities(processes: dict[str, list[int]]) -> dict[str, int]:
    """The services running at a lower CPU priority than they were started at (their nice
    value, as the `Procfile`'s `CPU_NICE` sets it): a run's figures depend on it."""
    lowered = {}
    for service, pids in sorted(processes.items()):
        stat = Path(f"/proc/{pids[0]}/stat").read_text()
        nice = int(stat_fields(stat)[16])
        if nice:
            lowered[service] = nice
    return lowered


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# the servers the suite runs on, by process name; the load generator is left out
SERVERS = {"postgres": "postgresql", "beam.smp": "rabbitmq", "redis-server": "redis"}


def cpu_seconds(processes: dict[str, list[int]]) -> dict[tuple[str, int], float]:
    """CPU time (user and system) used so far by each process of the services and of the
    servers on this machine (PostgreSQL, RabbitMQ, Redis), in seconds, by (owner, pid)."""
    owner = {pid: service for service, pids in processes.items() for pid in pids}
    used: dict[tuple[str, int], float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended while we looked
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        pid = int(entry.name)
        who = owner.get(pid) or SERVERS.get(name)
        if who is not None:
            user, system = stat_fields(stat)[11:13]
            used[who, pid] = (int(user) + int(system)) / _CLOCK_TICKS
    return used


def cpu_per_request(
    before: dict[tuple[str, int], float], after: dict[tuple[str, int], float], requests: int
) -> dict[str, float]:
    """Milliseconds of CPU per request, by owner, between two `cpu_seconds` readings.

    Counted process by process: one that ended in between (a PostgreSQL backend whose
    connection was closed) takes its CPU time with it, and summing owners' totals would
    subtract all it had used before from what the others used meanwhile."""
    if not requests:
        return {}
    used: dict[str, float] = {}
    for (who, pid), seconds in after.items():
        used[who] = used.get(who, 0.0) + seconds - before.get((who, pid), 0.0)
    return {who: round(used[who] * 1000 / requests, 2) for who in sorted(used)}
