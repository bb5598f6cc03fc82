"""The reconciliation sweep against a real Prefect server: it compares in bulk, so with nothing to
repair it makes a handful of requests whatever the number of cases; it acts on exactly the
differences; it creates missing runs in bounded batches; and it never runs beside itself or the
catch-up.

The case processes' deployments are registered on the server but not served: the runs the sweep
creates stay as the tests put them, and no case run spends the machine's CPU."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import StateType
from prefect.states import Failed, Suspended

from models.clock import FixedClock
from models.enums import Interface
from models.forms import DspDecisionForm, parse_referral
from models.settings import Settings
from tasks.prefect import reconcile as sweep
from tasks.prefect.reconcile import reconcile, sweep_lock, tell_untold
from tasks.service import Actor, CaseService
from tasks.store.db import Store
from tests.conftest import EXAMPLE_NOW, EXAMPLE_REFERRAL, SIGNATURES

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

OFFICER = Actor("sbu-officer", Interface.CLI)
MANY = 300
DECISION = DspDecisionForm.model_validate({"sin": True, "rapid_review": True, **SIGNATURES,
                                           "rationale": "Criteria met on the facts known.",
                                           "decided_on": EXAMPLE_NOW.date()})


def register_deployments(client: SyncPrefectClient, service: CaseService) -> None:
    """The deployments `sbu serve` would register, without a runner behind them."""
    for name in ([process.deployment for process in service.registry.processes]
                 + [flow.deployment for flow in service.registry.system_flows]):
        flow_name, _, deployment = name.partition("/")
        client.create_deployment(flow_id=client.create_flow_from_name(flow_name), name=deployment)


def refer_cases(service: CaseService, count: int, *, first: int = 1) -> list[str]:
    refs = []
    for number in range(first, first + count):
        data = copy.deepcopy(EXAMPLE_REFERRAL) | {"external_ref": f"POL-2026-{number:05d}"}
        refs.append(service.refer(parse_referral(data, now=EXAMPLE_NOW), actor=OFFICER).case_ref)
    # Their timers are the timer pass's business, not the sweep's: marked told, so that the sweep
    # under test has only the case runs to compare (and the one planned pass to check).
    service.mark_timers_told(str(uuid4()), first_due=service.earliest_timer())
    return refs


def wait_as_a_served_run_would(client: SyncPrefectClient, service: CaseService, case_ref: str) -> UUID:
    """Put the case's run where a served run would be: suspended on its process's current wait."""
    view = service.case_view(case_ref)
    [(process_id, run_id)] = view.runs.items()
    assert run_id is not None
    wait = service.registry.process(process_id).current_wait(view)
    assert wait is not None
    key = wait.base_key(view)
    assert key is not None
    client.set_flow_run_state(UUID(run_id), Suspended(pause_key=key), force=True)
    return UUID(run_id)


class Requests:
    """Counts the requests a client sends, by method and path."""

    def __init__(self, client: SyncPrefectClient) -> None:
        self.sent: list[str] = []
        self._hooks = client._client.event_hooks["request"]
        self._hooks.append(self._count)

    def _count(self, request: httpx.Request) -> None:
        self.sent.append(f"{request.method} {request.url.path.split('/api', 1)[-1]}")

    def __enter__(self) -> Requests:
        self.sent.clear()
        return self

    def __exit__(self, *_exc: object) -> None:
        pass


@pytest.fixture
def client(prefect_pointed: str) -> Iterator[SyncPrefectClient]:
    with get_client(sync_client=True) as opened:
        yield opened


@pytest.fixture
def service(tmp_path: Path, client: SyncPrefectClient, clock: FixedClock) -> Iterator[CaseService]:
    # Each test its own store, and case references of its own (runs are keyed by them), on the one
    # server: other tests' runs are in the same deployments, as another partnership's would be.
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'sbu.db'}",
                        case_ref_prefix=f"T{uuid4().hex[:6].upper()}")
    store = Store(settings.sqlalchemy_url).migrate()
    made = CaseService(store=store, settings=settings, clock=clock)
    register_deployments(client, made)
    yield made
    store.dispose()


def test_a_sweep_with_nothing_to_repair_asks_prefect_a_handful_of_things_whatever_the_cases(
        client: SyncPrefectClient, service: CaseService, clock: FixedClock) -> None:
    counted = Requests(client)
    sent_at: dict[int, list[str]] = {}
    for size in (MANY // 3, MANY):
        refs = refer_cases(service, size - len(service.list_cases()), first=len(service.list_cases()) + 1)
        assert reconcile(client, service)["runs_created"] == len(refs)
        for case_ref in refs:
            wait_as_a_served_run_would(client, service, case_ref)
        # The sweep after the cases changed looks at each of their suspended runs; the one after
        # that has nothing new to look at, as a sweep ten minutes after the last usually has.
        clock.advance(timedelta(hours=1))
        assert reconcile(client, service)["runs_resumed"] == 0
        clock.advance(timedelta(hours=1))
        with counted:
            started = time.perf_counter()
            again = reconcile(client, service)
            seconds = time.perf_counter() - started
        assert again == {"orphans": 0, "runs_created": 0, "runs_resumed": 0, "runs_cancelled": 0,
                         "timer_runs_changed": 0, "deferred": 0, "skipped": 0}
        sent_at[size] = list(counted.sent)
        print(f"a sweep with nothing to repair over {size} waiting cases: {seconds:.2f} s, "
              f"{len(counted.sent)} requests: {counted.sent}")
    assert sent_at[MANY] == sent_at[MANY // 3], "the requests grew with the cases"
    # The last sweep's mark read and written, the given-up runs asked for, the expected ones counted,
    # and the one planned timer pass looked for (a filter of its own, whatever the number of cases).
    assert [request.split(" /")[1].split("/")[0] for request in sent_at[MANY]] == [
        "flow_runs", "flow_runs", "variables", "flow_runs", "variables"], sent_at[MANY]


def test_a_sweep_resumes_a_run_whose_wait_was_answered_while_prefect_was_not_told(
        client: SyncPrefectClient, service: CaseService, clock: FixedClock) -> None:
    [case_ref] = refer_cases(service, 1)
    reconcile(client, service)
    run_id = wait_as_a_served_run_would(client, service, case_ref)
    clock.advance(timedelta(hours=1))
    reconcile(client, service)  # looked at, still waiting: marked checked
    clock.advance(timedelta(hours=1))
    service.decide(case_ref, DECISION, actor=OFFICER)  # committed; Prefect never told
    assert reconcile(client, service)["runs_resumed"] == 1
    assert client.read_flow_run(run_id).state.type is not StateType.PAUSED  # type: ignore[union-attr]


def test_a_run_left_waiting_with_no_form_is_replaced_once_its_wait_is_answered(
        client: SyncPrefectClient, service: CaseService, clock: FixedClock) -> None:
    # A run stopped between suspending and storing its form (serve killed then) waits on a form
    # Prefect does not have: it refuses every resume, with a success status and REJECT in the body.
    from prefect.input.run_input import keyset_from_paused_state

    [case_ref] = refer_cases(service, 1)
    reconcile(client, service)
    run_id = wait_as_a_served_run_would(client, service, case_ref)
    paused = client.read_flow_run(run_id).state
    assert paused is not None
    keyset = keyset_from_paused_state(paused)
    paused.state_details.run_input_keyset = {str(name): key for name, key in keyset.items()}
    client.set_flow_run_state(run_id, paused, force=True)
    clock.advance(timedelta(hours=1))
    service.decide(case_ref, DECISION, actor=OFFICER)  # committed; Prefect never told
    done = reconcile(client, service)
    assert (done["runs_resumed"], done["runs_cancelled"]) == (0, 1), done
    assert client.read_flow_run(run_id).state.type is StateType.CANCELLED  # type: ignore[union-attr]
    # Replaced by the next sweep (as a run waiting on a form its process no longer has is), by a
    # run that replays from the store and so goes past the decision.
    assert reconcile(client, service)["runs_created"] == 1
    [(_, replacement)] = service.case_view(case_ref).runs.items()
    assert replacement is not None
    assert UUID(replacement) != run_id


def test_a_sweep_acts_on_exactly_the_differences(client: SyncPrefectClient, service: CaseService) -> None:
    refs = refer_cases(service, 12)
    reconcile(client, service)
    runs = {case_ref: wait_as_a_served_run_would(client, service, case_ref) for case_ref in refs}
    client.delete_flow_run(runs[refs[0]])  # lost by Prefect
    client.set_flow_run_state(runs[refs[1]], Failed(), force=True)  # given up
    # Waiting on a form an older version of the process had:
    client.set_flow_run_state(runs[refs[2]], Suspended(pause_key="no-such-wait"), force=True)
    counted = Requests(client)
    with counted:
        done = reconcile(client, service)
    assert (done["runs_created"], done["runs_cancelled"], done["runs_resumed"]) == (2, 1, 0)
    for case_ref in refs[:2]:
        assert service.case_view(case_ref).runs != {"case": str(runs[case_ref])}
    # The cancelled run is replaced by the next sweep, and then nothing differs.
    assert reconcile(client, service)["runs_created"] == 1
    assert client.read_flow_run(runs[refs[3]]).state.type is StateType.PAUSED  # type: ignore[union-attr]
    assert reconcile(client, service)["runs_created"] == 0
    # Only the three differing cases cost requests beyond the sweep's own few (its mark, the runs
    # given up, the count, which runs are there, the suspended ones, its mark again): reading,
    # replacing or cancelling, and looking at each of their runs, not the nine others'.
    differing = len(counted.sent) - 6
    assert differing <= 8 * 3, counted.sent


def test_missing_runs_are_created_in_bounded_batches(client: SyncPrefectClient, service: CaseService,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep, "REPAIRS_PER_SWEEP", 20)
    monkeypatch.setattr(sweep, "REPAIR_BATCH", 8)
    refer_cases(service, 45)
    done = [reconcile(client, service) for _ in range(3)]
    assert [(d["runs_created"], d["deferred"]) for d in done] == [(20, 25), (20, 5), (5, 0)]


def test_the_catch_up_tells_an_import_of_many_cases_a_batch_a_round(
        client: SyncPrefectClient, service: CaseService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep, "REPAIR_BATCH", 8)
    refer_cases(service, 20)
    assert [tell_untold(client, service) for _ in range(4)] == [8, 8, 4, 0]
    assert not service.cases_with_untold_runs()


def test_a_sweep_never_runs_beside_the_catch_up_or_another_sweep(
        client: SyncPrefectClient, service: CaseService) -> None:
    refer_cases(service, 2)
    holding, release = threading.Event(), threading.Event()

    def catch_up_round() -> None:
        with sweep_lock(service) as held:
            assert held
            holding.set()
            release.wait(30)

    other = threading.Thread(target=catch_up_round)
    other.start()
    try:
        assert holding.wait(10)
        assert reconcile(client, service, lock_wait_seconds=0.2)["skipped"] == 1
        assert tell_untold(client, service) == 0
        assert service.cases_with_untold_runs(), "nothing was told while the lock was held"
    finally:
        release.set()
        other.join()
    done = reconcile(client, service)
    assert (done["skipped"], done["runs_created"]) == (0, 2)


class _WallBehind(FixedClock):
    """Case time as it stood thirty days before this moment of wall time: every timer of a case
    referred now is long past its wall time, as after an outage."""

    def wall_time_for(self, case_time: datetime) -> datetime:
        return datetime.now(UTC) - timedelta(days=30) + (case_time - EXAMPLE_NOW)


def test_a_timer_pass_that_never_started_is_replaced_by_the_catch_up(
        tmp_path: Path, client: SyncPrefectClient) -> None:
    # Prefect's runner takes a run a few seconds early and starts its process, which waits on the
    # server: if the server stops then, the process leaves, the run stays Pending for ever, and the
    # store still names it as the planned pass.
    from prefect.states import Pending, Running

    from models.processes import TIMER_PASS

    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'sbu.db'}",
                        case_ref_prefix=f"T{uuid4().hex[:6].upper()}")
    store = Store(settings.sqlalchemy_url).migrate()
    service = CaseService(store=store, settings=settings, clock=_WallBehind(EXAMPLE_NOW))
    register_deployments(client, service)
    try:
        service.refer(parse_referral(copy.deepcopy(EXAMPLE_REFERRAL), now=EXAMPLE_NOW), actor=OFFICER)
        assert tell_untold(client, service) >= 2  # its run created, its timers' pass planned
        [planned] = passes(client, TIMER_PASS.deployment, StateType.SCHEDULED)
        # Planned and not yet taken (a busy runner): left as it is.
        assert tell_untold(client, service, pass_late=timedelta(0)) == 0
        client.set_flow_run_state(planned, Running(), force=True)
        assert tell_untold(client, service, pass_late=timedelta(0)) == 0  # under way
        client.set_flow_run_state(planned, Pending(), force=True)
        # Pending for longer than a pass takes to start: cancelled, and a pass planned at once.
        assert tell_untold(client, service, pass_late=timedelta(0)) == 2
        assert client.read_flow_run(planned).state.type is StateType.CANCELLED  # type: ignore[union-attr]
        [again] = passes(client, TIMER_PASS.deployment, StateType.SCHEDULED)
        assert again != planned
        # Pending only a moment ago: a pass starting, not lost.
        client.set_flow_run_state(again, Pending(), force=True)
        assert tell_untold(client, service) == 0
    finally:
        store.dispose()


def passes(client: SyncPrefectClient, deployment: str, state: StateType) -> list[UUID]:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )

    from tasks.prefect.connection import deployment_id

    return [run.id for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(
        deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id(client, deployment)]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[state]))))]
