"""The procedure's own processes, each in a module of its own with its steps, its rules and their
sources: the case (`models.processes.case`), the Rapid Review (`models.processes.rapid_review`),
the CSPR (`models.processes.cspr`) and the action plan (`models.processes.action_plan`).

The first is the root: it starts at referral and says when a case closes. The system flows are the
deployments that belong to no case: the timer pass, outbox delivery, the reconciliation sweep, and
the daily digest, monthly progress summary and yearly report at times of day.

`build_registry` puts them together with a partnership's own processes and steps; `StepId` and
`STEP_RULES` are readable names for the procedure's own steps, derived from their declarations.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import EnumMeta, StrEnum
from typing import TYPE_CHECKING

from models.processes.action_plan import ACTION_PLAN
from models.processes.case import CASE
from models.processes.cspr import CSPR
from models.processes.rapid_review import RAPID_REVIEW
from models.registry import Process, Registry, SystemFlow, assemble
from models.schedules import DAILY_DIGEST_CRON, PROGRESS_SUMMARY_CRON, YEARLY_REPORT_CRON
from models.timetable import StepRule

BUILTIN_PROCESSES: tuple[Process, ...] = (CASE, RAPID_REVIEW, CSPR, ACTION_PLAN)

# Safety nets only: mail is delivered right after each change and runs are told at once, so the
# sweeps catch retries and repairs. Each sweep is a process of its own, so they are not frequent.
OUTBOX_SWEEP_SECONDS = 300
RECONCILE_SECONDS = 600

# Runs when told: one run planned at the time the next timer comes due (`tasks.prefect.timers`).
TIMER_PASS = SystemFlow("timer-pass", "flows.timer_pass:timer_pass", ("timer",))
DELIVER_OUTBOX = SystemFlow("deliver-outbox", "flows.outbox_delivery:deliver_outbox", ("email",),
                            every_seconds=OUTBOX_SWEEP_SECONDS)
RECONCILE = SystemFlow("reconcile", "flows.reconcile:reconcile", ("sweep",),
                       every_seconds=RECONCILE_SECONDS)
# At times of day in Europe/London; each run asks the calendar whether today is its day
# (`models.schedules`).
DAILY_DIGEST = SystemFlow("daily-digest", "flows.daily_digest:daily_digest", ("email", "digest"),
                          cron=DAILY_DIGEST_CRON)
PROGRESS_SUMMARY = SystemFlow("progress-summary", "flows.progress_summary:progress_summary",
                              ("email", "report"), cron=PROGRESS_SUMMARY_CRON)
YEARLY_REPORT = SystemFlow("yearly-report", "flows.yearly_report:yearly_report", ("report",),
                           cron=YEARLY_REPORT_CRON)
SYSTEM_FLOWS: tuple[SystemFlow, ...] = (TIMER_PASS, DELIVER_OUTBOX, RECONCILE, DAILY_DIGEST,
                                        PROGRESS_SUMMARY, YEARLY_REPORT)


def build_registry(modules: Iterable[str] = ()) -> Registry:
    """The built-in processes and system flows, then what each module in `modules` adds (its
    `PROCESSES`, its `STEPS`: see `models.registry.assemble`). The CLI, `sbu serve` and a flow
    run's process call this with `SBU_PROCESS_MODULES`; it refuses, with the reason, a registry
    whose declarations do not fit together."""
    return assemble(BUILTIN_PROCESSES, SYSTEM_FLOWS, modules)


BUILTIN_STEPS = tuple(spec for process in BUILTIN_PROCESSES for spec in process.steps)

if TYPE_CHECKING:
    class _AnyStep(EnumMeta):
        # For the type checker: any constant name is a member (the members are derived below).
        def __getattr__(cls, name: str) -> StepId: ...

    class StepId(StrEnum, metaclass=_AnyStep):
        """The procedure's own step ids, one constant per declared step."""
else:
    # One constant per built-in step, named after its id: `StepId.RR_MEETING == "rr-meeting"`,
    # in the registry's order. A partnership's own steps are the registry's (`Registry.steps`).
    StepId = StrEnum("StepId", [(spec.step.upper().replace("-", "_"), spec.step) for spec in BUILTIN_STEPS])

# Each built-in step's timing, by step id: what emails and reports name a step by.
STEP_RULES: dict[str, StepRule] = {spec.step: spec.rule for spec in BUILTIN_STEPS}
