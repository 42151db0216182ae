"""The bus and the outbox, end to end through real RabbitMQ and PostgreSQL.

A stand-in consumer named like a real one (its queues come from SUBSCRIPTIONS) counts
what it handles in that service's own test database.
"""

from datetime import timedelta

import eventlet
import pytest
from amqp.exceptions import ChannelError
from kombu import Connection, Queue
from kombu.exceptions import OperationalError as BrokerError
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, func, select

from gateway.models import KIT as GATEWAY_KIT
from servicekit import bus, outbox, settings
from servicekit.amqp import SettlingConsumer
from servicekit.database import Database
from servicekit.idempotency import handle_each_once
from services.notifications.models import KIT as NOTIFICATIONS_KIT
from tests.support import publish, wait_for

handled: list[str] = []
batches: list[int] = []
failing = {"on": False}


class StaffListener:
    """Stands in for a consuming service: handles `staff_registered` exactly once."""

    name = "notifications"
    db = Database("notifications")

    @bus.subscribe("staff_registered")
    def on_staff_registered(self, events):
        if failing["on"]:
            raise RuntimeError("the handler is broken until someone fixes it")
        _count_and_handle(self.db, events)


def _count_and_handle(db, events) -> None:
    batches.append(len(events))
    handle_each_once(
        db, NOTIFICATIONS_KIT, events, lambda session, event: handled.append(event.data["username"])
    )


@pytest.fixture(autouse=True)
def reset_listener():
    handled.clear()
    batches.clear()
    failing["on"] = False


def handled_count() -> int:
    engine = create_engine(settings.database_url("notifications"))
    with engine.connect() as conn:
        count = conn.execute(
            select(func.count()).select_from(NOTIFICATIONS_KIT.handled_events)
        ).scalar_one()
    engine.dispose()
    return count


def published_envelopes() -> list[dict]:
    engine = create_engine(settings.database_url("gateway"))
    with engine.connect() as conn:
        rows = conn.execute(
            select(GATEWAY_KIT.outbox.c.envelope, GATEWAY_KIT.outbox.c.published_at).order_by(
                GATEWAY_KIT.outbox.c.id
            )
        ).all()
    engine.dispose()
    return rows


def test_a_change_through_the_gateway_reaches_a_consumer_once_even_delivered_twice(
    start_services, suite_config, rabbit_config
):
    from gateway.service import GatewayService
    from tests.support import Api

    start_services(GatewayService, StaffListener)
    api = Api(f"http://127.0.0.1:{suite_config['port']}").as_admin()

    created = api.post(
        "/staff",
        {"username": "marta", "password": "long-enough", "name": "Marta", "role": "agent"},
    )
    assert created.status_code == 201, created.text
    wait_for(lambda: "marta" in handled)

    # The broker redelivers (a lost ack, a consumer restart): the effect must not repeat.
    envelope = next(e for e, _ in published_envelopes() if e["data"]["username"] == "marta")

    delivered_before = sum(batches)
    publish(envelope, envelope)
    # both deliveries reached the handler (each in a batch of its own or together)...
    wait_for(lambda: sum(batches) >= delivered_before + 2)
    # ...and changed nothing
    assert handled.count("marta") == 1
    wait_for(lambda: handled_count() == 2)  # the admin created at start, and marta
    # sent by the worker that committed it; the relay marks it once the broker confirmed
    wait_for(lambda: all(p is not None for _, p in published_envelopes()))


def test_the_relay_keeps_an_event_while_the_broker_cannot_be_reached(
    start_services, suite_config, rabbit_config
):
    from nameko import config

    # The gateway's change commits with its event, but nothing can reach the broker.
    relay = outbox.OutboxRelay("gateway", GATEWAY_KIT)
    relay.engine = create_engine(settings.database_url("gateway"))
    relay.publisher = outbox.ConfirmedPublisher("amqp://guest:guest@127.0.0.1:1/")
    relay.settle = timedelta(0)  # no worker of this relay's will send the event
    session_engine = create_engine(settings.database_url("gateway"))
    from sqlalchemy.orm import Session

    with Session(session_engine) as session:
        outbox.record(
            session,
            GATEWAY_KIT,
            "staff_registered",
            {"staff_id": 99, "username": "late", "name": "Late", "role": "agent"},
        )
        session.commit()
    with pytest.raises(BrokerError):
        relay.publish_batch()
    assert [p for e, p in published_envelopes() if e["data"]["username"] == "late"] == [None]

    # The broker is back: the relay publishes what waited, and the consumer gets it.
    start_services(StaffListener)
    relay.publisher = outbox.ConfirmedPublisher(config["AMQP_URI"])
    assert relay.publish_batch() == 1
    wait_for(lambda: "late" in handled)
    assert all(p is not None for _, p in published_envelopes())


def test_a_failing_handler_is_retried_then_parked_then_replayed(start_services, rabbit_config):
    from nameko import config

    failing["on"] = True
    start_services(StaffListener)
    queue = bus.queue_name("notifications", "staff_registered")
    before = (
        REGISTRY.get_sample_value(
            "hotelcs_events_handled_total",
            {
                "service": "notifications",
                "event_type": "staff_registered",
                "outcome": "dead_lettered",
            },
        )
        or 0.0
    )

    envelope = outbox.events.envelope(
        "staff_registered", {"staff_id": 5, "username": "pepe", "name": "Pepe", "role": "agent"}
    )
    publish(envelope)

    # one first attempt plus one per retry delay, then parked
    wait_for(lambda: bus.dead_letter_counts(config["AMQP_URI"]).get(f"{queue}.dead") == 1)
    assert handled == []

    # The handler counts the parking once the broker took the message, so the queue can show
    # it a moment before the counter does.
    def dead_lettered():
        return REGISTRY.get_sample_value(
            "hotelcs_events_handled_total",
            {
                "service": "notifications",
                "event_type": "staff_registered",
                "outcome": "dead_lettered",
            },
        )

    wait_for(lambda: dead_lettered() == before + 1)

    # Someone fixes the handler and replays what is parked with the documented command:
    # every queue (`make replay-dead-letters`), the retry queues' absent dead letters too
    failing["on"] = False
    assert bus.replay(config["AMQP_URI"]) == 1
    wait_for(lambda: handled == ["pepe"])
    assert bus.dead_letter_counts(config["AMQP_URI"])[f"{queue}.dead"] == 0


def test_other_messages_keep_flowing_past_a_poisoned_one(start_services, rabbit_config):
    from nameko import config

    start_services(StaffListener)
    with Connection(config["AMQP_URI"]) as conn:
        producer = conn.Producer()
        producer.publish(
            {"not": "an envelope"},
            exchange=bus.source_exchange("gateway"),
            routing_key="staff_registered",
            serializer="json",
        )
        producer.publish(
            outbox.events.envelope(
                "staff_registered",
                {"staff_id": 6, "username": "rosa", "name": "Rosa", "role": "agent"},
            ),
            exchange=bus.source_exchange("gateway"),
            routing_key="staff_registered",
            serializer="json",
        )
    wait_for(lambda: handled == ["rosa"])
    queue = bus.queue_name("notifications", "staff_registered")
    wait_for(lambda: bus.dead_letter_counts(config["AMQP_URI"])[f"{queue}.dead"] == 1)


def test_a_backlog_is_handled_in_batches_each_event_once(start_services, rabbit_config):
    from nameko import config

    bus.declare_topology(config["AMQP_URI"])
    envelopes = [
        outbox.events.envelope(
            "staff_registered",
            {"staff_id": n, "username": f"agent-{n}", "name": f"Agent {n}", "role": "agent"},
        )
        for n in range(1, 31)
    ]
    # waiting before the consumer starts, as after a restart; five of them published twice
    publish(*envelopes, *envelopes[:5])
    start_services(StaffListener)

    wait_for(lambda: len(handled) == 30)
    queue = bus.queue_name("notifications", "staff_registered")
    wait_for(lambda: _waiting(config["AMQP_URI"], queue) == 0)
    assert sorted(handled) == sorted(f"agent-{n}" for n in range(1, 31))
    assert sum(batches) == 35  # every delivery reached the handler, duplicates included
    assert max(batches) > 1 and len(batches) < 35, batches


class GatheringStaffListener:
    """The same consumer, keeping a projection: it gathers its events into batches."""

    name = "notifications"
    db = Database("notifications")

    @bus.subscribe("staff_registered", gather=True)
    def on_staff_registered(self, events):
        _count_and_handle(self.db, events)


def test_a_gathering_consumer_takes_events_that_come_spaced_as_one_batch(
    start_services, rabbit_config, monkeypatch
):
    from nameko import config

    monkeypatch.setenv("EVENT_GATHER_SECONDS", "1.0")
    start_services(GatheringStaffListener)
    for n in range(1, 6):  # over 0.2 s, each one alone in the queue when it comes
        publish(
            outbox.events.envelope(
                "staff_registered",
                {"staff_id": n, "username": f"agent-{n}", "name": f"Agent {n}", "role": "agent"},
            )
        )
        eventlet.sleep(0.05)

    wait_for(lambda: len(handled) == 5)
    assert batches == [5]
    queue = bus.queue_name("notifications", "staff_registered")
    wait_for(lambda: _waiting(config["AMQP_URI"], queue) == 0)


class SlowFirstStaffListener:
    """The same consumer, whose batch with the first event finishes after every other."""

    name = "notifications"
    db = Database("notifications")

    @bus.subscribe("staff_registered")
    def on_staff_registered(self, events):
        if any(event.data["username"] == "agent-1" for event in events):
            others = PUBLISHED - len(events)
            with eventlet.Timeout(5, False):
                while len(handled) < others:
                    eventlet.sleep(0.01)
            eventlet.sleep(0.1)  # and their results settled
        _count_and_handle(self.db, events)


# one more than a batch: the first batch's events, and at most a batch's worth behind them
PUBLISHED = bus.BATCH_SIZE + 1


def test_batches_finishing_out_of_order_are_acknowledged_by_one_ack(
    start_services, rabbit_config, monkeypatch
):
    from nameko import config

    sent = []
    ack_tag = SettlingConsumer.ack_tag

    def counted(consumer, channel, delivery_tag, multiple):
        sent.append((consumer, multiple))
        ack_tag(consumer, channel, delivery_tag, multiple)

    monkeypatch.setattr(SettlingConsumer, "ack_tag", counted)
    bus.declare_topology(config["AMQP_URI"])
    publish(
        *[
            outbox.events.envelope(
                "staff_registered",
                {"staff_id": n, "username": f"agent-{n}", "name": f"Agent {n}", "role": "agent"},
            )
            for n in range(1, PUBLISHED + 1)
        ]
    )
    runner = start_services(SlowFirstStaffListener)
    [container] = runner.containers
    [subscriber] = [e for e in container.entrypoints if isinstance(e, bus.EventSubscriber)]
    wait_for(lambda: len(handled) == PUBLISHED)
    assert len(batches) > 1, batches
    # the batches after the first waited for it, then one ack covered them all
    wait_for(lambda: [m for c, m in sent if c is subscriber.consumer] == [True])
    # every delivery was acknowledged: none comes back when the consumer goes
    runner.stop()
    queue = bus.queue_name("notifications", "staff_registered")
    assert _waiting(config["AMQP_URI"], queue) == 0


def _waiting(amqp_uri: str, queue: str) -> int:
    with Connection(amqp_uri) as conn:
        _, count, _ = conn.default_channel.queue_declare(queue, durable=True, passive=True)
    return count


def test_only_a_committed_transaction_writes_its_events(clean_databases):
    from sqlalchemy.orm import Session

    engine = create_engine(settings.database_url("gateway"))

    def staff(username: str) -> dict:
        return {"staff_id": 7, "username": username, "name": username.title(), "role": "agent"}

    with Session(engine) as session:
        outbox.record(session, GATEWAY_KIT, "staff_updated", staff("rolled-back"))
        session.rollback()
        # the next transaction of the same session does not inherit them
        outbox.record(session, GATEWAY_KIT, "staff_updated", staff("committed"))
        session.commit()
    with Session(engine) as session:
        outbox.record(session, GATEWAY_KIT, "staff_updated", staff("closed"))
    engine.dispose()

    assert [e["data"]["username"] for e, _ in published_envelopes()] == ["committed"]


def test_a_parked_message_stays_parked_when_its_queue_is_not_there(rabbit_config):
    from nameko import config

    with Connection(config["AMQP_URI"]) as conn:
        channel = conn.default_channel
        # parked by a consumer whose queue has since gone (or a mistyped queue's name)
        Queue("gone.staff_registered.dead", durable=True)(channel).declare()
        conn.Producer(channel=channel).publish(
            {"event_id": "parked"}, exchange="", routing_key="gone.staff_registered.dead"
        )
    with pytest.raises(ChannelError):
        bus.replay(config["AMQP_URI"], "gone.staff_registered")
    with Connection(config["AMQP_URI"]) as conn:
        _, waiting, _ = conn.default_channel.queue_declare(
            "gone.staff_registered.dead", durable=True, passive=True
        )
    assert waiting == 1
