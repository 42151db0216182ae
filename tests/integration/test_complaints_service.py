"""The complaints service on real PostgreSQL and RabbitMQ: filing over RPC as the revisits
service does (idempotent), the staff list kept from the gateway's events, and the
escalation job and dispatches under concurrency."""

import uuid
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
from nameko.standalone.rpc import ServiceRpcClient
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from servicekit import errors, events, outbox, settings
from servicekit.idempotency import run_command_once
from services.complaints import handling
from services.complaints.models import KIT, Complaint, DispatchOrder, FormLine, StaffMember
from services.complaints.service import ComplaintsService
from tests.support import Api, publish, wait_for

NOW = datetime.now(UTC)
NOISE = {"guest_id": 7, "channel": "revisit", "category": "noise", "description": "Loud bar"}
AGENT = {"id": 31, "username": "ana", "role": "agent", "department": "customer_service"}


@pytest.fixture
def engine(clean_databases):
    engine = create_engine(settings.database_url("complaints"))
    yield engine
    engine.dispose()


def _publish_staff(event_type: str, data: dict, event_id: uuid.UUID | None = None) -> None:
    publish(events.envelope(event_type, data, event_id=event_id))


def _staff(engine, staff_id):
    with Session(engine) as session:
        return session.get(StaffMember, staff_id)


def test_filing_over_rpc_is_idempotent_and_owners_follow_the_staff_list(start_services, engine):
    start_services(ComplaintsService)
    with ServiceRpcClient("complaints") as complaints:
        first = complaints.file_complaint(NOISE, None, idempotency_key="revisit-item:9")
        again = complaints.file_complaint(NOISE, None, idempotency_key="revisit-item:9")
        assert again == first
        # no staff member known yet: the department's manager role owns it
        assert first["owner"] == {
            "kind": "role",
            "id": None,
            "username": None,
            "role": "manager",
            "department": "security",
        }
        assert first["form"][0]["by"]["kind"] == "system"
        with pytest.raises(errors.ValidationFailed) as refused:
            complaints.file_complaint({**NOISE, "category": "ghosts"}, AGENT)
        assert set(refused.value.details) == {"category"}

        manager = {
            "staff_id": 12,
            "username": "lucia",
            "name": "Lucía Pérez",
            "role": "manager",
            "department": "security",
            "email": "lucia@example.com",
            "phone": None,
        }
        registered = uuid.uuid4()
        _publish_staff("staff_registered", manager, registered)
        _publish_staff("staff_registered", manager, registered)  # delivered twice
        wait_for(lambda: _staff(engine, 12))
        by_system = complaints.file_complaint(NOISE, None)
        assert by_system["owner"]["kind"] == "staff" and by_system["owner"]["id"] == 12

        taken = complaints.file_complaint(NOISE, AGENT, idempotency_key="revisit-item:10")
        assert taken["owner"] == {"kind": "staff", **AGENT}
        dispatched = complaints.act(taken["id"], {"action": "dispatch"}, AGENT)
        assert dispatched["owner"]["username"] == "lucia"

        _publish_staff("staff_updated", {**manager, "active": False})
        wait_for(lambda: not _staff(engine, 12).active)
        later = complaints.file_complaint(NOISE, None)
        assert later["owner"]["kind"] == "role"
        with pytest.raises(errors.NotFound):
            complaints.get_complaint(999)
        with pytest.raises(errors.NotFound):
            complaints.run_job("hold-release", {})
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Complaint)) == 4


def _file(engine, received_at=None) -> int:
    data = {**NOISE, "received_at": received_at.isoformat() if received_at else None}
    with Session(engine) as session:
        complaint = handling.file_complaint(session, data, AGENT, NOW)
        session.commit()
        return complaint["id"]


def test_the_escalation_job_skips_what_another_replica_holds(engine):
    yesterday = NOW - timedelta(days=1)
    held, free = _file(engine, yesterday), _file(engine, yesterday)
    today = _file(engine)
    with Session(engine) as other_replica, Session(engine) as session:
        other_replica.scalars(select(Complaint).where(Complaint.id == held).with_for_update()).one()
        assert handling.escalate_overdue(session, NOW) == 1
        other_replica.rollback()
        assert handling.escalate_overdue(session, NOW) == 1
        assert handling.escalate_overdue(session, NOW) == 0
        statuses = dict(session.execute(select(Complaint.id, Complaint.status)).all())
        assert statuses == {held: "escalated", free: "escalated", today: "open"}
        owners = session.scalars(select(Complaint.owner).where(Complaint.id == held)).one()
        assert owners == {
            "kind": "role",
            "id": None,
            "username": None,
            "role": "director",
            "department": "security",
        }
        escalations = session.scalar(
            select(func.count()).select_from(FormLine).where(FormLine.action == "escalate")
        )
        assert escalations == 2
        # the end of today comes, and today's complaint goes too
        tomorrow = NOW + timedelta(days=1)
        assert handling.escalate_overdue(session, tomorrow) == 1


def test_many_staff_dispatching_at_once_open_one_order(engine):
    complaint_id = _file(engine)

    def dispatch(_):
        with Session(engine) as session:
            try:
                handling.act(session, complaint_id, {"action": "dispatch"}, AGENT, NOW)
                session.commit()
                return "ok"
            except errors.InvalidState:
                return "refused"

    outcomes = list(eventlet.GreenPool(20).imap(dispatch, range(20)))
    assert outcomes.count("ok") == 1 and outcomes.count("refused") == 19
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(DispatchOrder)) == 1


def test_a_dispatch_after_an_escalation_replaces_the_order_still_open(engine):
    complaint_id = _file(engine)
    director = {**AGENT, "id": 32, "username": "dir", "role": "director"}
    for request, actor in (
        ({"action": "dispatch", "department": "security"}, AGENT),
        ({"action": "escalate", "note": "the bar is still loud"}, AGENT),
        ({"action": "dispatch", "department": "food_beverage", "note": "close it"}, director),
    ):
        with Session(engine) as session:
            handling.act(session, complaint_id, request, actor, NOW)
            session.commit()
    with Session(engine) as session:
        orders = session.execute(
            select(DispatchOrder.department, DispatchOrder.status).order_by(DispatchOrder.id)
        ).all()
    assert orders == [("security", "closed"), ("food_beverage", "open")]


def test_a_report_waiting_on_a_resolution_finds_its_order_closed(engine):
    """The department reports while the desk resolves: the report, which read its order
    before it queued for the complaint's lock, must see the order the resolution closed."""
    complaint_id = _file(engine)
    with Session(engine) as session:
        answer = handling.act(session, complaint_id, {"action": "dispatch"}, AGENT, NOW)
        session.commit()
    order_id = answer["dispatch_orders"][0]["id"]
    manager = {"id": 40, "username": "sec", "role": "manager", "department": "security"}

    def report():
        with Session(engine) as session:
            try:
                handling.report(session, order_id, "bar closed at 23:00", manager, NOW)
                session.commit()
                return "reported"
            except errors.InvalidState:
                return "refused"

    def reports_waiting_on_a_lock() -> int:
        with engine.connect() as conn:
            return conn.scalar(
                text(
                    "select count(*) from pg_stat_activity"
                    " where datname = current_database() and wait_event_type = 'Lock'"
                )
            )

    with Session(engine) as resolving:
        handling.act(resolving, complaint_id, {"action": "resolve", "result": "ok"}, AGENT, NOW)
        racing = eventlet.spawn(report)
        wait_for(lambda: reports_waiting_on_a_lock() == 1)
        resolving.commit()
    assert racing.wait() == "refused"
    with Session(engine) as session:
        lines = session.scalars(
            select(FormLine.action)
            .where(FormLine.complaint_id == complaint_id)
            .order_by(FormLine.id)
        ).all()
        assert session.get(DispatchOrder, order_id).status == "closed"
    assert lines == ["receive", "dispatch", "resolve"]


def test_the_same_filing_retried_at_once_files_one_complaint(engine):
    def file(_):
        with Session(engine) as session:
            return run_command_once(
                session,
                KIT,
                "file_complaint",
                "revisit-item:77",
                lambda: handling.file_complaint(session, NOISE, AGENT, NOW),
            )["id"]

    ids = set(eventlet.GreenPool(10).imap(file, range(10)))
    assert len(ids) == 1
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Complaint)) == 1


def test_a_retry_refused_because_of_its_first_try_answers_with_the_first_try_s_answer(engine):
    """The first try commits while its retry runs, and what it did makes the retry's own
    work fail (here: the retry finds the complaint already in the state the first left
    it). The client asked once: it gets the first try's answer, not the refusal."""
    key = "revisit-item:78"

    def first_try() -> dict:
        with Session(engine) as session:
            return run_command_once(
                session,
                KIT,
                "file_complaint",
                key,
                lambda: handling.file_complaint(session, NOISE, AGENT, NOW),
            )

    def retry() -> dict:
        filed.append(first_try())  # commits while the retry is under way
        raise errors.InvalidState("the first try has already done this")

    filed: list[dict] = []
    with Session(engine) as session:
        answer = run_command_once(session, KIT, "file_complaint", key, retry)
        assert answer == filed[0] and answer["id"]
        # without a stored answer under the key, the refusal is the answer
        with pytest.raises(errors.InvalidState):
            run_command_once(session, KIT, "file_complaint", "revisit-item:79", retry)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Complaint)) == 1


def test_a_lost_database_is_a_503_never_a_500(start_services, suite_config, monkeypatch):
    from gateway.service import GatewayService

    # nothing listens on port 1: the complaints database is as good as down
    monkeypatch.setenv("COMPLAINTS_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:1/x")
    start_services(GatewayService, ComplaintsService)
    api = Api(f"http://127.0.0.1:{suite_config['port']}")
    tracked = api.get("/track/K7QX-3MPA-WZ9DR")
    assert tracked.status_code == 503, tracked.text
    assert tracked.json()["error"] == "SERVICE_UNAVAILABLE"


def test_a_savepoint_s_release_is_not_the_commit_of_the_events_recorded(engine, monkeypatch):
    """SQLAlchemy announces a released savepoint as a commit: the events recorded in the
    transaction are still written and sent at its own COMMIT only, and none at all when
    it rolls back afterwards."""
    sent: list[str] = []

    class Relay:
        def send_committed(self, rows, committed_at):
            sent.extend(row["type"] for row in rows)

    monkeypatch.setitem(outbox._relays, KIT.outbox, Relay())
    data = {"staff_id": 1, "username": "ana", "name": "Ana", "role": "agent", "department": None}
    with Session(engine) as session:
        outbox.record(session, KIT, "staff_registered", data)
        # recorded in a savepoint: refused, as the savepoint's rollback could not take it back
        with session.begin_nested(), pytest.raises(RuntimeError):
            outbox.record(session, KIT, "staff_updated", data)
        assert sent == []
        session.rollback()
        assert sent == []
        assert session.scalar(text("select count(*) from outbox")) == 0

        outbox.record(session, KIT, "staff_registered", data)
        with session.begin_nested():
            pass
        assert sent == []
        session.commit()
    assert sent == ["staff_registered"]
    with Session(engine) as session:
        assert session.scalar(text("select count(*) from outbox")) == 1
