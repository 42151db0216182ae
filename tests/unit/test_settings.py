"""Settings a process cannot use are refused by name, with what was expected, as the
process starts (`CheckedSettings`, `make run`'s set-up), not as 500s on later requests."""

from datetime import time
from decimal import Decimal

import pytest

from servicekit import settings
from servicekit.phones import phone_region


@pytest.mark.parametrize(
    ("name", "value", "read"),
    [
        ("HOTEL_TZ", "Mars/Olympus", settings.hotel_tz),
        ("HOTEL_TZ", "../etc/passwd", settings.hotel_tz),
        ("HOTEL_HOLD_TIME", "25:00", settings.hold_time),
        ("HOTEL_HOLD_TIME", "6pm", settings.hold_time),
        ("HOTEL_HOLD_TIME", "18:00+02:00", settings.hold_time),
        ("HOTEL_BIRTHDAY_TIME", "9", settings.birthday_time),
        ("COMPLAINT_CATEGORIES", "noise=security", settings.complaint_categories),
        ("COMPLAINT_CATEGORIES", "noise:security,food:", settings.complaint_categories),
        ("COMPLAINT_CATEGORIES", "noise:the_bar", settings.complaint_categories),
        ("HOTEL_DEPARTMENTS", "front_office,security", settings.complaint_categories),
        ("HOTEL_PHONE_REGION", "XX", phone_region),
        ("RATE_LIMIT_PER_TOKEN", "nan", lambda: settings.float_setting("RATE_LIMIT_PER_TOKEN", 1)),
        ("RATE_LIMIT_BURST", "inf", lambda: settings.float_setting("RATE_LIMIT_BURST", 1)),
        ("NOTIFY_BATCH", "0", lambda: settings.int_setting("NOTIFY_BATCH", 10, minimum=1)),
        ("NOTIFY_BATCH", "ten", lambda: settings.int_setting("NOTIFY_BATCH", 10, minimum=1)),
        (
            "HOTEL_COMMISSION_RATE",
            "5%",
            lambda: settings.decimal_setting("HOTEL_COMMISSION_RATE", "0.05", "0", "1"),
        ),
        (
            "HOTEL_COMMISSION_RATE",
            "5",
            lambda: settings.decimal_setting("HOTEL_COMMISSION_RATE", "0.05", "0", "1"),
        ),
    ],
)
def test_a_setting_the_suite_cannot_use_is_refused_by_name(monkeypatch, name, value, read):
    monkeypatch.setenv(name, value)
    with pytest.raises(settings.SettingError) as refused:
        read()
    assert str(refused.value).startswith(f"{name}={value!r}: expected ")


def test_the_usual_ways_of_writing_a_setting_are_taken(monkeypatch):
    for name, value in {
        "HOTEL_TZ": "Europe/Madrid",
        "HOTEL_HOLD_TIME": "18:30:00",
        "HOTEL_PHONE_REGION": "gb",
        "COMPLAINT_CATEGORIES": "noise:security, other:customer_service",
        "HOTEL_COMMISSION_RATE": "0.075",
    }.items():
        monkeypatch.setenv(name, value)
    settings.check_hotel()
    assert settings.hold_time() == time(18, 30)
    assert settings.complaint_categories() == {"noise": "security", "other": "customer_service"}
    assert settings.decimal_setting("HOTEL_COMMISSION_RATE", "0.05", "0", "1") == Decimal("0.075")
    assert settings.float_setting("RATE_LIMIT_PER_TOKEN", 100, minimum=0) == 100.0


@pytest.mark.parametrize(
    ("name", "value", "blamed"),
    [
        ("DATABASE_SERVER", "127.0.0.1:5432", "DATABASE_SERVER"),
        ("DATABASE_SERVER", "mysql://root@127.0.0.1:3306", "DATABASE_SERVER"),
        ("AMQP_URI", "127.0.0.1:5672", "AMQP_URI"),
    ],
)
def test_set_up_blames_a_mistyped_address_not_the_server_behind_it(
    monkeypatch, name, value, blamed
):
    from servicekit import provision

    monkeypatch.setenv(name, value)
    said = provision.check_database() if name == "DATABASE_SERVER" else provision.check_broker()
    assert said.startswith(blamed) and "cannot be reached" not in said
