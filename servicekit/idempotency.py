"""Doing a thing once: an event handled once per `event_id`, a command once per key.

Both record themselves in the same transaction as their effects, so a crash between the
effect and the record cannot happen: either both commit, or neither.
"""

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from servicekit.database import KitTables
from servicekit.events import Event


def handle_once(session: Session, kit: KitTables, event: Event) -> bool:
    """Mark `event` handled in the session's transaction; False if it already was.

    Example::

        with self.db.begin():
            if not handle_once(self.db, KIT, event):
                return
            ...effects...

    A second delivery running at the same moment waits on the row until the first
    commits, then sees it: the effects never run twice.
    """
    inserted = session.execute(
        insert(kit.handled_events)
        .values(event_id=event.event_id, type=event.type)
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
    return inserted.rowcount == 1


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
    the same key at once: the second waits on the key's row, fails to insert it, and
    answers with what the first stored.
    """
    if key is None:
        result = execute()
        session.commit()
        return result
    stored = _stored_result(session, kit, command, key)
    if stored is not None:
        return stored
    result = execute()
    try:
        session.execute(insert(kit.commands).values(key=key, command=command, result=result))
        session.commit()
    except IntegrityError:
        session.rollback()
        stored = _stored_result(session, kit, command, key)
        if stored is None:
            raise
        return stored
    return result


def _stored_result(session: Session, kit: KitTables, command: str, key: str) -> Any:
    return session.execute(
        select(kit.commands.c.result).where(
            kit.commands.c.key == key, kit.commands.c.command == command
        )
    ).scalar_one_or_none()
