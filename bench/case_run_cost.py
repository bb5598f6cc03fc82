"""What one case run costs, from its start to its first wait: CPU-seconds of the whole system.

`python -m bench.case_run_cost [--cases N] [--burst]` starts a Prefect server, and `sbu serve`
against it with a mail sink (`deployments.local.LocalSystem`), lets it idle to learn what it costs
doing nothing, refers N cases with `sbu refer` (one after another, or with `--burst` all at once),
and waits until every case run is suspended on the DSP decision and the outbox is empty (the
referral emails delivered). The CPU-seconds the Prefect server and the serve's process tree (serve,
the warm start, every flow run it started) used in between, less their idle cost over the same
time, divided by N, is the cost of a case run with everything it causes: the run itself, and its
share of the delivery runs and dashboard writes (`cpu_s_per_case_run`). The flow runs' processes
alone (the case runs and the delivery runs, started from the warm start's forkserver) are
`flow_runs_cpu_s_per_case_run`, with no idle cost to subtract. The `sbu refer` commands' own
processes are not counted. No timer comes due while it measures (the case clock runs at wall speed).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from bench.procstat import read_trees
from deployments.local import LocalSystem, free_port, wait_until

IDLE_SECONDS = 20.0
REFERRAL = {
    "referring_agency": "police", "category": "serious-harm", "abuse_or_neglect": "suspected",
    "incident_date": "2026-12-20", "la_aware_date": "2026-12-22", "referred_at": "2026-12-23T10:15:00+00:00",
    "children": [{"la_record_id": "LA-000123", "age_years": 7, "looked_after": False, "care_leaver": False}],
    "agencies_involved": ["police", "health", "children-social-care", "education"],
}


def _server_pids(port: int) -> list[int]:
    """The Prefect server this script started, on `port` (`deployments.prefect_server`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"deployments.prefect_server" in command and str(port).encode() in command:
                found.append(int(entry.name))
    return found


def _cpu(system: LocalSystem, server: list[int]) -> float:
    return read_trees([system.serve_pid, *server]).cpu_seconds


def _runs_cpu(system: LocalSystem) -> float:
    """The flow runs' own CPU: the warm start's forkserver, which starts every run and reaps it."""
    forkservers = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if b"multiprocessing.forkserver" in command and parent == system.serve_pid:
                forkservers.append(int(entry.name))
    return read_trees(forkservers).cpu_seconds


def _suspended(system: LocalSystem, case_refs: list[str]) -> bool:
    from tasks.prefect.resume import waiting_key

    with system.client() as client:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=case_refs)),
                                     limit=len(case_refs) * 2)
    waiting = {run.name for run in runs if (waiting_key(run) or "").startswith("dsp-decision")}
    return waiting >= set(case_refs)


def _outbox_empty(system: LocalSystem) -> bool:
    return not system.sbu_json("outbox", "--status", "pending")["messages"]


def measure(cases: int, root: Path, *, burst: bool) -> dict[str, float]:
    from deployments import serve
    from models.settings import Settings

    # On a busy machine Prefect's server can take minutes to start.
    serve.SERVER_START_TIMEOUT = 900.0
    port = free_port()
    with serve.local_prefect_server(Settings(data_dir=root / "prefect-server"), port=port) as url:
        return _measure(cases, root, url, _server_pids(port), burst=burst)


def _measure(cases: int, root: Path, url: str, server: list[int], *, burst: bool) -> dict[str, float]:
    system = LocalSystem(root=root, api_url=url, case_start=datetime(2026, 12, 23, 12, 0, tzinfo=UTC))
    system.start(timeout=900)
    try:
        time.sleep(30)  # the reconciliation on start and the first sweeps
        idle_from, idle_cpu = time.monotonic(), _cpu(system, server)
        time.sleep(IDLE_SECONDS)
        idle_rate = (_cpu(system, server) - idle_cpu) / (time.monotonic() - idle_from)

        started, cpu_before, runs_before = time.monotonic(), _cpu(system, server), _runs_cpu(system)
        files = []
        for n in range(cases):
            referral = root / f"referral-{n}.json"
            referral.write_text(json.dumps(dict(REFERRAL, external_ref=f"POL-COST-{n}")))
            files.append(str(referral))
        if burst:
            # All at once, as a partnership's import or a busy morning would: N commands together.
            with ThreadPoolExecutor(max_workers=cases) as pool:
                refs = list(pool.map(lambda path: system.sbu_json("refer", path)["case_ref"], files))
        else:
            refs = [system.sbu_json("refer", path)["case_ref"] for path in files]
        wait_until(lambda: _suspended(system, refs), timeout=120 + 30 * cases, what="every case run to wait",
                   interval=1.0)
        wait_until(lambda: _outbox_empty(system), timeout=600, what="the outbox to empty", interval=1.0)
        elapsed, used = time.monotonic() - started, _cpu(system, server) - cpu_before
        runs_used = _runs_cpu(system) - runs_before
    finally:
        system.stop()
    per_run = (used - idle_rate * elapsed) / cases
    return {"cases": cases, "burst": burst, "elapsed_s": round(elapsed, 1), "cpu_s": round(used, 2),
            "idle_cpu_s_per_s": round(idle_rate, 3), "cpu_s_per_case_run": round(per_run, 2),
            "flow_runs_cpu_s_per_case_run": round(runs_used / cases, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--burst", action="store_true",
                        help="refer the cases all at once, not one after another")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="case-run-cost-") as root:
        print(json.dumps(measure(args.cases, Path(root), burst=args.burst)), flush=True)


if __name__ == "__main__":
    main()
