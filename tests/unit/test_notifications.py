from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from services.notifications import templates
from services.notifications.domain import (
    KINDS,
    Channels,
    Recipient,
    birthdays_falling_on,
    choose_channel,
    dedupe_key,
    greeting_day,
    language_of,
    retry_delay,
)

ANA = Recipient("guest:1", "guest 1", name="Ana", email="ana@example.es", phone="+34600111222")


def test_the_preferred_channel_wins_when_it_can_carry_the_message():
    everything = Channels(email=True, sms=True, fax=True)
    assert choose_channel(ANA, everything).channel == "email"
    fax = Recipient("contact", "complaint contact", phone="+34911222333", preferred="fax")
    assert choose_channel(fax, everything).channel == "fax"
    assert choose_channel(Recipient(**{**vars(ANA), "preferred": "sms"}), everything).to == (
        "+34600111222"
    )
    caller = Recipient("guest:2", "guest 2", phone="+34600999888", preferred="phone")
    assert choose_channel(caller, Channels()).channel == "phone"


def test_a_channel_falls_back_to_email_then_sms_then_the_log():
    no_email = Recipient("guest:3", "guest 3", phone="+34600111222", preferred="fax")
    assert choose_channel(no_email, Channels(email=True, sms=True)).channel == "sms"
    assert choose_channel(ANA, Channels(sms=True)).channel == "sms"
    nothing = choose_channel(ANA, Channels())
    # the log names the recipient without their personal data
    assert (nothing.channel, nothing.to) == ("log", "guest 1")


def test_the_language_is_the_guests_else_the_hotels_else_spanish():
    assert language_of("en", "es") == "en"
    assert language_of("EN-gb", "es") == "en"
    assert language_of("fr", "en") == "en"
    assert language_of(None, "de") == "es"


def test_retries_back_off_exponentially_up_to_a_cap():
    delays = [retry_delay(n, 5).total_seconds() for n in range(1, 8)]
    assert delays == [5, 10, 20, 40, 80, 160, 300]


def test_leap_day_birthdays_are_celebrated_on_the_28th_in_other_years():
    assert birthdays_falling_on(date(2026, 2, 28)) == [(2, 28), (2, 29)]
    assert birthdays_falling_on(date(2028, 2, 28)) == [(2, 28)]
    assert birthdays_falling_on(date(2028, 2, 29)) == [(2, 29)]
    assert birthdays_falling_on(date(2026, 5, 17)) == [(5, 17)]


def test_birthdays_are_greeted_once_the_days_greeting_time_has_passed():
    at_nine = time(9, 0)
    assert greeting_day(datetime(2026, 5, 17, 0, 5), at_nine) is None
    assert greeting_day(datetime(2026, 5, 17, 9, 0), at_nine) == date(2026, 5, 17)
    assert greeting_day(datetime(2026, 5, 17, 23, 59), at_nine) == date(2026, 5, 17)


def test_one_notification_per_cause_and_recipient():
    assert dedupe_key("ev-1", ANA) != dedupe_key("ev-2", ANA)
    assert dedupe_key("birthday:2026", ANA) == "birthday:2026/guest:1"


CONTEXT = {
    "name": "Ana",
    "code": "R7K2",
    "readback": "Habitación doble superior, 2 noches",
    "hold_until": datetime(2026, 11, 24, 18, 0, tzinfo=UTC),
    "arrival": date(2026, 11, 24),
    "tracking_code": "K7QX-3MPA-WZ9D",
    "department": "housekeeping",
    "due_at": datetime(2026, 11, 24, 23, 59, tzinfo=UTC),
    "answer_by": datetime(2026, 11, 24, 23, 59, tzinfo=UTC),
    "complaint_id": 5,
    "reason": "not resolved by the end of the day",
    "overdue": True,
    "note": None,
    "result": "Hemos cambiado las toallas.",
    "text": "¿Hay cuna disponible?",
    "respond_by": datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
    "revisit_id": 3,
    "total_price": Decimal("240.00"),
}


@pytest.mark.parametrize("language", ["es", "en"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_a_text_in_both_languages(kind, language):
    subject, body = templates.render(kind, language, CONTEXT)
    assert subject and body
    assert "{{" not in subject + body


def test_texts_speak_the_guests_language():
    subject, body = templates.render("complaint_received", "es", CONTEXT)
    assert subject == "Hemos recibido su queja (K7QX-3MPA-WZ9D)"
    assert "departamento de pisos" in body and "24 de noviembre de 2026 a las 23:59" in body
    subject, body = templates.render("complaint_received", "en", CONTEXT)
    assert subject == "We have received your complaint (K7QX-3MPA-WZ9D)"
    assert "housekeeping department" in body and "by 11:59 PM on November 24, 2026" in body
    subject, _ = templates.render("birthday", "es", CONTEXT)
    assert subject == "¡Feliz cumpleaños, Ana!"
    subject, body = templates.render("reservation_held", "en", {**CONTEXT, "name": None})
    assert subject == "Your reservation R7K2 is confirmed" and body.startswith("Dear guest,")


def test_a_missing_fact_is_an_error_not_a_gap():
    with pytest.raises(Exception, match="tracking_code"):
        templates.render("complaint_resolved", "en", {"name": "Ana", "result": "done"})


def _complaint_event(event_type: str, **data):
    from servicekit import events

    now = datetime.now(UTC)
    base = {
        "complaint_id": 5,
        "tracking_code": "K7QX-3MPA-WZ9DR",
        "guest_id": None,
        "contact": {"name": "Marta Gil", "phone": "+34911222333", "email": None},
        "language": "es",
        "department": "housekeeping",
        "owner": {"kind": "role", "role": "director", "department": "housekeeping"},
        "at": now,
    }
    return events.parse(events.envelope(event_type, {**base, **data}))


@pytest.mark.parametrize(
    ("language", "overdue", "note", "said", "not_said"),
    [
        ("es", True, None, "no se ha resuelto en el plazo", "Motivo"),
        ("es", False, "El cliente insiste", "escalada por el personal", "en el plazo"),
        ("en", False, None, "escalated by staff", "Reason"),
        ("en", False, "VIP guest", "Reason: VIP guest", "in time"),
    ],
)
def test_a_director_reads_why_a_complaint_came_to_them_in_their_language(
    language, overdue, note, said, not_said
):
    context = {"tracking_code": "K7QX", "complaint_id": 5, "department": "housekeeping"}
    _, body = templates.render(
        "complaint_escalated",
        language,
        {**context, "name": "Dolores", "overdue": overdue, "note": note},
    )
    assert said in body and not_said not in body


def test_a_receipt_promises_an_answer_only_by_a_time_still_to_come():
    from services.notifications import notices

    now = datetime.now(UTC)
    filed = {"channel": "phone", "category": "noise", "summary": "Loud bar"}
    on_time = _complaint_event(
        "complaint_filed", **filed, received_at=now, due_at=now.replace(hour=23, minute=59)
    )
    entered_late = _complaint_event(
        "complaint_filed",
        **filed,
        received_at=now.replace(year=now.year - 1),
        due_at=now.replace(year=now.year - 1),
    )
    bodies = [
        templates.render("complaint_received", "es", notices.drafts_for(None, e)[0].context)[1]
        for e in (on_time, entered_late)
    ]
    assert "le daremos una respuesta antes del" in bodies[0]
    assert "antes del" not in bodies[1] and "K7QX-3MPA-WZ9DR" in bodies[1]
