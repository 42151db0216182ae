"""The AMQP consumer under the kit's entrypoints (event subscribers, RPC).

nameko's settles a message (ack or requeue) on its connection and lets a socket error
escape when the broker has just gone away; raised in a worker, that stops the whole
service container. Here such an error is logged and dropped: the broker takes back every
unsettled message of a lost connection and delivers it again, and handlers and commands
are idempotent, so nothing is lost or done twice.
"""

import logging

from nameko.amqp.consume import Consumer

from servicekit.connections import BROKER_GONE

log = logging.getLogger(__name__)


class SettlingConsumer(Consumer):
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
