"""The complaints service's entrypoints: intake, actions, dispatch orders, public tracking,
the escalation timer, and the staff list it keeps from the gateway's events.

The rules live in `domain` (plain) and `handling` (on the database); each entrypoint here
opens the transaction, calls them, and commits.
"""

from datetime import UTC, datetime

from nameko.timer import Timer

from servicekit import errors, settings
from servicekit.bus import subscribe
from servicekit.checked_settings import CheckedSettings
from servicekit.cpu_share import CpuShare
from servicekit.database import Database
from servicekit.heap import SteadyHeap
from servicekit.idempotency import handle_each_once, run_command_once
from servicekit.metrics import JOB_RUNS, HealthRpc, Metrics, TurnLag
from servicekit.outbox import OutboxRelay
from servicekit.pages import decode_cursor
from servicekit.rpc import rpc
from services.complaints import handling
from services.complaints.models import KIT


def _now() -> datetime:
    return datetime.now(UTC)


class EscalationTimer(Timer):
    """A timer that reads how often to look for overdue complaints when its service
    starts (`COMPLAINTS_ESCALATION_SECONDS`, default 15), not when the code is imported."""

    def __init__(self, **kwargs):
        super().__init__(interval=None, **kwargs)

    def setup(self):
        self.interval = settings.float_setting("COMPLAINTS_ESCALATION_SECONDS", 15.0, minimum=0.1)
        super().setup()


escalation_timer = EscalationTimer.decorator


class ComplaintsService(HealthRpc):
    name = "complaints"

    db = Database("complaints")
    relay = OutboxRelay("complaints", KIT)
    heap = SteadyHeap()
    turn_lag = TurnLag()
    cpu_share = CpuShare()
    settings_checked = CheckedSettings()
    metrics = Metrics("complaints")

    @rpc(expected_exceptions=errors.EXPECTED)
    def file_complaint(self, data: dict, actor: dict | None = None, idempotency_key=None):
        """Record a complaint from any channel; the complaint with its form.

        Example: `file_complaint({"guest_id": 7, "channel": "phone", "category": "noise",
        "description": "Party next door at 2am"}, {"id": 3, "username": "ana", "role":
        "agent", "department": "front_office"}, "revisit-item:12")`
        """
        return run_command_once(
            self.db,
            KIT,
            "file_complaint",
            idempotency_key,
            lambda: handling.file_complaint(self.db, data, actor, _now()),
        )

    @rpc(expected_exceptions=errors.EXPECTED)
    def act(self, complaint_id: int, request: dict, actor: dict | None = None):
        """One line of the processing form, e.g. `act(12, {"action": "dispatch",
        "department": "engineering", "note": "AC broken in 304"}, actor)`."""
        answer = handling.act(self.db, complaint_id, request, actor, _now())
        self.db.commit()
        return answer

    @rpc(expected_exceptions=errors.EXPECTED)
    def report(self, order_id: int, result: str, actor: dict | None = None):
        """A department's answer on its dispatch order: `report(4, "AC fixed", actor)`."""
        answer = handling.report(self.db, order_id, result, actor, _now())
        self.db.commit()
        return answer

    @rpc(expected_exceptions=errors.EXPECTED)
    def get_complaint(self, complaint_id: int):
        return handling.get_complaint(self.db, complaint_id, _now())

    @rpc(expected_exceptions=errors.EXPECTED)
    def get_form(self, complaint_id: int):
        return handling.get_form(self.db, complaint_id)

    @rpc(expected_exceptions=errors.EXPECTED)
    def list_complaints(self, filters: dict, limit: int = 50, cursor: str | None = None):
        """`filters`: status, department, guest_id, channel, overdue (bool), tracking_code."""
        after = decode_cursor(cursor, int) or 0
        return handling.list_complaints(self.db, filters, limit, after, _now())

    @rpc(expected_exceptions=errors.EXPECTED)
    def list_dispatch_orders(self, filters: dict, limit: int = 50, cursor: str | None = None):
        """A department's queue: `filters` department, status (open|reported|closed)."""
        after = decode_cursor(cursor, int) or 0
        return handling.list_orders(self.db, filters, limit, after)

    @rpc(expected_exceptions=errors.EXPECTED)
    def get_dispatch_order(self, order_id: int):
        return handling.get_order(self.db, order_id)

    @rpc(expected_exceptions=errors.EXPECTED)
    def track(self, tracking_code: str):
        """Public: `track("K7QX-3MPA-WZ9DR")` -> status, department, steps; nothing personal."""
        return handling.track(self.db, tracking_code)

    @escalation_timer
    def escalate_overdue(self):
        """Escalate every complaint the day has ended on, to its department's director."""
        self._escalate()

    @rpc(expected_exceptions=errors.EXPECTED)
    def run_job(self, job: str, options: dict | None = None):
        """`POST /admin/jobs/escalations` -> `{"job": "escalations", "escalated": 2}`."""
        if job != "escalations":
            raise errors.NotFound(f"complaints runs no job called {job}")
        return {"job": job, "escalated": self._escalate()}

    def _escalate(self) -> int:
        escalated = handling.escalate_overdue(self.db, _now())
        JOB_RUNS.labels(self.name, "escalations").inc(escalated)
        return escalated

    @subscribe("staff_registered")
    def on_staff_registered(self, events):
        self._keep_staff(events)

    @subscribe("staff_updated")
    def on_staff_updated(self, events):
        self._keep_staff(events)

    def _keep_staff(self, events) -> None:
        handle_each_once(
            self.db, KIT, events, lambda session, e: handling.keep_staff(session, e.data)
        )
