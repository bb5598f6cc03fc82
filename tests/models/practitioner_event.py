"""A variant of the CSPR for the tests: a practitioner learning event, due 30 working days after
commissioning, added to the CSPR in one declaration, the way a partnership would add a step of its
own (`SBU_PROCESS_MODULES=tests.models.practitioner_event`). Nothing else names it: the timetable,
`sbu status`, `sbu record`, the CSPR's dashboard form, its timers, who may record it and what a
national review does to it all follow from this (`tests/deployments/test_practitioner_event.py`).
"""

from __future__ import annotations

from models.enums import Anchor, Role
from models.forms import StepCompletionForm
from models.registry import Step
from models.timetable import ClockSetting, WorkingDaysAfter

PRACTITIONER_EVENT = Step(
    "cspr-practitioner-event", "Practitioner learning event held",
    owner=Role.SBU, anchor=Anchor.CSPR_COMMISSIONED, source="local procedure, step 6",
    clock=WorkingDaysAfter(ClockSetting("cspr_practitioner_event_days", 30, at_most=250)),
    form=StepCompletionForm, waits=("cspr-evidence",), national_review_cancels=True, label="Practitioners")

STEPS = {"cspr": (PRACTITIONER_EVENT,)}
