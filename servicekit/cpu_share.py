"""A process's share of the machine's CPU against the suite's other processes.

When the machine is short of CPU (a burst of complaints on a small host), every process
waits for a turn at each step, and a complaint's event takes several steps to its
consumers: the guest's receipt and the revisit fell behind while the intake kept taking
more complaints. The complaints service therefore runs at a lower priority than the
services that carry out what a complaint sets going (revisits, notifications): the
receipt and the follow-up call already promised first, the next complaint's answer a
little later. `CPU_NICE` (0-19, default 0) is that priority, set per process in the
`Procfile` (10 for the complaints service).

Measured in the bench's complaint intake on this 2-core machine, alternating 20 s runs:
complaint -> revisit p99 59-73 against 98-137 ms, -> notification p99 48-63 against
77-104 ms, intake between 11% lower and 1% higher (four pairs). Not the reservations
service: a booking's messages are gathered, work no one waits on within the moment, and
bookings fell 5-8% with it lowered too (two pairs); nor the gateway, which answers the
caller screen.

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

import os
from pathlib import Path

from nameko.extensions import DependencyProvider

from servicekit import settings

LOWEST = 19
AUTOGROUPS = Path("/proc/sys/kernel/sched_autogroup_enabled")
OWN_AUTOGROUP = Path("/proc/self/autogroup")


def lower_cpu_share(nice: int) -> None:
    """Run this process at `nice` (0-19): its own priority and, where Linux shares the CPU
    between sessions and this process's session was started for it alone (its parent or
    itself leads it), its session's. A process cannot raise its priority (below 0) without
    privileges, and the suite never asks it to."""
    if not 0 <= nice <= LOWEST:
        raise ValueError(f"CPU_NICE must be from 0 to {LOWEST}, not {nice}")
    os.setpriority(os.PRIO_PROCESS, 0, nice)
    # a session shared with processes this one did not start (a terminal's, a test
    # runner's) is left as it is: its weight is theirs too
    if _sessions_share_the_cpu() and os.getsid(0) in (os.getpid(), os.getppid()):
        OWN_AUTOGROUP.write_text(str(nice))


def _sessions_share_the_cpu() -> bool:
    try:
        return AUTOGROUPS.read_text().strip() == "1" and OWN_AUTOGROUP.exists()
    except OSError:
        return False


class CpuShare(DependencyProvider):
    """Lowers the process's CPU priority to `CPU_NICE` as the service starts."""

    def setup(self):
        nice = settings.int_setting("CPU_NICE", 0)
        if nice:
            lower_cpu_share(nice)
