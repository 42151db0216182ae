"""The AMQP consumer under the kit's entrypoints (event subscribers, RPC).

nameko's settles a message (ack or requeue) on its connection and lets a socket error
escape when the broker has just gone away; raised in a worker, that stops the whole
service container. Here such an error is logged and dropped: the broker takes back every
unsettled message of a lost connection and delivers it again, and handlers and commands
are idempotent, so nothing is lost or done twice.
"""

import logging
from collections import deque

from nameko.amqp.consume import Consumer

from servicekit.connections import BROKER_GONE

log = logging.getLogger(__name__)


class KeepsHeartbeats:
    """For a consumer: its heartbeats go to the broker even while messages keep coming.

    kombu's consuming loop sends a heartbeat only after a second with nothing to read. A
    consumer that reads without such a pause and writes nothing back (the reply listener,
    which does not acknowledge) was silent to the broker, which closed its connection for
    missed heartbeats: every three minutes under steady load, with the replies then in
    flight. The loop now asks at every turn, which sends one only when one is due.
    """

    _live = None

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        self._live = connection
        super().on_consume_ready(connection, channel, consumers, **kwargs)

    def on_iteration(self):
        if self._live is not None:
            self._live.heartbeat_check()


class SettlingConsumer(KeepsHeartbeats, Consumer):
    def ack_message(self, message):
        try:
            super().ack_message(message)
        except BROKER_GONE:
            log.warning("could not ack: the broker connection is gone; it will redeliver")

    def requeue_message(self, message):
        try:
            super().requeue_message(message)
        except BROKER_GONE:
            log.warning("could not requeue: the broker connection is gone; it will redeliver")

    def ack_tag(self, channel, delivery_tag: int, multiple: bool) -> None:
        """Acknowledge a delivery of `channel` (with `multiple`, every one up to it)."""
        if channel.connection:
            try:
                channel.basic_ack(delivery_tag, multiple=multiple)
            except BROKER_GONE:
                log.warning("could not ack: the broker connection is gone; it will redeliver")


class AcksInOrder:
    """Acknowledges a consumer's deliveries with one `basic.ack` per run of settled ones.

    A consumer's batches finish in any order (several are in flight), and an ack with
    `multiple` covers every delivery up to its tag; so a run is acknowledged once no older
    delivery is still being handled, in one frame rather than one per message. A delivery
    settled otherwise (requeued, or acked on its own) ends a run without being its tag: the
    broker accepts only a tag still unacknowledged there. The deliveries of a channel that
    was lost are forgotten: the broker has taken them back.

    Settled deliveries held back behind a slow one keep their places in the prefetch
    window, so past `hold_at_most` of them they are acknowledged one by one: a slow batch
    never stops its queue.
    """

    def __init__(self, consumer: SettlingConsumer, hold_at_most: int):
        self.consumer = consumer
        self.hold_at_most = hold_at_most
        self.channel = None
        self.handling: deque[int] = deque()  # delivery tags, oldest first
        self.settled: dict[int, bool] = {}  # delivery tag -> whether to acknowledge it

    def received(self, message) -> None:
        if message.channel is not self.channel:
            self.channel, self.handling, self.settled = message.channel, deque(), {}
        self.handling.append(message.delivery_tag)

    def ack(self, messages) -> None:
        self._settle(messages, True)

    def requeue(self, messages) -> None:
        for message in messages:
            self.consumer.requeue_message(message)
        self._settle(messages, False)

    def _settle(self, messages, ack: bool) -> None:
        for message in messages:
            if message.channel is self.channel:
                self.settled[message.delivery_tag] = ack
        through = None
        while self.handling and self.handling[0] in self.settled:
            tag = self.handling.popleft()
            if self.settled.pop(tag):
                through = tag
        if through is not None:
            self.consumer.ack_tag(self.channel, through, multiple=True)
        held = [tag for tag, ack in self.settled.items() if ack]
        if len(held) > self.hold_at_most:
            for tag in held:
                self.consumer.ack_tag(self.channel, tag, multiple=False)
                self.settled[tag] = False
