"""The guests service's entrypoints: guest files, groups, the caller screen.

The rules live in `files` (guest files, file numbers, groups) and `caller_screen` (the
projection of other services' events); this class only opens and commits transactions.
"""

from datetime import UTC, datetime

from servicekit import errors
from servicekit.bus import subscribe
from servicekit.checked_settings import CheckedSettings
from servicekit.cpu_share import CpuShare
from servicekit.database import Database
from servicekit.heap import SteadyHeap
from servicekit.idempotency import handle_once, run_command_once
from servicekit.metrics import HealthRpc, Metrics, TurnLag
from servicekit.outbox import OutboxRelay
from servicekit.pages import DEFAULT_LIMIT
from servicekit.rpc import rpc
from services.guests import caller_screen, domain, files
from services.guests.models import KIT

EXPECTED = errors.EXPECTED


class GuestsService(HealthRpc):
    name = "guests"

    db = Database("guests")
    relay = OutboxRelay("guests", KIT)
    heap = SteadyHeap()
    turn_lag = TurnLag()
    cpu_share = CpuShare()
    settings_checked = CheckedSettings()
    metrics = Metrics("guests")

    @rpc(expected_exceptions=EXPECTED)
    def register_guest(self, data, idempotency_key=None, actor=None):
        """Open a guest file with the day's next file number.

        Example: `{"name": "Lucía Pérez", "phone": "600 11 22 33", "category": "vip",
        "language": "es", "arrival_date": "2026-11-24"}` -> the guest with `id`,
        `file_number` "261124001", `card_number` "261124001", `phone` "+34600112233".
        A phone on file -> `Conflict` with `existing_id`; the 1000th of a day -> `Conflict`.
        """
        return run_command_once(
            self.db,
            KIT,
            "register_guest",
            idempotency_key,
            lambda: files.register_guest(self.db, data),
        )

    @rpc(expected_exceptions=EXPECTED)
    def get_guest(self, guest_id):
        """The guest's file: `{"id", "file_number", "card_number", "name", "phone", ...}`."""
        return files.get_guest(self.db, guest_id)

    @rpc(expected_exceptions=EXPECTED)
    def update_guest(self, guest_id, changes, actor=None):
        """Change editable fields, e.g. `{"category": "vip", "notes": "Allergic to nuts"}`."""
        result = files.update_guest(self.db, guest_id, changes)
        self.db.commit()
        return result

    @rpc(expected_exceptions=EXPECTED)
    def find_guests(self, phone=None, file_number=None, name=None, limit=50, cursor=None):
        """Guests by phone, file number, part of the name (`{"items", "next"}`), e.g.
        `name="munoz"` finds "José Muñoz"."""
        return files.find_guests(
            self.db, phone=phone, file_number=file_number, name=name, limit=limit, cursor=cursor
        )

    @rpc(expected_exceptions=EXPECTED)
    def arrivals(self, date=None, limit=DEFAULT_LIMIT, cursor=None):
        """The day's arrivals (`"2026-11-24"`, default today): groups and guests in
        file-number order, `{"date", "items": [{"kind": "guest"|"group", ...}], "next"}`."""
        day = domain.parse_date(date, "date") or files.hotel_today()
        return files.arrivals(self.db, day, limit, cursor)

    @rpc(expected_exceptions=EXPECTED)
    def register_group(self, data, idempotency_key=None, actor=None):
        """Open a group's file: `{"name": "Coro de Bilbao", "arrival_date": "2026-11-24",
        "leader_guest_id": 7}` -> the group with `file_number` and `members`."""
        return run_command_once(
            self.db,
            KIT,
            "register_group",
            idempotency_key,
            lambda: files.register_group(self.db, data),
        )

    @rpc(expected_exceptions=EXPECTED)
    def get_group(self, group_id):
        """The group with its members, in file-number order."""
        return files.get_group(self.db, group_id)

    @rpc(expected_exceptions=EXPECTED)
    def who_is_calling(self, phone, limit=caller_screen.HISTORY_LIMIT):
        """Who is calling from `phone` ("+34600112233"): `{"phone", "guest" | None, "vip",
        "history": [{"at", "kind", "summary", "ref"}], "open": {"complaints",
        "promised_responses"}}`."""
        return caller_screen.screen(self.db, phone, datetime.now(UTC), limit)

    # --- the caller screen's projection: one handler per event the screen shows ------
    # Gathered (servicekit.bus): the screen is read by an agent on a call, never within a
    # moment of what it shows, and a batch of history lines costs this service and its
    # database little more than one line.

    def _project(self, events):
        handle_once(self.db, KIT, events, caller_screen.project)

    @subscribe("reservation_held", gather=True)
    def on_reservation_held(self, events):
        self._project(events)

    @subscribe("reservation_released", gather=True)
    def on_reservation_released(self, events):
        self._project(events)

    @subscribe("reservation_cancelled", gather=True)
    def on_reservation_cancelled(self, events):
        self._project(events)

    @subscribe("guest_checked_in", gather=True)
    def on_guest_checked_in(self, events):
        self._project(events)

    @subscribe("guest_checked_out", gather=True)
    def on_guest_checked_out(self, events):
        self._project(events)

    @subscribe("complaint_filed", gather=True)
    def on_complaint_filed(self, events):
        self._project(events)

    @subscribe("complaint_dispatched", gather=True)
    def on_complaint_dispatched(self, events):
        self._project(events)

    @subscribe("complaint_escalated", gather=True)
    def on_complaint_escalated(self, events):
        self._project(events)

    @subscribe("complaint_reported", gather=True)
    def on_complaint_reported(self, events):
        self._project(events)

    @subscribe("complaint_resolved", gather=True)
    def on_complaint_resolved(self, events):
        self._project(events)

    @subscribe("revisit_scheduled", gather=True)
    def on_revisit_scheduled(self, events):
        self._project(events)

    @subscribe("revisit_completed", gather=True)
    def on_revisit_completed(self, events):
        self._project(events)

    @subscribe("response_promised", gather=True)
    def on_response_promised(self, events):
        self._project(events)

    @subscribe("item_signed_off", gather=True)
    def on_item_signed_off(self, events):
        self._project(events)

    @subscribe("notification_sent", gather=True)
    def on_notification_sent(self, events):
        self._project(events)

    @subscribe("notification_failed", gather=True)
    def on_notification_failed(self, events):
        self._project(events)
