"""The desk's application: its settings and services in one object, the security headers and the
session on every response, and `sbu web`'s server.

Nothing a person typed is logged: the server's access log is off (a URL holds a case reference and
a step's name at most, but a log line is no place for either), and an unexpected error is logged by
its class and the route's pattern only, since an exception's text may quote a value.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from models.access import People
from models.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from jinja2 import Environment
    from starlette.requests import Request
    from starlette.responses import Response

    from deployments.web.who import Signer
    from tasks.service import CaseService

log = logging.getLogger("sbu.desk")

HERE = Path(__file__).parent
PREFIX = "/desk"

# No script runs on any page; styles and images come from the desk itself; no page may be framed.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                           "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
# Case pages are not to be kept by a browser or a proxy; the stylesheet holds nothing of a case.
NO_STORE = "no-store"
STATIC_CACHE = "private, max-age=3600"


@dataclass
class Desk:
    """What every page needs: the settings, the case service, the signer of cookies and tokens, and
    the one thread that tells Prefect after a change (in order, off the person's request)."""

    settings: Settings
    service: CaseService
    signer: Signer
    tell_prefect: bool = True
    waker: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="desk-prefect"))

    @property
    def gateway_key(self) -> bytes | None:
        key = self.settings.gateway_key
        return key.get_secret_value().encode() if key is not None else None

    @property
    def through_gateway(self) -> bool:
        return self.gateway_key is not None

    @property
    def people(self) -> People | None:
        return self.service.people

    @cached_property
    def templates(self) -> Environment:
        from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

        from deployments.web import views

        environment = Environment(loader=FileSystemLoader(HERE / "templates"),
                                  autoescape=select_autoescape(default=True, default_for_string=True),
                                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        environment.filters.update(views.FILTERS)
        return environment

    @property
    def secure_cookies(self) -> bool:
        return self.settings.dashboard_url.startswith("https://") or (self.through_gateway and \
            self.settings.production)

    def after_change(self, what: Callable[[], str | None], *, case_ref: str) -> None:
        """Tell Prefect of a change the store has committed, on the desk's one Prefect thread; a
        Prefect that cannot be told is a note in the log (case reference only), never an error."""
        if not self.tell_prefect:
            return

        def tell() -> None:
            try:
                note = what()
            except Exception as error:  # noqa: BLE001 - the store is the truth; reconcile repairs this
                note = f"Prefect could not be told ({error.__class__.__name__})"
            if note:
                log.info("desk: %s: %s", case_ref, note)

        self.waker.submit(tell)

    def prefect_note(self) -> str:
        """What the page says of Prefect after a change."""
        if not self.tell_prefect:
            return ""
        from tasks.prefect.connection import discover_api_url

        if discover_api_url(self.settings) is None:
            return ("Prefect is not running: the case store has the change, and the case's run on the "
                    "dashboard catches up when `sbu serve` starts.")
        return "The case's run on the Prefect dashboard is being told."


def desk_secret(settings: Settings) -> bytes:
    """The key the desk signs its cookies and form tokens with: the gateway's key when there is one,
    else one kept in the data directory (made on first use, readable by its owner only), so that
    every worker process of the desk, and the desk after a restart, shares it."""
    if settings.gateway_key is not None:
        return b"desk\n" + settings.gateway_key.get_secret_value().encode()
    path = settings.data_dir / "desk" / "secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_bytes(32))
    secret = path.read_bytes()
    if len(secret) < 32:  # another worker is writing it at this moment
        time.sleep(0.2)
        secret = path.read_bytes()
    return secret


def desk_app(settings: Settings, *, service: CaseService | None = None, tell_prefect: bool = True) -> FastAPI:
    """The officers' desk on `service` (by default the case store `settings` names), served under
    /desk. With `tell_prefect`, each change wakes the case's runs as `sbu record` does."""
    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles
    from starlette.responses import RedirectResponse

    from deployments.web import routes
    from deployments.web.who import Signer

    if service is None:
        from tasks.service import CaseService
        from tasks.store.db import Store

        service = CaseService(store=Store(settings.sqlalchemy_url).migrate(), settings=settings,
                              clock=settings.clock())
    desk = Desk(settings=settings, service=service, signer=Signer(desk_secret(settings)),
                tell_prefect=tell_prefect)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        desk.waker.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="SBU desk", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.desk = desk
    app.middleware("http")(_guard)
    app.add_exception_handler(routes.StopPage, _stopped)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(routes.router, prefix=PREFIX)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=303)

    return app


async def _stopped(_request: Request, stop: Exception) -> Response:
    from deployments.web.routes import StopPage

    assert isinstance(stop, StopPage)
    return stop.response


async def _guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Around every request: the security headers, and an unexpected error turned into a page
    that says so, logged without anything that could quote what was typed."""
    from deployments.web import views

    try:
        response = await call_next(request)
    except Exception as error:
        route = request.scope.get("route")
        pattern = getattr(route, "path", "?")
        log.error("desk: internal error (%s) on %s %s", error.__class__.__name__, request.method, pattern)
        if os.environ.get("SBU_DEBUG"):
            raise
        response = views.message_page(request, status=500, title="Something went wrong",
                                      text="The desk met an error it did not expect, and nothing was "
                                           "recorded by this page. Go back and submit again; if it "
                                           "happens again, tell the system's administrator.")
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    static = request.url.path.startswith(f"{PREFIX}/static/")
    response.headers["Cache-Control"] = STATIC_CACHE if static and response.status_code == 200 else NO_STORE
    return response


def app_from_environment() -> FastAPI:
    """The desk as each worker process builds it, from the settings in the environment."""
    from models.settings import load_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return desk_app(load_settings())


def run_desk(settings: Settings, *, host: str | None = None, port: int | None = None,
             workers: int = 1) -> None:
    """Serve the desk in the foreground until Ctrl-C, in `workers` processes (each answers pages
    in threads; more than one uses more than one core)."""
    import uvicorn

    from tasks.secret_sources import refuse_secrets_in_files

    refuse_secrets_in_files(settings)
    desk_secret(settings)  # made once, before the workers read it
    bind_host, bind_port = host or settings.desk_host, port or settings.desk_port
    how = ("behind `sbu gateway` (the signed-in user records)" if settings.gateway_key is not None
           else "without the gateway (it asks each person's name)")
    print(f"sbu web: the officers' desk at http://{bind_host}:{bind_port}{PREFIX}/ {how}"
          + (f", in {workers} processes" if workers > 1 else ""), flush=True)
    if workers > 1:
        uvicorn.run("deployments.web.app:app_from_environment", factory=True, workers=workers,
                    host=bind_host, port=bind_port, log_level="warning", access_log=False,
                    server_header=False)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    uvicorn.run(desk_app(settings), host=bind_host, port=bind_port, log_level="warning",
                access_log=False, server_header=False)

