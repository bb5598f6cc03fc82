"""What `sbu serve` started, read from /proc: the fault tests kill serve with SIGKILL and check that
nothing it started outlives it (its Prefect server, its forkserver, the runs' processes). The
kill itself, with its cases carrying on after, is tested in `tests/flows/test_faults_e2e.py`, on
the same start of serve as the cases killed at each stage. Linux only: it reads /proc."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
