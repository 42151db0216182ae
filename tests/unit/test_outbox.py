"""The outbox publisher's confirm bookkeeping (which sent events the broker has confirmed,
how many it refused), and a worker's send to a broker that stopped reading."""

import eventlet
import pytest
from sqlalchemy import MetaData

from servicekit.database import kit_tables
from servicekit.outbox import ConfirmedPublisher, OutboxRelay


def publisher_waiting_for(*tags: int) -> ConfirmedPublisher:
    publisher = ConfirmedPublisher("amqp://unused/")
    publisher.sent = max(tags)
    publisher.unconfirmed = {tag: {"event_id": f"e{tag}"} for tag in tags}
    return publisher


def collected(publisher: ConfirmedPublisher) -> tuple[list[str], int]:
    # reads from the broker only while something sent before it is unconfirmed
    confirmed, refused = publisher.collect_confirmed()
    return [envelope["event_id"] for envelope in confirmed], refused


def test_a_multiple_ack_confirms_every_event_up_to_its_tag():
    publisher = publisher_waiting_for(1, 2, 3, 4, 5)
    publisher._acked(publisher.unconfirmed, 3, multiple=True)
    assert set(publisher.unconfirmed) == {4, 5}
    publisher._acked(publisher.unconfirmed, 5, multiple=True)
    assert collected(publisher) == (["e1", "e2", "e3", "e4", "e5"], 0)


def test_a_single_ack_confirms_that_event_only_even_out_of_order():
    publisher = publisher_waiting_for(1, 2, 3)
    publisher._acked(publisher.unconfirmed, 2, multiple=False)
    assert set(publisher.unconfirmed) == {1, 3}
    publisher._acked(publisher.unconfirmed, 1, multiple=False)
    publisher._acked(publisher.unconfirmed, 3, multiple=False)
    assert collected(publisher) == (["e2", "e1", "e3"], 0)


def test_a_nack_counts_as_refused_and_the_confirmed_ones_still_come_back():
    publisher = publisher_waiting_for(1, 2, 3)
    publisher._acked(publisher.unconfirmed, 1, multiple=False)
    publisher._nacked(publisher.unconfirmed, 3, multiple=True)
    assert collected(publisher) == (["e1"], 2)
    # collected once: the next round starts from nothing
    assert collected(publisher) == ([], 0)


class BrokerAnsweringWhileWorkersSend:
    """Each read from the broker brings the confirm of the oldest event sent, while a worker
    sends one more: under steady load something is always unconfirmed."""

    def __init__(self, publisher: ConfirmedPublisher):
        self.publisher = publisher

    def drain_events(self, timeout):
        publisher = self.publisher
        publisher._acked(publisher.unconfirmed, next(iter(publisher.unconfirmed)), multiple=False)
        publisher.sent += 1
        publisher.unconfirmed[publisher.sent] = {"event_id": f"e{publisher.sent}"}


def test_collecting_waits_for_what_was_sent_before_it_not_for_what_keeps_coming():
    publisher = publisher_waiting_for(1, 2)
    publisher.confirm_timeout = 0.5
    publisher.connection = BrokerAnsweringWhileWorkersSend(publisher)
    assert collected(publisher) == (["e1", "e2"], 0)
    assert set(publisher.unconfirmed) == {3, 4}  # sent meanwhile: collected next time


def test_a_dropped_connection_s_late_answer_confirms_its_own_events_only():
    """Delivery tags start again at 1 on a new connection: the relay reading a late
    confirm on the connection a worker's failed send dropped must not take it for the
    event sent with the same tag on the new one (which the broker may never have had)."""
    publisher = publisher_waiting_for(1)
    on_the_dropped_one = publisher.unconfirmed
    publisher._close()
    publisher.unconfirmed, publisher.sent = {1: {"event_id": "on the new one"}}, 1
    publisher._acked(on_the_dropped_one, 1, multiple=False)
    assert publisher.unconfirmed == {1: {"event_id": "on the new one"}}
    assert [envelope["event_id"] for envelope in publisher.confirmed] == ["e1"]


class ConnectionDroppedByAWorker:
    """While the relay waits, a worker's send fails, drops the connection and another
    worker sends on a new one (tags from 1 again), which this broker never answers."""

    def __init__(self, publisher: ConfirmedPublisher):
        self.publisher = publisher

    def drain_events(self, timeout):
        publisher = self.publisher
        publisher._close()
        publisher.connection = Unanswering()
        publisher.unconfirmed, publisher.sent = {1: {"event_id": "w2"}}, 1


class Unanswering:
    def drain_events(self, timeout):
        eventlet.sleep(timeout)
        raise TimeoutError


def test_collecting_ends_with_the_connection_it_was_waiting_on():
    publisher = publisher_waiting_for(1, 2)
    publisher.connection = ConnectionDroppedByAWorker(publisher)
    # what the dropped connection had not confirmed is published again by the next round
    assert collected(publisher) == ([], 0)
    assert publisher.unconfirmed == {1: {"event_id": "w2"}}


class StalledBroker:
    """A publisher whose broker stopped reading (a memory alarm, flow control): sends hang."""

    def __init__(self):
        self.finished = False

    def send(self, envelopes):
        eventlet.sleep(30)
        self.finished = True


def test_a_worker_gives_up_sending_to_a_stalled_broker_and_leaves_it_to_the_relay():
    relay = OutboxRelay("gateway", kit_tables(MetaData()))
    relay.publisher = StalledBroker()
    relay.running = relay.workers_send = True
    relay.send_within = 0.05

    relay.send_committed([{"envelope": {"event_id": "e1"}}], committed_at=0.0)

    assert not relay.publisher.finished  # the send was cut short, the worker went on
    assert not relay.workers_send  # until the relay reaches the broker again


def test_a_timeout_that_is_not_the_send_s_own_is_not_swallowed():
    relay = OutboxRelay("gateway", kit_tables(MetaData()))
    relay.publisher = StalledBroker()
    relay.running = relay.workers_send = True

    outer = eventlet.Timeout(0.05)
    with pytest.raises(eventlet.Timeout) as raised:
        relay.send_committed([{"envelope": {"event_id": "e1"}}], committed_at=0.0)
    outer.cancel()
    assert raised.value is outer
