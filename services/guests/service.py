"""The guests service's entrypoints."""

from servicekit.database import Database
from servicekit.metrics import HealthRpc, Metrics
from servicekit.outbox import OutboxRelay
from services.guests.models import KIT


class GuestsService(HealthRpc):
    name = "guests"

    db = Database("guests")
    relay = OutboxRelay("guests", KIT)
    metrics = Metrics("guests")
