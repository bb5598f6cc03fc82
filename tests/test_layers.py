"""The owner's layout, enforced: all application code lives in `models/`, `tasks/`, `flows/` and
`deployments/`, and nothing imports upward (models <- tasks <- flows <- deployments).
Beside them only `tests/` and `bench/` (the benchmark harness, which drives the system from
outside); no application module imports either.

Every import statement is read from the source, at module level, inside functions and under
`TYPE_CHECKING` alike, so a lazy import cannot hide a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("models", "tasks", "flows", "deployments")
# Not application code: they use the layers, and no layer uses them.
OUTSIDE = ("tests", "bench")
RANK = {layer: rank for rank, layer in enumerate(LAYERS)}


def imported_packages(source: str) -> set[str]:
    """The top-level packages `source` imports (absolute imports only; we use no relative ones)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative imports make the layering hard to see"
            if node.module:
                found.add(node.module.split(".")[0])
    return found


def upward_imports(layer: str, source: str) -> list[str]:
    return sorted(name for name in imported_packages(source)
                  if (name in RANK and RANK[name] > RANK[layer]) or name in OUTSIDE)


def sources() -> list[tuple[str, Path]]:
    return [(layer, path) for layer in LAYERS for path in sorted((REPO_ROOT / layer).rglob("*.py"))
            if "migrations" not in path.parts or path.name == "env.py"]


@pytest.mark.parametrize(("layer", "path"), sources(), ids=lambda value: str(value).rsplit("/", 1)[-1])
def test_no_module_imports_a_layer_above_its_own(layer: str, path: Path) -> None:
    assert upward_imports(layer, path.read_text()) == [], path.relative_to(REPO_ROOT)


def test_all_application_code_is_in_the_four_layers() -> None:
    packages = {path.parent.name for path in REPO_ROOT.glob("*/__init__.py")}
    assert packages == {*LAYERS, *OUTSIDE}
    assert not list(REPO_ROOT.glob("*.py"))


def test_the_check_would_notice_an_upward_import() -> None:
    # Without this the test above could pass by reading nothing.
    assert upward_imports("models", "def f():\n    from tasks.service import CaseService\n") == ["tasks"]
    assert upward_imports("tasks", "from flows.case import case_flow\n") == ["flows"]
    assert upward_imports("flows", "import deployments.serve\n") == ["deployments"]
    assert upward_imports("deployments", "from models import enums\nimport tasks\n") == []
    assert upward_imports("deployments", "from bench.mix import plan_case\n") == ["bench"]
    assert len(sources()) > 40
