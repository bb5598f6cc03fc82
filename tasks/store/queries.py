"""What the store says about cases, read with SQLAlchemy Core: the `CaseState` every interface shows
and the procedure is given.

`sbu status` and `sbu cases` answer from here without importing the ORM, the case service or the
procedure, which keeps them inside their half second; the service, the flows and the bridge
read through here too, so a case looks the same wherever it is shown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, func, select

from models import schema
from models.enums import Agency, Anchor, StepState, known_step
from models.errors import NotFound
from models.rules import CaseFacts
from models.state import CaseState, DecisionSummary, ItemState, MeetingState

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine, Row


# A reference as the partnership spells them (SR-2026-0001): only such a reference is repeated in
# the error; anything else typed there is not echoed (it may be a name, or a line of a header).
_CASE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,39}", re.ASCII)


def no_such_case(case_ref: str, partnership: str) -> NotFound:
    if _CASE_REF.fullmatch(case_ref):
        return NotFound(f"no case {case_ref} in partnership {partnership}")
    return NotFound(f"no case with that reference in partnership {partnership} "
                    "(a case reference is its prefix, year and number: SR-YYYY-NNNN)")


def _case_query() -> Any:
    cases, children, decisions = schema.cases, schema.case_children, schema.decisions

    def any_child(flag: Any) -> Any:
        return exists().where(children.c.case_id == cases.c.id, flag.is_(True)).label(f"any_{flag.name}")

    return (select(cases, any_child(children.c.looked_after), any_child(children.c.care_leaver),
                   decisions.c.sin.label("decision_sin"),
                   decisions.c.rapid_review.label("decision_rapid_review"),
                   decisions.c.recorded_by.label("decision_recorded_by"),
                   decisions.c.recorded_via.label("decision_recorded_via"))
            .select_from(cases.outerjoin(decisions, decisions.c.case_id == cases.c.id)))


def case_state(connection: Connection, *, partnership: str, case_ref: str, today: date) -> CaseState:
    """One case as it stands; `today` (London) decides which open items are overdue."""
    cases = schema.cases
    row = connection.execute(_case_query().where(
        cases.c.case_ref == case_ref, cases.c.partnership == partnership)).one_or_none()
    if row is None:
        raise no_such_case(case_ref, partnership)
    return _states(connection, [row], today)[0]


def case_view(engine: Engine, *, partnership: str, case_ref: str, today: date) -> CaseState:
    with engine.connect() as connection:
        return case_state(connection, partnership=partnership, case_ref=case_ref, today=today)


def case_views(engine: Engine, *, partnership: str, today: date) -> list[CaseState]:
    """Every case of the partnership, oldest first."""
    cases = schema.cases
    with engine.connect() as connection:
        rows = connection.execute(
            _case_query().where(cases.c.partnership == partnership).order_by(cases.c.id)).all()
        return _states(connection, rows, today)


def _states(connection: Connection, rows: Sequence[Row[Any]], today: date) -> list[CaseState]:
    if not rows:
        return []
    ids = [row.id for row in rows]
    items, agencies, runs = schema.items, schema.case_agencies, schema.case_runs
    records, meetings, case_anchors = schema.records, schema.meetings, schema.case_anchors
    items_by_case: dict[int, list[ItemState]] = {case_id: [] for case_id in ids}
    for i in connection.execute(select(items).where(items.c.case_id.in_(ids)).order_by(items.c.id)):
        items_by_case[i.case_id].append(ItemState(
            step=known_step(i.step), subject=i.subject, process=i.process, title=i.title, state=i.state,
            anchor=i.anchor, anchor_on=i.anchor_on, due=i.due_on, rule=i.rule,
            completed_on=i.completed_on, completed_by=i.completed_by, completed_via=i.completed_via,
            overdue=i.state is StepState.OPEN and i.due_on < today, agency=i.agency,
            details=i.details or {}, due_set_by_person=i.due_set_by_person))
    agencies_by_case: dict[int, list[Agency]] = {case_id: [] for case_id in ids}
    for a in connection.execute(select(agencies).where(agencies.c.case_id.in_(ids))
                                .order_by(agencies.c.case_id, agencies.c.agency)):
        agencies_by_case[a.case_id].append(a.agency)
    runs_by_case: dict[int, dict[str, str | None]] = {case_id: {} for case_id in ids}
    for r in connection.execute(select(runs).where(runs.c.case_id.in_(ids)).order_by(runs.c.started_at)):
        runs_by_case[r.case_id][r.process] = r.flow_run_id
    counts_by_case: dict[int, dict[str, int]] = {case_id: {} for case_id in ids}
    for case_id, kind, count in connection.execute(
            select(records.c.case_id, records.c.kind, func.count())
            .where(records.c.case_id.in_(ids)).group_by(records.c.case_id, records.c.kind)):
        counts_by_case[case_id][kind] = count
    meeting_by_case = {m.case_id: MeetingState(m.starts_at, m.minutes, m.place, m.sequence)
                       for m in connection.execute(select(meetings).where(meetings.c.case_id.in_(ids)))}
    # Every anchor of every case listed, in one round trip; in date order, as a person reads them.
    anchors_by_case: dict[int, dict[Anchor, date]] = {case_id: {} for case_id in ids}
    for a in connection.execute(select(case_anchors).where(case_anchors.c.case_id.in_(ids))
                                .order_by(case_anchors.c.anchor_on, case_anchors.c.anchor)):
        anchors_by_case[a.case_id][a.anchor] = a.anchor_on
    states = []
    for row in rows:
        decision = (DecisionSummary(row.decision_sin, row.decision_rapid_review, row.decision_recorded_by,
                                    row.decision_recorded_via)
                    if row.decision_sin is not None else None)
        states.append(CaseState(
            case_ref=row.case_ref, status=row.status, path=row.path, category=row.category,
            facts=CaseFacts(category=row.category, abuse_or_neglect=row.abuse_or_neglect,
                            looked_after_child=bool(row.any_looked_after),
                            care_leaver=bool(row.any_care_leaver)),
            referred_at=row.referred_at,
            anchors=anchors_by_case[row.id],
            steps=tuple(items_by_case[row.id]), agencies=tuple(agencies_by_case[row.id]),
            runs=runs_by_case[row.id], decision=decision, record_counts=counts_by_case[row.id],
            meeting=meeting_by_case.get(row.id), review=row.review))
    return states


@dataclass(frozen=True, slots=True)
class ActionRow:
    """One action of a case's plan, as `sbu action list` shows it to the SBU: its wording and owner
    come from the store's record of the form that added it."""

    action: str
    source: str
    agency: str
    owner_role: str
    summary: str
    due: date
    state: str
    overdue: bool
    notes: int
    evidence_ref: str | None
    completed_on: date | None

    def as_json(self) -> dict[str, Any]:
        return {"action": self.action, "source": self.source, "agency": self.agency,
                "owner_role": self.owner_role, "summary": self.summary, "due": self.due.isoformat(),
                "state": self.state, "overdue": self.overdue, "notes": self.notes,
                "evidence_ref": self.evidence_ref,
                "completed_on": self.completed_on.isoformat() if self.completed_on else None}


def action_plan(engine: Engine, *, partnership: str, case_ref: str, today: date,
                state: CaseState | None = None) -> list[ActionRow]:
    """Every action of the case, in the order they were added. A caller that has just read the case
    passes it as `state`, so the case page reads it once, not twice."""
    records, cases = schema.records, schema.cases
    with engine.connect() as connection:
        if state is None:
            state = case_state(connection, partnership=partnership, case_ref=case_ref, today=today)
        added = {row.subject: row.form_values for row in connection.execute(
            select(records.c.subject, records.c.form_values)
            .join(cases, cases.c.id == records.c.case_id)
            .where(cases.c.case_ref == case_ref, cases.c.partnership == partnership,
                   records.c.kind == "action-added"))}
    rows = []
    for item in state.items_of("action"):
        form = added.get(item.subject, {})
        rows.append(ActionRow(
            action=item.subject, source=str(form.get("source", "")),
            agency=item.agency.value if item.agency else "", owner_role=str(form.get("owner_role", "")),
            summary=str(form.get("summary", "")), due=item.due, state=item.state.value, overdue=item.overdue,
            notes=int(item.details.get("notes", 0)), evidence_ref=item.details.get("evidence_ref"),
            completed_on=item.completed_on))
    return rows
