"""nameko's RPC, without the broker round trips a request and its reply do not need.

Use these instead of `nameko.rpc`'s (same signatures)::

    from servicekit.rpc import ServiceRpc, rpc

What differs, and why it is safe:

- Requests and replies are transient: a request expires with the caller's timeout and a
  reply goes to a queue that is not durable, so writing either to disk buys nothing.
- A reply is not confirmed by the broker: were it lost, the caller would time out and answer
  503 whether or not the replier knew.
- A reply goes out on a connection the service keeps for replies, serialised once, where
  nameko makes a `Responder`, a `Connection` and a pooled producer for each reply; requests
  likewise go out on connections the caller keeps (`_kept_producers`), not through kombu's
  producer pool, which opens a channel again for every message.
- The caller declares its reply queue once per broker connection, not before every request
  (kombu never caches the declaration of a queue with `x-expires`, which nameko's has), and
  sends nothing before its reply queue is consumed (a request sent earlier would find the
  queue missing and stop the caller's container).
- A request is confirmed by the broker only until one has reached the service's queue, and
  again after a call timed out. nameko confirms every request, a round trip, only to learn
  from the broker's return that no queue takes it (`UnknownService`, a 503 at once instead
  of at the timeout). A service's queue is durable and never deleted while the suite runs,
  so once one request was routed the next ones are too; were the queue gone after all, the
  call times out (503) and the next request checks again. An unconfirmed request lost with
  a broker connection likewise ends as a 503 at the timeout, which the client retries with
  its Idempotency-Key.
"""

import inspect
import logging
import sys
from collections.abc import Callable
from functools import partial

import eventlet
import kombu.serialization
from kombu import Connection, Producer, Queue
from kombu.exceptions import ChannelError
from nameko import config
from nameko import rpc as nameko_rpc
from nameko.amqp.publish import Publisher, UndeliverableMessage
from nameko.constants import AMQP_SSL_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
from nameko.exceptions import (
    IncorrectSignature,
    ReplyQueueExpiredWithPendingReplies,
    UnserializableValueError,
    serialize,
)

from servicekit import errors
from servicekit.amqp import KeepsHeartbeats, SettlingConsumer
from servicekit.connections import BROKER_GONE, KeptOpen, close_quietly, closed_by_peer

log = logging.getLogger(__name__)

TRANSIENT = 1


def _kept_producers(connect: Callable[[], Connection]) -> KeptOpen[tuple[Connection, Producer]]:
    """Broker connections kept open, each with its producer, for one kind of message.

    kombu's producer pool gives a producer back without its connection, so every message
    took a connection from the pool and opened a channel on it again; a kept one is taken
    as it is. One on which the broker has said anything (it is closing it: a restart, a
    forced close, an error on its channel) is never used again: it would take a message
    and drop it.
    """

    def fresh() -> tuple[Connection, Producer]:
        connection = connect()
        connection.ensure_connection(max_retries=1)
        return connection, Producer(connection.channel())

    return KeptOpen(
        fresh,
        close=lambda kept: close_quietly(kept[0]),
        gone=lambda kept: closed_by_peer(kept[0].connection.sock),
    )


class _Replies:
    """Sends a service's RPC replies, transient and unconfirmed, on connections it keeps.

    nameko builds a `Responder`, a `Connection` and a pooled producer for every reply and
    serialises the result twice; under load that was a tenth of a service's CPU.
    """

    def __init__(self, amqp_uri: str):
        self.exchange = nameko_rpc.get_rpc_exchange().name
        self.connections = _kept_producers(
            partial(
                Connection,
                amqp_uri,
                ssl=config.get(AMQP_SSL_CONFIG_KEY),
                login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
                transport_options={"max_retries": 1},
            )
        )

    def send(self, message, result, exc_info):
        """Reply to `message`; returns (result, exc_info) as nameko's `Responder` does."""
        content_type = message.properties["content_type"]
        serializer = kombu.serialization.registry.type_to_name[content_type]
        error = None if exc_info is None else serialize(exc_info[1])
        try:
            encoded = kombu.serialization.dumps({"result": result, "error": error}, serializer)
        except Exception:
            # as nameko does: the caller learns the result could not be serialised
            exc_info = sys.exc_info()
            error = serialize(UnserializableValueError(result))
            result = None
            encoded = kombu.serialization.dumps({"result": None, "error": error}, serializer)
        content_type, content_encoding, body = encoded
        reply = {
            "body": body,
            "content_type": content_type,
            "content_encoding": content_encoding,
            "exchange": self.exchange,
            "routing_key": message.properties["reply_to"],
            "correlation_id": message.properties.get("correlation_id"),
            "delivery_mode": TRANSIENT,
            "retry": False,
        }
        try:
            self._publish(reply)
        except BROKER_GONE:
            # a kept connection the broker has since closed (a restart): once more, afresh
            self._publish(reply)
        return result, exc_info

    def _publish(self, reply: dict) -> None:
        with self.connections.use() as (_, producer):
            producer.publish(**reply)

    def close(self) -> None:
        self.connections.close()


class RpcConsumer(nameko_rpc.RpcConsumer):
    consumer_cls = SettlingConsumer

    @property
    def sharing_key(self):
        # One consumer per service whichever `rpc` decorated its methods: two consumers
        # of the same queue would each refuse the other's methods.
        return nameko_rpc.RpcConsumer

    def setup(self):
        super().setup()
        self.replies = _Replies(self.amqp_uri)

    def stop(self):
        super().stop()
        self.replies.close()

    def handle_result(self, message, result, exc_info):
        try:
            result, exc_info = self.replies.send(message, result, exc_info)
        except BROKER_GONE:
            # The reply could not go: the caller times out (503) and retries with its
            # Idempotency-Key. Raising here would stop the whole container instead. The
            # request is acknowledged all the same (where its own connection is gone, the
            # ack goes nowhere and the broker takes it back): left unacknowledged on a
            # connection that lives on, it would hold a place of the prefetch window for
            # good, and a few such would stop the service taking requests.
            log.warning("could not reply: the broker cannot be reached", exc_info=True)
        self.consumer.ack_message(message)
        return result, exc_info


class Rpc(nameko_rpc.Rpc):
    rpc_consumer = RpcConsumer()

    def setup(self):
        super().setup()
        self.signature = inspect.signature(getattr(self.container.service_cls, self.method_name))

    def check_signature(self, args, kwargs):
        """A call's arguments matched against the method's signature, read once: nameko reads
        it through `inspect.getcallargs` on every call (14 us against 2.5 us a call)."""
        try:
            self.signature.bind(None, *args, **kwargs)  # None: the unbound method's self
        except TypeError as exc:
            raise IncorrectSignature(str(exc)) from None


rpc = Rpc.decorator


class ReplyListener(nameko_rpc.ReplyListener):
    """nameko's, except:

    - when the broker lost the reply queue (it is not durable, so a broker restart does)
      while calls still waited on it, nameko's raises and so stops the whole container;
      this one answers those calls `Unavailable` (503 at the gateway) and goes on;
    - a call that stops waiting without its reply is forgotten (below);
    - replies are not acknowledged (the broker counts them delivered as it sends them): a
      reply only this process can take has nowhere to go back to, so the ack was a message
      to the broker for every call that bought nothing; its consumer therefore sends its
      heartbeats however busy it is (`KeepsHeartbeats`), as nothing else goes that way.
    """

    class ReplyConsumer(KeepsHeartbeats, nameko_rpc.ReplyListener.ReplyConsumer):
        pass

    consumer_cls = ReplyConsumer

    def setup(self):
        super().setup()
        self.consumer.consumer_options["no_ack"] = True

    def register_for_reply(self, correlation_id):
        """nameko's, but a call that stops waiting without its reply (timed out, its request
        expired in a queue) is forgotten: nameko forgets one only when its reply comes, so
        every unanswered call stayed in `pending` for the life of the process."""
        wait = super().register_for_reply(correlation_id)

        def wait_then_forget(*args, **kwargs):
            try:
                return wait(*args, **kwargs)
            finally:
                self.forget(correlation_id)

        return wait_then_forget

    def forget(self, correlation_id) -> None:
        """No reply will be waited for (the call timed out, or its request never went)."""
        self.pending.pop(correlation_id, None)

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


class _RequestPublisher(Publisher):
    """Publishes one client's requests; confirmed only while `routed` is False."""

    delivery_mode = TRANSIENT

    def __init__(self, amqp_uri, *, declare, **options):
        super().__init__(amqp_uri, **options)
        (queue,) = declare
        self.reply_queue = _ReplyQueue(
            queue.name,
            exchange=queue.exchange,
            routing_key=queue.routing_key,
            queue_arguments=queue.queue_arguments,
        )
        # what kombu files a declared queue under, looked up before each request rather
        # than letting kombu copy the queue to find out
        self.reply_queue_key = hash(self.reply_queue)
        self.connections = {
            confirms: _kept_producers(
                partial(
                    Connection,
                    amqp_uri,
                    transport_options={**self.transport_options, "confirm_publish": confirms},
                    ssl=self.ssl,
                    login_method=self.login_method,
                )
            )
            for confirms in (False, True)
        }
        self.routed = False

    def publish(self, payload, *, mandatory, extra_headers, **kwargs):
        # nameko asks for `mandatory` on every request; a return without a confirm to wait
        # for would sit unread on the connection, so only a confirmed request asks for it
        confirm = not self.routed
        with self.connections[confirm].use() as (_, producer):
            declared = producer.connection.declared_entities
            try:
                producer.publish(
                    payload,
                    headers=extra_headers,
                    delivery_mode=self.delivery_mode,
                    mandatory=confirm,
                    expiration=kwargs.pop("expiration", self.expiration),
                    serializer=self.serializer,
                    declare=[] if self.reply_queue_key in declared else [self.reply_queue],
                    retry=self.retry,
                    retry_policy=self.retry_policy,
                    **self.publish_kwargs,
                    **kwargs,
                )
            except ChannelError as exc:
                if "NO_ROUTE" in str(exc):
                    raise UndeliverableMessage() from None
                raise
        self.routed = True

    def close(self) -> None:
        for kept in self.connections.values():
            kept.close()


class _Client(nameko_rpc.Client):
    """nameko's, for one service; a call that timed out has the next request confirmed, and
    one whose request could not be sent is not waited for by the reply listener."""

    def __init__(
        self, publisher, listener, context_data, service_name, method=None, expiration=None
    ):
        super().__init__(
            self._send, listener.register_for_reply, context_data, service_name, method
        )
        self.publisher = publisher
        self.listener = listener
        self.expiration = expiration

    def __getattr__(self, name):
        if self.method_name is not None:
            raise AttributeError(name)
        return _Client(
            self.publisher,
            self.listener,
            self.context_data,
            self.service_name,
            name,
            self.expiration,
        )

    def expiring_after(self, seconds: float) -> "_Client":
        """The same client, its requests expiring after `seconds` rather than the client's
        own expiration: for a call its caller waits longer (or less) for."""
        return _Client(
            self.publisher,
            self.listener,
            self.context_data,
            self.service_name,
            self.method_name,
            seconds,
        )

    def _send(self, payload, *, correlation_id, **kwargs):
        if self.expiration is not None:
            kwargs["expiration"] = self.expiration
        try:
            self.publisher.publish(payload, correlation_id=correlation_id, **kwargs)
        except BaseException:
            self.listener.forget(correlation_id)
            raise

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except eventlet.Timeout:
            self.publisher.routed = False
            raise


class ServiceRpc(nameko_rpc.ServiceRpc):
    """A client of one service, e.g. `guests = ServiceRpc("guests", expiration=5)`."""

    publisher_cls = _RequestPublisher
    reply_listener = ReplyListener()

    def __init__(self, target_service, **options):
        options.setdefault("delivery_mode", TRANSIENT)
        super().__init__(target_service, **options)

    def stop(self):
        self.publisher.close()
        super().stop()

    def get_dependency(self, worker_ctx):
        self.reply_listener.consumer.wait_until_consumer_ready()
        return _Client(
            self.publisher, self.reply_listener, worker_ctx.context_data, self.target_service
        )
