"""A process refuses to start on settings it cannot use.

Settings are read where they are used, often at each request or timer tick; a value the
suite cannot use (`HOTEL_TZ=Europe/Madird`, `NOTIFY_BATCH=0`) would start a service that
answers its health checks and fails every request that reads it. Reading them once as the
service starts stops it there instead, with the variable named.
"""

from collections.abc import Callable

from nameko.extensions import DependencyProvider

from servicekit import settings


class CheckedSettings(DependencyProvider):
    """`settings_checked = CheckedSettings(delivery.batch_size, ...)`: the hotel-wide
    settings and the service's own readers, called once at start."""

    def __init__(self, *readers: Callable[[], object]):
        self.readers = (settings.check_hotel, *readers)

    def setup(self):
        for read in self.readers:
            read()
