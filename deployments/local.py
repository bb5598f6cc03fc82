"""The whole system on one machine, driven from outside: a mail sink, `sbu serve` as a child
process, and the `sbu` command, all sharing one data directory and one case clock.

The demo uses it to show a case end to end; the end-to-end tests use it to drive the real thing.
Everything goes through the same doors a user has: the `sbu` command and the Prefect API.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from models.errors import SbuError
from models.settings import Settings

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun

    from tasks.mail.sink import MailSink

T = TypeVar("T")
# Waits for a run to move allow this on top of the time the step itself takes, for a busy two-core
# machine. It was 90 s, to survive one stall of Prefect's server for its whole SQLite busy timeout
# (60 s); the stall's cause is gone from the server `sbu serve` starts, and no stall has been seen
# on it since (deployments/prefect_server.py says what it was).
STALL_ALLOWANCE = 15.0
SBU = str(Path(sys.executable).with_name("sbu"))
# An `sbu` command run in this process takes the process's environment and standard streams for
# as long as it runs, so such commands run one at a time.
_IN_PROCESS = threading.Lock()


def free_port() -> int:
    """A loopback port nobody listens on now (aiosmtpd cannot be given port 0 itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(check: Callable[[], T | None], *, timeout: float, what: str,
               interval: float = 0.2) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(interval)


def sbu_in_process(args: list[str], environment: dict[str, str], *,
                   stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`sbu ARGS` through its console entry point (`deployments.cli:main`) in this process, in
    `environment` and with its output captured, answered as `subprocess.run` answers."""
    from deployments.cli import main

    out, err = io.StringIO(), io.StringIO()
    with _IN_PROCESS:
        saved, saved_stdin, prefect_settings = dict(os.environ), sys.stdin, _prefect_settings()
        _swap_environment(environment)
        sys.stdin = io.StringIO(stdin or "")
        try:
            with redirect_stdout(out), redirect_stderr(err):
                code = main(args)
        finally:
            sys.stdin = saved_stdin
            _swap_environment(saved)
            if _prefect_settings() is not prefect_settings:
                # A command that told Prefect pointed this process's Prefect at its server
                # (`tasks.prefect.connection.prefect_rereads_environment`): read ours again.
                from tasks.prefect.hooks import refresh_settings

                refresh_settings()
    return subprocess.CompletedProcess([SBU, *args], code, out.getvalue(), err.getvalue())


def _swap_environment(wanted: dict[str, str]) -> None:
    """Make the process's environment `wanted`, touching only the variables that differ: one that
    both have is never missing, even for a moment, to a thread reading the environment."""
    for name in [name for name in os.environ if name not in wanted]:
        del os.environ[name]
    for name, value in wanted.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def _prefect_settings() -> object:
    """Prefect's settings for this process as last read from the environment, if it is imported."""
    context = sys.modules.get("prefect.context")
    return getattr(context, "GLOBAL_SETTINGS_CONTEXT", None)


@dataclass
class LocalSystem:
    """A data directory, a mail sink on a free port, and `sbu serve` against a Prefect server
    (`api_url`, or one `sbu serve` starts itself on `prefect_port`)."""

    root: Path
    api_url: str | None = None
    prefect_port: int | None = None
    time_scale: float = 1.0
    case_start: datetime | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    # `sbu` commands run by the console entry point in this process rather than in an interpreter
    # of their own, which costs a second or two of CPU each before the command starts (`sbu`).
    in_process: bool = False
    env: dict[str, str] = field(init=False, default_factory=dict)
    sink: MailSink | None = field(init=False, default=None)
    _serve: subprocess.Popen[bytes] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        smtp_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SBU_", "PREFECT_"))}
        env.update({
            "SBU_DATA_DIR": str(self.root / "var"),
            "SBU_SMTP_HOST": "127.0.0.1", "SBU_SMTP_PORT": str(smtp_port),
            "SBU_TIME_SCALE": repr(self.time_scale),
            "SBU_TIME_EPOCH": datetime.now(UTC).isoformat(),
            "SBU_USER": "sbu-officer",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        })
        if self.case_start is not None:
            env["SBU_TIME_START"] = self.case_start.isoformat()
        if self.api_url is not None:
            env["PREFECT_API_URL"] = self.api_url
        env.update(self.extra_env)
        self.env = env

    @property
    def data_dir(self) -> Path:
        return Path(self.env["SBU_DATA_DIR"])

    def settings(self) -> Settings:
        """The settings every process of this system reads from `env`: the same data directory
        and the same case clock."""
        return Settings(
            data_dir=self.data_dir, time_scale=float(self.env["SBU_TIME_SCALE"]),
            time_epoch=datetime.fromisoformat(self.env["SBU_TIME_EPOCH"]),
            time_start=datetime.fromisoformat(self.env["SBU_TIME_START"]) if "SBU_TIME_START" in self.env
            else None)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, *, timeout: float = 120.0) -> LocalSystem:
        from tasks.mail.sink import MailSink

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.sink is None:  # after `kill`, the sink is still running: the mail goes on landing
            self.sink = MailSink(self.data_dir / "mail", port=int(self.env["SBU_SMTP_PORT"])).start()
        command = [SBU, "serve"]
        if self.prefect_port is not None:
            command += ["--port", str(self.prefect_port)]
        log = (self.data_dir / "serve.log").open("ab")
        # A session of its own, so `stop` can signal the whole group as Ctrl-C in a terminal does.
        self._serve = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        marker = self.data_dir / "prefect" / "api-url"
        marker.unlink(missing_ok=True)
        wait_until(lambda: self._check_serving(marker), timeout=timeout, what="`sbu serve` to start")
        if self.api_url is None:
            self.api_url = marker.read_text().strip()
        wait_until(self._deployments_ready, timeout=timeout, what="the deployments to register")
        return self

    def _check_serving(self, marker: Path) -> bool:
        if self._serve is not None and self._serve.poll() is not None:
            tail = (self.data_dir / "serve.log").read_text(errors="replace")[-2000:]
            raise SbuError(f"`sbu serve` exited with {self._serve.returncode}: {tail}")
        return marker.is_file()

    def _deployments_ready(self) -> bool:
        from tasks.prefect.runs import OUTBOX_DEPLOYMENT

        try:
            with self.client() as client:
                client.read_deployment_by_name(OUTBOX_DEPLOYMENT)
        except Exception:  # noqa: BLE001 - not registered yet, or the server still starting
            return False
        return True

    def stop(self) -> int | None:
        """Stop serve as Ctrl-C would (SIGINT to its process group, flow runs included) and the
        sink; return serve's exit code."""
        code = None
        if self._serve is not None:
            if self._serve.poll() is None:
                os.killpg(self._serve.pid, signal.SIGINT)
                try:
                    self._serve.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(self._serve.pid, signal.SIGKILL)
                    self._serve.wait()
            code = self._serve.returncode
        if self.sink is not None:
            self.sink.stop()
            self.sink = None
        # Serve removes its marker on a clean stop; after a kill it would be left stale.
        (self.data_dir / "prefect" / "api-url").unlink(missing_ok=True)
        return code

    def serve_running(self) -> bool:
        return self._serve is not None and self._serve.poll() is None

    @property
    def serve_pid(self) -> int:
        if self._serve is None:
            raise SbuError("the system has not started")
        return self._serve.pid

    def kill(self) -> None:
        """Kill `sbu serve` alone with SIGKILL, as the OOM killer or a closed terminal would: no
        signal reaches its children from here, so they must end by themselves. The mail sink
        keeps running; `start` starts serve again."""
        if self._serve is not None and self._serve.poll() is None:
            self._serve.kill()
            self._serve.wait()

    def __enter__(self) -> LocalSystem:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the user's doors ------------------------------------------------------------------------

    def sbu(self, *args: str, stdin: str | None = None, check: bool = True,
            env: dict[str, str] | None = None,
            own_process: bool | None = None) -> subprocess.CompletedProcess[str]:
        """`sbu ARGS` as a user in this system runs it (`env` adds to or overrides its environment):
        in a process of its own, or in this one when the system is `in_process` (`own_process`
        overrides that for one command, say one racing another)."""
        environment = {**self.env, **(env or {})}
        if own_process if own_process is not None else not self.in_process:
            result = subprocess.run([SBU, *args], input=stdin, capture_output=True, text=True,
                                    env=environment, timeout=120, check=False)
        else:
            result = sbu_in_process(list(args), environment, stdin=stdin)
        if check and result.returncode != 0:
            raise SbuError(f"sbu {' '.join(args[:2])} failed: {result.stderr.strip()}")
        return result

    def sbu_json(self, *args: str, stdin: str | None = None) -> Any:
        return json.loads(self.sbu(*args, "--json", stdin=stdin).stdout)

    def ask(self, *args: str) -> Any:
        """A query's JSON answer (`sbu status CASE --json`, `sbu cases --json`), always from this
        process: what a test polls, many times a second, must not start an interpreter a poll."""
        return json.loads(self.sbu(*args, "--json", own_process=False).stdout)

    @contextmanager
    def client(self) -> Iterator[SyncPrefectClient]:
        if self.api_url is None:
            raise SbuError("the system has not started")
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with ExitStack() as stack:
            # Prefect reads the process's environment as the settings are made: not while an
            # in-process `sbu` on another thread has swapped it for its own.
            with _IN_PROCESS:
                stack.enter_context(temporary_settings({PREFECT_API_URL: self.api_url}))
                client = stack.enter_context(get_client(sync_client=True))
            yield client

    # -- looking at runs -------------------------------------------------------------------------

    def runs_named(self, name: str) -> list[FlowRun]:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

        with self.client() as client:
            return client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))

    def run(self, run_id: UUID) -> FlowRun:
        with self.client() as client:
            return client.read_flow_run(run_id)

    def wait_for_wait(self, name: str, key_prefix: str, *,
                      timeout: float = 60.0 + STALL_ALLOWANCE) -> FlowRun:
        """The run called `name`, once it is suspended on a key starting with `key_prefix`."""
        from tasks.prefect.resume import waiting_key

        def waiting() -> FlowRun | None:
            for run in self.runs_named(name):
                key = waiting_key(run)
                if key is not None and key.startswith(key_prefix):
                    return run
            return None

        return wait_until(waiting, timeout=timeout, what=f"{name} to wait for {key_prefix}")

    def mail_subjects(self) -> list[str]:
        return [message.subject for message in self.sink.messages] if self.sink else []
