"""The email for each email the procedure asked for (a `models.effects.MailRequest`): the procedure
decides who is told what, by type; the one builder of that type writes it.

A builder is registered for its request type with `@builds(TheMail)` and is found by the request's
type alone, so adding an email is one typed request, one builder and its templates, and nothing
here changes. The procedure's own builders live in `tasks.mail.messages`; a process's own live in
its package, registered when the registry imports it (`SBU_PROCESS_MODULES`), with their
templates beside them (`tasks.mail.rendering.draft(..., templates=...)`). A builder is given its
request and the `MailContext` (the case, the directory, the dashboard link, the case clock's now).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from models.effects import MailRequest
from tasks.mail.directory import Directory
from tasks.mail.rendering import EmailDraft

M = TypeVar("M", bound=MailRequest)


@dataclass(frozen=True, slots=True)
class MailContext:
    """What a builder is given besides its request: the case the email is about (its reference),
    the partnership's directory of addresses, the dashboard's link, and the case clock's now (which
    stamps an invitation)."""

    case_ref: str
    directory: Directory
    dashboard_url: str
    now: datetime


_BUILDERS: dict[type[MailRequest], Callable[[Any, MailContext], EmailDraft]] = {}


def builds(request: type[M]) -> Callable[[Callable[[M, MailContext], EmailDraft]],
                                         Callable[[M, MailContext], EmailDraft]]:
    """Register the decorated function as the builder of `request`'s emails: one per type, so a
    second is refused (it would be a second email for one request)."""

    def register(builder: Callable[[M, MailContext], EmailDraft]) -> Callable[[M, MailContext], EmailDraft]:
        if request in _BUILDERS:
            raise ValueError(f"{request.__name__} already has a builder")
        _BUILDERS[request] = builder
        return builder

    return register


def builder_for(request: type[MailRequest]) -> Callable[[Any, MailContext], EmailDraft] | None:
    """The builder registered for `request` (the procedure's own are registered first), or None."""
    import tasks.mail.messages  # noqa: F401  (registers the procedure's own builders)

    return _BUILDERS.get(request)


def mail_requests() -> tuple[type[MailRequest], ...]:
    """Every concrete mail request type defined so far: the procedure's, and those of the processes
    imported (the registry imports them)."""
    return MailRequest.defined()


def draft_for(mail: MailRequest, *, case_ref: str, directory: Directory, dashboard_url: str,
              now: datetime) -> EmailDraft:
    """The email `mail` asks for, about `case_ref`; `now` (case time) stamps an invitation."""
    builder = builder_for(type(mail))
    if builder is None:
        raise LookupError(f"no builder for {type(mail).__name__}: register one with "
                          "@tasks.mail.drafts.builds, in the package of the process that sends it")
    return builder(mail, MailContext(case_ref=case_ref, directory=directory, dashboard_url=dashboard_url,
                                     now=now))
