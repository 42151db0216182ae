"""The revisits service's entrypoints."""

from servicekit.database import Database
from servicekit.metrics import HealthRpc, Metrics
from servicekit.outbox import OutboxRelay
from services.revisits.models import KIT


class RevisitsService(HealthRpc):
    name = "revisits"

    db = Database("revisits")
    relay = OutboxRelay("revisits", KIT)
    metrics = Metrics("revisits")
