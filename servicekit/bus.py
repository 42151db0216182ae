"""The exchanges and queues that carry integration events, and the consumer entrypoint.

Topology (declared in full by every service at start, and by `make run`'s set-up)::

    <source>.events   topic exchange per publishing service, routing key = event type
      └─ <consumer>.<event_type>          a durable queue per consumer and event type
    hotelcs.delay.<ms>  fanout -> hotelcs.retry.<ms> (TTL <ms>) -> hotelcs.redeliver
      └─ back to <consumer>.<event_type>  (direct, routing key = the queue's name)
    <consumer>.<event_type>.dead          where a message lands after its last attempt

A handler that raises is retried after each delay of `EVENT_RETRY_DELAYS` (seconds,
default 1,5,30,120), then parked in its dead-letter queue. `python -m servicekit.bus
replay [queue]` moves parked messages back once the cause is fixed.
"""

import logging
import sys
import time
from functools import cached_property, partial

import eventlet
from amqp.exceptions import NotFound
from eventlet.event import Event as Signal
from kombu import Connection, Exchange, Queue, binding
from kombu.message import Message
from marshmallow import ValidationError
from nameko.amqp.publish import Publisher
from nameko.exceptions import ContainerBeingKilled
from nameko.messaging import Consumer, decode_from_headers

from servicekit import events, settings
from servicekit.amqp import AcksInOrder, SettlingConsumer
from servicekit.metrics import EVENTS_HANDLED

log = logging.getLogger(__name__)

REDELIVER = Exchange("hotelcs.redeliver", type="direct", durable=True)
ATTEMPTS_HEADER = "x-hotelcs-attempts"
# A consumer handles up to BATCH_SIZE events per transaction, BATCHES_IN_FLIGHT at once.
BATCH_SIZE = 10
BATCHES_IN_FLIGHT = 3


def source_exchange(source: str) -> Exchange:
    # Same name and type as nameko's own event exchanges, so nameko tools can read them.
    return Exchange(f"{source}.events", type="topic", durable=True)


def queue_name(consumer: str, event_type: str) -> str:
    return f"{consumer}.{event_type}"


def dead_letter_queue_name(queue: str) -> str:
    return f"{queue}.dead"


def retry_delays() -> list[float]:
    raw = settings.env("EVENT_RETRY_DELAYS", "1,5,30,120")
    return [float(d) for d in raw.split(",") if d.strip()]


def delay_exchange(delay: float) -> Exchange:
    return Exchange(f"hotelcs.delay.{int(delay * 1000)}ms", type="fanout", durable=True)


def delay_queue(delay: float) -> Queue:
    millis = int(delay * 1000)
    return Queue(
        f"hotelcs.retry.{millis}ms",
        exchange=delay_exchange(delay),
        durable=True,
        queue_arguments={"x-message-ttl": millis, "x-dead-letter-exchange": REDELIVER.name},
    )


def consumer_queue(consumer: str, event_type: str) -> Queue:
    name = queue_name(consumer, event_type)
    source = events.CATALOGUE[event_type].source
    return Queue(
        name,
        bindings=[
            binding(source_exchange(source), routing_key=event_type),
            binding(REDELIVER, routing_key=name),
        ],
        durable=True,
    )


def consumer_queues() -> list[Queue]:
    """One queue per subscriber and event type: what messages are parked from."""
    return [
        consumer_queue(consumer, event_type)
        for consumer, types in events.SUBSCRIPTIONS.items()
        for event_type in types
    ]


def all_queues() -> list[Queue]:
    queues = consumer_queues()
    dead = [Queue(dead_letter_queue_name(q.name), durable=True) for q in queues]
    return queues + dead + [delay_queue(d) for d in retry_delays()]


_declared: set[str] = set()


def declare_topology(amqp_uri: str) -> None:
    """Declare every exchange and queue the catalogue needs; safe to repeat.

    A process declares once per broker address (every subscriber and relay asks at start).
    """
    if amqp_uri in _declared:
        return
    for attempt in range(1, 6):
        try:
            _declare_all(amqp_uri)
            break
        except NotFound:
            # A virtual host still starting (just created, or its broker just restarted)
            # answers 404 for its queues' home for a moment.
            if attempt == 5:
                raise
            time.sleep(0.5 * attempt)
    _declared.add(amqp_uri)


def _declare_all(amqp_uri: str) -> None:
    with Connection(amqp_uri, transport_options={"max_retries": 1}) as conn:
        channel = conn.default_channel
        for source in {e.source for e in events.CATALOGUE.values()}:
            source_exchange(source).declare(channel=channel)
        REDELIVER.declare(channel=channel)
        for queue in all_queues():
            queue.maybe_bind(channel)
            queue.declare()


class EventSubscriber(Consumer):
    """Decorate a service method to handle one event type. It receives a batch: a list of
    `Event`s, oldest first, of the messages waiting for it (up to `BATCH_SIZE`).

    Example::

        @subscribe("guest_checked_out")
        def schedule_post_stay_revisits(self, events):
            handle_each_once(self.db, KIT, events, scheduling.schedule_post_stay)

    A handler makes its effects idempotent on `event_id` and applies a batch in one
    transaction (`servicekit.idempotency.handle_once` with an effect on the batch's new
    events, or `handle_each_once` with one event by event): a commit and a round of the
    worker machinery per batch rather than per event is what lets a consumer keep up with
    a burst. Up to `BATCHES_IN_FLIGHT` batches of a queue run at once (a batch spends most
    of its time waiting on the database); what arrives meanwhile forms the next.
    When a batch raises, its events are handled again one at a time, so only the failing
    one is affected: it is retried after a delay, and after the last delay parked in the
    dead-letter queue. Nothing is lost.

    A handler whose effect no one awaits within the moment (a projection only people read,
    and then not within the second; the written copy of a booking the agent has just read
    back) can say `gather=True`: its queue's first event then waits `EVENT_GATHER_SECONDS`
    (default 0.05) for others to join its batch. What each batch costs, whatever its size
    (a worker, a transaction, its round trips and commit), is then paid for several events
    where events come steadily but spaced; a handler that a step of the hotel's procedure
    waits on never gathers.
    """

    consumer_cls = SettlingConsumer

    def __init__(self, event_type: str, gather: bool = False, **kwargs):
        if event_type not in events.CATALOGUE:
            raise events.UnknownEvent(event_type)
        self.event_type = event_type
        self.gather = gather
        self.gather_seconds = 0.0
        self.gathering = False
        self.waiting: list[tuple[events.Event, Message]] = []
        self.drains = 0
        kwargs.setdefault("prefetch_count", BATCH_SIZE * BATCHES_IN_FLIGHT)
        super().__init__(queue=None, requeue_on_error=False, **kwargs)

    def setup(self):
        service = self.container.service_name
        if self.event_type not in events.SUBSCRIPTIONS.get(service, ()):
            raise events.UnknownEvent(
                f"{service} handles {self.event_type} but servicekit.events.SUBSCRIPTIONS "
                "does not list it, so its queue would not be declared up front"
            )
        declare_topology(self.amqp_uri)
        self.queue = consumer_queue(service, self.event_type)
        if self.gather:
            self.gather_seconds = settings.float_setting("EVENT_GATHER_SECONDS", 0.05, minimum=0)
        super().setup()
        self.acks = AcksInOrder(self.consumer, hold_at_most=BATCH_SIZE)

    @cached_property
    def publisher(self) -> Publisher:
        return Publisher(self.amqp_uri, retry=True)

    def handle_message(self, body, message):
        try:
            event = events.parse(body)
        except (ValidationError, events.UnknownEvent, TypeError) as exc:
            # A malformed envelope will never succeed: park it at once, keep it for a human.
            log.error("malformed event parked", extra={"queue": self.queue.name})
            self._park(message, body, f"malformed: {exc}")
            self.consumer.ack_message(message)
            return
        # Called for each message of a read from the broker before any worker runs, so a
        # burst gathers here and the drain below takes it as one batch.
        self.acks.received(message)
        self.waiting.append((event, message))
        if self.drains < BATCHES_IN_FLIGHT and not self.gathering:
            self.drains += 1
            self.container.spawn_managed_thread(
                self._drain, identifier=f"{type(self).__name__}.drain[{self.queue.name}]"
            )

    def _drain(self) -> None:
        try:
            if self.gather_seconds:
                # what arrives meanwhile joins the waiting events rather than starting a
                # batch of its own
                self.gathering = True
                try:
                    eventlet.sleep(self.gather_seconds)
                finally:
                    self.gathering = False
            while self.waiting:
                batch, self.waiting = self.waiting[:BATCH_SIZE], self.waiting[BATCH_SIZE:]
                if not self._run(batch):
                    for single in batch:
                        self._run([single])
        finally:
            self.drains -= 1

    def _run(self, batch: list[tuple[events.Event, Message]]) -> bool:
        """Handle `batch` in one worker; False if it failed and should be split up."""
        finished = Signal()
        messages = [message for _, message in batch]
        try:
            self.container.spawn_worker(
                self,
                ([event for event, _ in batch],),
                {},
                context_data=decode_from_headers(messages[0].headers),
                handle_result=partial(self._settle, messages, finished),
            )
        except ContainerBeingKilled:
            self.acks.requeue(messages)
            return True
        return finished.wait()

    def _settle(self, messages, finished, worker_ctx, result=None, exc_info=None):
        if exc_info is None:
            EVENTS_HANDLED.labels(self.container.service_name, self.event_type, "ok").inc(
                len(messages)
            )
            self.acks.ack(messages)
            finished.send(True)
        elif len(messages) > 1:
            finished.send(False)
        else:
            self._retry_or_park(messages[0], exc_info)
            finished.send(True)
        return result, exc_info

    def _retry_or_park(self, message, exc_info) -> None:
        attempts = int((message.headers or {}).get(ATTEMPTS_HEADER, 0)) + 1
        delays = retry_delays()
        try:
            if attempts <= len(delays):
                self.publisher.publish(
                    message.payload,
                    exchange=delay_exchange(delays[attempts - 1]),
                    routing_key=self.queue.name,
                    headers={ATTEMPTS_HEADER: attempts},
                    serializer="json",
                )
                outcome = "retried"
            else:
                self._park(message, message.payload, repr(exc_info[1])[:500])
                outcome = "dead_lettered"
        except Exception:
            # The broker is unreachable: give the message back rather than lose it.
            log.exception(
                "could not schedule a retry; requeueing", extra={"queue": self.queue.name}
            )
            self.acks.requeue([message])
            return
        EVENTS_HANDLED.labels(self.container.service_name, self.event_type, outcome).inc()
        log.warning(
            "event handler failed",
            extra={"queue": self.queue.name, "attempt": attempts, "outcome": outcome},
        )
        self.acks.ack([message])

    def _park(self, message, body, reason: str) -> None:
        self.publisher.publish(
            body,
            exchange="",
            routing_key=dead_letter_queue_name(self.queue.name),
            headers={**(message.headers or {}), "x-hotelcs-error": reason},
            serializer="json",
        )


subscribe = EventSubscriber.decorator


def replay(amqp_uri: str, queue: str | None = None) -> int:
    """Move parked messages back to their queues (all of them, or one queue's). Each is
    taken off its dead-letter queue only once the broker has confirmed the copy in its
    queue: a queue that is not there (a mistyped name, a consumer no longer declared)
    raises, and the message stays parked."""
    names = [queue] if queue else [q.name for q in consumer_queues()]
    moved = 0
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        channel = conn.default_channel
        producer = conn.Producer(channel=channel)
        for name in names:
            dead = dead_letter_queue_name(name)
            while True:
                message = channel.basic_get(dead)
                if message is None:
                    break
                producer.publish(
                    message.body,
                    exchange="",
                    routing_key=name,
                    content_type=message.content_type,
                    content_encoding=message.content_encoding,
                    delivery_mode=2,
                    mandatory=True,
                )
                channel.basic_ack(message.delivery_info["delivery_tag"])
                moved += 1
    return moved


def dead_letter_counts(amqp_uri: str, consumer: str | None = None) -> dict[str, int]:
    """How many messages wait in each dead-letter queue (of one consumer, or all)."""
    counts = {}
    with Connection(amqp_uri, transport_options={"max_retries": 1}) as conn:
        channel = conn.default_channel
        for queue in all_queues():
            if queue.name.endswith(".dead") and (
                consumer is None or queue.name.startswith(f"{consumer}.")
            ):
                _, count, _ = channel.queue_declare(queue.name, durable=True, passive=True)
                counts[queue.name] = count
    return counts


def main(argv: list[str]) -> int:
    uri = settings.amqp_uri()
    if argv[:1] == ["declare"]:
        declare_topology(uri)
        print("declared", len(all_queues()), "queues")
    elif argv[:1] == ["replay"]:
        moved = replay(uri, argv[1] if len(argv) > 1 else None)
        print("replayed", moved, "messages")
    elif argv[:1] == ["dead"]:
        for name, count in dead_letter_counts(uri).items():
            if count:
                print(f"{count:8d}  {name}")
    else:
        print("usage: python -m servicekit.bus declare | replay [queue] | dead", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
