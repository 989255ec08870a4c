"""`blockwatch serve` and `blockwatch agent-token` (wired in cli.py)."""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import signal
import sys

# the server (fastapi, uvicorn: the [server] extra) is imported only by `serve`: `agent-token`
# works without it
from blockwatch import aio
from blockwatch.collector.state import token_hash
from blockwatch.config import Config

__all__ = ["cmd_agent_token", "cmd_serve", "new_token", "vantage_snippet"]

EXIT_OK, EXIT_USAGE = 0, 2


def cmd_serve(cfg: Config, args: argparse.Namespace) -> int:
    from blockwatch.collector.server import serve_forever, serve_workers
    from blockwatch.storage import open_database

    workers = getattr(args, "workers", None) or 1
    if workers > 1:
        return serve_workers(cfg, host=getattr(args, "host", None), port=getattr(args, "port", None),
                             workers=workers)
    db = open_database(cfg.database_url)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve_forever(cfg, db, stop, host=getattr(args, "host", None),
                            port=getattr(args, "port", None))

    try:
        aio.run(main())
    finally:
        db.close()
    return EXIT_OK


def new_token() -> str:
    return secrets.token_urlsafe(32)


def vantage_snippet(name: str, token: str, country: str = "KZ") -> str:
    return (f'[[vantage]]\nname = "{name}"\nkind = "agent"\n'
            f'country = "{country}"                           # the country it measures from\n'
            f'token_sha256 = "{token_hash(token)}"\n'
            f'# asn = "AS9198"                           # its network, when known\n')


def cmd_agent_token(cfg: Config, args: argparse.Namespace) -> int:
    name = getattr(args, "name", None)
    if not name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        print("blockwatch agent-token: give the new agent a name: letters, digits, . _ - "
              "(e.g. almaty-1)", file=sys.stderr)
        return EXIT_USAGE
    taken = {v.name for v in cfg.settings.vantage}
    if name in taken:
        print(f"blockwatch agent-token: a vantage named {name!r} already exists in {cfg.source}; "
              "to replace its token, edit its token_sha256", file=sys.stderr)
    token = new_token()
    print(f"Token for agent {name} (give it to the volunteer over a safe channel; it is shown "
          "only this once and the collector keeps only its hash):\n")
    print(f"    {token}\n")
    print(f"Add to {cfg.source} and reload the collector (kill -HUP, or restart):\n")
    print(vantage_snippet(name, token))
    return EXIT_OK
