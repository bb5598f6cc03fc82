"""How many cases a second `sbu import` writes (`python -m bench.import_rate [N]`): N open cases at
every stage (the e2e test's timeline, cut at ages from 1 to 200 days), parsed and written through
`tasks.importing` into a fresh store on SQLite and on PostgreSQL (`SBU_TEST_POSTGRES_URL`, in a
schema of its own). Prints one line per database: cases, seconds, cases a second, the CPU time
this process spent a case (the database server's not counted), and the load.

Parsing is timed apart from writing: the rate is the whole import, file to committed cases.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from models.clock import FixedClock
from models.enums import Interface
from models.importing import parse_file
from models.settings import Settings
from tasks.importing import import_cases
from tasks.service import Actor, CaseService
from tasks.store.db import Store
from tests.import_cases import AGES, open_case

NOW = datetime(2027, 6, 15, 11, 0, tzinfo=UTC)
POSTGRES_URL = os.environ.get("SBU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def tracker(count: int) -> bytes:
    cases = [open_case(n, today=NOW.date(), age=AGES[n % len(AGES)]) for n in range(1, count + 1)]
    return json.dumps(cases).encode()


def measure(url: str, raw: bytes, data_dir: Path) -> tuple[float, float, float, int]:
    settings = Settings(data_dir=data_dir, database_url=url)
    store = Store(settings.sqlalchemy_url).migrate()
    try:
        service = CaseService(store=store, settings=settings, clock=FixedClock(NOW))
        started, cpu = time.perf_counter(), time.process_time()
        parsed = parse_file(raw, name="bench.json", now=NOW, registry=service.registry)
        parsing = time.perf_counter() - started
        report = import_cases(service, parsed, file_name="bench.json", importer=Actor("bench", Interface.CLI))
        total = time.perf_counter() - started
        return total, parsing, time.process_time() - cpu, report.counts.get("imported", 0)
    finally:
        store.dispose()


def main(count: int) -> None:
    raw = tracker(count)
    with tempfile.TemporaryDirectory() as tmp:
        results = [("sqlite", measure(f"sqlite:///{tmp}/bench.db", raw, Path(tmp)))]
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            separator = "&" if "?" in POSTGRES_URL else "?"
            url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
            results.append(("postgresql", measure(url, raw, Path(tmp))))
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    load = os.getloadavg()[0]
    for name, (total, parsing, cpu, imported) in results:
        print(f"{name:<10} {imported} cases in {total:.1f} s ({parsing:.1f} s parsing): "
              f"{imported / total:.1f} cases/s; {cpu / imported:.2f} CPU-s a case in this process  "
              f"[load {load:.1f} on {os.cpu_count()} CPUs]")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
