"""The reservations service's entrypoints."""

from servicekit.database import Database
from servicekit.metrics import HealthRpc, Metrics
from servicekit.outbox import OutboxRelay
from services.reservations.models import KIT


class ReservationsService(HealthRpc):
    name = "reservations"

    db = Database("reservations")
    relay = OutboxRelay("reservations", KIT)
    metrics = Metrics("reservations")
