"""A process's share of the machine's CPU against the suite's other processes.

When the machine is short of CPU (a burst of complaints on a small host), every process
waits for a turn at each step, and a complaint's event takes several steps to its
consumers: the guest's receipt and the revisit fell behind while the intake kept taking
more complaints. The complaints service therefore runs at a lower priority than the
services that carry out what a complaint sets going (revisits, notifications): the
receipt and the follow-up call already promised first, the next complaint's answer a
little later. `CPU_NICE` (0-19, default 0) is how much lower, as `nice -n` takes it, set
per process in the `Procfile` (10 for the complaints service).

In the bench's complaint intake on a 2-core machine, complaint -> revisit p99 59-73
against 98-137 ms; the price is the complaint's own answer on a saturated machine (the
mixed load's p99 196-227 against 138-176 ms): README, "Performance". Not the reservations
service (a booking's messages are gathered: no one waits on them within the moment, and
bookings fell 5-8% with it lowered), nor the gateway, which answers the caller screen.

Linux shares the CPU first between sessions ("autogroups") and only then between the
processes of a session, so a process's nice value alone counts only against its own
session. honcho starts each process in a session of its own (a shell and the service), so
where the kernel groups by session, the session's weight is set too. Under systemd or in
containers, where each service has a cgroup of its own, give it a lower CPU weight there
(`CPUWeight=`, a CPU request) instead; the nice value then orders the cgroup's processes.

Declare it on the service class::

    class ComplaintsService:
        name = "complaints"
        cpu_share = CpuShare()
"""

import logging
import os
import time
from pathlib import Path

from nameko.extensions import DependencyProvider

from servicekit import settings

LOWEST = 19
AUTOGROUPS = Path("/proc/sys/kernel/sched_autogroup_enabled")
OWN_AUTOGROUP = Path("/proc/self/autogroup")
# without privileges Linux takes one change of a session's weight a tenth of a second,
# machine-wide: replicas starting together wait their turn
AUTOGROUP_TRIES = 30
AUTOGROUP_WAIT = 0.1

log = logging.getLogger(__name__)


def lower_cpu_share(nice: int) -> None:
    """Run this process `nice` (0-19) lower than it was started at (as `nice -n` does), and,
    where Linux shares the CPU between sessions and this process's session was started for
    it alone (its parent or itself leads it), its session at `nice`. A process cannot raise
    its priority without privileges, and the suite never asks it to."""
    if not 0 <= nice <= LOWEST:
        raise ValueError(f"CPU_NICE must be from 0 to {LOWEST}, not {nice}")
    os.nice(nice)
    # a session shared with processes this one did not start (a terminal's, a test
    # runner's) is left as it is: its weight is theirs too
    if _sessions_share_the_cpu() and os.getsid(0) in (os.getpid(), os.getppid()):
        _set_session_nice(nice)


def _sessions_share_the_cpu() -> bool:
    try:
        return AUTOGROUPS.read_text().strip() == "1" and OWN_AUTOGROUP.exists()
    except OSError:
        return False


def _set_session_nice(nice: int) -> None:
    for _ in range(AUTOGROUP_TRIES):
        try:
            OWN_AUTOGROUP.write_text(str(nice))
            return
        except BlockingIOError:
            time.sleep(AUTOGROUP_WAIT)
    log.warning(
        "the session's CPU priority could not be set; the process's own is",
        extra={"nice": nice},
    )


class CpuShare(DependencyProvider):
    """Lowers the process's CPU priority by `CPU_NICE` as the service starts."""

    def setup(self):
        nice = settings.int_setting("CPU_NICE", 0)
        if nice:
            lower_cpu_share(nice)
