"""Who may record what: the partnership's people, their roles, and the rules. Pure.

The people live in the partnership's directory (`[people]` in the file `SBU_PEOPLE_FILE` names,
read by `tasks.people.load_people`): each by a handle (what the sign-in proxy passes on, or
`sbu --by`), with a display name, the roles they hold and the DSP roles they may sign for as a
named deputy. A role is a `models.enums.Role` value a person can hold (`dsp-la`, `dsp-health`,
`dsp-police`, `sbu`, `local-authority`), `agency:<agency>`, the designated lead of that agency, or
a role a registered process declares of its own (`Process.roles`).

The rules:
- a referral may be recorded by anyone in the directory (any agency may refer);
- a step by a person holding one of the roles its declaration names (`Step.recorded_by`; for an
  item an agency owes, its `AGENCY_LEAD` is that agency's lead), and an act likewise
  (`Act.recorded_by`); today the DSPs' decision and the Rapid Review's outcome by the SBU or a
  DSP, the SIN submission and telling the partners by the local authority or the SBU, an agency's
  Rapid Review information and its IMR by that agency or the SBU, everything else by the SBU;
- a form the DSPs sign: each of the three signatures must be a person holding that DSP role (or,
  marked as a deputy, a person named as a deputy for it);
- new due dates, and anything the registry does not know, by the SBU.

Refusals name the field or the rule, never what was typed: an unknown name may be anyone's.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel

from models.effects import Acted, AnchorMoved, Event, Recorded, Retimed
from models.enums import PERSON_ROLES, Agency, Role
from models.errors import Refused
from models.forms import SIGNATURE_FIELDS, SignedByTheDsps
from models.registry import AGENCY_LEAD, Registry

AGENCY_PREFIX = "agency:"
# What moving a date (a new due date, an anchor moved) is checked as: no step or act has the name.
NEW_DUE_DATE = "new-due-date"
NOT_IN_DIRECTORY = "the person recording is not in the partnership's directory; nothing was written"


def agency_role(agency: Agency | str) -> str:
    return f"{AGENCY_PREFIX}{getattr(agency, 'value', agency)}"


def is_role(value: str, *, declared: frozenset[str] = frozenset()) -> bool:
    """Whether `value` is a role a person can hold: the procedure's, an agency's lead, or one of
    the roles the registered processes declare (`declared`, `Registry.roles`)."""
    if value.startswith(AGENCY_PREFIX):
        return value.removeprefix(AGENCY_PREFIX) in {a.value for a in Agency}
    return value in {r.value for r in PERSON_ROLES} or value in declared


def _folded(name: str) -> str:
    return " ".join(name.split()).casefold()


@dataclass(frozen=True, slots=True)
class Person:
    handle: str
    name: str
    roles: frozenset[str]
    deputy_for: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class People:
    """The partnership's directory of people, by handle."""

    by_handle: Mapping[str, Person]
    _by_name: dict[str, Person] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {_folded(p.name): p for p in self.by_handle.values()})

    @classmethod
    def of(cls, people: Iterable[Person]) -> People:
        return cls({person.handle: person for person in people})

    def person(self, handle: str) -> Person | None:
        return self.by_handle.get(handle.strip())

    def named(self, name: str) -> Person | None:
        """The person a signature names: by display name (case and spacing aside) or by handle."""
        return self._by_name.get(_folded(name)) or self.person(name)


# -- the rules -----------------------------------------------------------------------------------

def roles_to_record(registry: Registry, step: str, subject: str = "") -> frozenset[str]:
    """The roles any one of which may record the step or act `step` (its item for `subject`), as
    its declaration names them: `AGENCY_LEAD` is the lead of the agency `subject` names. What the
    registry does not know (a new due date) is the SBU's."""
    choice = registry.choice(step)
    named = choice.recorded_by if choice is not None else (Role.SBU,)
    roles = {str(role) for role in named if role != AGENCY_LEAD}
    if AGENCY_LEAD in named and subject:
        roles.add(agency_role(subject))
    return frozenset(roles)


def _actor(people: People, handle: str) -> Person:
    person = people.person(handle)
    if person is None:
        raise Refused(NOT_IN_DIRECTORY)
    return person


def check_referral(people: People, *, actor: str) -> Person:
    """Anyone in the directory may refer; no one else."""
    return _actor(people, actor)


def check_record(people: People, *, actor: str, step: str, registry: Registry, subject: str = "",
                 form: BaseModel | None = None) -> Person:
    """Refuse, naming the rule, unless `actor` may record `step` (its item for `subject`) with
    `form`; a form signed by the DSPs must carry the three DSP roles' own signatures."""
    person = _actor(people, actor)
    allowed = roles_to_record(registry, step, subject)
    if not person.roles & allowed:
        raise Refused(f"{step} may be recorded only by {_listed(allowed)}; the person recording holds "
                      "none of these roles; nothing was written")
    if form is not None:
        check_signatures(people, form)
    return person


def check_act(people: People, *, actor: str, act: str, registry: Registry) -> Person:
    """An act (an action added, progress noted, the meeting or the publication date moved), or a
    new due date (`NEW_DUE_DATE`): the roles the act's declaration names; a new date, the SBU."""
    return check_record(people, actor=actor, step=act, registry=registry)


def check_signatures(people: People, form: BaseModel) -> None:
    """Each DSP signature on `form` (if it is a signed form) must be a person holding that role,
    or, marked as a deputy, a person named in the directory as a deputy for it."""
    if not isinstance(form, SignedByTheDsps):
        return
    for role, signature in form.signatures():
        where = SIGNATURE_FIELDS[role]
        signer = people.named(signature.name)
        if signer is None:
            raise Refused(f"{where}: the signature is not a person in the partnership's directory; "
                          "nothing was written")
        held = signer.deputy_for if signature.deputy else signer.roles
        if role.value not in held:
            as_what = f"a named deputy for {role.value}" if signature.deputy else f"holding {role.value}"
            raise Refused(f"{where}: the signature is not a person {as_what} in the partnership's "
                          "directory; nothing was written")


def _listed(roles: frozenset[str]) -> str:
    return ", ".join(sorted(roles))


def check_change(people: People, *, actor: str, event: Event, registry: Registry) -> Person:
    """The rule for one change to a case (`tasks.service.CaseService` asks before it writes)."""
    match event:
        case Recorded():
            spec = registry.item(event.step)
            subject = spec.subject_of(event.form) if spec is not None else ""
            return check_record(people, actor=actor, step=event.step, registry=registry, subject=subject,
                                form=event.form)
        case Acted():
            return check_act(people, actor=actor, act=event.act, registry=registry)
        case Retimed() | AnchorMoved():
            return check_act(people, actor=actor, act=NEW_DUE_DATE, registry=registry)
        case _:
            raise AssertionError(f"no access rule for {type(event).__name__}")


# -- the gateway's seal on a dashboard answer ------------------------------------------------------
#
# The sign-in gateway (deployments/gateway.py) writes the user the proxy signed in into a form's
# `recorded_by`, sealed with an HMAC over the run, the wait's key and the user, so a flow can tell
# an answer that came through the gateway from one posted to Prefect's API some other way; bound
# to the run and the key, a seal cannot be replayed on another form.
SEAL_MARK = "|sealed:"


def _mac(key: bytes, *, run_id: str, pause_key: str, user: str) -> str:
    message = "\n".join((run_id, pause_key, user)).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sealed(key: bytes, *, run_id: str, pause_key: str, user: str) -> str:
    """`recorded_by` as the gateway sends it for `user`."""
    return f"{user}{SEAL_MARK}{_mac(key, run_id=run_id, pause_key=pause_key, user=user)}"


def unsealed(key: bytes, value: str, *, run_id: str, pause_key: str) -> str | None:
    """The user a sealed `recorded_by` names, or None when it is not sealed for this run and key."""
    user, mark, mac = value.rpartition(SEAL_MARK)
    if not mark or not user:
        return None
    expected = _mac(key, run_id=run_id, pause_key=pause_key, user=user)
    return user if hmac.compare_digest(mac, expected) else None
