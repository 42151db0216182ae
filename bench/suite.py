"""The bench's own suite: provisioned on its own databases and vhost, started as `make run`
starts it (honcho, the Procfile), its processes found for their memory, stopped at the end."""

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from bench import probes, seed
from bench.config import ROOT, BenchConfig
from servicekit import migrations, settings

LOG = Path(os.environ.get("TMPDIR", "/tmp")) / "hotelcs-bench-suite.log"
_SERVICE_IN_CMDLINE = re.compile(r"(?:services\.(\w+)\.service|(gateway)\.service):")


def commit() -> str:
    """The commit the suite runs from (with `+` when the work tree differs from it)."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT).returncode != 0
    return head + ("+" if dirty else "")


def create_vhost(vhost: str) -> None:
    """The bench's own RabbitMQ virtual host, so a suite on `/` never takes its messages."""
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        capture_output=True,
        check=True,
    )


def drop_databases(cfg: BenchConfig) -> None:
    admin = create_engine(f"{settings.database_server()}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for owner in migrations.OWNERS:
            conn.execute(text(f'drop database if exists "{cfg.prefix}_{owner}" with (force)'))
    admin.dispose()


def provision(cfg: BenchConfig) -> None:
    """What `make run` does first: create and migrate the databases, declare the bus."""
    subprocess.run(
        [str(ROOT / ".venv/bin/python"), "-m", "servicekit.provision"],
        cwd=ROOT,
        env=cfg.suite_env(),
        check=True,
    )


# reused data is seeded afresh once a night to come is this full
REUSE_WHILE_NIGHTS_BELOW = 0.8


def prepare(cfg: BenchConfig) -> dict:
    """Databases, vhost and data ready for a run; what was seeded and how long it took."""
    create_vhost(cfg.vhost)
    if cfg.reuse_data and _seeded(cfg) == cfg.guests:
        # every run's bookings stay in the data: once nights fill up, bookings would be
        # refused (409) and the bench would measure that
        fullest = fullest_coming_night(cfg.database_url("reservations"))
        if fullest < REUSE_WHILE_NIGHTS_BELOW:
            provision(cfg)
            vacuum(cfg)
            return {"guests": cfg.guests, "reused": True}
        print(f"a coming night is {fullest:.0%} booked: seeding afresh", flush=True)
    drop_databases(cfg)
    provision(cfg)
    started = time.monotonic()
    seeded = seed.seed(cfg)
    return {**seeded, "seconds": round(time.monotonic() - started, 1)}


def fullest_coming_night(database_url: str) -> float:
    """How full (0 to 1) the fullest night to come of any room type is."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text(
                    "select coalesce(max(booked::float / total), 0) from room_nights "
                    "where night >= current_date and total > 0"
                )
            ).scalar_one()
    finally:
        engine.dispose()


def vacuum(cfg: BenchConfig) -> None:
    """What autovacuum does between runs, where it may be off (this machine's is): the dead
    rows earlier runs left cleared and the planner's statistics fresh, so that a run on
    reused data measures the suite, not how many runs came before it."""
    for owner in migrations.OWNERS:
        engine = create_engine(cfg.database_url(owner), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("vacuum (analyze)"))
        engine.dispose()


def _seeded(cfg: BenchConfig) -> int:
    try:
        return seed.seeded_guests(cfg)
    except Exception:  # no database or no table yet: nothing to reuse
        return 0


@contextmanager
def running(cfg: BenchConfig) -> Iterator["Suite"]:
    """The bench's suite, started and healthy, stopped when the block ends."""
    suite = Suite(cfg)
    try:
        suite.start()
        yield suite
    finally:
        suite.stop()


class Suite:
    """`make run` in the background, in its own process group."""

    def __init__(self, cfg: BenchConfig):
        self.cfg = cfg
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> None:
        log = LOG.open("w")
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=self.cfg.suite_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"the suite stopped while starting; see {LOG}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the suite was not healthy after {timeout}s; see {LOG}")
            time.sleep(0.5)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.cfg.gateway}/health", timeout=2) as answer:
                return json.load(answer).get("status") == "ok"
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def token(self) -> str:
        """A token of the first admin, whom `make run` creates."""
        body = json.dumps(
            {"username": "admin", "password": self.cfg.suite_env()["HOTELCS_ADMIN_PASSWORD"]}
        ).encode()
        request = urllib.request.Request(
            f"{self.cfg.gateway}/auth/token",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)["access_token"]

    def processes(self) -> dict[str, list[int]]:
        """The suite's nameko processes by service ("gateway", "guests", ...)."""
        found: dict[str, list[int]] = {}
        for pid in _descendants(self.process.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            match = _SERVICE_IN_CMDLINE.search(cmdline)
            # honcho runs each command through a shell: count the python, not the shell
            if match and "python" in cmdline.split(" ", 1)[0]:
                found.setdefault(match.group(1) or match.group(2), []).append(pid)
        return found

    def stop(self, timeout: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(probes.stat_fields(stat)[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found
