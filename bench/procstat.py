"""What the system's processes cost, read from /proc: CPU-seconds, resident memory, how many.

A process tree's CPU is the user and system time of every live process in it, plus what each has
collected from children it reaped (`cutime`, `cstime`): a flow run's process that ran and exited is
counted in the process that reaped it (the warm start's forkserver, or serve itself). The
difference between two readings is the CPU the tree used in between.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class ProcessStat:
    pid: int
    ppid: int
    cpu_seconds: float  # its own, and its reaped children's
    rss_bytes: int


@dataclass(frozen=True, slots=True)
class TreeStat:
    """A reading of a set of process trees."""

    cpu_seconds: float
    rss_bytes: int
    processes: int


def read_stat(pid: int) -> ProcessStat | None:
    """One process's reading, or None when it has gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
        statm = (PROC / str(pid) / "statm").read_text().split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after its last ')'.
    fields = raw[raw.rindex(")") + 2:].split()
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    rss = int(statm[1]) * PAGE if len(statm) > 1 else 0
    return ProcessStat(pid, ppid, (utime + stime + cutime + cstime) / TICKS, rss)


def all_processes() -> dict[int, ProcessStat]:
    found: dict[int, ProcessStat] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := read_stat(int(entry.name))) is not None:
            found[stat.pid] = stat
    return found


def tree_pids(roots: Iterable[int], table: dict[int, ProcessStat]) -> set[int]:
    """`roots` and every live descendant of them."""
    children: dict[int, list[int]] = {}
    for stat in table.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    seen: set[int] = set()
    pending = [pid for pid in roots if pid in table]
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        pending.extend(children.get(pid, ()))
    return seen


def read_trees(roots: Iterable[int]) -> TreeStat:
    """The CPU-seconds, resident memory and process count of the trees under `roots`."""
    table = all_processes()
    pids = tree_pids(roots, table)
    return TreeStat(cpu_seconds=sum(table[pid].cpu_seconds for pid in pids),
                    rss_bytes=sum(table[pid].rss_bytes for pid in pids), processes=len(pids))


def load_average() -> float:
    """The machine's load average over the last minute."""
    return os.getloadavg()[0]


def cpu_count() -> int:
    return os.cpu_count() or 1
