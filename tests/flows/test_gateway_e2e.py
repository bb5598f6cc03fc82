"""Per-user sign-in on the dashboard, end to end: a form answered through `sbu gateway` (as the
signing-in reverse proxy passes it on, with the user in X-Forwarded-User) records that user as the
actor, whatever was typed in "Recorded by"; an unknown user, and an answer posted to Prefect
without the gateway, are refused with nothing written: the store and the audit trail unchanged.
Real Prefect server, real `sbu serve`, real `sbu gateway` process."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from deployments.local import SBU, LocalSystem, free_port, wait_until
from tasks.case_store import NOT_THROUGH_GATEWAY
from tasks.store.audit import audit_entries
from tasks.store.db import Store
from tasks.store.queries import case_view
from tests.conftest import EXAMPLE_REFERRAL, PEOPLE_TOML, SIGNATURES
from tests.flows.conftest import SystemFactory

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

CASE_START = datetime(2026, 12, 23, 12, 0, tzinfo=UTC)
ANSWER = {"sin": "yes", "rapid_review": "yes", "rationale": "Criteria met on the facts known.",
          **SIGNATURES, "decided_on": "2026-12-23"}


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def start(system: LocalSystem) -> Callable[[], str]:
        """Start `sbu gateway` for `system` (whose Prefect server is already up); the function
        returned waits until it answers and gives its URL, so both can start at once."""
        port = free_port()
        log = (tmp_path / "gateway.log").open("ab")
        started.append(subprocess.Popen([SBU, "gateway", "--port", str(port)], env=system.env,
                                        stdout=log, stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return httpx.get(f"{url}/api/health", headers={"X-Forwarded-User": "dlee"},
                                 timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        def ready() -> str:
            wait_until(answers, timeout=60, what="`sbu gateway` to answer")
            return url

        return ready

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=20)


def through_gateway(url: str, run_id: UUID, user: str, run_input: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/api/flow_runs/{run_id}/resume", json={"run_input": run_input},
                      headers={"X-Forwarded-User": user}, timeout=30)


def store_and_trail(system: LocalSystem, case_ref: str) -> tuple[Any, list[Any]]:
    """The case as the store has it, and its audit trail (read here: a `sbu` command each time
    would cost a second or two of a busy machine)."""
    settings = system.settings()
    store = Store(settings.sqlalchemy_url)
    try:
        view = case_view(store.engine, partnership=settings.partnership, case_ref=case_ref,
                         today=CASE_START.date())
        events = audit_entries(store.engine, partnership=settings.partnership, case_ref=case_ref,
                               limit=10_000)
    finally:
        store.dispose()
    return view, events


def test_a_form_through_the_gateway_records_the_signed_in_user(
        local_system: SystemFactory, gateway: Any, tmp_path: Path) -> None:
    people = tmp_path / "people.toml"
    people.write_text(PEOPLE_TOML)
    system = local_system(case_start=CASE_START, serving=False, extra_env={
        "SBU_PEOPLE_FILE": str(people), "SBU_GATEWAY_KEY": "test-gateway-key-0123456789"})
    gateway_ready = gateway(system)
    system.start()
    url = gateway_ready()
    referral = tmp_path / "referral.json"
    referral.write_text(json.dumps(EXAMPLE_REFERRAL))
    case_ref = system.sbu_json("refer", str(referral))["case_ref"]
    run = system.wait_for_wait(case_ref, "dsp-decision")

    # No signed-in user, no way through.
    assert httpx.get(f"{url}/api/health", timeout=10).status_code == 401
    before = store_and_trail(system, case_ref)

    # Signed in, but not in the partnership's directory: asked again, nothing written.
    answer = through_gateway(url, run.id, "mallory", {**ANSWER, "recorded_by": "dlee"})
    assert answer.is_success, answer.text
    assert answer.json()["status"] == "ACCEPT"
    run = system.wait_for_wait(case_ref, "dsp-decision-2")
    with system.client() as client:
        description = json.loads(client.read_flow_run_input(run.id, "suspended-dsp-decision-2-description"))
    assert "not in the partnership's directory" in description
    assert "mallory" not in description
    assert store_and_trail(system, case_ref) == before

    # Straight to Prefect's API, past the gateway, naming a real person: no seal, refused.
    with system.client() as client:
        client.resume_flow_run(run.id, run_input={**ANSWER, "recorded_by": "dlee"})
    run = system.wait_for_wait(case_ref, "dsp-decision-3")
    with system.client() as client:
        description = json.loads(client.read_flow_run_input(run.id, "suspended-dsp-decision-3-description"))
    assert NOT_THROUGH_GATEWAY in description
    assert store_and_trail(system, case_ref) == before

    # Through the gateway as Dana Lee: recorded as dlee, whatever the box said.
    answer = through_gateway(url, run.id, "dlee", {**ANSWER, "recorded_by": "Somebody Else"})
    assert answer.is_success, answer.text
    assert answer.json()["status"] == "ACCEPT"

    def decided() -> Any:
        step = next(s for s in store_and_trail(system, case_ref)[0].steps if s.step == "dsp-decision")
        return step if step.state.value == "done" else None

    step = wait_until(decided, timeout=60, what="the decision to be recorded")
    assert step.completed_by == "dlee"
    new_events = store_and_trail(system, case_ref)[1][len(before[1]):]
    assert new_events
    assert {(e.actor, e.via) for e in new_events} == {("dlee", "prefect-ui")}
