"""What happens after the call: complaint items filed with the complaints service, and
departments reminded before a promised response comes due (the `revisit-reminders` job).

Both are safe with several replicas: rows are taken with `FOR UPDATE SKIP LOCKED`, so two
runs never act on the same row at once, and filing carries an idempotency key derived
from the item, so a complaint is never filed twice even if a reply was lost.
"""

import logging
from datetime import UTC, datetime

import eventlet
from sqlalchemy import select
from sqlalchemy.orm import Session

from servicekit import outbox
from services.revisits import domain
from services.revisits.calls import promise_event
from services.revisits.models import KIT, PromisedResponse, Revisit, RevisitItem, StaffMember

log = logging.getLogger(__name__)

# How long one filing may wait for the complaints service before it is left for later.
FILING_TIMEOUT = 5.0
BATCH = 100


def file_complaint_items(session: Session, complaints, item_ids: list[int] | None = None) -> dict:
    """File the complaint items not filed yet (all of them, or those of `item_ids`) and
    commit; an item the complaints service could not take stays for the next run."""
    query = (
        select(RevisitItem)
        .where(RevisitItem.kind == "complaint", RevisitItem.complaint_id.is_(None))
        .order_by(RevisitItem.id)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    )
    if item_ids is not None:
        query = query.where(RevisitItem.id.in_(item_ids))
    filed = pending = 0
    for item in session.scalars(query).all():
        try:
            with eventlet.Timeout(FILING_TIMEOUT):
                complaint = complaints.file_complaint(
                    complaint_for(item),
                    actor_for(session, item.revisit),
                    idempotency_key=f"revisit-item:{item.id}",
                )
            item.complaint_id = complaint["id"]
            filed += 1
        except (Exception, eventlet.Timeout) as exc:
            item.filing_attempts += 1
            pending += 1
            log.warning(
                "complaint item not filed yet; will retry",
                extra={"item": item.id, "error": exc.__class__.__name__},
            )
    session.commit()
    return {"filed": filed, "pending": pending}


def complaint_for(item: RevisitItem) -> dict:
    revisit = item.revisit
    data = {
        "channel": "revisit",
        # the department routes it; the category a complaint item is filed under when the
        # agent named none
        "category": item.category or domain.COMPLAINT_ITEM_CATEGORY,
        "description": item.text,
        "department": item.department,
        # when the guest raised it: a filing retried later must not move its due time
        "received_at": item.routed_at.isoformat(),
    }
    if revisit.guest_id is not None:
        data["guest_id"] = revisit.guest_id
    else:
        data["contact"] = revisit.contact
    return data


def actor_for(session: Session, revisit: Revisit) -> dict:
    """The agent who took the complaint during the call, as the complaints form records."""
    member = session.get(StaffMember, revisit.agent_id) if revisit.agent_id else None
    return {
        "id": revisit.agent_id,
        "username": revisit.agent_username,
        "role": member.role if member else "agent",
        "department": member.department if member else None,
    }


def send_reminders(session: Session, now: datetime | None = None) -> int:
    """Remind the department once, shortly before a promised response is due (or at once,
    if the job was not running then); commits. How many reminders it sent."""
    now = now or datetime.now(UTC)
    promises = session.scalars(
        select(PromisedResponse)
        .where(
            PromisedResponse.reminded_at.is_(None),
            PromisedResponse.respond_by <= now + domain.reminder_lead(),
        )
        .order_by(PromisedResponse.respond_by)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    for promise in promises:
        promise.reminded_at = now
        outbox.record(
            session,
            KIT,
            "response_promised",
            promise_event(promise.revisit, promise, now, reminder=True),
        )
    session.commit()
    return len(promises)
