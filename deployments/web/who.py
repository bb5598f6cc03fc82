"""Who is at the desk, their session, and the token every form carries against cross-site requests.

Two ways in:
- Behind `sbu gateway` (whenever `SBU_GATEWAY_KEY` is set): the gateway names the signed-in user in
  a header sealed with the key (`deployments.gateway.desk_seal`); the desk believes nothing else, so
  a request that reached it some other way is asked to sign in. That user is who records: "Recorded
  by" is never typed. The people directory's roles decide which forms they see and may submit.
- Without the gateway (the demo, development): the desk asks for a name once and keeps it in the
  session, as `sbu --by` and the dashboard's "Recorded by" box do.

The session is a cookie holding a random id (and, without the gateway, the name), signed with the
desk's secret; the form token is an HMAC of the session id and the user, checked on every POST.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from deployments.gateway import DESK_SEAL_HEADER, DESK_USER_HEADER, desk_user
from deployments.web.forms import MayRecord, may_record_anything, roles_allow
from models.access import People, Person
from models.enums import Interface
from models.fields import hidden_character_in
from models.registry import Registry
from tasks.service import Actor

SESSION_COOKIE = "sbu_desk"
FLASH_COOKIE = "sbu_desk_flash"
CSRF_FIELD = "csrf_token"
# A name typed at the desk without the gateway: as long as `sbu --by` takes.
MAX_NAME = 80


@dataclass(frozen=True, slots=True)
class Officer:
    """The person at the desk: their handle (what the audit trail records), how they are named on
    the page, and their entry in the people directory, if there is one."""

    handle: str
    name: str
    person: Person | None
    through_gateway: bool

    @property
    def actor(self) -> Actor:
        return Actor(self.handle, Interface.WEB)

    def may(self, people: People | None, *, registry: Registry) -> MayRecord:
        """Whether they may record a step or act, as its declaration in `registry` says (without a
        directory, anyone may record anything, as the case service itself allows)."""
        if people is None:
            return may_record_anything
        return roles_allow(self.person.roles if self.person is not None else frozenset(), registry=registry)


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    name: str | None  # the name typed, without the gateway


class Signer:
    """Signs and checks the desk's cookies and form tokens with one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, purpose: str, text: str) -> str:
        return hmac.new(self._secret, f"{purpose}\n{text}".encode(), hashlib.sha256).hexdigest()

    def _pack(self, purpose: str, payload: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
        return f"{body}.{self._mac(purpose, body)}"

    def _unpack(self, purpose: str, value: str | None) -> dict[str, Any] | None:
        if not value or "." not in value:
            return None
        body, _, mac = value.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(purpose, body)):
            return None
        try:
            found = json.loads(base64.urlsafe_b64decode(body.encode()))
        except ValueError:
            return None
        return found if isinstance(found, dict) else None

    # -- the session ------------------------------------------------------------------------------

    def new_session(self, name: str | None = None) -> Session:
        return Session(secrets.token_urlsafe(18), name)

    def session_cookie(self, session: Session) -> str:
        return self._pack("session", {"sid": session.sid, "name": session.name})

    def read_session(self, value: str | None) -> Session | None:
        found = self._unpack("session", value)
        if found is None or not isinstance(found.get("sid"), str):
            return None
        name = found.get("name")
        return Session(found["sid"], name if isinstance(name, str) else None)

    # -- the form token -----------------------------------------------------------------------------

    def form_token(self, session: Session, user: str) -> str:
        return self._mac("form", f"{session.sid}\n{user}")

    def token_ok(self, session: Session, user: str, token: str) -> bool:
        return hmac.compare_digest(token, self.form_token(session, user))

    # -- what was recorded, shown once on the next page ---------------------------------------------

    def flash_cookie(self, payload: dict[str, Any]) -> str:
        return self._pack("flash", {**payload, "at": int(time.time())})

    def read_flash(self, value: str | None) -> dict[str, Any] | None:
        found = self._unpack("flash", value)
        # A notice older than a few minutes is not the one the person is waiting for.
        if found is None or abs(int(time.time()) - int(found.get("at", 0))) > 300:
            return None
        return found


def gateway_user(headers: Any, *, key: bytes) -> str | None:
    """The user the gateway signed in, if its seal over them holds."""
    user = headers.get(DESK_USER_HEADER)
    seal = headers.get(DESK_SEAL_HEADER)
    if not user or not seal:
        return None
    return desk_user(key, user=user, seal=seal, now=int(time.time()))


def officer_from(*, gateway: str | None, session: Session | None, people: People | None,
                 through_gateway: bool) -> Officer | None:
    """The person at the desk, or None: not signed in (behind the gateway, no user; without it, no
    name yet), or not in the people directory."""
    handle = gateway if through_gateway else (session.name if session is not None else None)
    if not handle:
        return None
    if people is None:
        return Officer(handle=handle, name=handle, person=None, through_gateway=through_gateway)
    person = people.person(handle)
    if person is None:
        return None
    return Officer(handle=person.handle, name=person.name, person=person, through_gateway=through_gateway)


def name_problem(name: str) -> str | None:
    """Why a name typed at the desk (without the gateway) cannot be used, or None."""
    text = name.strip()
    if not text:
        return "Enter your name"
    if len(text) > MAX_NAME:
        return f"Your name can hold at most {MAX_NAME} characters"
    if hidden_character_in(text):
        return "Your name holds a control character or an invisible formatting mark"
    return None
