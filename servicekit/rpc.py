"""nameko's RPC, without the broker round trips a request and its reply do not need.

Use these instead of `nameko.rpc`'s (same signatures)::

    from servicekit.rpc import ServiceRpc, rpc

What differs, and why it is safe:

- Requests and replies are transient: a request expires with the caller's timeout and a
  reply goes to a queue that is not durable, so writing either to disk buys nothing.
- A reply is not confirmed by the broker: were it lost, the caller would time out and answer
  503 whether or not the replier knew.
- The caller declares its reply queue once per broker connection, not before every request
  (kombu never caches the declaration of a queue with `x-expires`, which nameko's has), and
  sends nothing before its reply queue is consumed (a request sent earlier would find the
  queue missing and stop the caller's container).
"""

import logging

from kombu import Queue
from kombu.exceptions import KombuError
from nameko import config
from nameko import rpc as nameko_rpc
from nameko.amqp.publish import Publisher
from nameko.constants import AMQP_SSL_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
from nameko.exceptions import ReplyQueueExpiredWithPendingReplies

from servicekit import errors
from servicekit.amqp import SettlingConsumer

log = logging.getLogger(__name__)

TRANSIENT = 1


class _ReplyPublisher(Publisher):
    use_confirms = False
    delivery_mode = TRANSIENT


class _Responder(nameko_rpc.Responder):
    publisher_cls = _ReplyPublisher


class RpcConsumer(nameko_rpc.RpcConsumer):
    consumer_cls = SettlingConsumer

    @property
    def sharing_key(self):
        # One consumer per service whichever `rpc` decorated its methods: two consumers
        # of the same queue would each refuse the other's methods.
        return nameko_rpc.RpcConsumer

    def handle_result(self, message, result, exc_info):
        responder = _Responder(
            self.amqp_uri,
            nameko_rpc.get_rpc_exchange(),
            message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        try:
            result, exc_info = responder.send_response(result, exc_info)
        except (KombuError, OSError):
            # The broker went away while we replied: the caller times out (503) and retries
            # with its Idempotency-Key; the request, unacked, goes with the connection.
            # Raising here would stop the whole container instead.
            log.warning("could not reply: the broker cannot be reached", exc_info=True)
            return result, exc_info
        self.consumer.ack_message(message)
        return result, exc_info


class Rpc(nameko_rpc.Rpc):
    rpc_consumer = RpcConsumer()


rpc = Rpc.decorator


class ReplyListener(nameko_rpc.ReplyListener):
    """nameko's, except when the broker lost the reply queue (it is not durable, so a broker
    restart does) while calls still waited on it: nameko's raises and so stops the whole
    container; this one answers those calls `Unavailable` (503 at the gateway) and goes on.
    """

    def check_for_lost_replies(self):
        try:
            super().check_for_lost_replies()
        except ReplyQueueExpiredWithPendingReplies:
            lost, self.pending = self.pending, {}
            log.warning("the broker lost the reply queue; %d calls get no reply", len(lost))
            for waiting in lost.values():
                waiting.send_exception(errors.Unavailable("the reply was lost with the broker"))


class _ReplyQueue(Queue):
    # declared once per broker connection (kombu forgets what it declared on reconnecting)
    can_cache_declaration = True


class ServiceRpc(nameko_rpc.ServiceRpc):
    """A client of one service, e.g. `guests = ServiceRpc("guests", expiration=5)`."""

    reply_listener = ReplyListener()

    def __init__(self, target_service, **options):
        options.setdefault("delivery_mode", TRANSIENT)
        super().__init__(target_service, **options)

    def setup(self):
        super().setup()
        queue = self.reply_listener.queue
        self.publisher.declare = [
            _ReplyQueue(
                queue.name,
                exchange=queue.exchange,
                routing_key=queue.routing_key,
                queue_arguments=queue.queue_arguments,
            )
        ]

    def get_dependency(self, worker_ctx):
        self.reply_listener.consumer.wait_until_consumer_ready()
        return super().get_dependency(worker_ctx)
