"""`sbu serve` killed with SIGKILL while a case waits and another case's run is running: nothing it
started outlives it (its Prefect server, its forkserver, the run's process), the port is free at
once, and starting it again carries both cases on. Linux only: it reads /proc."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deployments.local import STALL_ALLOWANCE, LocalSystem, free_port, wait_until
from deployments.serve import port_is_free
from tests.conftest import DSP_OPTIONS, EXAMPLE_REFERRAL

pytestmark = [pytest.mark.prefect, pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]

CASE_START = datetime(2026, 12, 23, 12, 0, tzinfo=UTC)
# How soon everything serve started must be gone: the server is given 10 s to stop in order,
# a run 3 s (`deployments.lifeline`); here they take one or two.
ENDS_WITHIN = 15.0


@dataclass(frozen=True)
class Proc:
    """A process as /proc shows it; its start time tells it apart from a later one given its pid."""

    pid: int
    ppid: int
    started: int
    command: str


def kinds(family: list[Proc]) -> dict[int, str]:
    """What each of serve's descendants is, by its command line or its parent."""
    named = {"deployments.prefect_server": "prefect server",
             "multiprocessing.forkserver": "forkserver",
             "multiprocessing.resource_tracker": "resource tracker",
             # What Prefect's client starts when it finds no API URL (see `prefect_rereads_environment`).
             "prefect.server.api.server:create_app": "temporary prefect server"}
    found = {proc.pid: next((kind for part, kind in named.items() if part in proc.command), "other")
             for proc in family}
    forkservers = {pid for pid, kind in found.items() if kind == "forkserver"}
    return {proc.pid: "flow run" if proc.ppid in forkservers else found[proc.pid] for proc in family}


def read_proc(pid: int) -> Proc | None:
    """The live process `pid` (a zombie counts as gone: it runs nothing and holds no port)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the command name before it may hold spaces
    if fields[0] in ("Z", "X"):
        return None
    return Proc(pid=pid, ppid=int(fields[1]), started=int(fields[19]), command=command)


def descendants(root: int) -> list[Proc]:
    procs = [proc for entry in Path("/proc").iterdir() if entry.name.isdigit()
             if (proc := read_proc(int(entry.name))) is not None]
    found: list[Proc] = []
    parents = {root}
    while True:
        children = [proc for proc in procs if proc.ppid in parents and proc not in found]
        if not children:
            return found
        found += children
        parents = {proc.pid for proc in children}


def still_running(procs: list[Proc]) -> list[Proc]:
    return [proc for proc in procs
            if (now := read_proc(proc.pid)) is not None and now.started == proc.started]


def refer(system: LocalSystem, path: Path, external_ref: str) -> str:
    path.write_text(json.dumps(dict(EXAMPLE_REFERRAL, external_ref=external_ref)))
    return str(system.sbu_json("refer", str(path))["case_ref"])


def test_serve_killed_leaves_nothing_behind_and_its_cases_carry_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    system = LocalSystem(root=tmp_path, prefect_port=port, case_start=CASE_START)
    try:
        system.start()
        waiting = refer(system, tmp_path / "waiting.json", "POL-KILL-1")
        system.wait_for_wait(waiting, "dsp-decision")

        def with_a_run_in_progress() -> list[Proc] | None:
            family = descendants(system.serve_pid)
            return family if "flow run" in kinds(family).values() else None

        # Referred from a thread and watched meanwhile: the new case's run can be done and waiting
        # before `sbu refer` itself has finished.
        referring = threading.Thread(target=refer, args=(system, tmp_path / "running.json", "POL-KILL-2"))
        referring.start()
        family = wait_until(with_a_run_in_progress, timeout=60, interval=0.02,
                            what="a flow run's process to start")
        kind = kinds(family)
        assert {"prefect server", "forkserver", "flow run"} <= set(kind.values())
        assert not {"temporary prefect server", "other"} & set(kind.values()), \
            [(kind[proc.pid], proc.command[:120]) for proc in family]

        system.kill()
        killed = time.monotonic()
        try:
            wait_until(lambda: not still_running(family), timeout=ENDS_WITHIN, interval=0.1,
                       what="every process serve started to end")
        except TimeoutError:
            left = [(kind[proc.pid], proc.pid) for proc in still_running(family)]
            pytest.fail(f"{ENDS_WITHIN:.0f} s after serve was killed, still running: {left}")
        took = time.monotonic() - killed
        referring.join()  # it told Prefect in time, or left that to the next serve
        with capsys.disabled():
            print(f"\nserve killed: the {len(family)} processes it had started "
                  f"({', '.join(sorted(kind.values()))}) all ended within {took:.1f} s")
        assert port_is_free(port)

        system.start()  # the same port, the same data directory
        running = refer(system, tmp_path / "running.json", "POL-KILL-2")  # the same case again
        system.wait_for_wait(waiting, "dsp-decision", timeout=90 + STALL_ALLOWANCE)
        system.sbu("decide", waiting, "--sin", "--rapid-review", "--rationale", "Criteria met on the facts.",
                   *DSP_OPTIONS)
        system.wait_for_wait(waiting, "notification", timeout=60 + STALL_ALLOWANCE)
        # The run that was cut off mid-way is replaced, and waits where it should.
        system.wait_for_wait(running, "dsp-decision", timeout=90 + STALL_ALLOWANCE)
    finally:
        system.stop()
