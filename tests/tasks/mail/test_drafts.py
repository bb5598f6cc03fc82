"""Each email the procedure (or a process) asks for is built by the one builder of its request's
type, found by that type alone: every request type has exactly one, and a process's own email is
rendered from the templates in its own package."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from models import effects
from models.effects import MailRequest
from models.enums import Role
from tasks.mail.directory import Directory
from tasks.mail.drafts import MailContext, builder_for, builds, draft_for, mail_requests
from tasks.mail.rendering import EmailDraft, draft
from tests.flows.toy_process.mail import TEMPLATES, ToyVisitsBookedMail, visits_booked_email

NOW = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)
DASHBOARD = "http://127.0.0.1:4200/runs"


def test_every_mail_request_type_has_exactly_one_builder() -> None:
    # The procedure's own, and the toy process's (imported above, as the registry does); not the
    # stand-ins this module defines to test the refusals.
    kinds = [kind for kind in mail_requests() if kind.__module__ != __name__]
    procedures = {value for value in vars(effects).values()
                  if isinstance(value, type) and issubclass(value, MailRequest)
                  and value is not MailRequest and not value.__name__.startswith("_")}
    assert len(procedures) >= 14
    assert set(kinds) == {*procedures, ToyVisitsBookedMail}
    assert len(kinds) == len(set(kinds))
    missing = [kind.__name__ for kind in kinds if builder_for(kind) is None]
    assert missing == []
    for kind in kinds:
        with pytest.raises(ValueError, match="already has a builder"):
            builds(kind)(lambda mail, about: draft_for(mail, case_ref=about.case_ref,
                                                       directory=about.directory,
                                                       dashboard_url=about.dashboard_url, now=about.now))
        assert builder_for(kind) is not None


def test_a_request_without_a_builder_is_named_not_sent(directory: Directory) -> None:
    @dataclass(frozen=True, slots=True)
    class UnbuiltMail(MailRequest):
        on: date

    with pytest.raises(LookupError, match="no builder for UnbuiltMail"):
        draft_for(UnbuiltMail(date(2027, 1, 11)), case_ref="SR-2027-0001", directory=directory,
                  dashboard_url=DASHBOARD, now=NOW)


def test_a_process_email_is_rendered_from_its_own_package(directory: Directory) -> None:
    mail = ToyVisitsBookedMail(booked_on=date(2027, 1, 11), visits_due=date(2027, 2, 1), visits=2)
    email = draft_for(mail, case_ref="SR-2027-0001", directory=directory, dashboard_url=DASHBOARD, now=NOW)
    assert email.event == "toy-visits-booked"
    assert email.dedup_key == "toy-visits-booked:SR-2027-0001"
    assert (email.to, email.cc) == ((directory.address(Role.SBU),), ())
    assert email.subject == ("[SR-2027-0001] Toy visits booked on Monday 11 January 2027: 2 due by "
                             "Monday 1 February 2027")
    assert "books\n2 agency visits, each due by Monday 1 February 2027 (2027-02-01)" in email.text
    # The shared footer and layout come from the procedure's templates.
    assert "This email names the case reference only" in email.text
    assert email.html is not None
    assert f'href="{DASHBOARD}"' in email.html
    assert (TEMPLATES / "toy-visits-booked.txt").is_file()


def test_a_process_email_cannot_take_one_of_the_procedures_event_names(directory: Directory) -> None:
    with pytest.raises(ValueError, match="one of the procedure's own emails"):
        draft("reminder", "reminder:SR-2027-0001", case_ref="SR-2027-0001",
              to=(directory.address(Role.SBU),), cc=(), context={"dashboard_url": DASHBOARD},
              templates=TEMPLATES)


def test_the_builder_is_given_the_case_and_the_clock(directory: Directory) -> None:
    seen: list[MailContext] = []

    @dataclass(frozen=True, slots=True)
    class SeenMail(MailRequest):
        pass

    @builds(SeenMail)
    def _seen(mail: SeenMail, about: MailContext) -> EmailDraft:
        seen.append(about)
        booked = ToyVisitsBookedMail(booked_on=date(2027, 1, 11), visits_due=date(2027, 2, 1), visits=1)
        return visits_booked_email(booked, about)

    draft_for(SeenMail(), case_ref="SR-2027-0001", directory=directory, dashboard_url=DASHBOARD, now=NOW)
    assert seen == [MailContext(case_ref="SR-2027-0001", directory=directory, dashboard_url=DASHBOARD,
                                now=NOW)]
