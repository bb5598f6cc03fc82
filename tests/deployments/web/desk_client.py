"""The desk driven in-process, as a browser would post to it: the session cookie, the form token
read from the page, a person named (without the gateway) or sealed in by the gateway's headers, and
what a page's form holds read back from its HTML."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx
from fastapi.testclient import TestClient

from deployments.gateway import DESK_SEAL_HEADER, DESK_USER_HEADER, desk_seal

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def token_of(html: str) -> str:
    found = TOKEN.search(html)
    assert found is not None, "the page has no form token"
    return found.group(1)


@dataclass
class DeskClient:
    """One person's browser at the desk (`gateway_key` set: signed in through the gateway as
    `user`; else they give their name on the desk's own page)."""

    client: TestClient
    user: str
    gateway_key: bytes | None = None
    pages: list[httpx.Response] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        if self.gateway_key is None:
            return {}
        return {DESK_USER_HEADER: self.user,
                DESK_SEAL_HEADER: desk_seal(self.gateway_key, user=self.user, at=int(time.time()))}

    def get(self, path: str, **options: Any) -> httpx.Response:
        answer: httpx.Response = self.client.get(path, headers=self.headers(), **options)
        self.pages.append(answer)
        return answer

    def post(self, path: str, data: dict[str, Any], **options: Any) -> httpx.Response:
        answer: httpx.Response = self.client.post(path, data=data, headers=self.headers(), **options)
        self.pages.append(answer)
        return answer

    def sign_in(self) -> DeskClient:
        """Without the gateway: give the desk this person's name."""
        page = self.get("/desk/who")
        answer = self.post("/desk/who", {"csrf_token": token_of(page.text), "name": self.user})
        assert answer.status_code == 303, answer.text
        return self

    def submit(self, path: str, values: dict[str, Any]) -> httpx.Response:
        """Open the form at `path` and submit `values` with its token."""
        page = self.get(path)
        assert page.status_code == 200, (path, page.status_code)
        return self.post(path, {**values, "csrf_token": token_of(page.text)})


class _FormState(HTMLParser):
    """What the desk's form on a page holds: each name's values, as a browser would send them
    (a box's value, a ticked choice, a chosen option, a text area's text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.values: dict[str, list[str]] = {}
        self._in_form = False
        self._select: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        if tag == "form" and "desk-form" in found.get("class", ""):
            self._in_form = True
        if not self._in_form:
            return
        name = found.get("name")
        if tag == "input" and name and name != "csrf_token":
            kind = found.get("type", "text")
            if kind in ("radio", "checkbox"):
                if "checked" in found:
                    self.values.setdefault(name, []).append(found.get("value", "on"))
                else:
                    self.values.setdefault(name, [])
            else:
                self.values.setdefault(name, []).append(found.get("value", ""))
        elif tag == "select" and name:
            self._select = name
            self.values.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in found:
            self.values[self._select].append(found.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            text = "".join(self._text)
            # The HTML parser keeps the line break that may follow <textarea>; a browser drops it.
            self.values.setdefault(self._textarea, []).append(text.removeprefix("\n"))
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text.append(data)


def form_state(html: str) -> dict[str, list[str]]:
    parser = _FormState()
    parser.feed(html)
    return parser.values


def typed(values: dict[str, Any]) -> dict[str, list[str]]:
    """What was typed, by name, without empty boxes: as `form_state` is compared."""
    return {name: [v for v in (value if isinstance(value, list) else [value]) if v != ""]
            for name, value in values.items() if name != "csrf_token"}


def problem_at(html: str, dom_id: str) -> str | None:
    """The words of the problem shown at an input, or None."""
    found = re.search(rf'<p class="error" id="{re.escape(dom_id)}-error">(.*?)</p>', html, re.S)
    if found is None:
        return None
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).replace("&#39;", "'").split())


def summary_of(html: str) -> str:
    found = re.search(r'<div class="error-summary".*?</div>', html, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", found.group()).replace("&#39;", "'").split()) if found else ""
