"""The revisits service's entrypoints: follow-up calls scheduled from the bus, the agents'
worklist and outcomes, sign-off by department managers, the evaluation and commissions.

The rules live in `domain`; `scheduling`, `calls`, `followups` and `evaluation` do the
database work; this class only wires them to RPC, events and the timer.
"""

from nameko.timer import timer

from servicekit import errors
from servicekit.bus import subscribe
from servicekit.checked_settings import CheckedSettings
from servicekit.cpu_share import CpuShare
from servicekit.database import Database
from servicekit.heap import SteadyHeap
from servicekit.idempotency import handle_each_once, handle_once_by_key, run_command_once
from servicekit.metrics import JOB_RUNS, HealthRpc, Metrics, TurnLag
from servicekit.outbox import OutboxRelay
from servicekit.pages import DEFAULT_LIMIT
from servicekit.rpc import ServiceRpc, rpc
from services.revisits import calls, domain, evaluation, followups, scheduling
from services.revisits.models import KIT

REMINDERS_JOB = "revisit-reminders"


def _remember_guest(session, event):
    scheduling.remember_guest(session, event.data, event.occurred_at)


def _remember_staff(session, event):
    scheduling.remember_staff(session, event.data, event.occurred_at)


class RevisitsService(HealthRpc):
    name = "revisits"

    db = Database("revisits")
    relay = OutboxRelay("revisits", KIT)
    heap = SteadyHeap()
    turn_lag = TurnLag()
    cpu_share = CpuShare()
    settings_checked = CheckedSettings(
        domain.check_defaults,
        domain.max_attempts,
        domain.commission_rate,
        domain.commission_window,
        domain.reminder_lead,
    )
    metrics = Metrics("revisits")
    complaints = ServiceRpc("complaints", expiration=followups.FILING_TIMEOUT)

    # --- what other services announce --------------------------------------------------

    @subscribe("guest_registered")
    def on_guest_registered(self, events):
        self._once(events, _remember_guest)

    @subscribe("guest_updated")
    def on_guest_updated(self, events):
        self._once(events, _remember_guest)

    @subscribe("staff_registered")
    def on_staff_registered(self, events):
        self._once(events, _remember_staff)

    @subscribe("staff_updated")
    def on_staff_updated(self, events):
        self._once(events, _remember_staff)

    @subscribe("guest_checked_out")
    def on_guest_checked_out(self, events):
        """A `post_stay` revisit due the day after check-out; the commission ledger."""
        self._once(events, lambda session, e: scheduling.schedule_post_stay(session, e.data))

    @subscribe("complaint_filed")
    def on_complaint_filed(self, events):
        """A `complaint` revisit due within three days of the complaint's receipt (one per
        complaint: its unique index settles an event delivered twice)."""
        handle_once_by_key(
            self.db,
            KIT,
            events,
            lambda session, fresh: scheduling.schedule_complaint_calls(
                session, [e.data for e in fresh]
            ),
        )

    @subscribe("complaint_resolved")
    def on_complaint_resolved(self, events):
        self._once(events, lambda session, e: scheduling.note_complaint_resolved(session, e.data))

    def _once(self, events, effect):
        handle_each_once(self.db, KIT, events, effect)

    # --- the agents' worklist -----------------------------------------------------------

    @rpc(expected_exceptions=errors.EXPECTED)
    def list_revisits(self, filters: dict, limit: int = 50, cursor: str | None = None) -> dict:
        """`filters`: {"status": "due", "overdue": true, "agent": "ana", "guest_id": 7,
        "kind": "complaint", "due_before": "2026-11-25"}, each optional."""
        return calls.worklist(self.db, filters, limit, cursor)

    @rpc(expected_exceptions=errors.EXPECTED)
    def get_revisit(self, revisit_id: int) -> dict:
        return calls.show(self.db, calls.find(self.db, revisit_id))

    @rpc(expected_exceptions=errors.EXPECTED)
    def take_revisit(self, revisit_id: int, actor: dict, agent_id: int | None = None) -> dict:
        """`take_revisit(12, actor)`; a manager handing it out: `take_revisit(12, actor, 31)`."""
        revisit = calls.take(self.db, revisit_id, actor, agent_id)
        self.db.commit()
        return calls.show(self.db, revisit)

    @rpc(expected_exceptions=errors.EXPECTED)
    def record_outcome(
        self, revisit_id: int, outcome: dict, actor: dict, idempotency_key: str | None = None
    ) -> dict:
        """Example `outcome`: {"reached": true, "notes": "happy", "satisfaction": 4,
        "items": [{"kind": "complaint", "text": "noisy lift", "department": "engineering"}],
        "pending_question": {"text": "late check-out next time?",
        "respond_by": "2026-11-25T12:00:00+00:00"}}. Complaint items are then filed with the
        complaints service; one it cannot take now is filed by the reminders job later."""

        def execute():
            revisit = calls.record_outcome(self.db, revisit_id, outcome, actor)
            return {"item_ids": [i.id for i in revisit.items if i.kind == "complaint"]}

        recorded = run_command_once(self.db, KIT, "record_outcome", idempotency_key, execute)
        if recorded["item_ids"]:
            followups.file_complaint_items(self.db, self.complaints, recorded["item_ids"])
        return calls.show(self.db, calls.find(self.db, revisit_id))

    @rpc(expected_exceptions=errors.EXPECTED)
    def sign_off_item(self, revisit_id: int, item_id: int, result: str, actor: dict) -> dict:
        """Example: sign_off_item(3, 7, "the lift was repaired on Monday", manager)."""
        item = calls.sign_off(self.db, revisit_id, item_id, result, actor)
        self.db.commit()
        return calls.show(self.db, item.revisit)

    # --- the evaluation -----------------------------------------------------------------

    @rpc(expected_exceptions=errors.EXPECTED)
    def report(self, year: int, month: int | None = None) -> dict:
        return evaluation.report(self.db, year, month)

    @rpc(expected_exceptions=errors.EXPECTED)
    def commissions(self, month: str, limit: int = DEFAULT_LIMIT, cursor: str | None = None):
        """`month` as "2026-11" -> `{"month", "rate", "items": [{"agent", "agent_id",
        "guests", "stays", "consumption", "commission", "currency"}], "next"}`."""
        return evaluation.commissions(self.db, month, limit, cursor)

    # --- the reminders job --------------------------------------------------------------

    @timer(interval=60)
    def revisit_reminders(self):
        self._reminders()

    @rpc(expected_exceptions=errors.EXPECTED)
    def run_job(self, job: str, options: dict) -> dict:
        """`POST /admin/jobs/revisit-reminders`: {"job", "reminded", "filed", "pending"}."""
        if job != REMINDERS_JOB:
            raise errors.NotFound(f"the revisits service runs no job called {job}")
        return self._reminders()

    def _reminders(self) -> dict:
        reminded = followups.send_reminders(self.db)
        filing = followups.file_complaint_items(self.db, self.complaints)
        JOB_RUNS.labels("revisits", REMINDERS_JOB).inc(reminded + filing["filed"])
        return {"job": REMINDERS_JOB, "reminded": reminded, **filing}
