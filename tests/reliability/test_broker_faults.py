"""The broker drops every connection while guests are registered and complaints filed
through the gateway: every request is answered within seconds, nothing is lost, nothing
happens twice. Only this test's vhost is touched."""

import json
import logging
import time
from collections import Counter
from types import SimpleNamespace

import eventlet
from kombu import Connection
from nameko import config
from nameko.rpc import get_rpc_exchange
from nameko.standalone.rpc import ClusterRpcClient

from servicekit.rpc import ServiceRpc, _Replies, rpc
from tests.reliability.faults import Traffic, check_books, drop_connections
from tests.support import wait_for


def test_dropped_connections_lose_nothing_and_hang_nothing(patient_retries, suite):
    traffic = Traffic(suite.as_role("agent", "front_office"))
    drops, closed = 3, []

    def faults():
        eventlet.sleep(1.5)
        for _ in range(drops):
            closed.append(drop_connections())
            eventlet.sleep(1.5)

    traffic.run(workers=4, faults=faults)
    during = Counter(a.status for a in traffic.answers)
    check_books(
        traffic, f"broker connections dropped {drops} times", during, f" ({sum(closed)} closed)"
    )
    assert all(closed), closed
    assert during[201] > 0
    # and the suite is whole again, with nothing restarted
    wait_for(lambda: suite.get("/health").status_code == 200, timeout=15)


def test_a_reply_connection_closed_by_the_broker_as_it_is_used_is_replaced(
    rabbit_config, monkeypatch
):
    """The broker's close of a kept reply connection can arrive after the check that the
    connection is sound and before the reply goes (py-amqp reads it while publishing and
    raises `ConnectionForced`): the reply goes once more on a fresh connection, rather than
    the error stopping the service's container."""
    uri = config["AMQP_URI"]
    with Connection(uri) as conn:
        channel = conn.channel()
        channel.exchange_declare(get_rpc_exchange().name, "topic", durable=True)
        channel.queue_declare("replies-kept", auto_delete=False)
        channel.queue_bind("replies-kept", get_rpc_exchange().name, "replies-kept")
    request = SimpleNamespace(
        properties={
            "content_type": "application/json",
            "reply_to": "replies-kept",
            "correlation_id": "1",
        }
    )
    replies = _Replies(uri)
    replies.send(request, {"n": 1}, None)  # the connection it keeps
    assert drop_connections() >= 1
    eventlet.sleep(0.5)  # the broker's close is on the kept connection's socket by now
    monkeypatch.setattr("servicekit.rpc.closed_by_peer", lambda sock: False)  # checked before

    replies.send(request, {"n": 2}, None)

    with Connection(uri) as conn:
        channel = conn.channel()
        got = [channel.basic_get("replies-kept", no_ack=True) for _ in range(2)]
    assert [json.loads(m.body)["result"] for m in got if m is not None] == [{"n": 1}, {"n": 2}]
    replies.close()


class Callee:
    name = "heartbeat_callee"

    @rpc
    def echo(self, n):
        return n


class Caller:
    name = "heartbeat_caller"
    callee = ServiceRpc("heartbeat_callee", expiration=2)

    @rpc
    def call_for(self, seconds):
        """Calls without a pause for `seconds`: its replies never leave the reply
        connection a second to spare."""
        calls, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            assert self.callee.echo(calls) == calls
            calls += 1
        return calls


def test_a_caller_busy_with_replies_keeps_its_reply_connection(
    runner_factory, rabbit_config, caplog
):
    """The reply listener sends nothing back for a reply, so under steady calls only its
    heartbeats tell the broker it is alive; with none, the broker closed its connection
    after two heartbeats' time and the replies then in flight were lost."""
    with config.patch({"HEARTBEAT": 2}):  # taken by the services' consumers as they start
        runner = runner_factory(Callee, Caller)
        runner.start()
    with (
        caplog.at_level(logging.WARNING, logger="kombu.mixins"),
        ClusterRpcClient() as cluster,
    ):
        calls = cluster.heartbeat_caller.call_for(10)
    runner.stop()
    assert calls > 100
    lost = [r.getMessage() for r in caplog.records if "Connection to broker lost" in r.getMessage()]
    assert lost == []
