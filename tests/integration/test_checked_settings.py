"""A service given a setting it cannot use stops as it starts, naming it: before, it ran,
answered its health checks, and failed every request that read the setting."""

import pytest

from servicekit import settings
from services.notifications.service import NotificationsService
from services.reservations.service import ReservationsService
from services.revisits.service import RevisitsService


@pytest.mark.parametrize(
    ("service", "name", "value"),
    [
        (ReservationsService, "HOTEL_TZ", "Mars/Olympus"),
        (ReservationsService, "HOTEL_HOLD_TIME", "25:00"),
        (NotificationsService, "NOTIFY_BATCH", "0"),
        (RevisitsService, "HOTEL_DEPARTMENTS", "front_office,housekeeping,security"),
    ],
)
def test_a_service_refuses_to_start_on_a_setting_it_cannot_use(
    start_services, monkeypatch, service, name, value
):
    monkeypatch.setenv(name, value)
    with pytest.raises(settings.SettingError, match=rf"^{name}="):
        start_services(service)


def test_the_gateway_refuses_a_rate_limit_that_is_no_number(start_services, monkeypatch):
    from gateway.service import GatewayService

    monkeypatch.setenv("RATE_LIMIT_PER_TOKEN", "nan")
    with pytest.raises(settings.SettingError, match=r"^RATE_LIMIT_PER_TOKEN="):
        start_services(GatewayService)
