"""Writing an import file's cases to the case store (`sbu import`): each case in one transaction,
or the whole file in one (`atomic`), or none at all (`dry_run`), and the SBU's one summary email.

A case already in the store is matched by its referral's agency and external reference: imported
before from the same row, it is unchanged; imported from a different row, or recorded step by step,
it is refused, naming the row, and nothing of it is written. Prefect is not told here: the runs,
timers and dashboard of the new cases catch up through `sbu serve`'s catch-up of what the store has
and Prefect lacks, in batches, as for any change Prefect could not be told of at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import schema
from models.effects import ImportSummaryMail, LateStep
from models.errors import Refused
from models.importing import HistoryRefused, ImportCase, ParsedFile, Problem, late_steps
from models.state import CaseState
from tasks.service import Actor, CaseService
from tasks.store import repositories as repo


class RowStatus(StrEnum):
    IMPORTED = "imported"
    UNCHANGED = "unchanged"
    REFUSED = "refused"
    # A dry run's answer for a row it would import.
    WOULD_IMPORT = "would import"
    # An atomic import that wrote nothing because another row was refused.
    NOT_WRITTEN = "not written"


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """What became of one row: its status, its case (once it has one), why it was refused, and
    for a case written (or that would be), where it stands: its path, stage, open steps and those
    already late."""

    row: int
    status: RowStatus
    case_ref: str | None = None
    problem: Problem | None = None
    path: str | None = None
    stage: str | None = None
    open_steps: tuple[str, ...] = ()
    late: tuple[LateStep, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"row": self.row, "status": self.status.value, "case_ref": self.case_ref,
                "refused": self.problem.line() if self.problem else None, "path": self.path,
                "stage": self.stage, "open_steps": list(self.open_steps),
                "late": [{"step": f"{s.step}:{s.subject}" if s.subject else s.step, "due": s.due.isoformat(),
                          "working_days_late": s.days_late} for s in self.late]}


@dataclass(frozen=True, slots=True)
class ImportReport:
    rows: tuple[RowOutcome, ...]
    sha256: str
    summary_queued: bool = False
    counts: dict[str, int] = field(default_factory=dict)


Progress = Callable[[int, int], None]


class _RolledBack(Exception):
    def __init__(self, outcome: RowOutcome) -> None:
        super().__init__(outcome.status.value)
        self.outcome = outcome


# An engine's refusal may say a date of the case ("before the step's clock started (2026-05-04)");
# the row's report names the column, not what is in it.
_DATE_IN_WORDS = re.compile(r"\s*\(?[0-9]{4}-[0-9]{2}-[0-9]{2}\)?")


def import_cases(service: CaseService, parsed: ParsedFile, *, file_name: str, importer: Actor,
                 dry_run: bool = False, atomic: bool = False,
                 progress: Progress | None = None) -> ImportReport:
    """Import `parsed`'s cases (refusing its refused rows), and queue the SBU's summary of the
    import if any case was written. See the module's docstring for what each mode writes."""
    imported = {"by": importer.name, "file": file_name, "sha256": parsed.sha256}
    refused = [RowOutcome(problem.row, RowStatus.REFUSED, problem=problem) for problem in parsed.refused]
    total = len(parsed.cases)
    outcomes: list[RowOutcome] = []
    if dry_run or atomic:
        for done, case in enumerate(parsed.cases, start=1):
            outcomes.append(_one(service, case, importer=importer, imported=imported, write=False))
            if progress is not None:
                progress(done, total)
        if dry_run:
            return _report(parsed, [*refused, *outcomes], summary_queued=False)
        if refused or any(o.status is RowStatus.REFUSED for o in outcomes):
            kept = [o if o.status in (RowStatus.REFUSED, RowStatus.UNCHANGED)
                    else RowOutcome(o.row, RowStatus.NOT_WRITTEN) for o in outcomes]
            return _report(parsed, [*refused, *kept], summary_queued=False)
        with service.store.transaction() as session:
            outcomes = [_write(service, session, case, importer=importer, imported=imported)
                        for case in parsed.cases]
            queued = _queue_summary(service, session, parsed, outcomes)
        return _report(parsed, outcomes, summary_queued=queued)
    for done, case in enumerate(parsed.cases, start=1):
        outcomes.append(_one(service, case, importer=importer, imported=imported, write=True))
        if progress is not None:
            progress(done, total)
    queued = False
    if any(o.status is RowStatus.IMPORTED for o in outcomes):
        with service.store.transaction() as session:
            queued = _queue_summary(service, session, parsed, outcomes)
    return _report(parsed, [*refused, *outcomes], summary_queued=queued)


def _report(parsed: ParsedFile, outcomes: Sequence[RowOutcome], *, summary_queued: bool) -> ImportReport:
    rows = tuple(sorted(outcomes, key=lambda o: o.row))
    counts: dict[str, int] = {}
    for outcome in rows:
        counts[outcome.status.value] = counts.get(outcome.status.value, 0) + 1
    return ImportReport(rows=rows, sha256=parsed.sha256, summary_queued=summary_queued, counts=counts)


def _one(service: CaseService, case: ImportCase, *, importer: Actor, imported: dict[str, Any],
         write: bool) -> RowOutcome:
    """One case in a transaction of its own, committed if `write`, else rolled back (a dry run's,
    and an atomic import's first pass)."""
    try:
        with service.store.transaction() as session:
            outcome = _write(service, session, case, importer=importer, imported=imported)
            if not write or outcome.status is not RowStatus.IMPORTED:
                raise _RolledBack(outcome)
            return outcome
    except _RolledBack as rolled_back:
        outcome = rolled_back.outcome
        if outcome.status is RowStatus.IMPORTED:
            return RowOutcome(outcome.row, RowStatus.WOULD_IMPORT, None, None, outcome.path, outcome.stage,
                              outcome.open_steps, outcome.late)
        return outcome
    except HistoryRefused as error:
        return _refused(case.row, case.column_of(error.index), str(error))
    except Refused as error:
        return _refused(case.row, "referral", str(error))


def _refused(row: int, column: str, reason: str) -> RowOutcome:
    words = _DATE_IN_WORDS.sub("", reason).strip() or "refused by the procedure"
    return RowOutcome(row, RowStatus.REFUSED, problem=Problem(row, column, words))


def _write(service: CaseService, session: Session, case: ImportCase, *, importer: Actor,
           imported: dict[str, Any]) -> RowOutcome:
    """The case written in `session`, or why not (a refusal of the procedure is raised)."""
    referral = case.referral
    existing = repo.find_referral(session=session, partnership=service.settings.partnership,
                                  agency=referral.referring_agency, external_ref=referral.external_ref)
    if existing is not None:
        digest = _imported_digest(session, existing.id)
        if digest == case.digest:
            return RowOutcome(case.row, RowStatus.UNCHANGED, existing.case_ref)
        if digest is None:
            return RowOutcome(case.row, RowStatus.REFUSED, existing.case_ref, Problem(
                case.row, "external_ref", f"already in the store as {existing.case_ref}, referred there, not "
                                          "imported; nothing was written"))
        return RowOutcome(case.row, RowStatus.REFUSED, existing.case_ref, Problem(
            case.row, "(row)", f"{existing.case_ref} was imported from a different version of this row; a "
                               "changed row is not applied (record what changed with `sbu record`)"))
    state = service.replay(session, referral, case.history, importer=importer,
                           imported={**imported, "row": case.row, "digest": case.digest,
                                     "recorded_by": case.recorded_by})
    return _imported(service, case.row, state)


def _imported(service: CaseService, row: int, state: CaseState) -> RowOutcome:
    ctx = service.context()
    return RowOutcome(row, RowStatus.IMPORTED, state.case_ref, path=state.path.value if state.path else None,
                      stage=service.registry.stage_of(state).value,
                      open_steps=tuple(item.label for item in state.open_steps()),
                      late=late_steps(state, ctx))


def _imported_digest(session: Session, case_id: int) -> str | None:
    """The digest of the row the case was imported from, or None if it was not imported: its
    first audit event (its referral) says."""
    events = schema.audit_events
    detail = session.execute(select(events.c.detail).where(events.c.case_id == case_id)
                             .order_by(events.c.id).limit(1)).scalar_one_or_none()
    if not isinstance(detail, dict):
        return None
    mark = detail.get("imported")
    return str(mark["digest"]) if isinstance(mark, dict) and "digest" in mark else None


def _queue_summary(service: CaseService, session: Session, parsed: ParsedFile,
                   outcomes: Sequence[RowOutcome]) -> bool:
    """The SBU's one email about the import: the cases imported and their late steps."""
    from tasks.mail.drafts import draft_for
    from tasks.mail.outbox import mail_domain, queue_email

    written = [o for o in outcomes if o.status is RowStatus.IMPORTED]
    if not written:
        return False
    now = service.clock.now()
    mail = ImportSummaryMail(imported=len(written), late=tuple(s for o in written for s in o.late),
                             on=service.context().today, file_sha256=parsed.sha256)
    settings = service.settings
    draft = draft_for(mail, case_ref="", directory=service.directory, dashboard_url=settings.dashboard_url,
                      now=now)
    return queue_email(session, draft, case_id=None, now=now,
                       mail_from_domain=mail_domain(settings.mail_from))
