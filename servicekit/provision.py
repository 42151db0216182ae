"""Set a machine up for the suite: check the broker and the database, create and migrate
every database, declare the bus, load the default hotel set-up once.

    python -m servicekit.provision          # what `make run` and `make test` do first

It says plainly what is missing when RabbitMQ or PostgreSQL cannot be reached (and stops),
or Redis (and goes on: the gateway's rate limits stay off until it can reach it).
"""

import importlib
import sys

import redis
from kombu import Connection
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session

from servicekit import bus, migrations, settings


def check_broker() -> str | None:
    uri = settings.amqp_uri()
    if not uri.startswith(("amqp://", "amqps://", "pyamqp://")):
        return f"AMQP_URI is not a broker address: write it as {_BROKER_EXAMPLE}."
    try:
        with Connection(uri, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        return (
            f"RabbitMQ cannot be reached at {_safe(uri)} ({exc.__class__.__name__}). "
            "Start it (e.g. `rabbitmq-server -detached`) or set AMQP_URI."
        )
    return None


_BROKER_EXAMPLE = "amqp://guest:guest@127.0.0.1:5672/"


def check_redis() -> str | None:
    client = redis.Redis.from_url(settings.redis_url(), socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        where = client.connection_pool.connection_kwargs
        return (
            f"Redis cannot be reached at {where.get('host')}:{where.get('port')} "
            f"({exc.__class__.__name__}): the gateway's rate limits are off until it can be. "
            "Start it (e.g. `redis-server --daemonize yes`) or set REDIS_URL."
        )
    return None


def check_database() -> str | None:
    try:
        url = make_url(settings.database_url("gateway")).set(database="postgres")
        engine = create_engine(url, connect_args={"connect_timeout": 3}, hide_parameters=True)
    except (ArgumentError, ImportError) as exc:
        # a mistake in the setting, not a server down: say which, not "start PostgreSQL"
        return (
            f"DATABASE_SERVER (or an <OWNER>_DATABASE_URL) is not an address this suite "
            f"can use ({exc.__class__.__name__}): write it as {settings.DEFAULT_PG}."
        )
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        return (
            f"PostgreSQL cannot be reached at {url.host}:{url.port or 5432} "
            f"({exc.__class__.__name__}). Start it (e.g. `pg_ctlcluster "
            "--skip-systemctl-redirect <version> main start`) or set <OWNER>_DATABASE_URL."
        )
    return None


def load_defaults(owner: str) -> None:
    """Run `<package>.seed.load_defaults(session)` where an owner has one."""
    try:
        seed = importlib.import_module(f"{migrations.OWNERS[owner]}.seed")
    except ModuleNotFoundError:
        return
    engine = create_engine(settings.database_url(owner), hide_parameters=True)
    with Session(engine) as session:
        seed.load_defaults(session)
        session.commit()
    engine.dispose()


def main() -> int:
    try:
        settings.check_hotel()
    except settings.SettingError as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 1
    problems = [p for p in (check_broker(), check_database()) if p]
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    redis_away = check_redis()
    if redis_away:
        print(f"warning: {redis_away}", file=sys.stderr)
    for owner in migrations.OWNERS:
        migrations.upgrade(owner)
        load_defaults(owner)
    bus.declare_topology(settings.amqp_uri())
    print("databases migrated, bus declared, defaults loaded")
    return 0


def _safe(uri: str) -> str:
    parts = make_url(uri.replace("amqp://", "postgresql://", 1))
    return (
        f"amqp://{parts.host}:{parts.port or 5672}{'/' + parts.database if parts.database else '/'}"
    )


if __name__ == "__main__":
    sys.exit(main())
