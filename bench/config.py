"""The bench's settings, read from `BENCH_*` variables, and the environment its suite runs in.

The bench's suite never touches development or test data: its own databases
(`hotelcs_bench_<owner>`), its own RabbitMQ vhost, its own ports. Rate limits are raised
out of reach rather than turned off, so every request still pays for the limiter.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from servicekit import settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"


def _int(name: str, default: int) -> int:
    return settings.int_setting(name, default)


@dataclass(frozen=True)
class BenchConfig:
    guests: int = field(default_factory=lambda: _int("BENCH_GUESTS", 1_000_000))
    connections: int = field(default_factory=lambda: _int("BENCH_CONNECTIONS", 16))
    # seconds of load for each measured endpoint
    seconds: int = field(default_factory=lambda: _int("BENCH_SECONDS", 30))
    soak_seconds: int = field(default_factory=lambda: _int("SOAK_SECONDS", 600))
    prefix: str = field(default_factory=lambda: settings.env("BENCH_PREFIX", "hotelcs_bench"))
    port: int = field(default_factory=lambda: _int("BENCH_PORT", 8100))
    # the first of five consecutive metrics ports, one per service
    metrics_port: int = field(default_factory=lambda: _int("BENCH_METRICS_PORT", 9201))
    # keep a previous run's seeded databases when they hold as many guests
    reuse_data: bool = field(default_factory=lambda: settings.env("BENCH_REUSE", "0") == "1")

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def vhost(self) -> str:
        return self.prefix

    def database_url(self, owner: str) -> str:
        return f"{settings.database_server()}/{self.prefix}_{owner}"

    def suite_env(self) -> dict[str, str]:
        """The environment `make run` gets from the bench (on top of the caller's)."""
        env = dict(os.environ)
        for owner in ("gateway", *settings.SERVICES):
            env.pop(f"{owner.upper()}_DATABASE_URL", None)
        env.update(
            DATABASE_NAME_PREFIX=self.prefix,
            AMQP_URI=f"{_broker_base()}/{self.vhost}",
            GATEWAY_PORT=str(self.port),
            GATEWAY_ADDRESS="127.0.0.1",
            RATE_LIMIT_PER_TOKEN="1000000",
            RATE_LIMIT_BURST="1000000",
            RATE_LIMIT_PREFIX=f"{self.prefix}:rate",
            HOTELCS_ADMIN_PASSWORD=settings.env("HOTELCS_ADMIN_PASSWORD", "admin"),
        )
        for offset, service in enumerate(settings.SERVICES):
            env[f"{service.upper()}_METRICS_PORT"] = str(self.metrics_port + offset)
        return env


def _broker_base() -> str:
    """`AMQP_URI` without its vhost, e.g. `amqp://guest:guest@127.0.0.1:5672`."""
    uri = settings.amqp_uri()
    scheme, _, rest = uri.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}"
