"""Engine set-up (SQLite WAL + busy timeout + BEGIN IMMEDIATE writers; PostgreSQL via psycopg),
schema upgrades through Alembic, and the checks that turn an unusable database into one clear
sentence before any work starts (the path or server, and why)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 10_000
_PG_LOCK = 0x626C6B77  # "blkw": serialises concurrent `db upgrade` on PostgreSQL


class DatabaseError(Exception):
    pass


class DatabaseUnusable(DatabaseError):
    """The database cannot be opened or written: the message names it and the cause."""


class MissingExtra(DatabaseError):
    """An optional dependency group is not installed (`pip install -e '.[postgres]'`)."""

    def __init__(self, extra: str, what: str):
        self.extra = extra
        super().__init__(f"{what} needs the [{extra}] extra: pip install -e '.[{extra}]' "
                         f"(or pip install 'blockwatch[{extra}]')")


SQLITE_MAGIC = b"SQLite format 3\x00"
FILE_MODE = 0o600  # staff emails, webhook URLs, agent names, evidence: the owner's only


def sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def check_sqlite_file(path: Path) -> None:
    """Refuse, with the reason, a path SQLite could not use; create a new database file 0600.

    No folder is made: a typo in storage.url must not scatter databases around the disk."""
    parent = path.parent
    where = f"cannot use the database {path}"
    if not parent.exists():
        raise DatabaseUnusable(f"{where}: the folder {parent} does not exist (create it, e.g. "
                               f"mkdir -m 0700 -p {parent}, or fix storage.url)")
    if not parent.is_dir():
        raise DatabaseUnusable(f"{where}: {_first_file(parent)} is a file, not a folder")
    if path.is_dir():
        raise DatabaseUnusable(f"{where}: it is a folder, not a file")
    if path.exists():
        try:
            with path.open("rb") as f:
                head = f.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise DatabaseUnusable(f"{where}: cannot read it: {exc.strerror}") from None
        if head and head != SQLITE_MAGIC:
            raise DatabaseUnusable(f"{where}: it is not a SQLite database (wrong file?)")
        if not os.access(path, os.W_OK):
            raise DatabaseUnusable(f"{where}: the file is read-only for this user")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DatabaseUnusable(f"{where}: the folder {parent} is read-only for this user "
                               "(SQLite writes its -wal and -shm files beside the database)")
    if not path.exists():
        try:  # created here so that it is the owner's only; -wal/-shm inherit its mode
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        except FileExistsError:
            pass
        except OSError as exc:
            raise DatabaseUnusable(f"{where}: cannot create it: {exc.strerror}") from None


def _first_file(p: Path) -> Path:
    """The part of a path that exists and is a file (the reason `a.db/x.db` fails)."""
    for q in [*reversed(p.parents), p]:
        if q.exists() and not q.is_dir():
            return q
    return p


def describe(url: str) -> str:
    """A database as shown to people: the SQLite path, or the URL without its password and
    query values (libpq also takes `?password=...`)."""
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    parsed = make_url(url)
    shown = parsed.set(query={}).render_as_string(hide_password=True)
    return shown + ("?" + "&".join(f"{k}=***" for k in parsed.query) if parsed.query else "")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN is broken).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # Writers take the write lock up front so two writers wait (busy_timeout) instead of
    # failing with "database is locked" when a read transaction tries to upgrade.
    if conn.get_execution_options().get("blockwatch_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def make_engine(url: str) -> Engine:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            check_sqlite_file(path)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if u.get_backend_name() == "postgresql":
        if u.get_driver_name() != "psycopg":
            raise DatabaseError(f"{url}: use the psycopg driver, postgresql+psycopg://...")
        try:
            # READ COMMITTED whatever the server's default_transaction_isolation: the pieces'
            # lock protocol (bulk.py, retention.sweep_pieces) needs each statement after the lock
            # to see what committed before it was granted; export asks REPEATABLE READ itself
            return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                                 isolation_level="READ COMMITTED")
        except ImportError:
            raise MissingExtra("postgres", "a PostgreSQL storage.url") from None
    raise DatabaseError(f"unsupported database URL {u.render_as_string(hide_password=True)}")


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(None)  # type: ignore[arg-type]
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (before, after)."""
    from alembic import command

    before = current_revision(engine)
    cfg = _alembic_config(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK})
            conn.commit()
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK})
                conn.commit()
    else:
        command.upgrade(cfg, "head")
    return before, current_revision(engine) or ""


class Database:
    """One database: a read session factory and a writer that takes the lock up front."""

    instance_lock: Any = None  # InstanceLock while `run` holds it
    # repetitions extend runs instead of adding rows (storage/runs.py); off only for tests that
    # compare the stored rows with the per-row reference
    compact_runs: bool = True
    # evidence stored as content-addressed pieces (storage/evidence.py); off only for the
    # benchmark's comparison with whole evidence
    evidence_pieces: bool = True

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(
            self.engine.execution_options(blockwatch_write=True), expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def ensure_schema(self) -> None:
        """Any command that needs the database brings it up to date by itself."""
        if current_revision(self.engine) != head_revision():
            before, after = upgrade(self.engine)
            log.info("database schema upgraded from %s to %s", before or "empty", after)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on error."""
        with self._write() as session, session.begin():
            yield session

    def table_names(self) -> list[str]:
        return inspect(self.engine).get_table_names()

    def close(self) -> None:
        self.engine.dispose()


def check_writable(db: Database) -> None:
    """Take the write lock and let it go: a read-only file or file system, a full disk or a
    PostgreSQL user without rights shows here, before a command does any work."""
    with db.engine.execution_options(blockwatch_write=True).connect() as conn:
        if db.dialect == "sqlite":  # BEGIN IMMEDIATE (see _sqlite_begin), then a no-op write
            version = conn.exec_driver_sql("PRAGMA user_version").scalar() or 0
            conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
        else:
            conn.execute(text("SELECT 1"))
        conn.rollback()


def open_database(url: str, *, upgrade_schema: bool = True) -> Database:
    """Open (and bring up to date) a database; DatabaseUnusable says which and why."""
    db = Database(url)
    try:
        check_writable(db)
        if upgrade_schema:
            db.ensure_schema()
    except sa_exc.DBAPIError as exc:
        db.close()
        cause = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnusable(f"cannot use the database {describe(url)}: {cause}") from None
    except BaseException:
        db.close()
        raise
    return db


# --- one daemon per database -------------------------------------------------------------------

class InstanceLocked(DatabaseError):
    """Another `blockwatch run` holds the database; the message names it (pid, host, since)."""


class InstanceLock:
    """Held for the daemon's life: on SQLite an flock on `<database>.lock` (the holder's pid,
    host and start written in it; the kernel lets go when the process dies, however it dies),
    on PostgreSQL a session advisory lock on a connection kept open for that purpose."""

    def __init__(self, release: Any, what: str, hold: Any = None):
        self._release = release
        self.what = what
        self._hold = hold

    def hold(self) -> bool:
        """Whether this process still holds the lock, taking it again if its connection was cut
        (a PostgreSQL restart ends the session and with it the advisory lock). False when
        another process took it meanwhile: this one must stop."""
        return self._hold() if self._hold is not None else True

    def release(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


def _holder_line(pid: int, host: str, since: str) -> str:
    return f"pid {pid} on {host}, running since {since}"


def acquire_instance_lock(db: Database, role: str = "run", *, shared: bool = False) -> InstanceLock:
    """One `run` per database; with `shared` (PostgreSQL only) any number of `run --shared`
    processes, whose jobs each run once across them (storage/joblock.py). The two kinds
    exclude each other: the lock is one advisory key, taken exclusive or shared."""
    import socket
    from datetime import UTC, datetime

    host = socket.gethostname()
    since = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if shared and db.dialect != "postgresql":
        raise DatabaseError(f"`{role} --shared` needs PostgreSQL: on SQLite one `blockwatch "
                            f"{role}` per database (several processes cannot share its jobs)")
    path = sqlite_path(db.url)
    if db.dialect == "sqlite" and path is not None:
        return _flock(path.with_name(path.name + ".lock"), role, host, since)
    if db.dialect == "postgresql":
        return _pg_lock(db, role, host, since, shared=shared)
    return InstanceLock(None, "in-memory database")


def _flock(lock_path: Path, role: str, host: str, since: str) -> InstanceLock:
    import fcntl

    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise DatabaseUnusable(f"cannot create the lock file {lock_path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        held = os.pread(fd, 512, 0).decode("utf-8", "replace").split()
        os.close(fd)
        who = (_holder_line(int(held[0]), held[1], held[2])
               if len(held) >= 3 and held[0].isdigit() else "another process")
        raise InstanceLocked(f"another `blockwatch {role}` is already using this database "
                             f"({who}; lock file {lock_path})") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {host} {since}\n".encode(), 0)

    def release() -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    return InstanceLock(release, str(lock_path))


def _pg_lock(db: Database, role: str, host: str, since: str, *, shared: bool = False
             ) -> InstanceLock:
    mode = "_shared" if shared else ""
    # the key is per database *and* schema: two blockwatch installations may share a server
    conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        key = conn.execute(text(
            "SELECT hashtextextended('blockwatch-" + role + ":' || current_database() || '.' "
            "|| current_schema(), 0)")).scalar_one()
        name = f"blockwatch {role}{' shared' * shared} pid={os.getpid()} host={host}"[:63]
        conn.execute(text("SELECT set_config('application_name', :n, false)"), {"n": name})
        if conn.execute(text(f"SELECT pg_try_advisory_lock{mode}(:k)"), {"k": key}).scalar_one():
            held = [conn]

            def release() -> None:
                try:
                    held[0].execute(text(f"SELECT pg_advisory_unlock{mode}(:k)"), {"k": key})
                finally:
                    held[0].close()

            def hold() -> bool:
                try:
                    held[0].execute(text("SELECT 1"))
                    return True
                except sa_exc.DBAPIError as exc:
                    if not exc.connection_invalidated:
                        raise
                held[0].close()
                held[0] = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                held[0].execute(text("SELECT set_config('application_name', :n, false)"), {"n": name})
                return bool(held[0].execute(text(f"SELECT pg_try_advisory_lock{mode}(:k)"),
                                            {"k": key}).scalar_one())

            return InstanceLock(release, f"PostgreSQL advisory lock {key}{' (shared)' * shared}",
                                hold)
        row = conn.execute(text(
            "SELECT a.application_name, a.backend_start, a.client_addr FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
            "AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = :k"),
            {"k": key}).first()
    except BaseException:
        conn.close()
        raise
    conn.close()
    who = _holder_of(row) if row is not None else "another process"
    if row is not None and " shared " in f" {row[0]} ":
        raise InstanceLocked(f"`blockwatch {role} --shared` processes are using this database "
                             f"({who}, maybe others): stop them, or start this one with "
                             "--shared too")
    raise InstanceLocked(f"another `blockwatch {role}` is already using this database ({who})")


def _holder_of(row: Any) -> str:
    """The holder line from pg_stat_activity: application_name, backend_start, client_addr."""
    from datetime import UTC

    fields = dict(p.split("=", 1) for p in str(row[0]).split() if "=" in p)
    started = (row[1].astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
               if row[1] else "?")
    return _holder_line(int(fields.get("pid", "0") or 0), fields.get("host", str(row[2])), started)
