"""The gateway's own rules, without a Prefect server: who it believes, and what it tells the UI.
(A form answered through it against a real server: tests/flows/test_gateway_e2e.py.)"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from deployments.gateway import NOT_SIGNED_IN, _ui_settings, desk_seal, desk_user, gateway_app
from models.errors import SbuError
from models.settings import Settings

# Nothing listens here: a request that got past the gateway's checks would fail to connect.
NOWHERE = "http://127.0.0.1:9"


PROXY = "10.0.0.5"


def send(method: str, path: str, *, trusted: tuple[str, ...], **options: Any) -> httpx.Response:
    """One request to the gateway, arriving from the address PROXY."""
    settings = Settings(gateway_key=SecretStr("k" * 32), gateway_trusted_proxies=trusted)
    transport = httpx.ASGITransport(app=gateway_app(settings, upstream=NOWHERE), raise_app_exceptions=False,
                                    client=(PROXY, 40000))

    async def request() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.request(method, path, **options)

    return asyncio.run(request())


def test_the_user_header_is_believed_only_from_the_proxy() -> None:
    for path in ("/api/health", "/api/flow_runs/00000000-0000-0000-0000-000000000000/resume", "/"):
        answer = send("POST", path, trusted=("127.0.0.1",), headers={"X-Forwarded-User": "dlee"},
                      json={"run_input": {}})
        assert answer.status_code == 401
        assert answer.text == NOT_SIGNED_IN


@pytest.mark.parametrize("user", ["", "   ", "dlee\tX", "../admin", "a" * 81])
def test_no_user_or_a_malformed_one_is_not_signed_in(user: str) -> None:
    answer = send("GET", "/api/health", trusted=(PROXY,), headers={"X-Forwarded-User": user})
    assert answer.status_code == 401


def test_a_trusted_proxys_user_is_passed_on() -> None:
    # Past the check, the gateway forwards; with nothing upstream that fails (500), not 401.
    answer = send("GET", "/api/health", trusted=(PROXY,), headers={"X-Forwarded-User": "dlee"})
    assert answer.status_code == 500


def test_the_ui_is_told_the_gateway_holds_the_credential() -> None:
    prefect = json.dumps({"api_url": "http://127.0.0.1:4200/api", "auth": "BASIC", "csrf_enabled": True})
    told = json.loads(_ui_settings(prefect.encode(), api_url="https://sbu.example/api"))
    assert told == {"api_url": "https://sbu.example/api", "auth": None, "csrf_enabled": True}


def test_the_gateway_needs_its_key() -> None:
    with pytest.raises(SbuError, match="SBU_GATEWAY_KEY"):
        gateway_app(Settings(), upstream=NOWHERE)


# -- the officers' desk behind the gateway ---------------------------------------------------------

def _desk_probe() -> tuple[Any, list[dict[str, str]]]:
    """An upstream standing where the desk would, keeping the headers of each request it is sent."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    seen: list[dict[str, str]] = []

    async def answer(request: Request) -> PlainTextResponse:
        seen.append(dict(request.headers))
        response = PlainTextResponse(request.url.path)
        response.set_cookie("one", "1")
        response.set_cookie("two", "2")
        return response

    return Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])]), seen


def test_the_desk_is_sent_the_sealed_user_and_never_prefects_credential() -> None:
    probe, seen = _desk_probe()
    key = "k" * 32
    settings = Settings(gateway_key=SecretStr(key), gateway_trusted_proxies=(PROXY,),
                        prefect_auth_string=SecretStr("sbu:secret"))
    transport = httpx.ASGITransport(app=gateway_app(settings, upstream=NOWHERE, desk_upstream="http://desk",
                                                    transport=httpx.ASGITransport(app=probe)),
                                    client=(PROXY, 40000))

    async def request() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.get("/desk/cases/SR-2027-0001", headers={
                "X-Forwarded-User": "dlee", "X-Sbu-Desk-User": "amorgan", "X-Sbu-Desk-Seal": "1.forged",
                "Authorization": "Basic c29tZW9uZTplbHNl"})

    answer = asyncio.run(request())
    assert answer.status_code == 200
    assert answer.text == "/desk/cases/SR-2027-0001"
    assert answer.headers.get_list("set-cookie") == ["one=1; Path=/; SameSite=lax",
                                                     "two=2; Path=/; SameSite=lax"]
    [headers] = seen
    assert "authorization" not in headers
    assert "x-forwarded-user" not in headers
    assert headers["x-sbu-desk-user"] == "dlee"
    seal = headers["x-sbu-desk-seal"]
    assert desk_user(key.encode(), user="dlee", seal=seal, now=int(time.time())) == "dlee"


def test_a_desk_seal_holds_only_for_its_user_its_key_and_two_minutes() -> None:
    key = b"k" * 32
    now = 1_900_000_000
    seal = desk_seal(key, user="dlee", at=now)
    assert desk_user(key, user="dlee", seal=seal, now=now + 60) == "dlee"
    assert desk_user(key, user="amorgan", seal=seal, now=now) is None
    assert desk_user(b"x" * 32, user="dlee", seal=seal, now=now) is None
    assert desk_user(key, user="dlee", seal=seal, now=now + 121) is None
    assert desk_user(key, user="dlee", seal="junk", now=now) is None


def test_without_a_desk_the_gateway_says_so() -> None:
    answer = send("GET", "/desk/", trusted=(PROXY,), headers={"X-Forwarded-User": "dlee"})
    assert answer.status_code == 404
    assert "SBU_GATEWAY_DESK_URL" in answer.text
