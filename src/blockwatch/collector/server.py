"""Running the collector: uvicorn inside an asyncio loop we own (for `serve` and for `run`),
SIGHUP to re-read the configuration, SIGTERM for a graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from blockwatch import aio
from blockwatch.collector.app import create_app
from blockwatch.collector.limits import Limits, guarded_protocol, limits_for
from blockwatch.collector.state import CollectorState
from blockwatch.config import Config
from blockwatch.gctune import fewer_gc_passes
from blockwatch.storage import Database

log = logging.getLogger(__name__)
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the owner of the loop (the daemon, `serve`)
    decides when to stop, and SIGHUP must not stop anything."""

    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        self.ready.set()  # startup finished: the sockets listen
        await super().main_loop()

    async def run(self, sockets: list[socket.socket] | None) -> None:
        try:
            await self.serve(sockets=sockets)
        except SystemExit:
            # uvicorn exits the process when it cannot bind; in a daemon that is our call
            raise RuntimeError("the collector could not start (address in use?)") from None


def create_state(cfg: Config, db: Database, attempts: int = 3, **kw: Any) -> CollectorState:
    """CollectorState.create, again when another process inserted the same targets or agent
    vantages at the same moment (collectors starting together on one PostgreSQL database): the
    unique name refuses the later insert, and the next attempt reads the rows the other made."""
    from sqlalchemy.exc import IntegrityError

    for attempt in range(attempts):
        try:
            return CollectorState.create(cfg, db, **kw)
        except IntegrityError:
            if attempt == attempts - 1:
                raise
            log.info("targets or vantages were written by another process meanwhile: reading "
                     "them again")
    raise AssertionError("unreachable")


def uvicorn_config(app: Any, host: str, port: int, *, ssl_certfile: str | None = None,
                   ssl_keyfile: str | None = None, limits: Limits | None = None) -> uvicorn.Config:
    limits = limits or limits_for(None)
    return uvicorn.Config(
        app, host=host, port=port, lifespan="off", log_config=None,
        ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
        # no access log: it would record every agent's and reader's address
        access_log=False, proxy_headers=False, server_header=False, date_header=True,
        # slow or idle clients are cut at the protocol level (collector/limits.py)
        http=guarded_protocol(limits), timeout_keep_alive=max(1, round(limits.request_timeout)),
        timeout_graceful_shutdown=10,
    )


def listen_address(cfg: Config, host: str | None = None, port: int | None = None) -> tuple[str, int]:
    srv = cfg.settings.server
    return (host or (srv.host if srv else DEFAULT_HOST),
            port or (srv.port if srv else DEFAULT_PORT))


async def serve_forever(cfg: Config, db: Database, stop_event: asyncio.Event, *,
                        host: str | None = None, port: int | None = None,
                        sockets: list[socket.socket] | None = None,
                        state: CollectorState | None = None,
                        started: asyncio.Event | None = None,
                        ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
                        reload_on_hup: bool = True) -> None:
    """Serve until `stop_event` is set. Installs a SIGHUP handler (config reload) when running
    in the main thread, unless the caller (the daemon) reloads `state` itself; `sockets` lets a
    caller (tests) pass an already bound socket. With a certificate and key (PEM) it serves
    HTTPS itself, for agents that pin its key."""
    # ingest allocates hundreds of objects per measurement (measured: about 600 -> 1,100-1,300
    # measurements/s with fewer GC passes)
    with fewer_gc_passes():
        await _serve(cfg, db, stop_event, host=host, port=port, sockets=sockets, state=state,
                     started=started, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                     reload_on_hup=reload_on_hup)


async def _serve(cfg: Config, db: Database, stop_event: asyncio.Event, *, host: str | None,
                 port: int | None, sockets: list[socket.socket] | None,
                 state: CollectorState | None, started: asyncio.Event | None,
                 ssl_certfile: str | None, ssl_keyfile: str | None,
                 reload_on_hup: bool = True) -> None:
    """The server itself; see serve_forever."""
    if state is None:
        state = await asyncio.to_thread(create_state, cfg, db)
    app = create_app(state)
    h, p = listen_address(cfg, host, port)
    server = _Server(uvicorn_config(app, h, p, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                                    limits=limits_for(cfg.settings.server)))
    loop = asyncio.get_running_loop()
    hup = False
    with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
        if reload_on_hup:
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload(state)))
            hup = True
    task = asyncio.create_task(server.run(sockets))
    ready = asyncio.create_task(server.ready.wait())
    try:
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not server.ready.is_set():
            ready.cancel()
            task.result()  # bind errors and the like surface here
            raise RuntimeError("the collector stopped while starting")
        log.warning("collector listening on %s:%d", *_bound(server, h, p))
        if started is not None:
            started.set()
        stopper = asyncio.create_task(stop_event.wait())
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if hup:
            loop.remove_signal_handler(signal.SIGHUP)


def _bound(server: uvicorn.Server, host: str, port: int) -> tuple[str, int]:
    for s in getattr(server, "servers", []):
        for sock in s.sockets:
            name = sock.getsockname()
            return name[0], name[1]
    return host, port


async def _reload(state: CollectorState) -> None:
    log.warning("SIGHUP: re-reading the configuration")
    await asyncio.to_thread(state.reload)


def serve_workers(cfg: Config, *, host: str | None, port: int | None, workers: int) -> int:
    """`serve --workers N`: N processes accepting on one listening socket. Judging is CPU work
    under one GIL, so one process tops out at a few hundred measurements per second; the
    database (PostgreSQL) already arbitrates between processes (unique uids, locked state
    rows). SIGHUP and SIGTERM are passed on to every worker."""
    import os

    from blockwatch.storage import open_database

    h, p = listen_address(cfg, host, port)
    sock = socket.socket(socket.AF_INET6 if ":" in h else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((h, p))
    sock.listen(2048)
    open_database(cfg.database_url).close()  # migrations once, before any worker starts
    pids: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: its own loop, engine and caches
            code = 0
            try:
                db = open_database(cfg.database_url, upgrade_schema=False)

                async def main(db: Database = db) -> None:
                    stop = asyncio.Event()
                    loop = asyncio.get_running_loop()
                    for sig in (signal.SIGTERM, signal.SIGINT):
                        loop.add_signal_handler(sig, stop.set)
                    await serve_forever(cfg, db, stop, sockets=[sock])

                aio.run(main())
                db.close()
            except BaseException:
                log.exception("collector worker failed")
                code = 1
            finally:
                os._exit(code)
        pids.append(pid)
    sock.close()

    def forward(sig: int, _frame: Any) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    failed = 0
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        failed += os.waitstatus_to_exitcode(status) != 0
    return 1 if failed else 0
