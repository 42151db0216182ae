"""Doing a thing once: an event handled once per `event_id`, a command once per key.

Both record themselves in the same transaction as their effects, so a crash between the
effect and the record cannot happen: either both commit, or neither.
"""

import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from servicekit.database import KitTables, insert_with_commit
from servicekit.events import Event


def handle_once(
    session: Session,
    kit: KitTables,
    batch: list[Event],
    effect: Callable[[Session, list[Event]], Any],
) -> None:
    """In one transaction, mark every event of `batch` handled and apply
    `effect(session, events)` to the events of it not handled before, oldest first.

    Example (an event subscriber's handler that plans a whole batch in one statement)::

        @subscribe("complaint_filed")
        def on_complaint_filed(self, events):
            handle_once(self.db, KIT, events, schedule_complaint_calls)

    A second delivery of an event running at the same moment waits on its row until the
    first commits, then sees it: the effects never run twice. The same event twice in one
    batch (published twice) is applied once.
    """
    with session.begin():
        handled = session.execute(
            _mark_handled(kit.handled_events),
            [{"event_id": event.event_id, "type": event.type} for event in batch],
        )
        first_time = set(handled.scalars())
        fresh = []
        for event in batch:
            if event.event_id in first_time:
                first_time.discard(event.event_id)
                fresh.append(event)
        effect(session, fresh)


def handle_once_by_key(
    session: Session,
    kit: KitTables,
    batch: list[Event],
    effect: Callable[[Session, list[Event]], Any],
) -> None:
    """`handle_once` for an effect whose rows' own unique keys settle a repeated event (a
    revisit per complaint, written with `ON CONFLICT DO NOTHING`): the effect gets every
    event of the batch, once each, those handled before included, and writes nothing for a
    fact it already holds. The events are marked handled with the COMMIT rather than read
    back first: a round trip fewer for the batch. A second delivery of an event running at
    the same moment waits on the first's row of the effect, then finds it and writes
    nothing.

    Example (the revisits service: one revisit per complaint, its unique index)::

        @subscribe("complaint_filed")
        def on_complaint_filed(self, events):
            handle_once_by_key(
                self.db, KIT, events,
                lambda session, each: schedule_complaint_calls(session, [e.data for e in each]),
            )
    """
    once_each = list({event.event_id: event for event in batch}.values())
    with session.begin():
        effect(session, once_each)
        insert_with_commit(
            session,
            kit.handled_events,
            [{"event_id": event.event_id, "type": event.type} for event in once_each],
            skip_existing=True,
        )


def handle_each_once(
    session: Session,
    kit: KitTables,
    batch: list[Event],
    effect: Callable[[Session, Event], Any],
) -> None:
    """`handle_once` with an effect applied event by event, `effect(session, event)`."""

    def each(session: Session, fresh: list[Event]) -> None:
        for event in fresh:
            effect(session, event)

    handle_once(session, kit, batch, each)


def run_command_once(
    session: Session,
    kit: KitTables,
    command: str,
    key: str | None,
    execute: Callable[[], Any],
) -> Any:
    """Run `execute` and commit, or return the stored result of the first run with `key`.

    `execute` does its work in `session` without committing and returns a JSON-ready
    result; that result is stored with the key in the same transaction. Two requests with
    the same key at once (a client's retry racing its first try): the second waits on the
    key's row, fails to insert it, and answers with what the first stored; or the first's
    effects make the second's work fail (the last room taken, the phone on file), and the
    second answers with what the first stored rather than with that refusal.
    """
    if key is None:
        result = execute()
        session.commit()
        return result
    stored = _stored_result(session, kit, command, key)
    if stored is not None:
        return stored
    try:
        result = execute()
        session.execute(_record(kit.commands), {"key": key, "command": command, "result": result})
        session.commit()
    except Exception:
        # a first try with the key committed meanwhile: its answer stands, whether its
        # effects made this try's work fail or only this try's key could not be recorded
        session.rollback()
        stored = _stored_result(session, kit, command, key)
        if stored is None:
            raise
        return stored
    return result


def _stored_result(session: Session, kit: KitTables, command: str, key: str) -> Any:
    return session.execute(
        _stored(kit.commands), {"key": key, "command": command}
    ).scalar_one_or_none()


# Made once for each service's table (building them for every batch and command cost CPU
# too); a batch's rows are given apart from the statement, which SQLAlchemy then writes
# as one INSERT, compiled once.
@functools.cache
def _mark_handled(handled_events: Table):
    return (
        insert(handled_events)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(handled_events.c.event_id)
    )


@functools.cache
def _record(commands: Table):
    return insert(commands)


@functools.cache
def _stored(commands: Table):
    return select(commands.c.result).where(
        commands.c.key == bindparam("key"), commands.c.command == bindparam("command")
    )
