"""`sbu demo` (`make demo`): the whole system on the embedded defaults with one sample case.

Starts a mail sink and `sbu serve` (a local Prefect server on SQLite) with a fast case clock, then
does what an SBU officer would: refers a case, records the DSPs' decision and the SIN, and watches
the Rapid Review start and the deadline timers send their email. Prints progress as it goes and a
summary at the end, then stops everything. Its data lives under `var/demo`, replaced on each run.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deployments.local import LocalSystem, free_port, wait_until
from deployments.serve import port_is_free

DEMO_ROOT = Path("var/demo")
# The sample is referred on Wednesday 23 December 2026, so its clocks run over Christmas: watch
# the bank holidays on 25 and 28 December push every due date.
# It starts in the small hours because serve's start-up takes most of a case day at the default
# scale, and the DSPs should still decide on time, on Thursday 24 December.
CASE_START = datetime(2026, 12, 23, 0, 15, tzinfo=UTC)
SAMPLE_REFERRAL: dict[str, Any] = {
    "referring_agency": "police", "external_ref": "POL-2026-1234",
    "category": "serious-harm", "abuse_or_neglect": "suspected",
    "incident_date": "2026-12-20", "la_aware_date": "2026-12-22",
    "referred_at": "2026-12-23T00:15:00+00:00",
    "children": [{"la_record_id": "LA-000123", "age_years": 7, "looked_after": False,
                  "care_leaver": False}],
    "agencies_involved": ["police", "health", "children-social-care", "education"],
}
# The three DSP roles, each signing once (a deputy would add `--deputy ROLE`).
DSPS = ("--dsp-la", "Dana Lee", "--dsp-health", "Sam Patel", "--dsp-police", "Alex Morgan")


class Progress:
    def __init__(self, system: LocalSystem) -> None:
        self.system = system
        self.clock = system.settings().clock()
        self.started = time.monotonic()

    def say(self, message: str) -> None:
        case_now = self._case_now()
        print(f"[{time.monotonic() - self.started:6.1f} s | case time {case_now:%a %d %b %H:%M}] "
              f"{message}", flush=True)

    def _case_now(self) -> datetime:
        return self.clock.now()


def run_demo(*, scale: float) -> None:
    if DEMO_ROOT.exists():
        shutil.rmtree(DEMO_ROOT)
    DEMO_ROOT.mkdir(parents=True)
    port = 4200 if port_is_free(4200) else free_port()
    system = LocalSystem(root=DEMO_ROOT.resolve(), prefect_port=port, time_scale=scale,
                         case_start=CASE_START)
    progress = Progress(system)
    # Referred before the system starts, as a referral made while nothing is serving would be:
    # `sbu serve` catches up on start. (Its start-up also takes most of a case day at this scale.)
    case_ref = _refer(system, progress)
    progress.say(f"starting a mail sink and `sbu serve` (case time runs {scale:g}x faster)...")
    with system:
        dashboard = (system.api_url or "").removesuffix("/api")
        progress.say(f"Prefect dashboard: {dashboard}")
        _walk_through(system, progress, dashboard, case_ref)
        _summary(system, case_ref, dashboard)
    progress.say("stopped. The demo's data is under var/demo (store, mail as .eml, Prefect's database).")


def _refer(system: LocalSystem, progress: Progress) -> str:
    referral = DEMO_ROOT / "referral.json"
    referral.write_text(json.dumps(SAMPLE_REFERRAL, indent=2))
    case_ref = str(system.sbu_json("refer", str(referral))["case_ref"])
    progress.say(f"`sbu refer`: {case_ref} stored with its first deadline (the DSP decision is due "
                 f"{_steps(system, case_ref)['dsp-decision']['due']})")
    return case_ref


def _walk_through(system: LocalSystem, progress: Progress, dashboard: str, case_ref: str) -> None:
    run = system.wait_for_wait(case_ref, "dsp-decision")
    progress.say(f"{case_ref} is waiting for the DSP decision, holding no process; the DSPs have "
                 f"been emailed; its form is at {dashboard}/runs/flow-run/{run.id}")
    decided_at = time.monotonic()
    system.sbu("decide", case_ref, "--sin", "--rapid-review",
               "--rationale", "Abuse suspected: the notification criteria are met.", *DSPS)
    progress.say("`sbu decide --sin --rapid-review`: recorded in the case store, then the run resumed")
    system.wait_for_wait(case_ref, "notification-")
    steps = _steps(system, case_ref)
    progress.say(f"{case_ref} moved on ({time.monotonic() - decided_at:.1f} s after `sbu decide` "
                 "began, its start-up included) and waits for the SIN record; the SIN pack is an "
                 f"artifact on the run. sin-submission is due {steps['sin-submission']['due']}: "
                 "5 working days after Tue 22 Dec, skipping the bank holidays on 25 and 28 Dec")

    system.sbu("record", case_ref, "sin-submission", "--national-ref", "CSIN-DEMO-0001")
    progress.say("`sbu record sin-submission --national-ref CSIN-DEMO-0001`")
    system.wait_for_wait(f"{case_ref} rapid review", "rr-meeting-")
    steps = _steps(system, case_ref)
    progress.say(f"the Rapid Review runs as its own deployment run: agency information due "
                 f"{steps['rr-agency-responses:police']['due']}, meeting on {steps['rr-meeting']['due']}, "
                 f"report to the Panel by {steps['rr-report-to-panel']['due']}")
    for agency in ("police", "health"):
        system.sbu("record", case_ref, "rr-agency-responses", "--agency", agency)
        progress.say(f"`sbu record rr-agency-responses --agency {agency}`")
    progress.say("education and children's social care have not responded: the durable timers "
                 "will remind, then alert (about two minutes of wall time)...")
    shown: set[int] = set()

    def show_alerts() -> bool:
        for index, subject in enumerate(system.mail_subjects()):
            if index not in shown and any(w in subject for w in ("Reminder", "OVERDUE", "ESCALATION")):
                shown.add(index)
                progress.say(f"mail: {subject}")
        return _has_alert(system, case_ref, "Agency information", "OVERDUE")

    wait_until(show_alerts, timeout=300, what="the agency responses' overdue alert", interval=1.0)


def _has_alert(system: LocalSystem, case_ref: str, step_title: str, kind: str) -> bool:
    return any(case_ref in s and step_title in s and kind in s for s in system.mail_subjects())


def _steps(system: LocalSystem, case_ref: str) -> dict[str, dict[str, Any]]:
    return {f"{row['step']}:{row['subject']}" if row["subject"] else row["step"]: row
            for row in system.sbu_json("status", case_ref)["steps"]}


def _summary(system: LocalSystem, case_ref: str, dashboard: str) -> None:
    status = system.sbu("status", case_ref).stdout
    mail = Counter(subject.split("] ", 1)[-1].split(":", 1)[0] for subject in system.mail_subjects())
    print("\n=== summary ===")
    print(status.rstrip())
    print(f"email delivered to the sink: {sum(mail.values())} "
          f"({', '.join(f'{n} {kind}' for kind, n in sorted(mail.items()))})")
    print(f"mail as .eml files: {system.data_dir / 'mail'}")
    print(f"dashboard (while the demo ran): {dashboard}")
    print("=== end ===\n", flush=True)
