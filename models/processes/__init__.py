"""The procedure's own processes, each in a module of its own with its rules and their sources:
the case (`models.processes.case`), the Rapid Review (`models.processes.rapid_review`), the CSPR
(`models.processes.cspr`) and the action plan (`models.processes.action_plan`).

The first is the root: it starts at referral and says when a case closes. The system flows are the
deployments that belong to no case: durable timers, outbox delivery and the reconciliation sweep.
"""

from __future__ import annotations

from models.processes.action_plan import ACTION_PLAN
from models.processes.case import CASE
from models.processes.cspr import CSPR
from models.processes.rapid_review import RAPID_REVIEW
from models.registry import Process, SystemFlow

BUILTIN_PROCESSES: tuple[Process, ...] = (CASE, RAPID_REVIEW, CSPR, ACTION_PLAN)

# Safety nets only: mail is delivered right after each change and runs are told at once, so the
# sweeps catch retries and repairs. Each sweep is a process of its own, so they are not frequent.
OUTBOX_SWEEP_SECONDS = 300
RECONCILE_SECONDS = 600

DEADLINE_CHECK = SystemFlow("deadline-check", "flows.deadline_check:deadline_check", ("timer",))
DELIVER_OUTBOX = SystemFlow("deliver-outbox", "flows.outbox_delivery:deliver_outbox", ("email",),
                            every_seconds=OUTBOX_SWEEP_SECONDS)
RECONCILE = SystemFlow("reconcile", "flows.reconcile:reconcile", ("sweep",),
                       every_seconds=RECONCILE_SECONDS)
SYSTEM_FLOWS: tuple[SystemFlow, ...] = (DEADLINE_CHECK, DELIVER_OUTBOX, RECONCILE)
