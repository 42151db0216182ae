"""The kit's RPC entrypoint on a real broker: a call whose arguments do not fit the method
is refused as nameko refuses it, before any work, with the signature read once; a reply
that cannot go does not keep its request; a call that gets no reply is not waited for."""

import eventlet
import pytest
from kombu import Connection, Exchange, Queue
from nameko import config
from nameko.exceptions import IncorrectSignature, RpcTimeout, UnknownService
from nameko.standalone.rpc import ServiceRpcClient
from nameko.testing.services import dummy, entrypoint_hook

from servicekit.rpc import ReplyListener, ServiceRpc, _Replies, rpc


class FrontDesk:
    name = "front_desk"
    noted: list = []

    @rpc
    def note(self, text: str, urgent: bool = False) -> dict:
        """Example: `("late arrival", urgent=True)` -> `{"text": ..., "urgent": true}`."""
        self.noted.append(text)
        return {"text": text, "urgent": urgent}


def test_calls_that_do_not_fit_the_method_are_refused_before_any_work(
    rabbit_config, container_factory
):
    container_factory(FrontDesk).start()
    FrontDesk.noted.clear()

    with ServiceRpcClient("front_desk") as desk:
        assert desk.note("late arrival", urgent=True) == {"text": "late arrival", "urgent": True}
        assert desk.note(text="towels") == {"text": "towels", "urgent": False}
        for wrong in (
            lambda: desk.note(),
            lambda: desk.note("a", False, "b"),
            lambda: desk.note("a", room=7),
        ):
            with pytest.raises(IncorrectSignature):
                wrong()

    assert FrontDesk.noted == ["late arrival", "towels"]


def test_a_reply_that_cannot_go_still_frees_the_request_s_place(
    rabbit_config, container_factory, monkeypatch
):
    """Replies failing while the request's own connection lives on (the broker refusing
    new connections): each request is still acknowledged, so the service takes the next
    ones once replies go again, however many failed (more than the prefetch window)."""
    container = container_factory(FrontDesk)
    container.start()
    window = container.max_workers

    def refused(self, reply):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(_Replies, "_publish", refused)
    with ServiceRpcClient("front_desk", timeout=1) as desk:

        def unanswered(n):
            with pytest.raises(RpcTimeout):
                desk.note(f"call {n}")

        list(eventlet.GreenPool(window + 2).imap(unanswered, range(window + 2)))
    monkeypatch.undo()
    with ServiceRpcClient("front_desk", timeout=5) as desk:
        assert desk.note("after") == {"text": "after", "urgent": False}


class Caller:
    name = "caller"
    silent = ServiceRpc("silent_desk")  # its queue exists; nobody takes from it
    nobody = ServiceRpc("no_such_desk")  # no queue at all

    @dummy
    def call(self, target: str):
        try:
            with eventlet.Timeout(0.2):
                getattr(self, target).note("hello")
        except (eventlet.Timeout, UnknownService) as exc:
            return type(exc).__name__


def test_calls_that_get_no_reply_are_not_kept_waiting_for_one(rabbit_config, container_factory):
    with Connection(config["AMQP_URI"]) as connection:
        Queue(
            "rpc-silent_desk",
            Exchange("nameko-rpc", type="topic", durable=True),
            routing_key="silent_desk.*",
        )(connection.default_channel).declare()
    container = container_factory(Caller)
    container.start()
    [listener] = [e for e in container.subextensions if isinstance(e, ReplyListener)]

    outcomes = set()
    for _ in range(5):
        for target in ("silent", "nobody"):
            with entrypoint_hook(container, "call") as call:
                outcomes.add(call(target))
    assert outcomes == {"Timeout", "UnknownService"}
    assert listener.pending == {}


class Sender:
    name = "sender"
    desk = ServiceRpc("silent_desk", expiration=60)

    @dummy
    def send(self, expiring_after: float | None):
        desk = self.desk if expiring_after is None else self.desk.expiring_after(expiring_after)
        with pytest.raises(eventlet.Timeout), eventlet.Timeout(0.2):
            desk.note("hello")


def test_a_call_s_request_expires_when_its_caller_stops_waiting(rabbit_config, container_factory):
    """The client's expiration, or the one a call was given: a request left in the queue
    after its caller gave up must never be acted on."""
    silent = Queue(
        "rpc-silent_desk",
        Exchange("nameko-rpc", type="topic", durable=True),
        routing_key="silent_desk.*",
    )
    with Connection(config["AMQP_URI"]) as connection:
        silent(connection.default_channel).declare()
    container = container_factory(Sender)
    container.start()
    for given in (None, 12.5):
        with entrypoint_hook(container, "send") as send:
            send(given)

    with Connection(config["AMQP_URI"]) as connection:
        queue = silent(connection.default_channel)
        expirations = [queue.get(no_ack=True).properties["expiration"] for _ in range(2)]
    assert expirations == ["60000", "12500"]
