"""The kit's CPU share on real processes: `CPU_NICE` lowers a service's priority, and its
session's where Linux shares the CPU between sessions, as honcho starts each service.

Every process here runs in a session of its own, so that nothing lowers the test run's."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from servicekit.cpu_share import AUTOGROUPS

ROOT = Path(__file__).resolve().parents[2]

# a service whose only extension is the CPU share, started as nameko starts one; it
# prints its priority and its session's, as the kernel has them
SERVICE = """
import json, os, sys
from nameko.containers import ServiceContainer
from servicekit.cpu_share import CpuShare

class NightAudit:
    name = "night_audit"
    cpu_share = CpuShare()

container = ServiceContainer(NightAudit)
try:
    container.start()
except ValueError as exc:
    print(json.dumps({"refused": str(exc)}))
    sys.exit(0)
print(json.dumps({"nice": os.getpriority(os.PRIO_PROCESS, 0),
                  "autogroup": open("/proc/self/autogroup").read().split()[-1]}))
container.stop()
"""

# the service alone: the leader of the session `started` gives it
SERVICE_PROCESS = [sys.executable, "-c", SERVICE]


def started(argv: list[str], nice: str) -> dict:
    finished = subprocess.run(
        argv,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CPU_NICE": nice},
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.splitlines()[-1])


def lowered_by(nice: int) -> int:
    """The priority a child of this process runs at once lowered by `nice`."""
    return min(os.getpriority(os.PRIO_PROCESS, 0) + nice, 19)


def autogroups_on() -> bool:
    return AUTOGROUPS.exists() and AUTOGROUPS.read_text().strip() == "1"


def test_a_service_started_as_honcho_starts_it_runs_at_its_nice_and_so_does_its_session():
    shell = ["sh", "-c", f"{sys.executable} -c '{SERVICE}'; true"]

    seen = started(shell, "7")

    assert seen["nice"] == lowered_by(7)
    if autogroups_on():
        assert seen["autogroup"] == "7"


def test_a_session_the_service_does_not_lead_keeps_its_weight():
    # the service is a grandchild of its session's leader, as under a test runner or a
    # terminal's job: only its own priority changes
    runs = [sys.executable, "-c", "import subprocess, sys; subprocess.run(sys.argv[1:])"]

    seen = started([*runs, *runs, *SERVICE_PROCESS], "7")

    assert seen["nice"] == lowered_by(7)
    assert seen["autogroup"] == "0"


def test_without_the_setting_nothing_changes():
    seen = started(SERVICE_PROCESS, "0")

    assert seen == {"nice": lowered_by(0), "autogroup": "0"}


@pytest.mark.parametrize("nice", ["-5", "20"])
def test_a_priority_out_of_range_stops_the_service_starting(nice):
    seen = started(SERVICE_PROCESS, nice)

    assert seen == {"refused": f"CPU_NICE must be from 0 to 19, not {nice}"}
