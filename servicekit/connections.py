"""What the kit does with the connections it keeps idle between uses (pooled database
connections, the RPC reply connections, the outbox's confirm channel)."""

import logging

from amqp.exceptions import AMQPError
from eventlet.patcher import original
from kombu.exceptions import KombuError

log = logging.getLogger(__name__)

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
