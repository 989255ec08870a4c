"""A small static server for the site (stdlib only): files under the site folder and nothing
else. No directory listings, no dot-files (the build's manifest and temp files), no paths that
resolve outside the folder (symlinks included), and no client addresses in the logs: a request
log of who read a censorship status page is itself sensitive."""

from __future__ import annotations

import logging
import os
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")


class SiteHandler(SimpleHTTPRequestHandler):
    server_version = "blockwatch"
    sys_version = ""
    extensions_map = {  # noqa: RUF012  (the stdlib's own class attribute)
        **SimpleHTTPRequestHandler.extensions_map,
        ".html": "text/html; charset=utf-8",
        ".json": "application/json",
        ".xml": "application/atom+xml; charset=utf-8",
        ".svg": "image/svg+xml",
    }

    def _allowed(self, local: str) -> bool:
        root = os.path.realpath(self.directory)
        rel = os.path.relpath(os.path.realpath(local), root)
        hidden = any(p.startswith(".") for p in Path(rel).parts if p != ".")
        return not (rel == ".." or rel.startswith(".." + os.sep) or hidden)

    def send_head(self):  # type: ignore[no-untyped-def]
        # translate_path already drops "..", but not symlinks out of the folder
        if not self._allowed(self.translate_path(self.path)):
            self.send_error(404, "Not found")
            return None
        return super().send_head()

    def list_directory(self, path: str | os.PathLike[str]) -> None:  # type: ignore[override]
        self.send_error(404, "Not found")
        return None

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "public, max-age=60")
        super().end_headers()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        status = int(code) if str(code).isdigit() else 0
        sink = getattr(self.server, "request_log", None)
        if sink is not None:
            sink.append((self.command, self.path, status))
        log.info("%s %s %s", self.command, self.path, status)

    def log_message(self, format: str, *args: Any) -> None:
        # the base class puts the client's address first; errors are logged without it
        log.info("site: " + format, *args)


def make_site_server(out_dir: str | os.PathLike[str], host: str = "127.0.0.1",
                     port: int = 8080) -> ThreadingHTTPServer:
    """A server ready to `serve_forever()`; port 0 takes a free port (see `server_address`).
    `server.request_log` collects (method, path, status) of every request, for tests."""
    directory = str(Path(out_dir).resolve())
    server = ThreadingHTTPServer((host, port), partial(SiteHandler, directory=directory))
    server.daemon_threads = True
    server.request_log = []  # type: ignore[attr-defined]
    return server


def serve_site(out_dir: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve the folder until interrupted (blocking)."""
    server = make_site_server(out_dir, host, port)
    log.info("serving %s on http://%s:%d/", out_dir, *server.server_address[:2])
    try:
        server.serve_forever()
    finally:
        server.server_close()


def serve_in_thread(out_dir: str | os.PathLike[str], host: str = "127.0.0.1",
                    port: int = 0) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start serving in a daemon thread; stop with `server.shutdown(); server.server_close()`."""
    server = make_site_server(out_dir, host, port)
    thread = threading.Thread(target=server.serve_forever, name="blockwatch-site", daemon=True)
    thread.start()
    return server, thread
