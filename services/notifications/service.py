"""The notifications service's entrypoints."""

from servicekit.database import Database
from servicekit.metrics import HealthRpc, Metrics
from servicekit.outbox import OutboxRelay
from services.notifications.models import KIT


class NotificationsService(HealthRpc):
    name = "notifications"

    db = Database("notifications")
    relay = OutboxRelay("notifications", KIT)
    metrics = Metrics("notifications")
