"""`sbu demo` (`make demo`): the whole system on the embedded defaults with three sample cases.

Starts a mail sink and `sbu serve` (a local Prefect server on SQLite) with a fast case clock (an
hour of case time a second), and does what an SBU officer would, through the `sbu` command only:
- a notified serious-harm case, from referral through its Rapid Review to a CSPR (reviewers, terms
  of reference, IMRs, family engagement, draft and final report, the report to the Panel,
  publication) and its action plan, closed when its last action is;
- a near miss, through its Rapid Review on the longer clocks;
- a looked-after child's death, whose education information is deliberately left late: its
  reminder, overdue alert and escalation to the DSPs arrive as email, then it is recorded late.
The history of each case before the demo's "today" (Monday 1 March 2027) is recorded with its
real dates before serve starts, as records made while nothing is serving would be; the rest is
recorded live while the runs move on the dashboard. Progress is printed as it goes; at the end it
writes `sbu report` for the quarter into a folder it prints, stops everything and says how to keep
the dashboard and the officers' desk up with the demo's data (`sbu demo --serve`, `make demo-serve`).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from deployments.cli import main
from deployments.local import SBU, LocalSystem, free_port, wait_until
from deployments.serve import port_is_free
from models.calendar import london_date
from models.errors import SbuError

T = TypeVar("T")
DEMO_ROOT = Path("var/demo")
# Case time starts on the evening of Monday 1 March 2027 and runs an hour a second: serve's
# start-up takes most of a case day, and the looked-after child's education information, due
# Thursday 4 March, is reminded on the Wednesday at 09:00, overdue on Friday at 00:01 and escalated
# on Friday at 09:00, about a minute and a half after the demo begins.
CASE_START = datetime(2027, 3, 1, 18, 0, tzinfo=UTC)
SCALE = 3600.0
REPORT_FROM, REPORT_TO = "2027-01-01", "2027-03-31"
DSPS = ("--dsp-la", "Dana Lee", "--dsp-health", "Sam Patel", "--dsp-police", "Alex Morgan")
WAIT_TIMEOUT = 240.0

CHILD = {"la_record_id": "LA-000123", "age_years": 7, "looked_after": False, "care_leaver": False}
NOTIFIED: dict[str, Any] = {
    "referring_agency": "police", "external_ref": "POL-2027-0011", "category": "serious-harm",
    "abuse_or_neglect": "suspected", "incident_date": "2027-01-10", "la_aware_date": "2027-01-10",
    "referred_at": "2027-01-11T09:00:00+00:00", "children": [CHILD],
    "agencies_involved": ["police", "health", "education"]}
NEAR_MISS: dict[str, Any] = {
    "referring_agency": "health", "external_ref": "HLT-2027-0102", "category": "near-miss",
    "abuse_or_neglect": "suspected", "incident_date": "2027-02-21", "la_aware_date": "2027-02-22",
    "referred_at": "2027-02-22T10:00:00+00:00",
    "children": [{**CHILD, "la_record_id": "LA-000456", "age_years": 2}],
    "agencies_involved": ["police", "health"]}
LOOKED_AFTER: dict[str, Any] = {
    "referring_agency": "children-social-care", "external_ref": "CSC-2027-0031", "category": "death",
    "abuse_or_neglect": "not-suspected", "incident_date": "2027-02-21", "la_aware_date": "2027-02-22",
    "referred_at": "2027-02-22T11:00:00+00:00",
    "children": [{**CHILD, "la_record_id": "LA-000789", "age_years": 15, "looked_after": True}],
    "agencies_involved": ["police", "health", "education"]}
ALERT_WORDS = ("Reminder", "OVERDUE", "ESCALATION")


@dataclass(frozen=True)
class DemoResult:
    """What the demo leaves: its cases, the report's folder and figures, and its wall time."""

    cases: dict[str, str]  # "notified", "near-miss", "looked-after" -> case reference
    report_folder: Path
    figures: dict[str, Any]
    seconds: float


class Progress:
    """One line a step, `[12.3 s | case time Tue 02 Mar 08:00] (3/7) ...`, and a live status line
    while it waits: rewritten in place on a terminal, every few seconds elsewhere (a log, CI)."""

    def __init__(self, system: LocalSystem, *, stages: int) -> None:
        self.system = system
        self.clock = system.settings().clock()
        self.started = time.monotonic()
        self.stages = stages
        self.stage = 0
        self.tty = sys.stdout.isatty()
        self._status_shown = False

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _prefix(self) -> str:
        return f"[{self.elapsed():6.1f} s | case time {self.clock.now():%a %d %b %H:%M}]"

    def next_stage(self, title: str) -> None:
        self.stage += 1
        self.say(f"({self.stage}/{self.stages}) {title}")

    def say(self, message: str) -> None:
        self._clear_status()
        print(f"{self._prefix()} {message}", flush=True)

    def status(self, message: str) -> None:
        if self.tty:
            print(f"\r\033[K{self._prefix()} ... {message}", end="", flush=True)
            self._status_shown = True
        else:
            print(f"{self._prefix()} ... {message}", flush=True)

    def _clear_status(self) -> None:
        if self._status_shown:
            print("\r\033[K", end="", flush=True)
            self._status_shown = False

    def wait(self, check: Callable[[], T | None], *, what: str, timeout: float = WAIT_TIMEOUT,
             every: Callable[[], None] | None = None) -> T:
        """Poll `check` until it answers, showing a live status line naming `what`."""
        deadline = time.monotonic() + timeout
        began = time.monotonic()
        last_line = 0.0
        while True:
            if every is not None:
                every()
            value = check()
            if value:
                self._clear_status()
                return value
            now = time.monotonic()
            if now > deadline:
                self._clear_status()
                raise TimeoutError(f"waited {timeout:.0f} s for {what}")
            if self.tty or now - last_line >= 10.0:
                self.status(f"waiting for {what} ({now - began:.0f} s)")
                last_line = now
            time.sleep(0.5)


class Demo:
    """The three cases driven through `sbu` in one `LocalSystem`."""

    def __init__(self, system: LocalSystem, progress: Progress, folder: Path) -> None:
        self.system = system
        self.progress = progress
        self.folder = folder
        self.refs: dict[str, str] = {}
        self.stderr = ""
        self._mail_seen = 0

    # -- the user's doors ------------------------------------------------------------------------

    def sbu(self, *args: str) -> str:
        """`sbu ARGS`, as a user in this system runs it, through the command's own entry point in
        this process: a fresh interpreter per command costs seconds on a busy machine, and case
        time runs an hour a second."""
        out, err = io.StringIO(), io.StringIO()
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.system.env)
        try:
            with redirect_stdout(out), redirect_stderr(err):
                code = main(list(args))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        self.stderr = err.getvalue()
        if code != 0:
            raise SbuError(f"sbu {' '.join(args[:3])} failed: {self.stderr.strip()}")
        return out.getvalue()

    def sbu_json(self, *args: str) -> Any:
        return json.loads(self.sbu(*args, "--json"))

    def record(self, case: str, step: str, day: str | None, *options: str) -> None:
        on = ("--on", day) if day else ()
        self.sbu("record", self.refs[case], step, *on, *options)

    def refer(self, case: str, referral: dict[str, Any]) -> str:
        path = self.folder / f"referral-{case}.json"
        path.write_text(json.dumps(referral, indent=2))
        ref = str(self.sbu_json("refer", str(path))["case_ref"])
        self.refs[case] = ref
        return ref

    def steps(self, case: str) -> dict[str, dict[str, Any]]:
        return {f"{row['step']}:{row['subject']}" if row["subject"] else row["step"]: row
                for row in self.sbu_json("status", self.refs[case])["steps"]}

    def show_mail(self) -> None:
        """Print each reminder, overdue alert and escalation as it lands in the mail sink."""
        subjects = self.system.mail_subjects()
        for subject in subjects[self._mail_seen:]:
            if any(word in subject for word in ALERT_WORDS):
                self.progress.say(f"  mail: {subject}")
        self._mail_seen = len(subjects)

    def has_mail(self, *words: str) -> bool:
        self.show_mail()
        return any(all(word in subject for word in words) for subject in self.system.mail_subjects())

    # -- before serve starts: each case's history, with its real dates --------------------------

    def history(self) -> None:
        p = self.progress
        p.next_stage("recording each case's history so far with `sbu` (nothing is serving yet)")
        lac = self.refer("looked-after", LOOKED_AFTER)
        self.sbu("decide", lac, "--sin", "--rapid-review", "--on", "2027-02-22", *DSPS, "--rationale",
                 "A looked-after child died: notification is mandatory whatever the cause.")
        self.record("looked-after", "sin-submission", "2027-02-25", "--national-ref", "CSIN-2027-0031")
        self.record("looked-after", "partners-informed", "2027-02-25")
        for agency in ("police", "health"):
            self.record("looked-after", "rr-agency-responses", "2027-03-01", "--agency", agency)
        due = self.steps("looked-after")
        p.say(f"  {lac}: a looked-after child's death, referred Mon 22 Feb, SIN submitted Thu 25 Feb; "
              f"each agency's information due {due['rr-agency-responses:education']['due']}, the Rapid "
              f"Review meeting on {due['rr-meeting']['due']}; police and health answered on Mon 1 Mar")

        near = self.refer("near-miss", NEAR_MISS)
        self.sbu("decide", near, "--no-sin", "--rapid-review", "--on", "2027-02-23", *DSPS,
                 "--rationale", "A near miss with learning for several agencies.")
        due = self.steps("near-miss")
        p.say(f"  {near}: a near miss, referred Mon 22 Feb, no SIN; its Rapid Review on the longer "
              f"clocks: information due {due['rr-agency-responses:police']['due']}, meeting on "
              f"{due['rr-meeting']['due']}")

        ref = self.refer("notified", NOTIFIED)
        self.sbu("decide", ref, "--sin", "--rapid-review", "--on", "2027-01-11", *DSPS,
                 "--rationale", "Abuse suspected: the notification criteria are met.")
        case = "notified"
        self.record(case, "sin-submission", "2027-01-11", "--national-ref", "CSIN-2027-0011")
        self.record(case, "partners-informed", "2027-01-12")
        for agency in ("police", "health", "education"):
            self.record(case, "rr-agency-responses", "2027-01-14", "--agency", agency)
        self.record(case, "rr-meeting", "2027-01-21")
        self.record(case, "rr-outcome", "2027-01-21", "--immediate-actions", "Siblings seen; GP alerted.",
                    "--learning", "Information was not shared at discharge.",
                    "--recommendation", "local-cspr", "--rationale", "Systemic learning across agencies.",
                    *DSPS)
        self.record(case, "rr-report-to-panel", "2027-01-22", "--reference", "NP-2027-11")
        self.record(case, "rr-panel-response", "2027-01-25", "--response", "agree")
        p.say(f"  {ref}: serious harm, referred Mon 11 Jan; SIN, Rapid Review, meeting on Thu 21 Jan, "
              "a local CSPR recommended and commissioned, the Panel agrees")
        self.record(case, "cspr-reviewer-appointed", "2027-01-25", "--reviewer", "Dr Jo Reviewer")
        self.record(case, "cspr-terms-of-reference", "2027-01-26")
        self.record(case, "cspr-imr-requests", "2027-01-26", "--imrs-due", "2027-02-12")
        for agency in ("police", "health", "education"):
            self.record(case, "cspr-imr", "2027-02-10", "--agency", agency)
        self.record(case, "cspr-family-engagement", "2027-02-11", "--engagement", "engaged",
                    "--reason", "The parents met the reviewer twice.")
        self.record(case, "rr-action-plan", "2027-02-12")
        self.record(case, "cspr-draft-report", "2027-02-15")
        self.record(case, "cspr-final-report", "2027-02-19")
        self.record(case, "cspr-report-to-panel", "2027-02-22")
        self.record(case, "cspr-publication", "2027-02-26", "--reference", "LSCP-CSPR-2027-01")
        self.sbu("action", "add", ref, "--source", "rapid-review", "--agency", "health",
                 "--owner-role", "Named Nurse", "--summary", "Audit discharge information sharing.",
                 "--due", "2027-03-31")
        self.sbu("action", "add", ref, "--source", "cspr", "--agency", "police",
                 "--owner-role", "Detective Inspector", "--summary", "Brief officers on referral thresholds.",
                 "--due", "2027-04-30")
        self.record(case, "cspr-action-plan", "2027-02-26")
        p.say(f"  {ref}: the CSPR: reviewer, terms of reference, three IMRs, family engagement, "
              "draft and final report, report to the Panel, published Fri 26 Feb; two actions open")

    # -- live, while the runs move on the dashboard ------------------------------------------------

    def near_miss(self) -> None:
        p, near = self.progress, self.refs["near-miss"]
        p.next_stage(f"{near} (near miss): its Rapid Review to the end")
        self.system.wait_for_wait(f"{near} rapid review", "rr-meeting-", timeout=WAIT_TIMEOUT)
        for agency in ("police", "health"):
            self.record("near-miss", "rr-agency-responses", None, "--agency", agency)
            p.say(f"  `sbu record {near} rr-agency-responses --agency {agency}`")
        self.record("near-miss", "rr-meeting", None)
        p.say(f"  `sbu record {near} rr-meeting`: held")
        self.record("near-miss", "rr-outcome", None, "--immediate-actions", "None needed.",
                    "--learning", "Escalation routes between agencies were unclear.",
                    "--recommendation", "no-cspr", "--rationale", "Learning in hand; no CSPR needed.", *DSPS)
        p.say(f"  `sbu record {near} rr-outcome --recommendation no-cspr ...`: signed off by the three DSPs")
        self.record("near-miss", "rr-action-plan", None)
        p.say(f"  `sbu record {near} rr-action-plan`: nothing left open, the case closes")

    def action_plan(self) -> None:
        p, ref = self.progress, self.refs["notified"]
        p.next_stage(f"{ref} (serious harm): its action plan, until the last action closes")
        self.system.wait_for_wait(f"{ref} action plan", "actions-", timeout=WAIT_TIMEOUT)
        self.sbu("action", "note", ref, "a1", "--note", "Audit scoped with the ward manager.",
                 "--evidence", "AUD-7")
        p.say(f"  `sbu action note {ref} a1 --note ... --evidence AUD-7`")
        self.sbu("action", "close", ref, "a2", "--evidence", "BRIEFING-2027-03")
        p.say(f"  `sbu action close {ref} a2 --evidence BRIEFING-2027-03`")
        self.sbu("action", "close", ref, "a1", "--evidence", "AUD-7-FINAL")
        p.say(f"  `sbu action close {ref} a1 --evidence AUD-7-FINAL`: the last action, the case closes")

    def late_step(self) -> None:
        p, lac = self.progress, self.refs["looked-after"]
        p.next_stage(f"{lac} (looked-after child): education's information, due Thu 4 Mar, is left late")
        self.system.wait_for_wait(f"{lac} rapid review", "rr-meeting-", timeout=WAIT_TIMEOUT)
        for word, what in (("Reminder", "the reminder"), ("OVERDUE", "the overdue alert"),
                           ("ESCALATION", "the escalation to the DSPs")):
            p.wait(lambda word=word: self.has_mail(lac, word, "(education)"),  # type: ignore[misc]
                   what=f"{what} on education's information (timers fire in case time)")
        self.record("looked-after", "rr-agency-responses", None, "--agency", "education")
        late = self.steps("looked-after")["rr-agency-responses:education"]
        p.say(f"  `sbu record {lac} rr-agency-responses --agency education`: done {late['completed_on']}, "
              f"due {late['due']}: late")

    def finish_looked_after(self) -> None:
        p, lac = self.progress, self.refs["looked-after"]
        p.next_stage(f"{lac} (looked-after child): the meeting, the outcome and the Panel")
        self.record("looked-after", "rr-meeting", None)
        self.record("looked-after", "rr-outcome", None, "--immediate-actions", "Placement reviewed.",
                    "--learning", "No abuse or neglect found; care planning was sound.",
                    "--recommendation", "no-cspr", "--rationale", "No abuse or neglect known or suspected.",
                    *DSPS)
        self.record("looked-after", "rr-report-to-panel", None, "--reference", "NP-2027-31")
        self.record("looked-after", "rr-panel-response", None, "--response", "agree")
        self.record("looked-after", "rr-action-plan", None)
        p.say(f"  meeting held, outcome (no CSPR) signed off, reported to the Panel, the Panel "
              f"agrees, action plan recorded: {lac} closes")

    def all_closed(self) -> bool:
        return all(self.sbu_json("status", ref)["status"] == "closed" for ref in self.refs.values())

    def report(self) -> tuple[Path, dict[str, Any]]:
        self.progress.next_stage(f"`sbu report --from {REPORT_FROM} --to {REPORT_TO} --csv`")
        out = self.folder / "report"
        body = self.sbu_json("report", "--from", REPORT_FROM, "--to", REPORT_TO, "--csv", "--out", str(out))
        for line in self.stderr.splitlines():
            self.progress.say(f"  {line}")
        return out, dict(body["figures"])


STAGES = 7


def run_demo(*, scale: float = SCALE, root: Path = DEMO_ROOT, port: int | None = None) -> DemoResult:
    """Run the demo in `root` (emptied first) and return what it left; stops everything it started."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    root = root.resolve()
    if port is None:
        port = 4200 if port_is_free(4200) else free_port()
    system = LocalSystem(root=root, prefect_port=port, time_scale=scale, case_start=CASE_START)
    progress = Progress(system, stages=STAGES)
    demo = Demo(system, progress, root)
    print(f"sbu demo: three sample cases, case time {scale:g}x real time from {CASE_START:%a %d %b %Y %H:%M} "
          "UTC; a few minutes in all.", flush=True)
    demo.history()
    progress.next_stage("starting a mail sink and `sbu serve` (a local Prefect server on SQLite)")
    try:
        system.start()
        dashboard = (system.api_url or "").removesuffix("/api")
        progress.say(f"  dashboard: {dashboard}   mail: {system.data_dir / 'mail'}")
        demo.near_miss()
        demo.action_plan()
        demo.late_step()
        demo.finish_looked_after()
        progress.wait(demo.all_closed, what="every case to close", every=demo.show_mail)
        folder, figures = demo.report()
        _save_state(root, system, port)
        _summary(demo, figures, folder, dashboard, system)
    finally:
        system.stop()
        if "prefect" in sys.modules:
            # The commands run here pointed this process's Prefect settings at the demo's server;
            # point them back at this process's own environment (a test's, say).
            from tasks.prefect.connection import prefect_rereads_environment

            prefect_rereads_environment()
    seconds = progress.elapsed()
    print(f"sbu demo: done in {seconds:.0f} s; everything it started has stopped.")
    print("To look around the dashboard and the officers' desk with the demo's data: `make demo-serve` "
          "(or `sbu demo --serve`).",
          flush=True)
    return DemoResult(cases=dict(demo.refs), report_folder=folder, figures=figures, seconds=seconds)


def _summary(demo: Demo, figures: dict[str, Any], folder: Path, dashboard: str, system: LocalSystem) -> None:
    items = figures["items"]
    rr = figures["rapid_reviews"]
    late = [f"{row['step']} ({row['late']} late, median {row['median_working_days_late']:g} working days)"
            for row in figures["timeliness"] if row["late"]]
    alerts = [s for s in system.mail_subjects() if any(word in s for word in ALERT_WORDS)]
    print("\n=== summary ===")
    for name, ref in demo.refs.items():
        print(f"  {ref}  {name}: {demo.sbu_json('status', ref)['status']}")
    print(f"  cases by path: {', '.join(f'{k} {v}' for k, v in figures['by_path'].items() if v)}")
    print(f"  items on time {items['on-time']}, late {items['late']}; late: {', '.join(late) or 'none'}")
    print(f"  Rapid Reviews {rr['rapid_reviews_started']}, converted to a CSPR {rr['cspr_commissioned']}")
    print(f"  email delivered: {len(system.mail_subjects())} "
          f"({len(alerts)} reminders, alerts and escalations)")
    print(f"  report: {folder / 'report.html'} (and report.md, cases.csv, charts/)")
    print(f"  mail as .eml files: {system.data_dir / 'mail'}")
    print(f"  dashboard (while the demo ran): {dashboard}")
    print("=== end ===\n", flush=True)


# -- keeping the dashboard and the desk up afterwards ----------------------------------------------

DESK_PORT = 4400


def _start_desk(system: LocalSystem) -> tuple[subprocess.Popen[bytes], str]:
    """`sbu web` on the demo's data and clock, on port 4400 if it is free; waits until it answers."""
    import httpx

    port = DESK_PORT if port_is_free(DESK_PORT) else free_port()
    log = (system.data_dir / "desk.log").open("ab")
    desk = subprocess.Popen([SBU, "web", "--port", str(port)], env=system.env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if desk.poll() is not None:
            raise SbuError(f"`sbu web` exited with {desk.returncode}; see {system.data_dir / 'desk.log'}")
        try:
            return httpx.get(f"{url}/desk/who", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, timeout=60.0, what="the officers' desk to start")
    return desk, url


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


STATE_FILE = "demo.json"


def _save_state(root: Path, system: LocalSystem, port: int) -> None:
    """What `sbu demo --serve` needs to serve the demo's data again: the case time it ended at."""
    state = {"case_now": system.settings().clock().now().isoformat(), "port": port}
    (root / STATE_FILE).write_text(json.dumps(state))


def serve_demo(*, root: Path = DEMO_ROOT, port: int | None = None) -> None:
    """Keep the dashboard and the officers' desk (`sbu web`) up with the last demo's data (running
    the demo first if there is none), case time going on from where the demo left it at real speed,
    until Ctrl-C."""
    if not (root / STATE_FILE).is_file():
        print("sbu demo --serve: no demo data yet; running the demo first.", flush=True)
        run_demo(root=root, port=port)
    state = json.loads((root / STATE_FILE).read_text())
    if port is None:
        port = int(state["port"]) if port_is_free(int(state["port"])) else free_port()
    case_now = datetime.fromisoformat(state["case_now"])
    system = LocalSystem(root=root.resolve(), prefect_port=port, time_scale=1.0, case_start=case_now)
    # Ctrl-C, and a plain `kill`, stop serve in order (a shell starting this in the background
    # would otherwise have it ignore Ctrl-C's signal).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"sbu demo --serve: starting `sbu serve` on the demo's data (case time {london_date(case_now)})...",
          flush=True)
    desk: subprocess.Popen[bytes] | None = None
    try:
        system.start()
        desk, desk_url = _start_desk(system)
        print(f"dashboard: {(system.api_url or '').removesuffix('/api')}   mail: {system.data_dir / 'mail'}")
        print(f"officers' desk: {desk_url}/desk/ (it asks your name: everything you record there is "
              "recorded as yours)")
        print("Ctrl-C stops it.", flush=True)
        while system.serve_running() and desk.poll() is None:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        if desk is not None:
            _stop(desk)
        system.stop()
    print("sbu demo --serve: stopped.", flush=True)
