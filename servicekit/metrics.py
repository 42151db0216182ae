"""Prometheus metrics (RED per entrypoint) and each service's /metrics and /health port.

Labels name services, entrypoints, event types, routes and outcomes; never an id, a phone
or anything else that grows with the data or says who a guest is.
"""

import logging
import time
from weakref import WeakKeyDictionary

import eventlet
from eventlet import wsgi
from kombu import Connection
from nameko import config
from nameko.extensions import DependencyProvider
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from servicekit import settings
from servicekit.rpc import rpc

log = logging.getLogger(__name__)

ENTRYPOINT_CALLS = Counter(
    "hotelcs_entrypoint_calls_total",
    "Entrypoint calls (RPC, event handlers, timers) by outcome: ok, rejected, error.",
    ["service", "entrypoint", "outcome"],
)
ENTRYPOINT_DURATION = Histogram(
    "hotelcs_entrypoint_duration_seconds",
    "How long an entrypoint's worker ran.",
    ["service", "entrypoint"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS_HANDLED = Counter(
    "hotelcs_events_handled_total",
    "Events consumed, by outcome: ok, retried, dead_lettered.",
    ["service", "event_type", "outcome"],
)
OUTBOX_PUBLISHED = Counter(
    "hotelcs_outbox_published_total", "Events the outbox relay published.", ["service"]
)
OUTBOX_FAILURES = Counter(
    "hotelcs_outbox_publish_failures_total",
    "Rounds of the outbox relay that could not publish (broker or database away).",
    ["service"],
)
OUTBOX_LAG = Histogram(
    "hotelcs_outbox_lag_seconds",
    "From an event's commit to its sending to the broker (which confirms it after).",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TURN_LAG = Histogram(
    "hotelcs_green_thread_lag_seconds",
    "How late a green thread asking to wake in a tenth of a second woke: what the process's "
    "share of the CPU and the green threads ahead of it add to every step of its work.",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
JOB_RUNS = Counter("hotelcs_job_items_total", "Items a scheduled job acted on.", ["service", "job"])
DEAD_LETTERS = Gauge(
    "hotelcs_dead_letter_messages", "Messages parked in a dead-letter queue.", ["queue"]
)


# how long /health waits for the broker to answer before saying it does not
BROKER_CHECK_SECONDS = 2.0


class Metrics(DependencyProvider):
    """Counts every worker of the service and serves /metrics and /health on its port.

    `/health` answers 200 `{"status": "ok"}` while the service's database and the broker
    answer, 503 if either does not.
    """

    def __init__(self, owner: str):
        self.owner = owner
        self.port: int | None = None
        self.server = None
        self.started: WeakKeyDictionary = WeakKeyDictionary()

    def setup(self):
        self.port = settings.metrics_port(self.owner)

    def start(self):
        sock = eventlet.listen((settings.metrics_address(), self.port))
        self.port = sock.getsockname()[1]
        self.server = self.container.spawn_managed_thread(
            lambda: wsgi.server(sock, self.wsgi_app, log_output=False, log=log)
        )

    def stop(self):
        if self.server is not None:
            self.server.kill()

    def kill(self):
        self.stop()

    def wsgi_app(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/health":
            ok = self.healthy() and self.broker_answers()
            start_response(
                "200 OK" if ok else "503 Service Unavailable",
                [("Content-Type", "application/json")],
            )
            return [b'{"status": "ok"}' if ok else b'{"status": "degraded"}']
        if path == "/metrics":
            self.refresh_dead_letters()
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [generate_latest()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    def healthy(self) -> bool:
        """The service's databases answer: what the `health` RPC reports (a call that came
        in over the broker needs no other proof of it)."""
        from servicekit.database import Database

        databases = [d for d in self.container.dependencies if isinstance(d, Database)]
        return all(d.ping() for d in databases)

    def broker_answers(self) -> bool:
        """The broker this container consumes from answers: without it the service takes no
        request and no event, however well its database answers."""
        uri = config.get("AMQP_URI") or settings.amqp_uri()
        try:
            with Connection(uri, connect_timeout=BROKER_CHECK_SECONDS) as connection:
                connection.ensure_connection(max_retries=1)
        except Exception:
            return False
        return True

    def refresh_dead_letters(self) -> None:
        from servicekit import bus

        service = self.container.service_name
        # the broker this container consumes from (nameko's config), not a default of its own
        uri = config.get("AMQP_URI") or settings.amqp_uri()
        try:
            counts = bus.dead_letter_counts(uri, consumer=service)
        except Exception:
            return  # the broker being away shows in /health of the gateway, not here
        for queue, count in counts.items():
            DEAD_LETTERS.labels(queue).set(count)

    def worker_setup(self, worker_ctx):
        self.started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self.started.pop(worker_ctx, None)
        entrypoint = worker_ctx.entrypoint.method_name
        service = self.container.service_name
        if exc_info is None:
            outcome = "ok"
        elif isinstance(exc_info[1], worker_ctx.entrypoint.expected_exceptions or ()):
            outcome = "rejected"
        else:
            outcome = "error"
        ENTRYPOINT_CALLS.labels(service, entrypoint, outcome).inc()
        if started is not None:
            ENTRYPOINT_DURATION.labels(service, entrypoint).observe(time.perf_counter() - started)

    def get_dependency(self, worker_ctx):
        return self


class TurnLag(DependencyProvider):
    """Measures, ten times a second, how late the process runs a green thread that asked to
    wake (`hotelcs_green_thread_lag_seconds`): the wait that each step of a worker pays
    after its database or broker answered (its turn for a CPU and behind the process's
    other green threads), which no entrypoint's own duration shows apart. A busy process
    under complaint intake showed p50 3-7 ms and p90 17-22 ms; an idle one 0.15 and 1 ms.

    Example: `turn_lag = TurnLag()` on a service class."""

    INTERVAL = 0.1

    def start(self):
        self.container.spawn_managed_thread(self._watch, identifier="TurnLag")

    def _watch(self) -> None:
        observe = TURN_LAG.labels(self.container.service_name).observe
        while True:
            asked = time.perf_counter()
            eventlet.sleep(self.INTERVAL)
            observe(max(0.0, time.perf_counter() - asked - self.INTERVAL))


class HealthRpc:
    """Mixin for a service class: the `health` RPC that the gateway's /health asks.

    The class must have `metrics = Metrics(<name>)`.
    """

    @rpc
    def health(self) -> dict:
        return {"status": "ok" if self.metrics.healthy() else "degraded"}
