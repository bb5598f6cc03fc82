"""What the store says about cases, read with SQLAlchemy Core: the views every interface shows.

`sbu status` and `sbu cases` answer from here without importing the ORM or the case service,
which keeps them inside issue 2's half second; the service, the flows and the bridge read through
here too, so a case looks the same wherever it is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from models import schema
from models.enums import CasePath, CaseStatus, Category, StepId, StepState
from models.timetable import STEP_RULES
from sbu.errors import NotFound

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine, Row

RAPID_REVIEW_STEPS = (StepId.RR_AGENCY_RESPONSES, StepId.RR_MEETING, StepId.RR_REPORT_TO_PANEL)


@dataclass(frozen=True, slots=True)
class StepView:
    step: StepId
    title: str
    state: StepState
    due: date
    rule: str
    completed_on: date | None
    completed_by: str | None
    overdue: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "step": self.step.value, "title": self.title, "due": self.due.isoformat(),
            "state": self.state.value, "rule": self.rule, "overdue": self.overdue,
            "completed_on": self.completed_on.isoformat() if self.completed_on else None,
            "completed_by": self.completed_by,
        }


@dataclass(frozen=True, slots=True)
class CaseView:
    case_ref: str
    status: CaseStatus
    path: CasePath | None
    category: Category
    referred_on: date
    steps: tuple[StepView, ...]
    flow_run_id: str | None
    rapid_review_run_id: str | None = None
    agencies_responded: int = 0
    agencies_total: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "case_ref": self.case_ref, "status": self.status.value,
            "path": self.path.value if self.path else None, "category": self.category.value,
            "referred_on": self.referred_on.isoformat(),
            "steps": [step.as_json() for step in self.steps],
        }

    def open_steps(self) -> list[StepView]:
        return [step for step in self.steps if step.state is StepState.OPEN]

    def state_of(self, step: StepId) -> StepState | None:
        return next((s.state for s in self.steps if s.step is step), None)

    @property
    def decided(self) -> bool:
        return self.state_of(StepId.DSP_DECISION) is StepState.DONE or self.path is not None

    @property
    def rapid_review_progress(self) -> str:
        """Changes whenever anything is recorded in the Rapid Review: the Rapid Review flow names
        each wait after it, so a wait is never answered by an input meant for an earlier one."""
        done = sum(1 for s in self.steps if s.step in RAPID_REVIEW_STEPS and s.state is not StepState.OPEN)
        return f"{done}-{self.agencies_responded}"


def no_such_case(case_ref: str, partnership: str) -> NotFound:
    return NotFound(f"no case {case_ref!s:.40} in partnership {partnership}")


def case_view(engine: Engine, *, partnership: str, case_ref: str, today: date) -> CaseView:
    """One case as it stands; `today` (London) decides which open steps are overdue."""
    cases = schema.cases
    with engine.connect() as connection:
        row = connection.execute(select(cases).where(
            cases.c.case_ref == case_ref, cases.c.partnership == partnership)).one_or_none()
        if row is None:
            raise no_such_case(case_ref, partnership)
        return _views(connection, [row], today)[0]


def case_views(engine: Engine, *, partnership: str, today: date) -> list[CaseView]:
    """Every case of the partnership, oldest first."""
    cases = schema.cases
    with engine.connect() as connection:
        rows = connection.execute(
            select(cases).where(cases.c.partnership == partnership).order_by(cases.c.id)).all()
        return _views(connection, rows, today)


def _views(connection: Connection, rows: Sequence[Row[Any]], today: date) -> list[CaseView]:
    if not rows:
        return []
    ids = [row.id for row in rows]
    steps, agencies = schema.steps, schema.case_agencies
    steps_by_case: dict[int, list[StepView]] = {case_id: [] for case_id in ids}
    for s in connection.execute(select(steps).where(steps.c.case_id.in_(ids)).order_by(steps.c.id)):
        steps_by_case[s.case_id].append(StepView(
            step=s.step, title=STEP_RULES[s.step].title, state=s.state, due=s.due_on, rule=s.rule,
            completed_on=s.completed_on, completed_by=s.completed_by,
            overdue=s.state is StepState.OPEN and s.due_on < today))
    counts = {
        case_id: (responded, total)
        for case_id, responded, total in connection.execute(
            select(agencies.c.case_id, func.count(agencies.c.responded_on), func.count())
            .where(agencies.c.case_id.in_(ids)).group_by(agencies.c.case_id)).tuples()
    }
    views = []
    for row in rows:
        responded, total = counts.get(row.id, (0, 0))
        views.append(CaseView(
            case_ref=row.case_ref, status=row.status, path=row.path, category=row.category,
            referred_on=row.referred_on, flow_run_id=row.flow_run_id,
            rapid_review_run_id=row.rapid_review_run_id, agencies_responded=responded,
            agencies_total=total, steps=tuple(steps_by_case[row.id])))
    return views
