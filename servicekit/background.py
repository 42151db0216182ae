"""Background work in a service's container that starts the moment a commit asks for it.

The notifications courier (send what was queued) works this way; the outbox relay runs its
rounds on the same loop, polling only (the workers send their events themselves).
A `WakeableLoop` runs `work_round()` for as long as it reports more waiting, then sleeps
until a commit in this process asks for it (`request_wakeup(session, flag)` in that
transaction) or `poll_seconds` pass, which picks up work committed by other replicas or
left while a dependency was away. Woken by a commit, it can wait `gather_seconds` first, so
that the commits of that moment are one round rather than one round each. After a failed
round it backs off, up to `max_backoff` seconds.
"""

import logging

import eventlet
from eventlet.event import Event as Signal
from nameko.extensions import DependencyProvider
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_WAKEUPS = "wakeups_requested"
_loops: set["WakeableLoop"] = set()


def request_wakeup(session: Session, flag: str) -> None:
    """Wake the loops listening for `flag` once `session`'s transaction commits."""
    session.info.setdefault(_WAKEUPS, set()).add(flag)


@event.listens_for(Session, "after_commit")
def _wake_loops(session: Session) -> None:
    flags = session.info.pop(_WAKEUPS, None)
    if flags:
        for loop in list(_loops):
            if loop.wake_flag in flags:
                loop.wake()


@event.listens_for(Session, "after_rollback")
def _forget_wakeups(session: Session) -> None:
    session.info.pop(_WAKEUPS, None)


class WakeableLoop(DependencyProvider):
    wake_flag: str | None = None  # none: it polls only
    poll_seconds = 1.0
    max_backoff = 5.0
    gather_seconds = 0.0

    def __init__(self, owner: str):
        self.owner = owner
        self.signal = Signal()
        self.running = False

    def work_round(self) -> bool:
        """Do one round of work; True if more is waiting right away."""
        raise NotImplementedError

    def round_failed(self) -> None:
        log.warning("%s round failed; will retry", type(self).__name__, exc_info=True)

    def start(self):
        self.running = True
        _loops.add(self)
        self.container.spawn_managed_thread(
            self.run, identifier=f"{self.owner}.{type(self).__name__}"
        )

    def stop(self):
        self.running = False
        _loops.discard(self)
        self.wake()
        engine = getattr(self, "engine", None)
        if engine is not None:
            # else its pooled connections stay open until the container is collected
            engine.dispose()

    def kill(self):
        self.stop()

    def wake(self):
        if not self.signal.ready():
            self.signal.send(True)

    def run(self):
        failures = 0
        while self.running:
            # a fresh signal before the round: a commit during the round wakes the next one
            self.signal = Signal()
            try:
                while self.running and self.work_round():
                    pass
                failures = 0
            except Exception:
                failures += 1
                self.round_failed()
                eventlet.sleep(min(0.2 * 2**failures, self.max_backoff))
                continue
            with eventlet.Timeout(self.poll_seconds, False):
                self.signal.wait()
                eventlet.sleep(self.gather_seconds)
