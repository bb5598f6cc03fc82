# The two front-door commands: `make demo` runs the main job, `make test` runs every check.
# Each makes its own virtual environment in .venv on first use.

# The interpreter the virtual environment is made from: the distribution's Python 3.11+ when it has
# one (Debian's is built with PGO and LTO: the `sbu` queries run about 10% faster on it here than
# on pyenv's build), else whatever `python3` is. `make PYTHON=...` chooses another.
PYTHON ?= $(shell for p in /usr/bin/python3 python3; do \
	$$p -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-serve test lint typecheck unit unit-parallel unit-timing bench bench-quick bench-desk figures bytecode clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: no Python 3.11 or later with venv found; run make PYTHON=/path/to/python3.11" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Compile the project's own modules ahead of use, as pip does for an installed package: with
# PYTHONDONTWRITEBYTECODE set (as on our machines) every `sbu` command would otherwise compile
# them again, about 6% of `sbu status`. Only changed files are compiled again.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q models flows tasks deployments

demo: $(STAMP) bytecode
	$(BIN)/sbu demo

# The dashboard kept up with the last demo's data (the demo runs first if there is none); Ctrl-C stops it.
demo-serve: $(STAMP) bytecode
	$(BIN)/sbu demo --serve

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite runs in $(WORKERS) processes: most of its time is end-to-end tests waiting on case
# time, so more processes than cores still pays. Work stealing: a worker that runs out takes
# tests from another's queue, so the few several-minute tests do not leave one running alone.
# The tests that time something run after, alone, so that no other test's load is in their
# figures. Each pass fails `make` on its own exit code,
# pytest's 5 (no tests collected) included.
WORKERS ?= 3
unit: unit-parallel
	@$(MAKE) --no-print-directory unit-timing

unit-parallel: $(STAMP) bytecode
	$(BIN)/pytest -n $(WORKERS) --dist worksteal -m "not timing" --durations=25

unit-timing: $(STAMP) bytecode
	$(BIN)/pytest -p no:xdist -m timing

# The type check runs beside the parallel tests (the machine is not busy all through them), the
# timing tests after both, alone. (Four workers took as long as three: 801 s against 783 s for the
# parallel pass, with the load average near 19 while the slow tests ran together.)
test: lint
	@$(MAKE) --no-print-directory -j2 typecheck unit-parallel
	@$(MAKE) --no-print-directory unit-timing

# The speed tests held to the targets themselves (the ordinary run asserts a margin over them; see
# tests/timing.py): `sbu timetable` and `sbu status` over 15 runs each, and a decision moving its
# case, over 15 cases. A few minutes; `make bench` below is the engine at scale.
bench-quick: $(STAMP) bytecode
	SBU_BENCH=1 $(BIN)/pytest -p no:cacheprovider -s -q tests/deployments/test_cli.py::test_queries_answer_quickly tests/flows/test_latency_e2e.py

# The officers' desk under load (not part of `make test`): 20 officers submitting forms at once, and
# a case page of 50 items timed, on SQLite and on PostgreSQL (SBU_TEST_POSTGRES_URL).
bench-desk: $(STAMP) bytecode
	$(BIN)/python -m tests.deployments.web.bench_desk --database sqlite
	$(BIN)/python -m tests.deployments.web.bench_desk --database postgres

# The engine at scale (bench/, not part of `make test`): seeds N open cases through the case
# service, starts the system and measures settling, idle CPU, a sweep, the digest, the commands
# and decisions during the 09:00 alert pass; writes bench/results/. Every configuration by
# default (100, 1,000 and 10,000 cases on SQLite; 1,000 and 10,000 on PostgreSQL with two
# workers); one with `make bench N=100 DB=sqlite`. BENCH_ARGS passes more (caps, --keep).
N ?=
DB ?=
BENCH_ARGS ?=
bench: $(STAMP) bytecode
	$(BIN)/python -m bench $(if $(N),--n $(N)) $(if $(DB),--db $(DB)) $(BENCH_ARGS)

# The reliability figures: every test that records one (tests/figures.py) runs with
# SBU_FIGURES_FILE set, and docs/RELIABILITY.md is written from what they recorded. The document is
# written even when a test fails, so that a loss shows in it; make still fails then.
FIGURES := var/figures.jsonl
# The tests that record a figure, directly or through tests/bad_inputs.py.
FIGURE_TESTS = $(shell grep -rlE --include='test_*.py' 'record_figure|tests.bad_inputs' tests)
figures: $(STAMP) bytecode
	rm -f $(FIGURES)
	mkdir -p var
	SBU_FIGURES_FILE=$(CURDIR)/$(FIGURES) $(BIN)/pytest -p no:cacheprovider -q $(FIGURE_TESTS); \
	status=$$?; $(BIN)/python -m tests.figures_table $(FIGURES) docs/RELIABILITY.md; exit $$status

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
