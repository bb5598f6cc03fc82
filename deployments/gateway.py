"""`sbu gateway`: per-user sign-in for the Prefect dashboard and the officers' desk, between the
reverse proxy and them.

Open-source Prefect has no users: one shared basic-auth credential at most, and a form's
"Recorded by" is whatever was typed. The supported set-up puts a TLS-terminating reverse proxy
that signs people in (nginx with auth_request, Caddy with forward_auth, oauth2-proxy, ...) in front,
passing the user's handle in a header (`SBU_GATEWAY_USER_HEADER`, X-Forwarded-User by default).
The proxy sends everything to this gateway, which:

- believes that header only from the proxy's own address (`SBU_GATEWAY_TRUSTED_PROXIES`) and
  refuses any request without it, so no one reaches Prefect unsigned-in through here;
- adds Prefect's shared credential itself (`SBU_PREFECT_AUTH_STRING`), so people never hold it,
  and tells the UI it needs no login of its own (the `ui-settings` answer);
- on a form's submission (POST /api/flow_runs/{id}/resume), replaces `recorded_by` with the
  signed-in user, sealed with `SBU_GATEWAY_KEY` over the run and the key it waits on
  (`models.access.sealed`). The flow checks the seal (`tasks.case_store.record_answer`) and
  refuses an answer without one, then the people directory says whether that person may record it.

Why this shape: the flow, not the gateway, is where an answer becomes a record, so the proof of who
answered has to travel with the answer, inside the only field Prefect lets through unchanged (a
form's schema forbids extra fields); a seal bound to the run and key cannot be replayed on another
form. Everything else passes through untouched, so Prefect's own UI, CSRF tokens included, works as
it does without the gateway. It holds no state and no sessions: the proxy owns sign-in.

The officers' desk (`sbu web`, deployments/web) is fronted too when the gateway knows where it is
(`SBU_GATEWAY_DESK_URL`, or `sbu gateway --desk URL`): every request under `/desk` goes there,
everything else to Prefect, so one sign-in and one origin serve both. The desk's forms are its own,
so there is no answer to seal; instead each request carries the signed-in user in a header with a
seal over it and the time (`desk_seal`), which the desk checks with the same key and believes
nothing else, and the user is who records. Headers of those names sent by a browser are dropped
first. Prefect's credential is never sent to the desk.

Limits: it proxies plain HTTP requests and answers whole (not streamed); websockets are not
proxied, so a dashboard view that streams over one does not update live through the gateway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from models.access import sealed
from tasks.prefect import hooks

if TYPE_CHECKING:
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from models.settings import Settings

log = logging.getLogger("sbu.gateway")

# The officers' desk (`sbu web`) is fronted under this path: every request under it goes to the
# desk's upstream (`SBU_GATEWAY_DESK_URL`), the rest to Prefect.
DESK_PREFIX = "/desk"
# The headers the gateway tells the desk who is signed in with: the user's handle, and a seal over
# it and the time (`desk_seal`), so the desk can tell the gateway's word from a header a browser
# sent the desk directly. Any such header a request arrives with is dropped first.
DESK_USER_HEADER = "X-Sbu-Desk-User"
DESK_SEAL_HEADER = "X-Sbu-Desk-Seal"
# How old a seal the desk still believes: the gateway seals each request as it forwards it.
DESK_SEAL_SECONDS = 120

RESUME_PATH = hooks.RESUME_REQUEST
# Headers that describe one hop, not the message, and those the gateway sets itself.
_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                  "trailer", "transfer-encoding", "upgrade", "host", "content-length",
                  "authorization"})
_ANSWER_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length",
                         "content-encoding"})
NOT_SIGNED_IN = "Sign in through the partnership's sign-in page first."


def gateway_app(settings: Settings, *, upstream: str | None,
                transport: httpx.AsyncBaseTransport | None = None,
                desk_upstream: str | None = None) -> Starlette:
    """The gateway in front of the Prefect server at `upstream` (its root, without /api; None when
    there is none, then only the desk is fronted) and, under `/desk`, the officers' desk at
    `desk_upstream` (default `SBU_GATEWAY_DESK_URL`)."""
    import httpx
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    if settings.gateway_key is None:
        from models.errors import SbuError

        raise SbuError("sbu gateway needs SBU_GATEWAY_KEY, the key it seals a form's author with")
    key = settings.gateway_key.get_secret_value().encode()
    trusted = frozenset(settings.gateway_trusted_proxies)
    header = settings.gateway_user_header
    credential = {}
    if settings.prefect_auth_string is not None:
        token = base64.b64encode(settings.prefect_auth_string.get_secret_value().encode()).decode()
        credential = {"Authorization": f"Basic {token}"}
    client = httpx.AsyncClient(base_url=(upstream or "http://prefect.invalid").rstrip("/"),
                               transport=transport, timeout=30.0)
    desk_url = desk_upstream or settings.gateway_desk_url
    desk = httpx.AsyncClient(base_url=desk_url.rstrip("/"), transport=transport, timeout=30.0) \
        if desk_url else None
    public_api = f"{settings.dashboard_url.rstrip('/')}/api"
    dropped = {header.lower(), DESK_USER_HEADER.lower(), DESK_SEAL_HEADER.lower()}

    async def forward(request: Request) -> Response:
        user = signed_in_user(request, trusted=trusted, header=header)
        if user is None:
            return PlainTextResponse(NOT_SIGNED_IN, status_code=401)
        body = await request.body()
        path = request.url.path
        headers = {name: value for name, value in request.headers.items()
                   if name.lower() not in _HOP and name.lower() not in dropped}
        if path == DESK_PREFIX or path.startswith(f"{DESK_PREFIX}/"):
            return await _to_desk(request, body, headers, user=user)
        if upstream is None:
            return PlainTextResponse("The dashboard is not running behind this gateway.", status_code=503)
        if request.method == "POST" and (found := RESUME_PATH.match(path)):
            body = await _seal_answer(client, credential, body, run_id=found.group(1), user=user, key=key)
        answer = await client.request(request.method, path, params=request.url.query, content=body,
                                      headers={**headers, **credential})
        content = answer.content
        if request.method == "GET" and path.endswith("/ui-settings") and answer.is_success:
            content = _ui_settings(content, api_url=public_api)
        kept = {name: value for name, value in answer.headers.items() if name.lower() not in _ANSWER_HOP}
        return Response(content, status_code=answer.status_code, headers=kept)

    async def _to_desk(request: Request, body: bytes, headers: dict[str, str], *, user: str) -> Response:
        """The request to the desk with the signed-in user sealed in; never Prefect's credential."""
        if desk is None:
            return PlainTextResponse("The officers' desk is not set up behind this gateway "
                                     "(SBU_GATEWAY_DESK_URL).", status_code=404)
        sealed_user = {DESK_USER_HEADER: user,
                       DESK_SEAL_HEADER: desk_seal(key, user=user, at=int(time.time()))}
        answer = await desk.request(request.method, request.url.path, params=request.url.query, content=body,
                                    headers={**headers, **sealed_user})
        response = Response(answer.content, status_code=answer.status_code)
        # Kept as a list: a page may set more than one cookie.
        response.raw_headers = [*(item for item in response.raw_headers if item[0] == b"content-length"),
                                *((name.encode("latin-1"), value.encode("latin-1"))
                                  for name, value in answer.headers.multi_items()
                                  if name.lower() not in _ANSWER_HOP)]
        return response

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with client:
            if desk is not None:
                async with desk:
                    yield
            else:
                yield

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)], lifespan=lifespan)


def desk_seal(key: bytes, *, user: str, at: int) -> str:
    """The seal the gateway sends the desk with `user`, made at `at` (seconds since 1970)."""
    message = f"desk\n{user}\n{at}".encode()
    return f"{at}.{hmac.new(key, message, hashlib.sha256).hexdigest()}"


def desk_user(key: bytes, *, user: str, seal: str, now: int) -> str | None:
    """`user` if `seal` is the gateway's seal over it, made within `DESK_SEAL_SECONDS` of `now`."""
    made, _, _mac = seal.partition(".")
    if not made.isdigit() or abs(now - int(made)) > DESK_SEAL_SECONDS:
        return None
    expected = desk_seal(key, user=user, at=int(made))
    return user if hmac.compare_digest(seal, expected) else None


def signed_in_user(request: Request, *, trusted: frozenset[str], header: str) -> str | None:
    """The user the proxy signed in: its header, believed only from a trusted proxy's address."""
    peer = request.client.host if request.client is not None else None
    if peer not in trusted:
        return None
    user = request.headers.get(header, "").strip()
    # A handle as the people directory has it; anything else is not a user we can name.
    return user if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,79}", user) else None


async def _seal_answer(client: httpx.AsyncClient, credential: dict[str, str], body: bytes, *,
                       run_id: str, user: str, key: bytes) -> bytes:
    """The resume request's body with `recorded_by` set to `user`, sealed for the key the run
    waits on. A body that is not a form answer, or a run not waiting, passes unchanged: Prefect
    refuses it as it would anyway, and an unsealed answer is refused by the flow."""
    try:
        payload: Any = json.loads(body or b"{}")
    except ValueError:
        return body
    run_input = payload.get("run_input") if isinstance(payload, dict) else None
    if not isinstance(run_input, dict):
        return body
    run = await client.get(f"/api/flow_runs/{run_id}", headers=credential)
    state = run.json().get("state") if run.is_success else None
    pause_key = ((state or {}).get("state_details") or {}).get("pause_key")
    if not isinstance(pause_key, str):
        return body
    run_input["recorded_by"] = sealed(key, run_id=run_id.lower(), pause_key=pause_key, user=user)
    log.info("gateway: a form answer on run %s sealed for its signed-in user", run_id)
    return json.dumps(payload).encode()


def _ui_settings(content: bytes, *, api_url: str) -> bytes:
    """Prefect's answer telling its UI where the API is and whether to ask for the shared
    credential: through the gateway the API is the gateway's, and the gateway adds the credential."""
    try:
        found = json.loads(content)
    except ValueError:
        return content
    if isinstance(found, dict):
        found["auth"] = None
        found["api_url"] = api_url
    return json.dumps(found).encode()


def run_gateway(settings: Settings, *, host: str | None = None, port: int | None = None,
                desk: str | None = None) -> None:
    """Serve the gateway in front of the Prefect server `sbu serve` runs (or PREFECT_API_URL) and,
    with `desk` (or SBU_GATEWAY_DESK_URL), the officers' desk under /desk."""
    import uvicorn

    from models.errors import SbuError
    from tasks.prefect.connection import discover_api_url
    from tasks.secret_sources import refuse_secrets_in_files

    refuse_secrets_in_files(settings)
    api_url = discover_api_url(settings)
    desk_url = desk or settings.gateway_desk_url
    if api_url is None and desk_url is None:
        raise SbuError("no Prefect server to stand in front of: start `sbu serve` or set PREFECT_API_URL "
                       "(or give the desk's address with --desk)")
    app = gateway_app(settings, upstream=api_url.rstrip("/").removesuffix("/api") if api_url else None,
                      desk_upstream=desk_url)
    bind_host, bind_port = host or settings.gateway_host, port or settings.gateway_port
    fronted = " and ".join(part for part in (api_url, f"the desk at {desk_url} (under {DESK_PREFIX}/)"
                                             if desk_url else None) if part)
    print(f"sbu gateway: http://{bind_host}:{bind_port} in front of {fronted}; trusting "
          f"{settings.gateway_user_header} from {', '.join(settings.gateway_trusted_proxies)}", flush=True)
    uvicorn.run(app, host=bind_host, port=bind_port, log_level="warning", access_log=False)
