"""The desk under load: 20 officers submitting forms at once, and a case page of 50 items timed.

    .venv/bin/python -m tests.deployments.web.bench_desk --database sqlite
    .venv/bin/python -m tests.deployments.web.bench_desk --database postgres   (SBU_TEST_POSTGRES_URL)

Not part of `make test`: it runs `sbu web` as a server of its own, on a store made for it (a SQLite
file in a temporary folder, or a PostgreSQL schema of its own, dropped after), and sends it only
loopback traffic, a bounded number of requests, then stops it.

- Ten cases, each worked by two officers at once (twenty in all), each officer going through the
  same Rapid Review forms of their case as fast as the desk answers: the DSPs' decision, the SIN,
  telling the partners, each agency's information, the meeting held, the outcome, the report to
  the Panel and the Panel's response. The two race each other on every form. Every submission
  must end recorded (303), refused with its reason (422, or 409 when the other officer recorded
  it first), never lost: no server error, no time-out. Afterwards every one of those steps must be
  done in the store, once.
- A case of 50 items (13 agencies' information, 13 IMRs, 10 actions, and the rest) is read as a
  person opens it: its page timed 100 times with nothing else running, and again all through the
  officers' load. Target: p95 under 300 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from deployments.local import SBU, free_port, wait_until
from models.enums import Agency, Interface
from models.forms import (
    ActionForm,
    DspDecisionForm,
    ImrRequestsForm,
    MeetingHeldForm,
    RapidReviewOutcomeForm,
    SinSubmissionForm,
    parse_referral,
)
from models.processes import StepId
from models.settings import load_settings
from tasks.service import Actor, CaseService
from tasks.store.db import Store

START = datetime(2027, 1, 11, 12, 0, tzinfo=UTC)
DAY = "2027-01-11"
OFFICERS = 20
CASES = OFFICERS // 2
PAGE_READS = 100
TARGET_P95_MS = 300.0
SIGNED = {"dsp_la.name": "Dana Lee", "dsp_health.name": "Sam Patel", "dsp_police.name": "Alex Morgan"}
AGENCIES = ("police", "health", "education")
# What each officer records on their case, in order, as the desk's forms take it.
SCRIPT: tuple[tuple[str, dict[str, Any]], ...] = (
    ("dsp-decision", {"sin": "yes", "rapid_review": "yes", "rationale": "Abuse suspected; criteria met.",
                      **SIGNED, "decided_on": DAY}),
    ("sin-submission", {"national_ref": "CSIN-2027-0011", "completed_on": DAY}),
    ("partners-informed", {"completed_on": DAY}),
    *(("rr-agency-responses", {"agency": agency, "completed_on": DAY}) for agency in AGENCIES),
    ("rr-meeting", {"completed_on": DAY, "reference": "MIN-1"}),
    ("rr-outcome", {"immediate_actions": "GP alerted.", "learning": "Information was not shared.",
                    "recommendation": "no-cspr", "rationale": "Learning is local to one agency.", **SIGNED,
                    "decided_on": DAY}),
    ("rr-report-to-panel", {"completed_on": DAY, "reference": "PANEL-1"}),
    ("rr-panel-response", {"response": "agree", "completed_on": DAY}),
)
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def referral(number: int, agencies: tuple[str, ...] = AGENCIES) -> dict[str, Any]:
    return {"referring_agency": "police", "external_ref": f"BENCH-{number:04d}", "category": "serious-harm",
            "abuse_or_neglect": "suspected", "incident_date": "2027-01-10", "la_aware_date": "2027-01-10",
            "referred_at": "2027-01-11T09:00:00+00:00",
            "children": [{"la_record_id": f"LA-{number:06d}", "age_years": 7, "looked_after": False,
                          "care_leaver": False}],
            "agencies_involved": list(agencies)}


# -- the store and its cases ---------------------------------------------------------------------------

def big_case(service: CaseService) -> str:
    """A case of 50 items, made through the case service: every agency's information and IMR,
    the Rapid Review to a local CSPR, and ten actions."""
    officer = Actor("bench", Interface.CLI)
    every_agency = tuple(agency.value for agency in Agency)
    ref = service.refer(parse_referral(referral(9999, every_agency), now=service.clock.now()),
                        actor=officer).case_ref
    signed = {"dsp_la": {"name": "Dana Lee"}, "dsp_health": {"name": "Sam Patel"},
              "dsp_police": {"name": "Alex Morgan"}}
    service.record(ref, StepId.DSP_DECISION, DspDecisionForm.model_validate(
        {"sin": True, "rapid_review": True, "rationale": "Abuse suspected; criteria met.", **signed,
         "decided_on": DAY}), actor=officer)
    service.record(ref, StepId.SIN_SUBMISSION, SinSubmissionForm.model_validate(
        {"national_ref": "CSIN-1", "completed_on": DAY}), actor=officer)
    service.record(ref, StepId.RR_MEETING, MeetingHeldForm.model_validate({"completed_on": DAY}),
                   actor=officer)
    service.record(ref, StepId.RR_OUTCOME, RapidReviewOutcomeForm.model_validate(
        {"immediate_actions": "GP alerted.", "learning": "Information was not shared.",
         "recommendation": "local-cspr", "rationale": "Systemic learning across agencies.", **signed,
         "decided_on": DAY}), actor=officer)
    service.record(ref, StepId.CSPR_IMR_REQUESTS, ImrRequestsForm.model_validate(
        {"completed_on": DAY, "imrs_due": "2027-03-01"}), actor=officer)
    for number in range(10):
        service.act(ref, "action-added", ActionForm.model_validate(
            {"source": "rapid-review", "agency": "health", "owner_role": "Named Nurse",
             "summary": f"Action number {number + 1} of the plan", "due": "2027-06-30"}), actor=officer)
    items = len(service.case_view(ref).steps)
    assert items >= 50, f"the big case has {items} items"
    return ref


# -- the officers ------------------------------------------------------------------------------------------

@dataclass
class Tally:
    outcomes: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: str, seconds: float) -> None:
        with self.lock:
            self.outcomes[outcome] += 1
            self.seconds.append(seconds)

    def lose(self, what: str) -> None:
        with self.lock:
            self.lost.append(what)


def officer(base: str, name: str, case_ref: str, tally: Tally, ready: threading.Barrier) -> None:
    with httpx.Client(base_url=base, timeout=60.0, follow_redirects=False) as client:
        page = client.get("/desk/who")
        client.post("/desk/who", data={"name": name, "csrf_token": TOKEN.search(page.text).group(1)})  # type: ignore[union-attr]
        ready.wait()
        for key, values in SCRIPT:
            path = f"/desk/cases/{case_ref}/record/{key}"
            try:
                form = client.get(path)
                if form.status_code == 409:  # the other officer has recorded it: not offered any more
                    tally.add("not offered (recorded by the other)", 0.0)
                    continue
                found = TOKEN.search(form.text)
                if form.status_code != 200 or found is None:
                    tally.lose(f"{name} {key}: the form answered {form.status_code}")
                    continue
                began = time.perf_counter()
                answer = client.post(path, data={**values, "csrf_token": found.group(1)})
                spent = time.perf_counter() - began
            except httpx.HTTPError as error:
                tally.lose(f"{name} {key}: {error.__class__.__name__}")
                continue
            match answer.status_code:
                case 303:
                    tally.add("recorded (or already recorded)", spent)
                case 409:
                    tally.add("refused: no longer open (the other officer recorded it)", spent)
                case 422 if 'class="error-summary"' in answer.text:
                    tally.add("refused, with its reason", spent)
                case _:
                    tally.lose(f"{name} {key}: answered {answer.status_code}")


def read_pages(base: str, path: str, *, count: int | None,
               stop: threading.Event | None = None) -> list[float]:
    """Open `path` as a person does, `count` times (or until `stop`); the seconds each took."""
    times: list[float] = []
    with httpx.Client(base_url=base, timeout=60.0, follow_redirects=False) as client:
        page = client.get("/desk/who")
        client.post("/desk/who", data={"name": "Page Reader",
                                       "csrf_token": TOKEN.search(page.text).group(1)})  # type: ignore[union-attr]
        while (count is None or len(times) < count) and not (stop is not None and stop.is_set()):
            began = time.perf_counter()
            answer = client.get(path)
            times.append(time.perf_counter() - began)
            assert answer.status_code == 200, answer.status_code
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 20 else max(values)


def ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


# -- the run -------------------------------------------------------------------------------------------

def run(database: str, *, workers: int) -> int:
    folder = Path(tempfile.mkdtemp(prefix="bench-desk-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBU_", "PREFECT_"))}
    env.update({"SBU_DATA_DIR": str(folder), "SBU_TIME_EPOCH": datetime.now(UTC).isoformat(),
                "SBU_TIME_START": START.isoformat()})
    schema = None
    admin = None
    if database == "postgres":
        from sqlalchemy import create_engine, text

        url = os.environ.get("SBU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        env["SBU_DATABASE_URL"] = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    desk: subprocess.Popen[bytes] | None = None
    try:
        settings = load_settings(environ=env)
        store = Store(settings.sqlalchemy_url).migrate()
        service = CaseService(store=store, settings=settings, clock=settings.clock())
        print(f"desk bench on {database}: seeding a case of 50 items and {CASES} cases for {OFFICERS} "
              "officers", flush=True)
        big = big_case(service)
        items = len(service.case_view(big).steps)
        cases = [service.refer(parse_referral(referral(number), now=service.clock.now()),
                               actor=Actor("bench", Interface.CLI)).case_ref for number in range(CASES)]
        port = free_port()
        log = (folder / "desk.log").open("ab")
        desk = subprocess.Popen([SBU, "web", "--port", str(port), "--workers", str(workers)], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(base), timeout=60.0, what="`sbu web` to start")
        big_page = f"/desk/cases/{big}"
        read_pages(base, big_page, count=5)  # warm: templates compiled, modules imported
        idle = read_pages(base, big_page, count=PAGE_READS)

        tally = Tally()
        ready = threading.Barrier(OFFICERS + 1)
        threads = [threading.Thread(target=officer,
                                    args=(base, f"Officer {n + 1}", cases[n % CASES], tally, ready))
                   for n in range(OFFICERS)]
        for thread in threads:
            thread.start()
        stop = threading.Event()
        loaded: list[float] = []
        reader = threading.Thread(
            target=lambda: loaded.extend(read_pages(base, big_page, count=None, stop=stop)))
        ready.wait()
        began = time.perf_counter()
        reader.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - began
        stop.set()
        reader.join()

        missing = []
        for case_ref in cases:
            state = service.case_view(case_ref)
            for key, values in SCRIPT:
                subject = values.get("agency", "")
                if not state.done(key, subject):
                    missing.append(f"{case_ref} {key}{':' + subject if subject else ''}")
        submissions = sum(tally.outcomes.values())
        print(f"\n=== the desk under load, {database}, `sbu web --workers {workers}` ===")
        print(f"  {OFFICERS} officers, two on each of {CASES} cases, {len(SCRIPT)} forms each, at once: "
              f"{submissions} submissions in {wall:.1f} s")
        for outcome, count in sorted(tally.outcomes.items()):
            print(f"    {outcome}: {count}")
        posts = [s for s in tally.seconds if s > 0]
        print(f"    a submission answered in: median {ms(statistics.median(posts))}, p95 {ms(p95(posts))}")
        print(f"  lost: {len(tally.lost)}{'' if not tally.lost else ': ' + '; '.join(tally.lost[:5])}")
        print(f"  steps not done in the store afterwards: {len(missing)}"
              f"{'' if not missing else ': ' + ', '.join(missing[:5])}")
        print(f"  a case page of {items} items: idle p50 {ms(statistics.median(idle))}, p95 {ms(p95(idle))} "
              f"({len(idle)} reads); under the officers' load p50 {ms(statistics.median(loaded))}, "
              f"p95 {ms(p95(loaded))} ({len(loaded)} reads); target p95 < {TARGET_P95_MS:.0f} ms")
        print("=== end ===", flush=True)
        ok = not tally.lost and not missing and p95(idle) * 1000 < TARGET_P95_MS
        return 0 if ok else 1
    finally:
        if desk is not None and desk.poll() is None:
            os.killpg(desk.pid, signal.SIGINT)
            try:
                desk.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(desk.pid, signal.SIGKILL)
        if admin is not None and schema is not None:
            from sqlalchemy import text

            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        shutil.rmtree(folder, ignore_errors=True)


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/desk/who", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="`sbu web --workers N` (default 1)")
    args = parser.parse_args()
    return run(args.database, workers=args.workers)


if __name__ == "__main__":
    sys.exit(main())
