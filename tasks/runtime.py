"""The case service for a flow process. A served flow runs in a process the runner starts; this is
that process's edge, where settings are read from the environment once and the registry is built
(with any process modules the settings name)."""

from __future__ import annotations

import os
import time
from functools import cache

from models.processes import build_registry
from models.registry import Registry
from models.settings import Settings, load_settings
from tasks.service import CaseService
from tasks.store.db import Store


@cache
def settings() -> Settings:
    return load_settings()


@cache
def registry() -> Registry:
    return build_registry(settings().process_modules)


@cache
def service() -> CaseService:
    current = settings()
    return CaseService(store=Store(current.sqlalchemy_url).migrate(), settings=current,
                       clock=current.clock(), registry=registry())


# A test seam for the fault tests (tests/flows/test_faults_e2e.py), read here at the process's edge.
# `SBU_TEST_HOLD="read-case/SR-2026-0002@1,..."` makes the first (`@1`), second, ... arrival of
# that case's run at that named point stop there for ten minutes, after writing
# `<data_dir>/holds/<point>-<case>.held`: the test waits for the file, then kills `sbu serve`
# with the run stopped at a known point. Unset (always, outside those tests) it costs one lookup.
HOLD_VARIABLE = "SBU_TEST_HOLD"
HOLD_SECONDS = 600.0


def hold_point(point: str, case_ref: str) -> None:
    """Stop here if a fault test asked to (see `HOLD_VARIABLE`); otherwise return at once."""
    spec = os.environ.get(HOLD_VARIABLE)
    if not spec:
        return
    for entry in spec.split(","):
        name, _, nth = entry.strip().partition("@")
        if name != f"{point}/{case_ref}":
            continue
        holds = settings().data_dir / "holds"
        holds.mkdir(parents=True, exist_ok=True)
        with (holds / f"{point}-{case_ref}.count").open("ab") as arrivals:
            arrivals.write(b".")
            arrived = arrivals.tell()
        if arrived == int(nth or "1"):
            (holds / f"{point}-{case_ref}.held").write_text(str(os.getpid()))
            time.sleep(HOLD_SECONDS)
