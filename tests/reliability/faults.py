"""What the fault tests share: breaking the broker of one test (its vhost only), traffic
through the gateway that records every answer, and the books that prove nothing was lost.

"Lost" and "duplicated" are read from the databases, not from the tests' own memory: every
event a service committed sits in its outbox, and every consumer records each event it
handled in its `handled_events` (one row per event id, written with the handler's effects).
"""

import itertools
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

import eventlet
from eventlet.green import subprocess
from nameko import config
from sqlalchemy import create_engine, text

from servicekit import events, settings
from tests.support import Api, wait_for

_phones = itertools.count(1)

ANSWER_WITHIN = 10.0  # seconds: the gateway's RPC timeout (5) and some slack for a busy host


def vhost() -> str:
    """The vhost of the running test (nameko's pytest plugin makes one per test)."""
    return unquote(urlparse(config["AMQP_URI"]).path.lstrip("/")) or "/"


def rabbitmqctl(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=timeout, check=True
    )
    return done.stdout


def drop_connections() -> int:
    """Close every client connection to this test's vhost, as a broker restart would;
    how many there were."""
    listed = rabbitmqctl("list_connections", "-q", "-p", vhost(), "name")
    rabbitmqctl("close_all_connections", "-p", vhost(), "test")
    return len([line for line in listed.splitlines() if line.strip() and line != "name"])


def query(owner: str, sql: str, **params) -> list:
    engine = create_engine(settings.database_url(owner))
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()
    finally:
        engine.dispose()


def new_phone() -> str:
    # Spanish mobiles, distinct per test run and per call
    return f"+3461{uuid.uuid4().int % 10**4:04d}{next(_phones) % 1000:03d}"


@dataclass
class Answer:
    kind: str
    key: str
    status: int
    seconds: float
    body: dict = field(default_factory=dict)
    at: float = 0.0  # time.monotonic() when it was answered


@dataclass
class Traffic:
    """Guests registered and complaints filed, each with an Idempotency-Key, answers kept."""

    api: Api
    answers: list[Answer] = field(default_factory=list)
    bodies: dict[str, dict] = field(default_factory=dict)
    final: dict[str, Answer] = field(default_factory=dict)
    running: bool = True

    def call(self, kind: str, path: str, body: dict, key: str) -> Answer:
        started = time.monotonic()
        try:
            response = self.api.post(path, body, headers={"Idempotency-Key": key})
            status, payload = response.status_code, response.json()
        except Exception as exc:  # a hang or a dropped socket: the test reports it
            status, payload = 0, {"error": repr(exc)}
        answer = Answer(kind, key, status, time.monotonic() - started, payload, time.monotonic())
        self.answers.append(answer)
        return answer

    def guest_body(self, key: str) -> dict:
        return {"name": f"Guest {key[-6:]}", "phone": new_phone(), "category": "individual"}

    def complaint_body(self, guest_id: int) -> dict:
        return {
            "guest_id": guest_id,
            "channel": "phone",
            "category": "noise",
            "description": "Noise from the corridor at night",
        }

    def worker(self, n: int) -> None:
        while self.running:
            key = f"g-{n}-{uuid.uuid4().hex[:10]}"
            body = self.guest_body(key)
            self.bodies[key] = body
            guest = self.call("guest", "/guests", body, key)
            if guest.status == 201:
                ckey = f"c-{key}"
                self.bodies[ckey] = self.complaint_body(guest.body["id"])
                self.call("complaint", "/complaints", self.bodies[ckey], ckey)
            eventlet.sleep(0.05)

    def run(self, workers: int, faults) -> None:
        """Run traffic while `faults()` runs in the foreground; stop it when that returns."""
        pool = eventlet.GreenPool()
        for n in range(workers):
            pool.spawn(self.worker, n)
        try:
            faults()
        finally:
            self.running = False
            pool.waitall()

    def complete(self, timeout: float = 60) -> int:
        """Retry every creating request that was not answered 201, with its first key, until
        it is; a complaint whose guest was only now registered is filed too. How many retried.
        """
        done = {a.key: a for a in self.answers if a.status == 201}
        todo = {a.key for a in self.answers if a.status != 201} - set(done)
        retried = 0
        for key in sorted(todo, key=lambda k: k.startswith("c-")):
            kind, path = (
                ("complaint", "/complaints") if key.startswith("c-") else ("guest", "/guests")
            )
            answer = wait_for(
                lambda k=key, kd=kind, p=path: _ok(self.call(kd, p, self.bodies[k], k)),
                timeout=timeout,
                interval=0.5,
            )
            done[key] = answer
            retried += 1
            if kind == "guest" and f"c-{key}" not in self.bodies:
                ckey = f"c-{key}"
                self.bodies[ckey] = self.complaint_body(answer.body["id"])
                done[ckey] = wait_for(
                    lambda k=ckey: _ok(self.call("complaint", "/complaints", self.bodies[k], k)),
                    timeout=timeout,
                    interval=0.5,
                )
        self.final = done
        return retried

    def recovered_after(self, moment: float) -> float:
        """Seconds from `moment` to the first request answered 201 that was sent after it."""
        firsts = [a.at for a in self.answers if a.status == 201 and a.at - a.seconds >= moment]
        return min(firsts) - moment if firsts else float("inf")

    def keys(self, kind: str) -> set[str]:
        return {k for k in self.bodies if k.startswith("c-" if kind == "complaint" else "g-")}


def _ok(answer: Answer) -> Answer | None:
    return answer if answer.status == 201 else None


def event_books(timeout: float = 60) -> dict[str, int]:
    """Wait until every committed event reached every consumer that subscribes to it; the
    tally. Fails the test with what is missing if that does not happen within `timeout`."""
    state: dict = {}

    def settled() -> bool:
        outboxes = {
            owner: query(owner, "select event_id, type, published_at from outbox")
            for owner in ("gateway", *settings.SERVICES)
        }
        handled = {
            owner: {row.event_id for row in query(owner, "select event_id from handled_events")}
            for owner in events.SUBSCRIPTIONS
        }
        sent = received = lost = unpublished = 0
        missing = []
        for rows in outboxes.values():
            for row in rows:
                unpublished += row.published_at is None
                for consumer, types in events.SUBSCRIPTIONS.items():
                    if row.type in types:
                        sent += 1
                        if row.event_id in handled[consumer]:
                            received += 1
                        else:
                            lost += 1
                            missing.append((consumer, row.type))
        state.update(sent=sent, received=received, lost=lost, unpublished=unpublished)
        state["missing"] = missing[:10]
        return lost == 0 and unpublished == 0

    try:
        wait_for(settled, timeout=timeout, interval=0.5)
    except AssertionError:
        raise AssertionError(f"events still missing after {timeout}s: {state}") from None
    return {k: v for k, v in state.items() if k != "missing"}


def duplicated_side_effects() -> dict[str, int]:
    """Effects that must exist once per cause: more than one is a duplicate."""
    return {
        "guests per phone": _extra("guests", "select phone from guests"),
        "file numbers": _extra("guests", "select file_number from guests"),
        "complaint revisits per complaint": _extra(
            "revisits", "select complaint_id from revisits where complaint_id is not null"
        ),
        "notifications per event and recipient": _extra(
            "notifications",
            "select event_id::text || ' ' || \"to\" from notifications where event_id is not null",
        ),
    }


def _extra(owner: str, sql: str) -> int:
    values = [row[0] for row in query(owner, sql)]
    return len(values) - len(set(values))


def gapless_file_numbers() -> bool:
    """Each day's serials run 001, 002, ... with no hole (guests and groups together)."""
    numbers = [row[0] for row in query("guests", "select file_number from guests")]
    numbers += [row[0] for row in query("guests", "select file_number from groups")]
    by_day: dict[str, list[int]] = {}
    for number in numbers:
        by_day.setdefault(number[:6], []).append(int(number[6:]))
    return all(sorted(serials) == list(range(1, len(serials) + 1)) for serials in by_day.values())


def check_books(traffic: Traffic, fault: str, during: Counter, note: str = "") -> None:
    """After `fault` under `traffic` (`during`: its answers' statuses): every answer was a
    success or a 503, in time; once retried with their keys, every request was done once;
    every event committed reached every consumer; nothing happened twice."""
    slowest = max(a.seconds for a in traffic.answers)
    failed = [a.body for a in traffic.answers if a.status not in (201, 503)][:3]
    retried = traffic.complete(timeout=60)
    books = event_books(timeout=90)
    duplicates = duplicated_side_effects()
    guests = query("guests", "select count(*) from guests")[0][0]
    complaints = query("complaints", "select count(*) from complaints")[0][0]
    print(
        f"\n{fault}: {sum(during.values())} requests during it, answers {dict(during)}, "
        f"slowest {slowest:.1f}s{note}; {retried} retried with their Idempotency-Key; "
        f"events sent {books['sent']}, received {books['received']}, lost {books['lost']}; "
        f"duplicates {duplicates}"
    )
    assert set(during) <= {201, 503}, (during, failed)
    assert slowest < ANSWER_WITHIN
    assert guests == len(traffic.keys("guest"))
    assert complaints == len(traffic.keys("complaint"))
    assert books["lost"] == 0
    assert not any(duplicates.values()), duplicates
    assert gapless_file_numbers()
