"""The order in which a consumer's deliveries are acknowledged (the kit's `AcksInOrder`),
with a consumer that records what it would send the broker."""

from dataclasses import dataclass

from servicekit.amqp import AcksInOrder


@dataclass(frozen=True)
class Delivery:
    channel: object
    delivery_tag: int


class RecordingConsumer:
    def __init__(self):
        self.sent: list[tuple] = []

    def ack_tag(self, channel, delivery_tag, multiple):
        self.sent.append(("ack", delivery_tag, multiple))

    def requeue_message(self, message):
        self.sent.append(("requeue", message.delivery_tag))


def received(acks: AcksInOrder, channel, tags) -> dict[int, Delivery]:
    deliveries = {tag: Delivery(channel, tag) for tag in tags}
    for delivery in deliveries.values():
        acks.received(delivery)
    return deliveries


def test_a_run_of_batches_is_acknowledged_once_no_older_one_is_being_handled():
    consumer = RecordingConsumer()
    acks = AcksInOrder(consumer, hold_at_most=10)
    d = received(acks, "channel", range(1, 10))
    acks.ack([d[4], d[5], d[6]])  # a younger batch finishes first: held back
    assert consumer.sent == []
    acks.ack([d[1], d[2], d[3]])
    assert consumer.sent == [("ack", 6, True)]
    acks.ack([d[7], d[8], d[9]])
    assert consumer.sent[-1] == ("ack", 9, True)


def test_a_requeued_delivery_is_never_the_tag_of_an_ack():
    consumer = RecordingConsumer()
    acks = AcksInOrder(consumer, hold_at_most=10)
    d = received(acks, "channel", [1, 2, 3, 4])
    acks.requeue([d[2]])
    acks.ack([d[1]])
    assert consumer.sent == [("requeue", 2), ("ack", 1, True)]
    acks.ack([d[3]])
    acks.requeue([d[4]])
    # the broker holds 4 no more: the run ends on 3
    assert consumer.sent[2:] == [("ack", 3, True), ("requeue", 4)]


def test_past_the_limit_held_deliveries_are_acknowledged_one_by_one():
    consumer = RecordingConsumer()
    acks = AcksInOrder(consumer, hold_at_most=2)
    d = received(acks, "channel", [1, 2, 3, 4])
    acks.ack([d[2], d[3]])
    assert consumer.sent == []
    acks.ack([d[4]])  # three behind a slow one: their places in the window are given back
    assert consumer.sent == [("ack", 2, False), ("ack", 3, False), ("ack", 4, False)]
    acks.ack([d[1]])  # the slow one: the run ends on it, not on one acknowledged already
    assert consumer.sent[3:] == [("ack", 1, True)]


def test_a_lost_channels_deliveries_are_forgotten():
    consumer = RecordingConsumer()
    acks = AcksInOrder(consumer, hold_at_most=10)
    old = received(acks, "old channel", [1, 2])
    new = received(acks, "new channel", [1])  # the broker has taken 1 and 2 back
    acks.ack([old[2], old[1]])
    assert consumer.sent == []
    acks.ack([new[1]])
    assert consumer.sent == [("ack", 1, True)]
