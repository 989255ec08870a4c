"""Headless Chromium driven over the DevTools protocol through --remote-debugging-pipe (fds 3
and 4, NUL-terminated JSON): a phone's viewport (Emulation.setDeviceMetricsOverride, which the
window-size flag cannot go below 500 px for), layout read back with Runtime.evaluate, and a
screenshot. No websocket library and no port: nothing listens on the network."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from test_site_browser import FLAGS, _browser


class Chromium:
    def __init__(self) -> None:
        self._profile = tempfile.mkdtemp(prefix="bw-cdp-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def fds() -> None:  # in the child: the protocol's fds 3 (commands in) and 4 (out)
            # via fds above both: either pipe end may itself be 3 or 4
            a, b = os.dup2(to_child_r, 100), os.dup2(from_child_w, 101)
            os.dup2(a, 3)
            os.dup2(b, 4)

        # a file, not a pipe: a chatty log must never fill a buffer and stall the browser
        self.log = Path(self._profile) / "stderr.log"
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [_browser(), *FLAGS, f"--user-data-dir={self._profile}",
                 "--remote-debugging-pipe", "about:blank"], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err, preexec_fn=fds,
                close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buf:
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the pipe: " + self.stderr()[-2000:])
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)  # type: ignore[no-any-return]

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        while True:
            r = self._read()
            if r.get("id") == self._id:
                if "error" in r:
                    raise RuntimeError(f"{method}: {r['error']}")
                return r.get("result", {})  # type: ignore[no-any-return]
            self.events.append(r)

    def wait_event(self, method: str) -> dict[str, Any]:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        while True:
            r = self._read()
            if r.get("method") == method:
                return r
            self.events.append(r)

    def open(self, url: str, width: int, height: int, *, mobile: bool) -> str:
        """A new tab of the given viewport with `url` loaded; returns its session id."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
                  s)
        self.send("Page.enable", {}, s)
        self.send("Page.navigate", {"url": url}, s)
        self.wait_event("Page.loadEventFired")
        return s

    def evaluate(self, session: str, expression: str) -> Any:
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        if "exceptionDetails" in r:
            raise RuntimeError(str(r["exceptionDetails"]))
        return r["result"].get("value")

    def screenshot(self, session: str, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                         session)["data"]
        path.write_bytes(base64.b64decode(data))

    def stderr(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)
