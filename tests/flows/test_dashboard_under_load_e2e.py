"""Dashboard submissions never fail on the embedded default.

Several cases' DSP decisions are submitted at the same moment exactly as the Prefect UI submits a
form (one `POST /api/flow_runs/{id}/resume`, plain HTTP, no retry), while other runs write their
states and logs as fast as they can, on the Prefect server `sbu serve` starts (SQLite). Before that
server took its write lock when each transaction began (`deployments/prefect_server.py`), most of
these submissions were answered 503 "database is locked", which the UI shows as "Oops. Something
went wrong", and the decision was lost.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from deployments.local import LocalSystem
from tests.conftest import EXAMPLE_REFERRAL, SIGNATURES

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

CASE_START = datetime(2026, 12, 23, 12, 0, tzinfo=UTC)
CASES = 8
WRITERS = 3
# The decision as the dashboard's form sends it: a yes-or-no chosen, each DSP role signing once.
DECISION = {"sin": "yes", "rapid_review": "yes", "rationale": "Abuse suspected; criteria met.",
            **SIGNATURES, "decided_on": "2026-12-23", "recorded_by": "Dana Duty"}
# Long enough for a request that waits its turn for the write lock: waiting is allowed, failing is not.
REQUEST_TIMEOUT = 120.0


def ui(api_url: str) -> httpx.Client:
    """An HTTP client that behaves as the Prefect UI does: one request per submission, no retry."""
    return httpx.Client(base_url=f"{api_url}/", timeout=REQUEST_TIMEOUT)


@dataclass
class OtherRuns:
    """Runs that are not cases, writing states and logs in a loop, as busy flows do."""

    api_url: str
    flow_id: str
    cycles: int = 0
    failures: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def write(self) -> None:
        with ui(self.api_url) as http:
            while not self.stopping.is_set():
                try:
                    self.one_run(http)
                except httpx.HTTPError as error:
                    self.failures.append(f"{error.__class__.__name__}: {error}")

    def one_run(self, http: httpx.Client) -> None:
        created = http.post("flow_runs/", json={"flow_id": self.flow_id, "name": "other-run"})
        if not self.ok("create a run", created):
            return
        run_id = created.json()["id"]
        for state in ("PENDING", "RUNNING"):
            self.ok(f"set {state}", http.post(f"flow_runs/{run_id}/set_state",
                                              json={"state": {"type": state}}))
        logs = [{"name": "other-run", "level": 20, "message": f"step {n}", "flow_run_id": run_id,
                 "timestamp": datetime.now(UTC).isoformat()} for n in range(20)]
        self.ok("write logs", http.post("logs/", json=logs))
        self.ok("set COMPLETED", http.post(f"flow_runs/{run_id}/set_state",
                                           json={"state": {"type": "COMPLETED"}}))
        self.cycles += 1

    def ok(self, what: str, answer: httpx.Response) -> bool:
        if answer.is_success:
            return True
        self.failures.append(f"{what}: {answer.status_code}")
        return False


@contextmanager
def other_runs_writing(api_url: str) -> Iterator[OtherRuns]:
    with ui(api_url) as http:
        flow_id = http.post("flows/", json={"name": "other-work"}).raise_for_status().json()["id"]
    load = OtherRuns(api_url, flow_id)
    threads = [threading.Thread(target=load.write, name=f"writer-{n}") for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    try:
        yield load
    finally:
        load.stopping.set()
        for thread in threads:
            thread.join(timeout=2 * REQUEST_TIMEOUT)


def submit_all_at_once(api_url: str, run_ids: list[UUID]) -> list[tuple[str, float]]:
    """Every form submitted in the same instant, each from its own "browser": for each, the
    orchestration's answer ("ACCEPT") or the HTTP error, and how long it took."""
    start = threading.Barrier(len(run_ids))
    answers: list[tuple[str, float]] = []

    def submit(run_id: UUID) -> None:
        with ui(api_url) as http:
            start.wait()
            began = time.monotonic()
            answer = http.post(f"flow_runs/{run_id}/resume", json={"run_input": DECISION})
            took = time.monotonic() - began
        outcome = answer.json().get("status", "?") if answer.is_success else \
            f"{answer.status_code} {answer.text[:80]}"
        answers.append((outcome, took))

    threads = [threading.Thread(target=submit, args=(run_id,)) for run_id in run_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def refer(system: LocalSystem, path: Path, n: int) -> str:
    path.write_text(json.dumps(dict(EXAMPLE_REFERRAL, external_ref=f"POL-LOAD-{n}")))
    return str(system.sbu_json("refer", str(path))["case_ref"])


def locked_errors(log: Path) -> int:
    return log.read_text(errors="replace").count("database is locked") if log.exists() else 0


def test_decisions_submitted_on_the_dashboard_all_land_while_other_runs_write(
        shared_system: LocalSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    system = shared_system  # its Prefect server is the one its `sbu serve` started
    assert system.settings().time_start == CASE_START
    assert system.api_url is not None
    refs = [refer(system, tmp_path / f"referral-{n}.json", n) for n in range(CASES)]
    runs = [system.wait_for_wait(ref, "dsp-decision").id for ref in refs]
    server_log = system.data_dir / "prefect" / "server.log"
    locked_before = locked_errors(server_log)

    with other_runs_writing(system.api_url) as other:
        while other.cycles < WRITERS and not other.failures:  # the writers are in full flow
            time.sleep(0.1)
        answers = submit_all_at_once(system.api_url, runs)
        writes = other.cycles
    with capsys.disabled():  # the figures belong in every CI log, passing or not
        print(f"\n{len(answers)} dashboard submissions at once beside {writes} other runs' writes: "
              f"{sum(1 for outcome, _ in answers if outcome != 'ACCEPT')} failed, "
              f"slowest {max(took for _, took in answers):.2f} s; other runs' failed writes: "
              f"{len(other.failures)}")

    assert [outcome for outcome, _ in answers] == ["ACCEPT"] * CASES
    assert other.failures == []
    # Every decision landed: each case records it and moves on to its notification (the SIN).
    for ref in refs:
        system.wait_for_wait(ref, "notification")
        steps = {row["step"]: row for row in system.ask("status", ref)["steps"]}
        assert (steps["dsp-decision"]["state"], steps["dsp-decision"]["completed_by"]) == \
            ("done", "Dana Duty")
    # Nothing else of Prefect's own failed on the lock meanwhile (its services, the runs' events).
    assert locked_errors(server_log) == locked_before
