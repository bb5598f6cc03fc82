"""Start each served flow run from a warm process instead of a fresh interpreter.

Why: Prefect 3.9's runner starts every flow run it serves with multiprocessing's "spawn" method,
so each run, and so each resume of a suspended case, begins by importing Prefect and our flows in
a new interpreter: 1.5 to 2.5 s of CPU on a two-core machine, which is most of the 2 s
budget from a recorded decision to its case moving, and the whole of the budget when anything else
runs at the same moment. With the "forkserver" method, one helper process imports those modules
once, when `sbu serve` starts, and each run is forked from it in milliseconds. Each run is still a
process of its own, so a crash or a kill stays confined to that run exactly as before, and the
runner tracks it by pid as it does a spawned one.

How: Prefect picks the start method in one place, `run_flow_in_subprocess` in
`prefect.flow_engine`, by asking that module's `multiprocessing` for the "spawn" context. We give
that module, and only it, a stand-in whose `get_context` returns the forkserver context; everything
else goes to the real `multiprocessing`. This depends on Prefect's internals, which is why the
Prefect version is pinned in `pyproject.toml` and the hook itself is in `tasks/prefect/hooks.py`
with the others; `tests/flows/test_served_flows.py` fails if a Prefect upgrade stops a served run
from coming out of the forkserver.

The same stand-in ties each run's process to `sbu serve` (`deployments.lifeline`): a run whose
serve has died ends within seconds instead of running on with nobody to collect it.
"""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.forkserver
from collections.abc import Callable, Sequence
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from deployments import lifeline
from models.registry import Registry
from tasks.prefect import hooks


def preload_for(registry: Registry) -> tuple[str, ...]:
    """What every run needs, imported once by the forkserver: Prefect's engine and the module of
    every flow in the registry. A module that fails to import there is skipped by the forkserver
    and imported by the run itself, so a mistake costs speed, not runs."""
    modules = [path.partition(":")[0] for path in registry.flows]
    return ("prefect.flow_engine", *dict.fromkeys(modules))


def _run_tied(target: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """The start of a run's process, in the forkserver's child: first arrange to end when
    `sbu serve` ends, then run what Prefect asked for."""
    lifeline.end_with_multiprocessing_parent()
    return target(*args, **kwargs)


class _TiedContext:
    """The forkserver context, whose processes end when the process that asked for them does."""

    def __init__(self, context: BaseContext) -> None:
        self._context = context

    def Process(self, *, target: Callable[..., Any], **kwargs: Any) -> BaseProcess:  # noqa: N802 - as in multiprocessing
        # A partial of a module-level function pickles by reference, as the forkserver needs.
        process: BaseProcess = self._context.Process(  # type: ignore[attr-defined]
            target=functools.partial(_run_tied, target), **kwargs)
        return process

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class _ForkserverOnly:
    """Stands in for the `multiprocessing` module inside `prefect.flow_engine`."""

    def __init__(self, context: BaseContext) -> None:
        self._context = _TiedContext(context)

    def get_context(self, method: str | None = None) -> Any:
        return self._context

    def __getattr__(self, name: str) -> Any:
        return getattr(multiprocessing, name)


def install(preload: Sequence[str]) -> bool:
    """Make served runs start from a warm forkserver; return False where it is not available.

    Call it in the serving process before the runner starts. The forkserver starts at once, so the
    import cost is paid while `sbu serve` starts, not by the first decision recorded after it.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():  # e.g. Windows
        return False
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    hooks.replace_flow_engine_multiprocessing(_ForkserverOnly(context))
    multiprocessing.forkserver.ensure_running()
    return True


def uninstall() -> None:
    """Give `prefect.flow_engine` the real `multiprocessing` back (for tests)."""
    hooks.restore_flow_engine_multiprocessing()
