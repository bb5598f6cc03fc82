"""Telling Prefect what the case store has decided.

The store commits first; these functions then create, resume and schedule flow runs to match it.
Every call is idempotent (idempotency keys, and resuming only a run that waits for a step the store
shows done), so the CLI, the flows and the reconciliation sweep can all call them, any number of
times, and the reconciliation sweep repairs whatever a crash left undone. Prefect sees the case
reference, step ids and dates, never personal data.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from models.dashboard import case_tags
from models.enums import CaseStatus, RunLoss
from models.processes import DEADLINE_CHECK, DELIVER_OUTBOX, RECONCILE
from models.registry import Process
from models.state import CaseState
from tasks import dashboard
from tasks.run_inputs import run_input_for
from tasks.service import CaseService

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun

    from models.settings import Settings

DEADLINE_CHECK_DEPLOYMENT = DEADLINE_CHECK.deployment
OUTBOX_DEPLOYMENT = DELIVER_OUTBOX.deployment
RECONCILE_DEPLOYMENT = RECONCILE.deployment

NO_SERVER_NOTE = ("note: no Prefect server is running (start one with `sbu serve`); the case store "
                  "has the change and the case's flow run will catch up when it starts")


def api_url_marker(settings: Settings) -> Path:
    """`sbu serve` writes the URL of the server it runs here, so other commands can find it."""
    return settings.data_dir / "prefect" / "api-url"


def prefect_environment(settings: Settings) -> dict[str, str]:
    """Prefect's own settings for every process of ours: its home under the data directory, no
    telemetry, and results persisted so a replayed flow finds its tasks' results. In production,
    the shared credential every client must send (`prefect_server_environment` has the server's)."""
    home = (settings.data_dir / "prefect").resolve()
    production: dict[str, str] = {}
    if settings.production:
        assert settings.prefect_auth_string is not None  # the production profile requires it
        production = {
            "PREFECT_API_AUTH_STRING": settings.prefect_auth_string.get_secret_value(),
            # Our clients fetch a CSRF token when the server asks for one (Prefect's default, kept).
            "PREFECT_CLIENT_CSRF_SUPPORT_ENABLED": "true",
            "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false",
            "DO_NOT_TRACK": "1",
        }
    return production | {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
        # Flow logs (case references and step ids only) reach the dashboard.
        "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "INFO"),
    }


def prefect_server_environment(settings: Settings) -> dict[str, str]:
    """What the Prefect server `sbu serve` starts is given on top of `prefect_environment`. In
    production: basic auth with the shared credential, CSRF protection, CORS from the dashboard's
    origin only, and no telemetry (Prefect's defaults are no auth, no CSRF protection, CORS from
    anywhere and anonymous usage reports on start)."""
    if not settings.production:
        return {}
    assert settings.prefect_auth_string is not None
    return {
        "PREFECT_SERVER_API_AUTH_STRING": settings.prefect_auth_string.get_secret_value(),
        "PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED": "true",
        "PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS": settings.dashboard_origin,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_METRICS_ENABLED": "false",
    }


def discover_api_url(settings: Settings) -> str | None:
    explicit = os.environ.get("PREFECT_API_URL")
    if explicit:
        return explicit
    marker = api_url_marker(settings)
    if marker.is_file():
        return marker.read_text().strip() or None
    return None


def server_answers(url: str) -> bool:
    """Whether a Prefect server answers its health check at `url` (its API URL)."""
    import httpx

    try:
        return httpx.get(f"{url.rstrip('/')}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def prefect_client(settings: Settings) -> Iterator[SyncPrefectClient | None]:
    """A client for the running server, or None when there is none (the store still has the
    change; `sbu serve` catches up on start)."""
    url = discover_api_url(settings)
    if url is None or not server_answers(url):
        yield None
        return
    for name, value in prefect_environment(settings).items():
        os.environ.setdefault(name, value)
    os.environ["PREFECT_API_URL"] = url
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value() != url:
        prefect_rereads_environment()
    with get_client(sync_client=True) as client:
        yield client


def prefect_rereads_environment() -> None:
    """Make Prefect in this process see what we have just put in the environment.

    Prefect reads its settings from the environment once, when it is first imported, and our
    modules import it before the API URL is known (a URL `sbu serve` found in its marker file, or a
    server it has just started). A client that finds no API URL does not fail: it starts a
    temporary Prefect server of its own, on the same SQLite database as the real one (PREFECT_HOME
    is the same), for as long as the process lives. That cost every `sbu` command about 25 s, and
    gave `sbu serve` a second server, with its own services, writing to the same file."""
    from prefect.context import refresh_global_settings_context

    refresh_global_settings_context()


# -- creating runs ---------------------------------------------------------------------------------

def _deployment_id(client: SyncPrefectClient, name: str) -> UUID:
    return client.read_deployment_by_name(name).id


def _not_told(error: Exception) -> str:
    from prefect.exceptions import ObjectNotFound

    if isinstance(error, ObjectNotFound):
        return ("note: the Prefect server has no deployments yet (start `sbu serve`); the case "
                "store has the change and the case's flow run will catch up when it starts")
    return (f"note: Prefect could not be told ({error.__class__.__name__}); the case store has "
            "the change and the reconciliation sweep of `sbu serve` will catch up")


def create_case_run(service: CaseService, case_ref: str) -> str | None:
    """Create the case's flow runs (each keyed by the case and process, so each can exist only
    once) and schedule its timers. Returns a note for the user when Prefect could not be told:
    the store has committed, so that is never an error."""
    with prefect_client(service.settings) as client:
        if client is None:
            return NO_SERVER_NOTE
        try:
            # The case run's first act is to deliver the mail the referral queued.
            ensure_runs(client, service, case_ref)
            sync_timers(client, service, case_ref=case_ref)
        except Exception as error:  # noqa: BLE001 - the store is the truth; reconcile repairs this
            return _not_told(error)
    return None


def ensure_runs(client: SyncPrefectClient, service: CaseService, case_ref: str) -> dict[str, UUID]:
    """A live flow run for every process the case has started, by process."""
    view = service.case_view(case_ref)
    return {process_id: ensure_run(client, service, view, service.registry.process(process_id))
            for process_id in view.runs}


def ensure_run(client: SyncPrefectClient, service: CaseService, view: CaseState, process: Process) -> UUID:
    """The case's flow run of `process`, created if it has none. A run that Prefect lost (deleted),
    or that failed, crashed or was cancelled (Prefect gave up on it; the store has not) is replaced
    by a new run, keyed after the one it replaces so that replacing is idempotent too. The new run
    replays from the store. A run lost, failed or crashed is a disagreement between the store and
    Prefect: the SBU is alerted by email (a run we cancelled ourselves, to replace it, is not)."""
    current = view.runs.get(process.id)
    run_id, loss = _live_run(client, current, closed=view.status is CaseStatus.CLOSED)
    if run_id is not None:
        return run_id
    key = process.idempotency_key(view.case_ref) + (f"-after-{current}" if current else "")
    run = client.create_flow_run_from_deployment(
        _deployment_id(client, process.deployment), parameters={"case_ref": view.case_ref},
        name=process.name_run(view.case_ref), idempotency_key=key, tags=case_tags(view, service.registry))
    if current != str(run.id):
        if current is not None and loss is not None:
            service.replace_run(view.case_ref, process.id, str(run.id), loss=loss, replaced=current)
        else:
            service.set_run(view.case_ref, process.id, str(run.id))
    return run.id


def _live_run(client: SyncPrefectClient, run_id: str | None, *,
              closed: bool) -> tuple[UUID | None, RunLoss | None]:
    """`run_id` if that run exists and Prefect has not given up on it; else None, with how Prefect
    lost it when that is a fault (not for a run cancelled on purpose)."""
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound

    if run_id is None:
        return None, None
    try:
        run = client.read_flow_run(UUID(run_id))
    except ObjectNotFound:
        return None, RunLoss.MISSING
    state = run.state.type if run.state is not None else None
    if closed or state not in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
        return run.id, None
    losses = {StateType.FAILED: RunLoss.FAILED, StateType.CRASHED: RunLoss.CRASHED}
    return None, losses.get(state)


def abandon_orphans(client: SyncPrefectClient, service: CaseService, *, serve_started: datetime) -> int:
    """Mark Crashed the case runs left Running or Pending by a `sbu serve` that was stopped
    mid-run, so `ensure_run` replaces them: those whose state began before this serve started.
    With one serve per store (as now) nothing else can be running them."""
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    marked = 0
    for view in service.list_cases():
        for run_id in view.runs.values():
            if run_id is None:
                continue
            try:
                run = client.read_flow_run(UUID(run_id))
            except ObjectNotFound:
                continue
            state = run.state
            if state is not None and state.type in (StateType.RUNNING, StateType.PENDING) \
                    and state.timestamp < serve_started:
                client.set_flow_run_state(run.id, Crashed(message="left running by a stopped serve"),
                                          force=True)
                marked += 1
    return marked


def trigger_delivery(client: SyncPrefectClient) -> None:
    """Deliver the outbox now rather than at the next scheduled sweep."""
    client.create_flow_run_from_deployment(_deployment_id(client, OUTBOX_DEPLOYMENT),
                                           name="deliver-outbox (after a change)")


def sync_timers(client: SyncPrefectClient, service: CaseService, *, case_ref: str | None = None) -> int:
    """Schedule a deadline-check run for every timer the store has that Prefect does not, and
    cancel the runs of timers the store has cancelled. Returns how many runs it changed."""
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled, Scheduled

    changed = 0
    deployment = None
    for timer in service.timers(case_ref=case_ref):
        if timer.flow_run_id is not None:
            continue
        deployment = deployment or _deployment_id(client, DEADLINE_CHECK_DEPLOYMENT)
        wall_time = service.clock.wall_time_for(timer.fire_at)
        item = f"{timer.step}:{timer.subject}" if timer.subject else timer.step
        run = client.create_flow_run_from_deployment(
            deployment, parameters={"timer_key": timer.key},
            name=f"{timer.case_ref} {item} {timer.kind.value}"
                 + (f" {timer.sequence}" if timer.sequence else ""),
            state=Scheduled(scheduled_time=wall_time), idempotency_key=timer.key,
        )
        service.mark_timer_scheduled(timer.key, str(run.id))
        changed += 1
    for timer in service.timer_runs_to_cancel(case_ref=case_ref):
        assert timer.flow_run_id is not None
        run = client.read_flow_run(UUID(timer.flow_run_id))
        if run.state is not None and run.state.type == StateType.SCHEDULED:
            client.set_flow_run_state(run.id, Cancelled(message="the step was done"), force=True)
            changed += 1
        service.forget_timer_run(timer.key)
    return changed


# -- waking a waiting run --------------------------------------------------------------------------

def waiting_key(run: FlowRun) -> str | None:
    """The key a suspended run waits on, or None if it is not waiting."""
    from prefect.client.schemas.objects import StateType

    if run.state is None or run.state.type != StateType.PAUSED:
        return None
    return run.state.state_details.pause_key


# Prefect's server answers 503 when its SQLite database is busy, and Prefect's client then waits
# 2 s before it tries again. Prefect's own server opens the resume endpoint's transaction DEFERRED
# and reads before it writes, so any other write committed in between fails it that way: with
# other runs writing states, logs and events, that was one resume in four, each 2 s late, which
# alone breaks the 2 s target from a decision to its case moving. The server `sbu serve` starts
# no longer answers so (its transactions take the write lock up front: deployments/prefect_server.py),
# but a server it is pointed at with PREFECT_API_URL may be a plain `prefect server start` on
# SQLite. The answer is safe to retry at once (the transaction was rolled back), so we retry it
# quickly ourselves first.
BUSY_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8)


def resume_run(client: SyncPrefectClient, run_id: UUID, run_input: dict[str, Any]) -> None:
    """Resume a suspended run with `run_input`, retrying a busy server quickly.

    Posts to the same REST endpoint as Prefect's client, with the same headers. Anything other
    than a busy answer, and a server still busy after the quick retries, is handed to Prefect's
    client, which keeps its own retries and raises its own errors.
    """
    import httpx

    try:
        with httpx.Client(base_url=client.api_url, headers=client._client.headers,
                          timeout=httpx.Timeout(10.0)) as http:
            for delay in (*BUSY_RETRY_DELAYS, None):
                answer = http.post(f"flow_runs/{run_id}/resume", json={"run_input": run_input})
                if answer.status_code != httpx.codes.SERVICE_UNAVAILABLE:
                    if answer.is_success:
                        return
                    break
                if delay is not None:
                    time.sleep(delay)
    except httpx.HTTPError:
        pass  # e.g. TLS settings only Prefect's client knows: let it try
    client.resume_flow_run(run_id, run_input=run_input)


def resume_if_waiting(client: SyncPrefectClient, service: CaseService, run_id: UUID, *,
                      process: Process, case_ref: str, wait_seconds: float = 0.0) -> bool:
    """Resume `run_id`, the case's run of `process`, if the wait it is suspended on has been
    answered in the store. A run still on its way to a wait is given `wait_seconds` to get there
    (it checks the store before waiting, so one that arrives after the change never waits at all).
    A run waiting on a key none of its process's waits has (left by an older version of the
    process) is cancelled, so that `ensure_run` replaces it with a run that replays from the store."""
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled

    deadline = time.monotonic() + wait_seconds
    while True:
        run = client.read_flow_run(run_id)
        key = waiting_key(run)
        if key is not None:
            wait = process.wait_for_key(key)
            if wait is None:
                client.set_flow_run_state(run_id, Cancelled(message="waiting on a form this version "
                                                            "no longer has; replaced"), force=True)
                return False
            if not wait.answered(key, service.case_view(case_ref)):
                return False
            resume_run(client, run_id, run_input_for(wait).placeholder())
            return True
        state = run.state.type if run.state else None
        if state not in (StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING) or \
                time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def wake_case(service: CaseService, case_ref: str, *, step: str | None = None,
              wait_seconds: float = 15.0) -> str | None:
    """After `sbu decide`, `sbu record`, an act or `sbu retime`: create the runs of any process the
    change started, resume every run of the case whose wait the change answered (a step's own
    process waits for it; another process's form may offer it too), schedule and cancel timers to
    match the store, and deliver the mail the change queued."""
    with prefect_client(service.settings) as client:
        if client is None:
            return NO_SERVER_NOTE
        note = None
        try:
            told = service.case_view(case_ref).runs
            runs = ensure_runs(client, service, case_ref)
            owner = service.registry.process_of(step) if step is not None else None
            resumed = False
            for process_id, run_id in runs.items():
                # The recorded step's own process may still be on its way to its wait; a run this
                # change has only just created will read the store before it waits.
                mine = owner is not None and owner.id == process_id and told.get(process_id) is not None
                resumed |= resume_if_waiting(client, service, run_id,
                                             process=service.registry.process(process_id), case_ref=case_ref,
                                             wait_seconds=wait_seconds if mine else 0.0)
            if not runs:
                note = "note: the case has no flow run yet; `sbu serve` will create it"
            if not resumed:
                # A resumed run schedules its timers and delivers its mail itself; doing it here
                # as well would only make the two race for the same rows.
                sync_timers(client, service, case_ref=case_ref)
                trigger_delivery(client)
                # Nor is any run told to show the change (a step re-timed, say): show it here.
                dashboard.show_case(client, service, case_ref, runs=runs.values())
        except Exception as error:  # noqa: BLE001 - the store is the truth; reconcile repairs this
            return _not_told(error)
        return note


def tell_untold(client: SyncPrefectClient, service: CaseService) -> int:
    """Tell Prefect what the store committed while Prefect could not be told (its server busy or
    down when `sbu` made the change): the run of a process a case started, a timer to schedule or
    cancel. Only store reads when there is nothing to tell, so `sbu serve` runs it every few
    seconds; the full reconciliation sweep, which also reads every run from Prefect, runs rarely.
    Returns how many things it told."""
    told = 0
    for case_ref in service.cases_with_untold_runs():
        ensure_runs(client, service, case_ref)
        told += 1
    if service.untold_timers():
        told += sync_timers(client, service)
    return told


def reconcile(client: SyncPrefectClient, service: CaseService, *,
              serve_started: datetime | None = None) -> dict[str, int]:
    """Repair any disagreement between the store and Prefect: runs missing for open cases (or
    given up by Prefect), timers not scheduled or not cancelled, runs left waiting on a step the
    store shows done. On serve's start, runs a stopped serve left mid-way are replaced too."""
    orphans = abandon_orphans(client, service, serve_started=serve_started) if serve_started else 0
    ensured = resumed = 0
    for view in service.list_cases():
        if view.status is CaseStatus.CLOSED:
            continue
        runs = ensure_runs(client, service, view.case_ref)
        ensured += sum(1 for process_id, run_id in runs.items() if view.runs.get(process_id) != str(run_id))
        for process_id, run_id in runs.items():
            if resume_if_waiting(client, service, run_id, process=service.registry.process(process_id),
                                 case_ref=view.case_ref):
                resumed += 1
    timers = sync_timers(client, service)
    return {"orphans": orphans, "runs_created": ensured, "runs_resumed": resumed,
            "timer_runs_changed": timers}
