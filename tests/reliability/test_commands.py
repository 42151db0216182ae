"""A command the gateway gave up on (503) must never turn into a second copy later: the
Idempotency-Key travels with the command to the service, and the request message expires
when the gateway stops waiting, so a service that was down does not act on it afterwards."""

import time

import eventlet
from kombu import Connection
from nameko import config
from nameko.testing.utils import get_container
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, text

from servicekit import settings
from tests.reliability.faults import drop_connections, new_phone, query, rabbitmqctl, vhost
from tests.support import Api, every_service, wait_for


def guests_with(phone: str) -> int:
    return query("guests", "select count(*) from guests where phone = :p", p=phone)[0][0]


def timed_post(api: Api, body: dict, key: str) -> tuple[int, dict, float]:
    started = time.monotonic()
    answer = api.post("/guests", body, headers={"Idempotency-Key": key})
    return answer.status_code, answer.json(), time.monotonic() - started


def test_a_command_the_gateway_gave_up_on_never_makes_a_second_copy(start_services, suite_config):
    from gateway.service import RPC_TIMEOUT, GatewayService
    from services.guests.service import GuestsService

    start_services(GatewayService)
    guests = start_services(GuestsService)
    api = Api(f"http://127.0.0.1:{suite_config['port']}").as_role("agent", "front_office")

    def registrations() -> float:
        """register_guest workers the guests service has finished, whatever their outcome."""
        return sum(
            REGISTRY.get_sample_value(
                "hotelcs_entrypoint_calls_total",
                {"service": "guests", "entrypoint": "register_guest", "outcome": outcome},
            )
            or 0.0
            for outcome in ("ok", "rejected", "error")
        )

    # 1. The guests service is slow (its database is locked): the gateway answers 503 at
    # its timeout, the client retries at once with the same key, the service then finishes.
    finished_before = registrations()
    body = {"name": "Slow Lane", "phone": new_phone(), "category": "individual"}
    engine = create_engine(settings.database_url("guests"))
    with engine.connect() as locker:
        holding = locker.begin()
        locker.execute(text("lock table daily_serials in share mode"))
        first = timed_post(api, body, "slow-1")
        retry = eventlet.spawn(timed_post, api, body, "slow-1")
        eventlet.sleep(1)
        holding.rollback()
    engine.dispose()
    second = retry.wait()
    third = timed_post(api, body, "slow-1")
    print(
        f"\nslow service: first answer {first[0]} after {first[2]:.1f}s (timeout {RPC_TIMEOUT}s), "
        f"retry {second[0]}, another retry {third[0]}; guests created: "
        f"{guests_with(body['phone'])}"
    )
    assert first[0] == 503 and first[2] < RPC_TIMEOUT + 3, first
    assert second[0] == 201, second
    assert third[0] == 201 and third[1] == second[1]
    # the first call, given up on, has finished too: it made no second copy
    wait_for(lambda: registrations() == finished_before + 3)
    assert guests_with(second[1]["phone"]) == 1

    # 2. The guests service is down: the request waits in its queue only as long as the
    # gateway waits, so when the service is back it does not act on a command nobody awaits.
    guests.stop()
    body = {"name": "Stale Request", "phone": new_phone(), "category": "individual"}
    status, _, seconds = timed_post(api, body, "stale-1")
    assert status == 503 and seconds < RPC_TIMEOUT + 3, (status, seconds)
    eventlet.sleep(1)  # past the request's expiration
    finished_before = registrations()
    restarted = get_container(start_services(GuestsService), GuestsService)
    with Connection(config["AMQP_URI"]) as conn:
        waiting = conn.default_channel.queue_declare("rpc-guests", passive=True).message_count
    # A request sent now queues behind the stale one, had it been kept: once it is answered
    # and no worker is left running, the stale request has been acted on or never will be.
    later = {"name": "Later Caller", "phone": new_phone(), "category": "individual"}
    assert timed_post(api, later, "later-1")[0] == 201
    wait_for(lambda: not restarted._worker_threads)
    stale = query("guests", "select count(*) from guests where name = 'Stale Request'")[0][0]
    assert registrations() == finished_before + 1

    # 3. That call was never answered. Then the broker loses the gateway's reply queue (not
    # durable: a broker restart does this) and its connections: the gateway must go on.
    with Connection(config["AMQP_URI"]) as conn:
        listed = rabbitmqctl("list_queues", "-q", "-p", vhost(), "name")
        for queue in [q for q in listed.split() if q.startswith("rpc.reply-gateway")]:
            conn.default_channel.queue_delete(queue)
    drop_connections()
    wait_for(
        lambda: (lambda a: a if a[0] == 201 else None)(timed_post(api, body, "stale-1")),
        timeout=15,
    )
    after_retry = query("guests", "select count(*) from guests where name = 'Stale Request'")[0][0]
    print(
        f"service down: 503 after {seconds:.1f}s; requests left in its queue {waiting}; "
        f"guests created by the stale request {stale}; after the client's retry {after_retry} "
        f"(answered though the gateway's reply queue was lost with that call unanswered)"
    )
    assert waiting == 0 and stale == 0
    assert after_retry == 1


def test_every_rpc_client_in_the_suite_survives_a_lost_reply_queue():
    from nameko.rpc import ClusterRpc

    from servicekit import rpc

    fragile = [
        f"{service.name}.{attribute}"
        for service in every_service()
        for attribute, value in vars(service).items()
        if isinstance(value, ClusterRpc) and not isinstance(value.reply_listener, rpc.ReplyListener)
    ]
    assert fragile == []


def test_a_call_given_longer_is_a_503_as_soon_as_any_when_its_service_is_down(
    start_services, suite_config
):
    """A job and a revisit's outcome may take the gateway longer than RPC_TIMEOUT; with
    their service down they must not keep the caller waiting for that longer time."""
    from gateway.service import RPC_TIMEOUT, GatewayService
    from services.notifications.service import NotificationsService
    from services.revisits.service import RevisitsService

    start_services(GatewayService)
    notifications = start_services(NotificationsService)
    revisits = start_services(RevisitsService)
    admin = Api(f"http://127.0.0.1:{suite_config['port']}").as_admin()
    job, outcome = "/admin/jobs/birthday-greetings", "/revisits/1/outcome"
    no_call = {"reached": False, "items": []}
    assert admin.post(job, {}).status_code == 200
    assert admin.post(outcome, no_call).status_code == 404
    notifications.stop()
    revisits.stop()

    answers = {}
    for path, body in ((job, {}), (outcome, no_call)):
        started = time.monotonic()
        status = admin.post(path, body).status_code
        answers[path] = (status, round(time.monotonic() - started, 1))
    print(f"\nservices down: {answers} (RPC_TIMEOUT {RPC_TIMEOUT}s)")
    assert all(status == 503 and s < RPC_TIMEOUT + 3 for status, s in answers.values()), answers
