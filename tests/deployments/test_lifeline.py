"""A process `sbu serve` starts ends soon after `sbu serve` is killed (`deployments.lifeline`):
the Prefect server, started with `subprocess`, and a flow run's process, started by Prefect through
the warm forkserver. Each is started here under a stand-in parent that is then killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from deployments import lifeline

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# The server path: a child started with `subprocess` that ties itself to its parent, as
# `python -m deployments.prefect_server --parent-pid` does, then would sleep for two minutes.
SUBPROCESS_PARENT = """
    import os, subprocess, sys
    child = subprocess.Popen([sys.executable, "-c",
        "import sys, time; from deployments import lifeline; "
        "lifeline.end_with_parent_pid(int(sys.argv[1])); time.sleep(120)", str(os.getpid())])
    print(child.pid, flush=True)
    child.wait()
"""
# The flow run path: what Prefect's engine does to start a run (a "spawn" context from its own
# `multiprocessing`, then `Process(target=..., args=...)`), with the warm start installed.
FORKSERVER_PARENT = """
    import time
    from deployments import warm_start
    warm_start.install(("time",))
    import prefect.flow_engine as engine
    run = engine.multiprocessing.get_context("spawn").Process(target=time.sleep, args=(120,))
    run.start()
    print(run.pid, flush=True)
    run.join()
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent's wait is missing


def child_outlives_killed_parent(parent_code: str, *, within: float) -> bool:
    """Start `parent_code`, which prints its child's pid; kill the parent alone with SIGKILL;
    say whether the child is still running `within` seconds later."""
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(parent_code)],
                              stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert alive(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + within
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(child):
        os.kill(child, signal.SIGKILL)  # do not leave it behind for the next test
        return True
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_server_started_by_serve_ends_when_serve_is_killed() -> None:
    assert not child_outlives_killed_parent(SUBPROCESS_PARENT, within=lifeline.POLL_SECONDS + 5)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_run_started_from_the_forkserver_ends_when_serve_is_killed() -> None:
    assert not child_outlives_killed_parent(FORKSERVER_PARENT, within=lifeline.RUN_GRACE_SECONDS + 5)

