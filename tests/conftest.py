"""Shared fixtures: databases (real SQLite and the real PostgreSQL server), configs, the lab."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from blockwatch import aio
from blockwatch.config import Config, load
from blockwatch.storage import Database, open_database

sys.path.insert(0, str(Path(__file__).parent))  # `import lab` (the in-process network lab)

from lab.fixtures import *  # noqa: F403  (the `lab` fixtures)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item
                                   ) -> dict[str, Callable[[], asyncio.AbstractEventLoop]] | None:
    """Async tests run on the loop the commands use (`blockwatch.aio`): uvloop where installed,
    asyncio's with BLOCKWATCH_LOOP=asyncio. The hook must name a factory either way (None is a
    usage error); asyncio's is the one `asyncio.Runner` makes when given none."""
    return {"loop": aio.loop_factory() or asyncio.new_event_loop}


@pytest.fixture(autouse=True)
def _process_logging_put_back() -> Iterator[None]:
    """A command run in-process (`cli.main`) sets up logging for the whole process, as it
    should in its own: `logs.setup` puts a stderr handler on the root logger and sets levels.
    Left there, every later test would print its log lines to stderr (and log at the levels
    that command chose); each test gets back the logging it started with."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: (lg.level, lg.disabled) for name, lg in logging.Logger.manager.loggerDict.items()
              if isinstance(lg, logging.Logger)}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lg in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(lg, logging.Logger):
            lg.setLevel(levels.get(name, (logging.NOTSET, False))[0])
            lg.disabled = levels.get(name, (logging.NOTSET, False))[1]


PG_URL = os.environ.get("BLOCKWATCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parent.parent


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema in the PostgreSQL test database, dropped afterwards. A missing server is
    a failure, not a skip: the PostgreSQL backend is a product feature."""
    schema = f"bw_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'blockwatch.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'blockwatch.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def any_db(any_db_url: str) -> Iterator[Database]:
    """The same test on SQLite and on PostgreSQL."""
    db = open_database(any_db_url)
    yield db
    db.close()


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    d = open_database(sqlite_url)
    yield d
    d.close()


@pytest.fixture
def write_config(tmp_path: Path):  # type: ignore[no-untyped-def]
    """write_config(toml_text, targets=None) -> Config; relative paths resolve in tmp_path."""

    def make(body: str, *, targets: str | None = None, name: str = "blockwatch.toml") -> Config:
        if targets is not None:
            (tmp_path / "targets.toml").write_text(targets, encoding="utf-8")
        p = tmp_path / name
        p.write_text(body, encoding="utf-8")
        return load(p)

    return make
