"""What the kit does with the connections it keeps idle between uses (pooled database
connections, the RPC request and reply connections, the outbox's confirm channel, the
gateway's rate-limiter clients)."""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from amqp.exceptions import AMQPError
from eventlet.patcher import original
from kombu.exceptions import KombuError

log = logging.getLogger(__name__)

T = TypeVar("T")

# What using a broker connection raises when the broker has closed it or gone away: a socket
# error, kombu's, or py-amqp's own (a `connection.close` read while publishing, e.g.
# CONNECTION_FORCED, raises `amqp.exceptions.ConnectionForced`, neither of the others).
BROKER_GONE = (AMQPError, KombuError, OSError)

# not eventlet's: asking whether a socket has data must not wait for the hub's next turn
_select = original("select").select


def closed_by_peer(idle) -> bool:
    """Whether the other end has spoken on an idle connection (a socket, or anything with a
    `fileno()`), asked without a round trip. Nothing is sent to a connection kept idle unless
    its server is ending it (a restart, a forced close: a last message, then the socket
    closed); used again, it would take a request without error and drop it."""
    return bool(_select([idle], [], [], 0)[0])


def close_quietly(connection) -> None:
    """Close a broker connection that may already be broken."""
    try:
        connection.close()
    except Exception:  # already broken; nothing more to release
        log.debug("closing a broken broker connection", exc_info=True)


class KeptOpen(Generic[T]):
    """Connections (or clients, each on a connection of its own) kept open between uses.

    Each is used by one green thread at a time (two writing to one socket could interleave
    what they send), so there are as many as were ever in use at once. One that fails in
    use is closed, not kept: the next use opens another. One that `gone` says its server
    has ended meanwhile is closed when it is next taken, before it is used.

    Example::

        kept = KeptOpen(open_connection, close=close_quietly)
        with kept.use() as connection:
            ...
    """

    def __init__(
        self,
        open_: Callable[[], T],
        close: Callable[[T], None],
        gone: Callable[[T], bool] = lambda kept: False,
    ):
        self.open = open_
        self.close_one = close
        self.gone = gone
        self.idle: list[T] = []

    @contextmanager
    def use(self) -> Iterator[T]:
        kept = self._take()
        if kept is None:
            kept = self.open()
        try:
            yield kept
        except BaseException:
            self.close_one(kept)
            raise
        self.idle.append(kept)

    def _take(self) -> T | None:
        while self.idle:
            kept = self.idle.pop()
            if not self.gone(kept):
                return kept
            self.close_one(kept)
        return None

    def close(self) -> None:
        while self.idle:
            self.close_one(self.idle.pop())
