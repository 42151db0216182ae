"""Staff accounts: created by an admin, listed for whoever assigns work."""

from gateway import staff
from gateway.http import ADMINS, MANAGERS, route
from gateway.models import KIT
from gateway.schemas.common import page_of
from gateway.schemas.staff import Staff, StaffCreate, StaffQuery
from servicekit.idempotency import run_command_once
from servicekit.pages import decode_cursor, encode_cursor


class StaffRoutes:
    @route(
        "POST",
        "/staff",
        roles=ADMINS,
        body=StaffCreate,
        response=Staff,
        status=201,
        errors=(409,),
        tag="staff",
        summary="Create a staff account",
        description='Example: `{"username": "lucia", "password": "s3cret-pass", "name": '
        '"Lucía Pérez", "role": "manager", "department": "housekeeping"}`',
    )
    def create_staff(self, call):
        return run_command_once(
            self.db,
            KIT,
            "create_staff",
            call.idempotency_key,
            lambda: staff.register(self.db, call.body),
        )

    @route(
        "GET",
        "/staff",
        roles=MANAGERS,
        query=StaffQuery,
        response=page_of(Staff),
        tag="staff",
        summary="Staff accounts, by role and department",
    )
    def list_staff(self, call):
        q = call.query
        items, last = staff.list_staff(
            self.db,
            q.get("role"),
            q.get("department"),
            q["limit"],
            decode_cursor(q["cursor"], int) or 0,
        )
        return {"items": items, "next": encode_cursor(last) if last else None}
