"""The complaints service's entrypoints."""

from servicekit.database import Database
from servicekit.metrics import HealthRpc, Metrics
from servicekit.outbox import OutboxRelay
from services.complaints.models import KIT


class ComplaintsService(HealthRpc):
    name = "complaints"

    db = Database("complaints")
    relay = OutboxRelay("complaints", KIT)
    metrics = Metrics("complaints")
