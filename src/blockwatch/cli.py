"""The command line (the README documents it as a contract). Exit codes: 0 did its job (blocks are results),
1 runtime failure, 2 usage or configuration error, 75 a temporary failure: queued for retry but
not delivered, the database held by another `run`, or no space left on a disk."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blockwatch import __version__, aio

if TYPE_CHECKING:
    # imported where used: the agent must not load pydantic, the ORM or the server
    from blockwatch.config import Config

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_TEMPFAIL = 0, 1, 2, 75
log = logging.getLogger("blockwatch")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _common(p: argparse.ArgumentParser, *, top: bool) -> None:
    # --config before or after the command: the subcommand's copy must not clobber the top one
    default = None if top else argparse.SUPPRESS
    p.add_argument("--config", metavar="PATH", default=default,
                   help="configuration file (default: $BLOCKWATCH_CONFIG, else "
                        "config/blockwatch.toml if present, else built-in defaults)")
    p.add_argument("--log-format", choices=["text", "json"], default=default if not top else "text",
                   help="log lines as readable text (default) or JSON")
    p.add_argument("-v", "--verbose", action="count", default=default if not top else 0,
                   help="more log output")


# what --target accepts, as `_select` and `_known_target` match it
_TARGET_HELP = "a target's name, alias, URL or host name, any case"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="blockwatch", description="Watch whether news outlets can be reached from "
                "inside a country; link blocking to incidents; tell people.")
    p.add_argument("--version", action="version", version=f"blockwatch {__version__}")
    _common(p, top=True)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser,
                           help="what to do (each has its own --help)")

    def cmd(name: str, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        _common(sp, top=False)
        return sp

    from blockwatch import demo

    c = cmd("demo", "see it work in a minute: a local lab of censored sites, two rounds, the "
            "status site and digest in a new folder (no network, no config)")
    demo.add_arguments(c)
    c = cmd("check", "one probe round now, from every vantage this host can measure")
    c.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    c.add_argument("--target", action="append", metavar="NAME",
                   help="only this target (repeatable): " + _TARGET_HELP)
    c = cmd("run", "the daemon: probe rounds on schedule (and everything else as it is built)")
    c.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    c.add_argument("--shared", action="store_true",
                   help="PostgreSQL: one of several `run --shared` processes (any hosts); "
                        "each job runs once across them")
    c = cmd("serve", "only the HTTP side: collector API for agents and the status site")
    c.add_argument("--host", help="address to listen on (default: [server] host, else 127.0.0.1)")
    c.add_argument("--port", type=int,
                   help="port to listen on (default: [server] port, else 8080)")
    c.add_argument("--workers", type=int, default=1,
                   help="processes accepting on one socket (judging is CPU work)")
    from blockwatch.agent.main import add_arguments

    c = cmd("agent", "in-country probe that reports to a collector")
    add_arguments(c)
    c = cmd("agent-token", "make a token for a new agent and print its [[vantage]] lines")
    c.add_argument("name", help="the agent's vantage name, e.g. almaty-1")
    c = cmd("verdicts", "latest verdict per target and vantage, from the database")
    c.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    c.add_argument("--target", metavar="NAME", help=_TARGET_HELP)
    c = cmd("feeds", "pull incident feeds now")
    c.add_argument("--json", action="store_true",
                   help="one JSON line per feed instead of a table")
    c = cmd("incidents", "list extracted incidents")
    c.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    c.add_argument("--limit", type=int, default=200, help="newest N (default 200)")
    c.add_argument("--country", metavar="CC",
                   help="only incidents tagged with this country (or naming its outlets)")
    c = cmd("review", "correct the extractor's reading of feed entries, and measure it on them")
    from blockwatch.feeds.review_args import add_arguments as review_arguments

    review_arguments(c, lambda sp: _common(sp, top=False), _Parser)
    c = cmd("digest", "build (and send) the daily digest")
    c.add_argument("--send", action="store_true",
                   help="also send it to the recipients and Telegram chats with digest = true "
                        "(default: only write the files)")
    c.add_argument("--out", metavar="DIR",
                   help="folder for the files (default: digests/ beside the site's folder)")
    c.add_argument("--since", metavar="T",
                   help="start of the period: a duration back from now (48h, 7d) or an ISO 8601 "
                        "time (2026-11-27T07:00, read in alerts.timezone unless it has an "
                        "offset or Z); default 24h")
    cmd("alerts-test", "send a test message to every configured channel")
    c = cmd("site", "build the static status site")
    c.add_argument("--out", metavar="DIR", help="folder to build it in (default: [site] out)")
    c.add_argument("--full", action="store_true",
                   help="render every page (default: only outlets whose data or freshness changed)")
    c = cmd("export", "evidence export for lawyers and researchers")
    c.add_argument("--target", metavar="NAME", help="the target to export (required): "
                   + _TARGET_HELP)
    c.add_argument("--since", metavar="T",
                   help="only measurements from T on: an ISO 8601 date or time (2026-10-01, "
                        "2026-10-01T06:00+05:00; UTC unless it says otherwise) or a duration "
                        "back from now (48h, 7d); default: from the first")
    c.add_argument("--until", metavar="T",
                   help="only measurements before T (same forms as --since); default: now")
    c.add_argument("--format", choices=["jsonl", "csv"], default="jsonl",
                   help="one JSON record a line (default) or CSV")
    c.add_argument("--out", metavar="PATH",
                   help="the records' file (default: export/<target>-<time>.<format> beside "
                        "the status site's folder: reports/export with the shipped config)")
    c.add_argument("--include-agent-names", action="store_true",
                   help="name agent vantages (default: only their country and network)")
    c.add_argument("--verify", metavar="PATH", help="check an export offline (with the manifest "
                   "and hash chain beside it): exit 0 when it verifies, 1 naming the first bad record")
    c.add_argument("--expect-head", metavar="VANTAGE:SEQ:HASH", action="append",
                   help="with --verify: a chain head kept apart (an earlier export's, the "
                        "database's) that the export's chain must hold (repeatable)")
    c = cmd("db", "database maintenance")
    c.add_argument("action", choices=["upgrade", "status", "stats", "compact"],
                   help="upgrade: apply migrations; stats: size, rows, growth, what retention "
                        "removes next; compact: fold stored repetitions into runs and store "
                        "older evidence as pieces (resumable)")
    c.add_argument("--json", action="store_true", help="stats as JSON")
    c = cmd("health", "last run and lag of each job; non-zero exit when unhealthy")
    c.add_argument("--json", action="store_true", help="one JSON object instead of text")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from blockwatch import logs

    level = logging.WARNING - 10 * min(args.verbose or 0, 2)
    if args.command == "run":
        level = min(level, logging.INFO)
    logs.setup(level, args.log_format)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    if args.command == "demo":  # writes its own config for its lab
        from blockwatch.demo import demo_main

        return demo_main(args)
    if args.command == "agent":  # the agent needs no config file and stays small
        from blockwatch.agent.main import agent_main

        return agent_main(args)
    if args.command == "export" and args.verify:  # offline: no config, no database
        from blockwatch.exportverify import verify_main

        return verify_main(args.verify, args.expect_head)
    from blockwatch.config import ConfigError, SecretError, load
    from blockwatch.storage.db import DatabaseError, InstanceLocked

    handler = COMMANDS[args.command]
    cfg = None
    try:
        cfg = load(args.config)
        _register_secrets(cfg)
        return handler(cfg, args)
    except InstanceLocked as exc:
        print(f"blockwatch {args.command}: {exc}", file=sys.stderr)
        return EXIT_TEMPFAIL
    except DatabaseError as exc:  # cannot be opened or written; a missing [postgres] extra
        if (full := _disk_full(exc, cfg)) is not None:
            return _said_disk_full(args.command, full)
        print(f"blockwatch {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"blockwatch {args.command}: needs the [{extra}] extra, which is not installed "
              f"({exc.name}): pip install -e '.[{extra}]' (or pip install 'blockwatch[{extra}]')",
              file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"blockwatch: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SecretError as exc:
        print(f"blockwatch: missing secret: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"blockwatch {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `blockwatch verdicts | head`: not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        log.debug("failure", exc_info=True)
        if (full := _disk_full(exc, cfg)) is not None:
            return _said_disk_full(args.command, full)
        from blockwatch import redact

        print(redact.scrub(f"blockwatch {args.command}: failed: {type(exc).__name__}: {exc}"),
              file=sys.stderr)
        return EXIT_FAIL


def _disk_full(exc: BaseException, cfg: Config | None) -> str | None:
    """Where a failure that is a full disk (or an exhausted quota) happened: the file, "the
    database ...", or "" when not known; None when it is another failure. A full disk is
    temporary (space is freed, the command run again): exit 75, not a usage error or a bug."""
    import errno
    import sqlite3

    db = _db_named(cfg)
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:  # the exception, what it wraps (SQLAlchemy's .orig) and what it was raised from
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return str(e.filename) if e.filename else ""
        code = getattr(e, "sqlite_errorcode", None)
        if getattr(e, "sqlstate", None) == "53100":  # PostgreSQL's DiskFull
            return db
        if code == sqlite3.SQLITE_FULL:
            return _sqlite_full_where(cfg, db)
        # SQLite says only "disk I/O error" when it cannot grow its -wal or -shm file
        if isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_IOERR and _no_room(cfg):
            return db
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]
    return None


def _db_named(cfg: Config | None) -> str:
    if cfg is None:
        return "the database"
    from blockwatch.storage.db import describe

    return f"the database {describe(cfg.database_url)}"


def _no_room(cfg: Config | None) -> bool:
    """The SQLite database's folder has (almost) no space left."""
    from blockwatch.storage.db import sqlite_path

    path = sqlite_path(cfg.database_url) if cfg is not None else None
    return path is not None and _folder_full(path.parent)


def _folder_full(folder: str | os.PathLike[str]) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 20


def _sqlite_temp_folder() -> str:
    """Where SQLite's unix VFS puts its temporary files (big sorts, VACUUM): the first usable of
    $SQLITE_TMPDIR, $TMPDIR, /var/tmp, /usr/tmp, /tmp, as SQLite picks it."""
    for folder in (os.environ.get("SQLITE_TMPDIR"), os.environ.get("TMPDIR"),
                   "/var/tmp", "/usr/tmp", "/tmp"):  # noqa: S108 (naming them, not using them)
        if folder and os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK):
            return folder
    return "."


def _sqlite_full_where(cfg: Config | None, db: str) -> str:
    """SQLite's "database or disk is full" comes from the database's disk or from the disk of
    its temporary files: name the one that is full, both when neither looks full."""
    if _no_room(cfg):
        return db
    temp = _sqlite_temp_folder()
    if _folder_full(temp):
        return f"SQLite's temporary files in {temp}"
    return f"{db}, or SQLite's temporary files in {temp}"


def _said_disk_full(command: str, where: str) -> int:
    print(f"blockwatch {command}: no space left on the disk"
          + (f" ({where})" if where else "")
          + ": free some space, then run it again", file=sys.stderr)
    return EXIT_TEMPFAIL


# optional dependency groups (pyproject.toml), by the module a command failed to import
_EXTRAS = {"fastapi": "server", "uvicorn": "server", "starlette": "server",
           "psycopg": "postgres", "psycopg_binary": "postgres"}


def _register_secrets(cfg: Config) -> None:
    """Secrets this config resolves to are known to the log scrubber from the start."""
    a = cfg.settings.alerts
    if a.webhook or a.telegram or a.smtp_password_env or a.smtp_password_file or a.smtp_username_env \
            or a.smtp_username_file:
        from blockwatch.alerts.webhook import register_secrets

        register_secrets(cfg)


# --- commands ----------------------------------------------------------------------------------

def _db(cfg: Config):  # type: ignore[no-untyped-def]
    from blockwatch.storage import open_database

    return open_database(cfg.database_url)


def _target_keys(t: Any) -> list[str]:
    """What a person may call a target: its name, aliases, URLs (and their hosts)."""
    from urllib.parse import urlsplit

    keys = [t.name, *t.aliases]
    for u in t.urls:
        keys += [u, u.rstrip("/"), urlsplit(u).hostname or ""]
    return [k.casefold() for k in keys if k]


def _select(targets, only: list[str] | None, where: str):  # type: ignore[no-untyped-def]
    """The targets named (case-insensitive, by name, alias, URL or host); a name that matches
    nothing is a usage error suggesting the nearest."""
    if not only:
        return targets
    import difflib

    index: dict[str, Any] = {}
    for t in targets:
        for k in _target_keys(t):
            index.setdefault(k, t)
    out: list[Any] = []
    for n in only:
        t = index.get(n.strip().casefold()) or index.get(n.strip().casefold().rstrip("/"))
        if t is None:
            near = difflib.get_close_matches(n.casefold(), [x.name.casefold() for x in targets]
                                             + [a.casefold() for x in targets for a in x.aliases],
                                             n=3, cutoff=0.6)
            names = {k: x.name for x in targets for k in _target_keys(x)}
            hint = (" (did you mean " + " or ".join(dict.fromkeys(repr(names[k]) for k in near))
                    + "?)") if near else ""
            raise UsageError(f"no target named {n!r} in {where}{hint}")
        if t not in out:
            out.append(t)
    return out


def _emit_json(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def _table(rows: list[list[str]], headers: list[str]) -> None:
    """Columns padded to their widest cell; the last (the reason) wraps to the terminal's width
    on a terminal (or when $COLUMNS is set), its further lines under its first. Piped output
    keeps one line per row, for grep."""
    import textwrap

    from blockwatch.textsafe import printable

    def cell(x: object) -> str:  # text from probed sites: no control characters, one line
        return " ".join(printable(str(x)).split())

    rows = [[cell(x) for x in r] for r in rows]
    cols = list(zip(headers, *rows, strict=False)) if rows else [(h,) for h in headers]
    widths = [max(len(x) for x in col) for col in cols]
    indent = sum(widths[:-1]) + 2 * (len(widths) - 1)
    wrap_at = None
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        # at least 20 characters of reason a line, however narrow the terminal
        wrap_at = max(20, shutil.get_terminal_size((120, 24)).columns - indent - 1)

    def lines(cells: list[str]) -> list[str]:
        head = "  ".join(c.ljust(w) for c, w in zip(cells[:-1], widths, strict=False))
        last = textwrap.wrap(cells[-1], wrap_at, break_on_hyphens=False) if wrap_at else None
        last = last or [cells[-1]]
        first = (head + "  " if cells[:-1] else "") + last[0]
        return [first.rstrip()] + [" " * indent + more for more in last[1:]]

    out = lines(headers)
    for r in rows:
        out += lines(r)
    print("\n".join(out))


def cmd_check(cfg: Config, args: argparse.Namespace) -> int:
    from blockwatch.config import LocalVantage, OoniVantage, ResolverVantage
    from blockwatch.context import build_context
    from blockwatch.resolver_round import run_resolver_round
    from blockwatch.round import run_round
    from blockwatch.storage import repo
    from blockwatch.targets import load_targets

    everything = load_targets(cfg.target_files)
    targets = _select(everything, args.target, ", ".join(map(str, cfg.target_files)))
    skipped = [v for v in cfg.settings.vantage
               if not isinstance(v, LocalVantage | ResolverVantage | OoniVantage)]
    for v in skipped:
        print(f"blockwatch check: vantage {v.name} ({v.kind}) reports through the collector "
              "(`blockwatch serve`); `check` does not measure it", file=sys.stderr)
    db = _db(cfg)
    with db.write() as s:  # the files are the truth, even when only some targets are measured
        repo.sync_targets(s, everything)
    total = sum(len(t.urls) for t in targets) * len(
        [v for v in cfg.settings.vantage if isinstance(v, LocalVantage | ResolverVantage)])
    from blockwatch.progress import ProgressBar, shown

    # a bar with an ETA on a terminal only: never in --json output or piped stderr
    bar = ProgressBar(total, sys.stderr) if sys.stderr.isatty() and not args.json and total \
        else None

    def progress(r: Any) -> None:
        if args.json:
            _emit_json(r.to_json())
            sys.stdout.flush()
        if bar is not None and not isinstance(r, _OoniLine):
            bar.advance()

    from blockwatch.ooni import check_results, import_all
    from blockwatch.round import next_round_number

    # settings, views, interception matcher and ASN table: once for both kinds of round
    ctx = build_context(cfg)

    async def ticking() -> None:  # the elapsed time and ETA move while results are awaited
        while bar is not None:
            await asyncio.sleep(0.5)
            bar.draw()

    async def both():  # type: ignore[no-untyped-def]
        ticker = asyncio.create_task(ticking())
        try:
            number = await asyncio.to_thread(next_round_number, db) if total else None
            report = await run_round(cfg, targets, db, on_result=progress, context=ctx,
                                     number=number)
            report.results += await run_resolver_round(cfg, targets, db, on_result=progress,
                                                       context=ctx, number=number)
            if bar is not None and any(isinstance(v, OoniVantage) for v in cfg.settings.vantage):
                bar.note("importing OONI measurements")
            for rep in await import_all(cfg, db, targets):
                for p in rep.problems:
                    print(f"blockwatch check: {rep.vantage}: {p}", file=sys.stderr)
                for d in check_results([rep], latest_only=True):
                    line = _OoniLine(d)
                    report.results.append(line)
                    progress(line)
            return report
        finally:
            ticker.cancel()

    try:
        with shown(bar):
            report = aio.run(both())
    finally:
        db.close()
    if not args.json:
        rows = sorted(report.results, key=lambda r: (r.target.lower(), r.url, r.vantage))
        _table([[r.target, r.vantage, r.verdict + (" (confirmed)" if r.confirmed else ""), r.reason]
                for r in rows], ["TARGET", "VANTAGE", "VERDICT", "REASON"])
    return EXIT_OK


class _OoniLine:
    """An imported OONI verdict shaped like a round's Result for printing."""

    def __init__(self, d: dict[str, Any]):
        self.d = d
        for k in ("target", "url", "vantage", "verdict", "confirmed", "reason", "measured_at"):
            setattr(self, k, d.get(k))

    def to_json(self) -> dict[str, Any]:
        return self.d


def _since(r: Any) -> str:
    """The confirmed state's start; a verdict that differs is a change not yet confirmed."""
    from blockwatch.storage import repo

    if r.state is None:
        return "-"
    if r.state == r.verdict:
        return repo.iso(r.since) or ""
    return f"{r.state} since {repo.iso(r.since)}; changing?"


def _known_target(s: Any, name: str) -> str:
    """A target of the database by name, alias, URL or host (any case); UsageError if none."""
    from sqlalchemy import select

    from blockwatch.storage.models import Target as TargetRow

    rows = list(s.scalars(select(TargetRow)))
    picked = _select(rows, [name], "the database")
    return str(picked[0].name)


def cmd_verdicts(cfg: Config, args: argparse.Namespace) -> int:
    from blockwatch.storage import repo

    db = _db(cfg)
    try:
        with db.read() as s:
            target = args.target
            if target is not None:
                target = _known_target(s, target)
            rows = repo.latest_verdicts(s, target=target)
    finally:
        db.close()
    if args.json:
        for r in rows:
            _emit_json(r.to_json())
        return EXIT_OK
    if not rows:
        print("no verdicts yet: run `blockwatch check` or `blockwatch run`", file=sys.stderr)
        return EXIT_OK
    _table([[r.target, r.vantage, r.verdict + (" (confirmed)" if r.confirmed else ""),
             _since(r),
             r.reason] for r in rows], ["TARGET", "VANTAGE", "VERDICT", "SINCE", "REASON"])
    return EXIT_OK


def cmd_db(cfg: Config, args: argparse.Namespace) -> int:
    from blockwatch.storage.db import Database, current_revision, head_revision, upgrade

    if args.action == "compact":
        from blockwatch.storage.convert import compact_history

        cdb = _db(cfg)
        try:
            done = compact_history(cdb, after_batch=lambda n: print(
                f"batch {n} committed", file=sys.stderr) if n % 50 == 0 else None)
        finally:
            cdb.close()
        print(f"{done.pairs} (URL, vantage) pairs: {done.folded} repeated measurement rows "
              f"folded into runs; {done.pieced} rows' evidence stored as pieces"
              + (f" ({done.left_whole} left whole)" if done.left_whole else ""))
        return EXIT_OK
    if args.action == "stats":
        from blockwatch import dbstats

        sdb = _db(cfg)
        try:
            st = dbstats.collect(sdb, cfg.settings.retention.raw, datetime.now(UTC))
        finally:
            sdb.close()
        if args.json:
            _emit_json(st.to_json())
        else:
            print("\n".join(dbstats.lines(st)))
        return EXIT_OK
    db = Database(cfg.database_url)
    try:
        if args.action == "status":
            cur = current_revision(db.engine)
            print(f"database: {db.engine.url.render_as_string(hide_password=True)}")
            print(f"revision: {cur or 'empty'} (newest: {head_revision()})")
            return EXIT_OK
        before, after = upgrade(db.engine)
        if before == after:
            print(f"database is up to date (revision {after})")
        else:
            print(f"database upgraded from {before or 'empty'} to {after}")
        return EXIT_OK
    finally:
        db.close()


def _lazy(module: str, name: str) -> Callable[[Config, argparse.Namespace], int]:
    """Commands of the feature packages, imported only when used (start-up stays fast)."""

    def run(cfg: Config, args: argparse.Namespace) -> int:
        import importlib

        fn: Callable[[Config, argparse.Namespace], int] = getattr(
            importlib.import_module(module), name)
        return fn(cfg, args)

    return run


def cmd_run(cfg: Config, args: argparse.Namespace) -> int:
    from blockwatch.daemon import run_daemon

    return run_daemon(cfg, once=args.once, shared=getattr(args, "shared", False))


def parse_when(text: str, now: datetime) -> datetime:
    """ISO 8601 (UTC unless it says otherwise) or a duration back from now ("48h", "7d")."""
    from blockwatch.durations import DurationTooLong, parse_duration

    try:
        return now - parse_duration(text)
    except DurationTooLong as exc:
        raise UsageError(str(exc)) from None
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{text!r} is neither a time (2026-11-01T00:00Z) nor a duration (48h)") \
            from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def cmd_health(cfg: Config, args: argparse.Namespace) -> int:
    from blockwatch.durations import format_duration
    from blockwatch.health import check_health

    db = _db(cfg)
    try:
        h = check_health(cfg, db, datetime.now(UTC))
    finally:
        db.close()
    if args.json:
        _emit_json({"healthy": h.healthy, "problems": h.problems, "jobs": h.jobs,
                    "outbox": h.outbox, "vantages": h.vantages, "feeds": h.feeds,
                    "storage": h.storage})
    else:
        if h.jobs:
            _table([[j["job"], j["last_run"] or "never", j["last_ok"] or "never",
                     format_duration(j["lag_s"]) if j["lag_s"] is not None else "-",
                     "OVERDUE" if j["overdue"] else (j["error"] or "ok")] for j in h.jobs],
                   ["JOB", "LAST RUN", "LAST OK", "LAG", "STATUS"])
        else:  # as --json's empty "jobs": no table of nothing
            print("jobs: none has run yet (`blockwatch run` records each job's runs)")
        if h.storage:
            print(h.storage["line"])
        print(f"outbox: {h.outbox.get('pending', 0)} pending, "
              f"{h.outbox.get('undeliverable_over_1h', 0)} undeliverable for over an hour")
        for v in h.vantages:
            print(f"vantage {v['vantage']} ({v['kind']}): last seen {v['last_seen'] or 'never'}, "
                  f"last usable {v.get('last_usable') or 'never'}"
                  f"{' SILENT' if v['silent'] else ''}"
                  f"{_measuring_mark(v)}")
        failing = [f for f in h.feeds if f["status"] == "failing"]
        never = sum(1 for f in h.feeds if f["status"] == "never fetched")
        if h.feeds:
            print(f"feeds: {len(h.feeds) - len(failing) - never} of {len(h.feeds)} working"
                  + (f", {never} never fetched" if never else ""))
        else:
            print("feeds: none configured")
        for f in failing:
            print(f"feed {f['feed']} FAILING ({f['consecutive_failures']}x, last ok "
                  f"{f['last_success'] or 'never'}): {f['error']}")
        print("healthy" if h.healthy else "UNHEALTHY: " + "; ".join(h.problems))
    return EXIT_OK if h.healthy else EXIT_FAIL


def export_dir(cfg: Config) -> Path:
    """`export` beside the status site's folder, as `digest`'s `digests`: reports/export with
    the shipped config (whose site is ../reports/site) and with built-in defaults."""
    return cfg.resolve(cfg.settings.site.out).parent / "export"


def cmd_export(cfg: Config, args: argparse.Namespace) -> int:
    from blockwatch.export import slug, write_export

    if not args.target:
        raise UsageError("--target NAME is required (the evidence of one target)")
    now = datetime.now(UTC)
    since = parse_when(args.since, now) if args.since else None
    until = parse_when(args.until, now) if args.until else None
    db = _db(cfg)
    try:
        with db.read() as s:  # as `verdicts` takes it: name, alias, URL or host, any case
            target = _known_target(s, args.target)
        # by default beside the status site's folder, as the digests are: where the config
        # says, not wherever the command happens to be started
        out = Path(args.out) if args.out else export_dir(cfg) / (
            f"{slug(target)}-{now.strftime('%Y%m%dT%H%M%SZ')}.{args.format}")
        try:
            res = write_export(db, target, out, fmt=args.format, since=since, until=until,
                               reveal_agents=args.include_agent_names)
        except LookupError:
            raise UsageError(f"no target named {args.target!r} in the database") from None
    finally:
        db.close()
    import shlex

    # absolute: the default folder is relative, and a supervisor's working directory is not
    # the operator's
    path, manifest = os.path.abspath(res.path), os.path.abspath(res.manifest)
    chain_file = os.path.abspath(res.chain) if res.chain else "none"
    print(f"wrote {res.records} records to {path} ({res.size} bytes)")
    print(f"sha256 {res.sha256}  (manifest: {manifest}; hash chain: {chain_file})")
    print(f"check it offline: blockwatch export --verify {shlex.quote(path)}")
    return EXIT_OK


COMMANDS: dict[str, Callable[[Config, argparse.Namespace], int]] = {
    "feeds": _lazy("blockwatch.feeds.commands", "cmd_feeds"),
    "incidents": _lazy("blockwatch.feeds.commands", "cmd_incidents"),
    "review": _lazy("blockwatch.feeds.review_commands", "cmd_review"),
    "digest": _lazy("blockwatch.alerts.commands", "cmd_digest"),
    "alerts-test": _lazy("blockwatch.alerts.commands", "cmd_alerts_test"),
    "site": _lazy("blockwatch.site.commands", "cmd_site"),
    "serve": _lazy("blockwatch.collector.commands", "cmd_serve"),
    "agent-token": _lazy("blockwatch.collector.commands", "cmd_agent_token"),
    "health": cmd_health,
    "export": cmd_export,
    "check": cmd_check,
    "verdicts": cmd_verdicts,
    "db": cmd_db,
    "run": cmd_run,
}


def _measuring_mark(v: dict[str, Any]) -> str:
    """health's mark for a vantage not measuring: quiet (no check ran since its last usable
    results) is not the same as checks that run and cannot look."""
    if v.get("quiet"):
        return " QUIET (no check since its last usable results)"
    return " NOT MEASURING (checks inconclusive)" if v.get("not_measuring") else ""
