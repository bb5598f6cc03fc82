"""The domain imports no Prefect, SMTP, HTTP client or database layer (docs/architecture.md).

Each module is imported in a fresh interpreter, so nothing imported by the test run itself (or by
another test) can hide or fake an import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("prefect", "smtplib", "aiosmtpd", "httpx", "sqlalchemy")
# The case store's tables (the Core schema and the ORM classes on it) are the one part of
# models/ that needs SQLAlchemy.
NOT_PURE = {"models.schema", "models.tables"}
REQUIRED = ["models.calendar", "models.timetable", "models.rules", "models.forms", "models.enums",
            "models.procedure", "models.registry", "models.effects", "models.state",
            "models.processes", "models.processes.case", "models.processes.rapid_review"]
DOMAIN_MODULES = sorted(
    {*REQUIRED}
    | {".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
       for path in (REPO_ROOT / "models").rglob("*.py")}
    - NOT_PURE
)

# Imports the module, uses it a little (the calendar loads its bank holidays lazily), and prints
# every loaded module that is, or sits under, a forbidden top-level package.
PROBE = """
import importlib, json, sys
forbidden = {forbidden!r}
importlib.import_module({module!r})
if {module!r} == "models.calendar":
    from datetime import date
    from models.calendar import WorkingDayCalendar
    WorkingDayCalendar().add_working_days(date(2026, 12, 24), 1)
if {module!r} == "models.registry":
    # Building the registry loads every built-in process and its rules.
    from models.processes import build_registry
    build_registry()
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in forbidden)))
"""


def loaded_forbidden_modules(module: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(forbidden=FORBIDDEN, module=module)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_the_required_modules_are_checked() -> None:
    assert set(REQUIRED) <= set(DOMAIN_MODULES)
    assert "models.tables" not in DOMAIN_MODULES
    assert "models.processes.case" in DOMAIN_MODULES  # the process modules are found, not listed


@pytest.mark.parametrize("module", DOMAIN_MODULES)
def test_domain_module_imports_nothing_forbidden(module: str) -> None:
    assert loaded_forbidden_modules(module) == []


def test_the_package_itself_imports_nothing_forbidden() -> None:
    assert loaded_forbidden_modules("models") == []


def test_the_probe_would_notice_a_forbidden_import() -> None:
    # Without this the tests above could pass by never seeing anything.
    assert "smtplib" in loaded_forbidden_modules("smtplib")
