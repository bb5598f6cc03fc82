"""Who may record what, enforced by the case service against a real store: with a people
directory, a change by someone not in it (or without the role, or with a signature that is not
the role-holder's) is refused before anything is written; the actor is on every audit event."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from models.access import NOT_IN_DIRECTORY
from models.enums import Interface
from models.errors import Refused
from models.forms import DspDecisionForm, SinSubmissionForm
from models.processes import StepId, build_registry
from models.settings import Settings
from models.tables import AuditEvent
from tasks.people import load_people
from tasks.service import Actor, CaseService
from tasks.store.db import Store
from tests.conftest import PEOPLE_TOML
from tests.tasks.test_service import count, referral


@pytest.fixture
def guarded(store: Store, settings: Settings, clock: Any, tmp_path: Path) -> CaseService:
    people = tmp_path / "people.toml"
    people.write_text(PEOPLE_TOML)
    return CaseService(store=store, settings=settings.model_copy(update={"people_file": people}),
                       clock=clock)


def cli(name: str) -> Actor:
    return Actor(name, Interface.CLI)


def decision(**changes: Any) -> DspDecisionForm:
    return DspDecisionForm.model_validate({
        "sin": True, "rapid_review": True, "rationale": "Criteria met on the facts known.",
        "dsp_la": {"name": "Dana Lee"}, "dsp_health": {"name": "Sam Patel"},
        "dsp_police": {"name": "Alex Morgan"}, "decided_on": date(2026, 12, 23), **changes})


def trail(service: CaseService) -> list[tuple[int, str, str, str]]:
    with service.store.reading() as session:
        return [(row.id, row.actor, row.via.value, row.hash)
                for row in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_an_unknown_actor_is_refused_with_nothing_written(guarded: CaseService) -> None:
    with pytest.raises(Refused) as refused:
        guarded.refer(referral(), actor=cli("mallory"))
    assert str(refused.value) == NOT_IN_DIRECTORY
    assert guarded.list_cases() == []
    assert trail(guarded) == []

    case_ref = guarded.refer(referral(), actor=cli("sbu-officer")).case_ref
    before, view = trail(guarded), guarded.case_view(case_ref)
    for actor, form in (("mallory", decision()),  # not in the directory
                        ("kshaw", decision()),  # in it, without a role that decides
                        ("dlee", decision(dsp_police={"name": "Kim Shaw"}))):  # not the police DSP
        with pytest.raises(Refused):
            guarded.decide(case_ref, form, actor=cli(actor))
        assert trail(guarded) == before
        assert guarded.case_view(case_ref) == view


def test_the_actor_is_on_every_change(guarded: CaseService) -> None:
    case_ref = guarded.refer(referral(), actor=cli("sbu-officer")).case_ref
    guarded.decide(case_ref, decision(), actor=Actor("dlee", Interface.PREFECT_UI))
    guarded.record(case_ref, StepId.SIN_SUBMISSION,
                   SinSubmissionForm(national_ref="CSIN-2026-1", completed_on=date(2026, 12, 23)),
                   actor=cli("kshaw"))
    rows = trail(guarded)
    assert count(guarded, AuditEvent) == len(rows) > 3
    actors = {(actor, via) for _, actor, via, _ in rows}
    assert actors == {("sbu-officer", "cli"), ("dlee", "prefect-ui"), ("kshaw", "cli")}
    steps = {step.step: step for step in guarded.case_view(case_ref).steps}
    assert steps[StepId.DSP_DECISION].completed_by == "dlee"


def test_without_a_directory_anyone_records_as_before(service: CaseService) -> None:
    case_ref = service.refer(referral(), actor=cli("anyone at all")).case_ref
    service.decide(case_ref, decision(dsp_police={"name": "Not In Any Directory"}), actor=cli("someone"))
    assert service.people is None


def test_the_people_file_refuses_an_unknown_role_without_echoing(tmp_path: Path) -> None:
    path = tmp_path / "people.toml"
    path.write_text('[people.dlee]\nname = "Dana Lee"\nroles = ["dsp-everything"]\n')
    with pytest.raises(Exception, match=r"people\.dlee\.roles: each entry must be a known role") as refused:
        load_people(path)
    assert "dsp-everything" not in str(refused.value)


def test_the_people_file_takes_a_role_a_registered_process_declares(tmp_path: Path) -> None:
    path = tmp_path / "people.toml"
    path.write_text('[people.tking]\nname = "Tam King"\nroles = ["toy-inspector"]\n')
    with pytest.raises(Exception, match=r"people\.tking\.roles: each entry must be a known role"):
        load_people(path)
    people = load_people(path, roles=build_registry(["tests.flows.toy_process"]).roles)
    assert people.by_handle["tking"].roles == {"toy-inspector"}
