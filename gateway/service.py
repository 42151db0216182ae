"""The gateway service: one nameko service whose HTTP entrypoints are the contract.

Each area of the API is a mixin class in `gateway/routes/`; this class puts them together
with what they share: RPC clients to every service, the staff database, the rate limiter.
"""

import eventlet

from gateway import auth
from gateway.metrics import RPC_DURATION
from gateway.models import KIT
from gateway.rate_limit import RateLimiter
from gateway.routes.complaints import ComplaintRoutes
from gateway.routes.guests import GuestRoutes
from gateway.routes.notifications import NotificationRoutes
from gateway.routes.operations import OperationsRoutes
from gateway.routes.reservations import ReservationRoutes
from gateway.routes.revisits import RevisitRoutes
from gateway.routes.staff import StaffRoutes
from gateway.staff import FirstAdmin
from servicekit import settings
from servicekit.checked_settings import CheckedSettings
from servicekit.cpu_share import CpuShare
from servicekit.database import Database
from servicekit.heap import SteadyHeap
from servicekit.metrics import TurnLag
from servicekit.outbox import OutboxRelay
from servicekit.rpc import ServiceRpc

# How long the gateway waits for a service before answering 503 (unless a call says
# otherwise). The request message expires at the same moment, so a service that was down
# never acts on it later.
RPC_TIMEOUT = settings.float_setting("GATEWAY_RPC_TIMEOUT", 5.0, minimum=0.1)


def _client(service: str) -> ServiceRpc:
    return ServiceRpc(service, expiration=RPC_TIMEOUT)


class GatewayService(
    OperationsRoutes,
    StaffRoutes,
    GuestRoutes,
    ReservationRoutes,
    ComplaintRoutes,
    RevisitRoutes,
    NotificationRoutes,
):
    name = "gateway"

    db = Database("gateway")
    relay = OutboxRelay("gateway", KIT)
    heap = SteadyHeap()
    turn_lag = TurnLag()
    cpu_share = CpuShare()
    settings_checked = CheckedSettings(auth.token_lifetime)
    first_admin = FirstAdmin()
    rate_limiter = RateLimiter()
    signing_key = auth.SigningKey()

    guests = _client("guests")
    reservations = _client("reservations")
    complaints = _client("complaints")
    revisits = _client("revisits")
    notifications = _client("notifications")

    def rpc(self, service: str, method: str, *args, timeout: float = RPC_TIMEOUT, **kwargs):
        """Call `service.method`, answering 503 (via eventlet.Timeout) if it takes too long.

        The request expires when the wait ends. A call given longer than RPC_TIMEOUT (a job,
        an outcome that files complaint items) first asks for the service's health, so a
        service that is down is a 503 as soon as on any call, not at the end of the wait."""
        client = getattr(self, service)
        if timeout != RPC_TIMEOUT:
            if timeout > RPC_TIMEOUT:
                self.rpc(service, "health")
            client = client.expiring_after(timeout)
        timer = RPC_DURATION.labels(service, method).time()
        with timer, eventlet.Timeout(timeout):
            return getattr(client, method)(*args, **kwargs)
