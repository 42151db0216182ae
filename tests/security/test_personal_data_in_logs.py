"""No card number, phone, email or birthday in any log line or metric label: a whole flow
through the gateway (a guest with all of them, the caller screen, a booking refused for a
card number and one accepted, complaints, a birthday greeting, conflicts) while every log
record goes through the handler `infra/nameko.yaml` configures, then a grep of what it
wrote and of every /metrics page."""

import io
import logging
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from pythonjsonlogger.json import JsonFormatter

from servicekit.logs import RedactPersonalData
from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[2]
PHONE = "+34612345678"
EMAIL = "lucia.marquez@example.org"
BIRTHDAY = "1980-05-17"
CARD = "4111 1111 1111 1111"
OTHER_PHONE, OTHER_EMAIL = "+34699887766", "pedro.caller@example.net"
SECRETS = (
    PHONE,
    PHONE[3:],  # national form
    "612 34 56 78",
    EMAIL,
    "lucia.marquez",
    BIRTHDAY,
    CARD,
    CARD.replace(" ", ""),
    OTHER_PHONE,
    OTHER_PHONE[3:],
    OTHER_EMAIL,
)


class Everything(logging.Handler):
    """Keeps what a record says before any filter touched it (to report, not to fail)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[str] = []

    def emit(self, record):
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        self.records.append(f"{record.name} {record.getMessage()} {extras} {record.exc_info}")


_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", (), None))) | {"message", "asctime"}


def configured_logging() -> dict:
    """The LOGGING section of infra/nameko.yaml (its ${...} defaults stand as written)."""
    return yaml.safe_load((ROOT / "infra" / "nameko.yaml").read_text())["LOGGING"]


@pytest.fixture
def logs():
    """The handler infra/nameko.yaml configures (JSON, redacted) on the root logger, and
    its levels (root INFO, quieter libraries)."""
    cfg = configured_logging()
    formatter = cfg["formatters"]["json"]
    assert formatter["()"] == "pythonjsonlogger.json.JsonFormatter"
    assert cfg["filters"]["redact"]["()"] == "servicekit.logs.RedactPersonalData"
    assert cfg["handlers"]["stderr"]["filters"] == ["redact"]
    stream = io.StringIO()
    configured = logging.StreamHandler(stream)
    configured.setFormatter(
        JsonFormatter(formatter["fmt"], rename_fields=formatter["rename_fields"])
    )
    configured.addFilter(RedactPersonalData())
    raw = Everything()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in cfg["loggers"]}
    levels[None] = root.level
    root.handlers.insert(0, raw)  # first, so it sees records before the filter rewrites them
    root.addHandler(configured)
    root.setLevel(logging.INFO)
    for name, logger_cfg in cfg["loggers"].items():
        logging.getLogger(name).setLevel(logger_cfg["level"])
    try:
        yield stream, raw
    finally:
        root.removeHandler(configured)
        root.removeHandler(raw)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def run_the_flow(suite) -> None:
    admin, agent = suite.as_admin(), suite.as_role("agent", "front_office")
    room_type = {"code": "deluxe", "name": "Deluxe", "price": "180.00", "currency": "EUR"}
    assert admin.post("/room-types", {**room_type, "rooms": 5}).status_code == 201

    guest = agent.post(
        "/guests",
        {
            "name": "Lucía Márquez",
            "phone": "612 34 56 78",
            "email": EMAIL,
            "birthday": BIRTHDAY,
            "category": "vip",
            "language": "es",
        },
    )
    assert guest.status_code == 201, guest.text
    guest_id = guest.json()["id"]
    again = agent.post("/guests", {"name": "Lucía M", "phone": PHONE, "category": "individual"})
    assert again.status_code == 409
    assert (
        agent.post("/guests", {"name": "X", "phone": "call me", "email": "nope"}).status_code == 400
    )
    assert agent.get(f"/callers/{PHONE}").status_code == 200
    assert agent.get(f"/guests?phone={PHONE}").status_code == 200
    assert agent.patch(f"/guests/{guest_id}", {"email": "l.m@example.org"}).status_code == 200
    assert agent.patch(f"/guests/{guest_id}", {"email": EMAIL}).status_code == 200

    booking = {
        "guest_id": guest_id,
        "room_type": "deluxe",
        "arrival": (date.today() + timedelta(days=7)).isoformat(),
        "nights": 2,
        "rooms": 1,
        "payment_method": "credit_card",
        "contact": {"phone": PHONE, "email": EMAIL},
    }
    refused = agent.post("/reservations", {**booking, "channel": f"card {CARD}"})
    assert refused.status_code == 400, refused.text
    assert CARD not in refused.text and CARD.replace(" ", "") not in refused.text
    held = agent.post("/reservations", booking)
    assert held.status_code == 201, held.text
    cancelled = agent.post(f"/reservations/{held.json()['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text

    for complaint in (
        {"guest_id": guest_id, "channel": "phone", "category": "noise", "description": "Loud"},
        {
            "contact": {"name": "Pedro", "phone": OTHER_PHONE, "email": OTHER_EMAIL},
            "channel": "email",
            "category": "cleanliness",
            "description": "Dusty room",
        },
    ):
        assert agent.post("/complaints", complaint).status_code == 201
    greeted = admin.post(
        "/admin/jobs/birthday-greetings", {"date": f"{date.today().year}{BIRTHDAY[4:]}"}
    )
    assert greeted.status_code == 200, greeted.text
    # held, cancelled, complaint received, birthday: all written and sent
    wait_for(
        lambda: len(admin.get(f"/notifications?guest_id={guest_id}").json()["items"]) >= 4,
        timeout=20,
    )


def test_no_personal_data_in_any_log_line_or_metric_label(logs, suite):
    stream, raw = logs
    run_the_flow(suite)
    written = stream.getvalue().splitlines()
    # In tests every container runs in this process, so the gateway's page shows the one
    # registry all of them count in: every service's labels are on it.
    pages = [suite.get("/metrics").text]
    labels = [line for page in pages for line in page.splitlines() if "{" in line]

    leaked_lines = [line for line in written if any(s in line for s in SECRETS)]
    leaked_labels = [line for line in labels if any(s in line for s in SECRETS)]
    needed_redaction = [r for r in raw.records if any(s in r for s in SECRETS)]
    print(
        f"\npersonal data: {len(written)} log lines and {len(labels)} metric samples scanned; "
        f"leaked in logs {len(leaked_lines)}, in metric labels {len(leaked_labels)}; "
        f"records the redaction filter had to mask {len(needed_redaction)}"
    )
    for record in needed_redaction[:5]:
        print("  masked:", record[:300])
    assert len(written) > 0 and len(labels) > 0
    assert not leaked_lines, leaked_lines[:5]
    assert not leaked_labels, leaked_labels[:5]
