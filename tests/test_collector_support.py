"""Helpers shared by the collector and agent tests (no tests here): a collector configuration
against the lab and PostgreSQL, and a real uvicorn collector on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from blockwatch.collector.commands import new_token
from blockwatch.collector.server import serve_forever
from blockwatch.collector.state import CollectorState, token_hash
from blockwatch.config import Config, load
from blockwatch.storage import Database, open_database
from lab import CONTROL, Lab


def write_collector_config(tmp_path: Path, lab: Lab, db_url: str, *, agents: dict[str, str],
                           urls: list[str], max_body: str = "256KiB", asn: dict[str, str] | None = None,
                           name: str = "blockwatch.toml", canaries: list[str] | None = None,
                           server: str = "") -> Config:
    targets = "".join(f'[[target]]\nname = "Site {i}"\nurls = ["{u}"]\ncountry = "KZ"\n\n'
                      for i, u in enumerate(urls))
    (tmp_path / "targets.toml").write_text(targets, encoding="utf-8")
    vantages = "".join(
        f'[[vantage]]\nname = "{n}"\nkind = "agent"\ncountry = "KZ"\ntoken_sha256 = "{token_hash(t)}"\n'
        + (f'asn = "{(asn or {})[n]}"\n' if n in (asn or {}) else "") + "\n"
        for n, t in agents.items())
    (tmp_path / name).write_text(f"""
[storage]
url = "{db_url}"
[probe]
targets = ["targets.toml"]
timeout = "2s"
canaries = {_toml_list(canaries or [])}
ca_bundle = "{lab.ca_pem_path}"
allow_networks = ["127.0.0.0/8"]
[control]
resolvers = {_toml_list(lab.control_resolvers)}
source_address = "{CONTROL}"
[server]
host = "127.0.0.1"
port = 8080
max_body = "{max_body}"
{server}
{vantages}""", encoding="utf-8")
    return load(tmp_path / name)


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{x}"' for x in items) + "]"


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class Running:
    url: str
    port: int
    state: CollectorState
    db: Database
    stop: asyncio.Event


@contextlib.asynccontextmanager
async def running_collector(cfg: Config, *, sock: socket.socket | None = None,
                            ssl_certfile: str | None = None,
                            ssl_keyfile: str | None = None) -> AsyncIterator[Running]:
    """A real uvicorn collector in this loop (the lab keeps serving alongside it)."""
    db = open_database(cfg.database_url)
    state = await asyncio.to_thread(CollectorState.create, cfg, db)
    sock = sock or free_socket()
    port = sock.getsockname()[1]
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve_forever(cfg, db, stop, sockets=[sock], state=state,
                                             started=started, ssl_certfile=ssl_certfile,
                                             ssl_keyfile=ssl_keyfile))
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    scheme = "https" if ssl_certfile else "http"
    try:
        yield Running(f"{scheme}://127.0.0.1:{port}", port, state, db, stop)
    finally:
        stop.set()
        await task
        sock.close()
        db.close()


def tokens(*names: str) -> dict[str, str]:
    return {n: new_token() for n in names}
