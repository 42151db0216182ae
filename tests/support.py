"""What tests share: the test databases, an HTTP client for the gateway, waiting for
eventual consistency. Fixtures that use these live in `tests/conftest.py`."""

import itertools
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests
from kombu import Connection
from nameko import config
from sqlalchemy import create_engine, text

from servicekit import bus, migrations, settings

OWNERS = tuple(migrations.OWNERS)
# Separate prefixes let several test runs share one PostgreSQL without stepping on each other.
TEST_DB_PREFIX = settings.env("HOTELCS_TEST_DB_PREFIX", "hotelcs_test")


def use_test_databases() -> None:
    """Point every owner at its test database (before any service reads the setting)."""
    import os

    os.environ["DATABASE_NAME_PREFIX"] = TEST_DB_PREFIX
    for owner in OWNERS:
        os.environ.pop(f"{owner.upper()}_DATABASE_URL", None)


def recreate_test_databases() -> None:
    admin = create_engine(f"{settings.database_server()}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for owner in OWNERS:
            name = f"{TEST_DB_PREFIX}_{owner}"
            conn.execute(text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()
    for owner in OWNERS:
        migrations.upgrade(owner)


def truncate_all() -> None:
    """Empty every table of every test database (but alembic's), ids back to 1."""
    for owner in OWNERS:
        engine = create_engine(settings.database_url(owner))
        with engine.begin() as conn:
            tables = conn.execute(
                text(
                    "select tablename from pg_tables where schemaname = 'public' "
                    "and tablename <> 'alembic_version'"
                )
            ).scalars()
            names = ", ".join(f'"{t}"' for t in tables)
            if names:
                conn.execute(text(f"truncate {names} restart identity cascade"))
        engine.dispose()


def publish(*envelopes: dict) -> None:
    """Put events on the test's bus as their owner's relay would: each on its source's
    exchange, routed by its type, persistent."""
    with Connection(config["AMQP_URI"]) as conn:
        producer = conn.Producer()
        for body in envelopes:
            exchange = bus.source_exchange(body["source"])
            producer.publish(
                body,
                exchange=exchange,
                routing_key=body["type"],
                serializer="json",
                delivery_mode=2,
                declare=[exchange],
            )


def every_service() -> tuple[type, ...]:
    """The gateway and every service class, as `make run` starts them (imported when asked:
    their modules read settings as they load, after the tests have set theirs)."""
    from gateway.service import GatewayService
    from services.complaints.service import ComplaintsService
    from services.guests.service import GuestsService
    from services.notifications.service import NotificationsService
    from services.reservations.service import ReservationsService
    from services.revisits.service import RevisitsService

    return (
        GatewayService,
        GuestsService,
        ReservationsService,
        ComplaintsService,
        RevisitsService,
        NotificationsService,
    )


def wait_for(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout}s: {check}")
        time.sleep(interval)


_usernames = itertools.count(1)


class Api:
    """The gateway over real HTTP, as a front-end app uses it.

    `api.post("/guests", {...})` returns the `requests.Response`; `api.as_role("manager",
    "housekeeping")` gives a client with a fresh staff member's token.
    """

    def __init__(self, base_url: str, token: str | None = None, staff: dict | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.staff = staff
        self.http = requests.Session()

    def request(self, method: str, path: str, json: Any = None, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        return self.http.request(
            method, self.base_url + path, json=json, headers=headers, timeout=30, **kwargs
        )

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs) -> requests.Response:
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs) -> requests.Response:
        return self.request("PATCH", path, json=json, **kwargs)

    def login(self, username: str, password: str) -> "Api":
        answer = self.post("/auth/token", {"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        return Api(self.base_url, answer.json()["access_token"], {"username": username})

    def as_admin(self) -> "Api":
        return self.login("admin", "admin")

    def as_role(self, role: str, department: str | None = None, **extra) -> "Api":
        """A client logged in as a new staff member with `role` (created by the admin)."""
        username = f"{role}{next(_usernames)}-{uuid.uuid4().hex[:6]}"
        body = {
            "username": username,
            "password": "password-123",
            "name": f"{role.title()} {username}",
            "role": role,
            **extra,
        }
        if department:
            body["department"] = department
        created = self.as_admin().post("/staff", body)
        assert created.status_code == 201, created.text
        client = self.login(username, "password-123")
        client.staff = created.json()
        return client

    def anonymous(self) -> "Api":
        return Api(self.base_url)
