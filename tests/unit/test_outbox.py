"""The outbox relay's confirm bookkeeping: which published events the broker has confirmed."""

from servicekit.outbox import ConfirmedPublisher


def publisher_waiting_for(*tags: int) -> ConfirmedPublisher:
    publisher = ConfirmedPublisher("amqp://unused/")
    publisher.unconfirmed = set(tags)
    return publisher


def test_a_multiple_ack_confirms_every_event_up_to_its_tag():
    publisher = publisher_waiting_for(1, 2, 3, 4, 5)
    publisher._acked(3, multiple=True)
    assert publisher.unconfirmed == {4, 5}
    assert not publisher.refused


def test_a_single_ack_confirms_that_event_only_even_out_of_order():
    publisher = publisher_waiting_for(1, 2, 3)
    publisher._acked(2, multiple=False)
    assert publisher.unconfirmed == {1, 3}
    publisher._acked(1, multiple=False)
    publisher._acked(3, multiple=False)
    assert publisher.unconfirmed == set()


def test_a_nack_fails_the_round_whatever_else_was_confirmed():
    publisher = publisher_waiting_for(1, 2)
    publisher._acked(1, multiple=False)
    publisher._nacked(2, multiple=False)
    assert publisher.refused
