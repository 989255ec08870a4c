"""Benchmark: Prometheus blackbox_exporter's CPU per HTTPS probe against the same lab as
bench_check.py (same sites, every step delayed 50 ms, the lab's CA, concurrency 100), for a
side-by-side comparison with `check`'s CPU per URL on the same machine.

Each /probe asks blackbox for one `http_2xx`-like GET over HTTPS: a fresh TCP connection, a TLS
handshake verified against the lab CA, one request and response. Targets are IP literals with
blackbox's `hostname` parameter (Host header and TLS server name = the site's name), so blackbox
does no DNS look-up, while a `check` URL also asks the vantage's and the control's resolvers.
A `check` URL makes two TLS handshakes (the connect step's and the HTTP request's), hence the
comparison per URL / 2.

    .venv/bin/python benchmarks/bench_blackbox.py [--urls 1000] [--latency 0.05]
        [--concurrency 100] [--binary prometheus-blackbox-exporter]

Skips (exit 0, a message) when the blackbox_exporter binary is absent (Debian/Ubuntu:
`apt-get install prometheus-blackbox-exporter`). Reports blackbox's own process CPU
(utime + stime from /proc) over the measured probes, per probe, and this Python client's CPU
apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_check import _cpu_of, start_lab, stop_lab

DEFAULT_BINARY = "prometheus-blackbox-exporter"  # the Debian package's name

MODULE = """modules:
  https_2xx:
    prober: http
    timeout: 10s
    http:
      method: GET
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      follow_redirects: false
      fail_if_not_ssl: true
      tls_config:
        ca_file: {ca}
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--urls", type=int, default=1000)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--binary", default=DEFAULT_BINARY,
                    help="blackbox_exporter executable (name on PATH or a path)")
    args = ap.parse_args()
    binary = shutil.which(args.binary)
    if binary is None and args.binary == DEFAULT_BINARY:
        binary = shutil.which("blackbox_exporter")  # the upstream release's name
    if binary is None:
        print(f"skipped: no blackbox_exporter binary ({args.binary!r} not on PATH); on "
              "Debian/Ubuntu: apt-get install prometheus-blackbox-exporter")
        return

    lab, info = start_lab(args.urls, args.latency)
    tmp = Path(tempfile.mkdtemp(prefix="bw-bench-bb-"))
    (tmp / "blackbox.yml").write_text(MODULE.format(ca=info["ca"]))
    port = _free_port()
    bb = subprocess.Popen([binary, f"--config.file={tmp / 'blackbox.yml'}",
                           f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        asyncio.run(_wait_listening(port, bb))
        run(info, args, bb.pid, lab.pid, port)
    finally:
        bb.terminate()
        try:
            bb.wait(timeout=10)
        except subprocess.TimeoutExpired:
            bb.kill()
            bb.wait()
        stop_lab(lab)
        shutil.rmtree(tmp, ignore_errors=True)


def run(info: dict, args: argparse.Namespace, bb_pid: int, lab_pid: int, port: int) -> None:  # type: ignore[type-arg]
    https_port = info["https_port"]
    paths = []
    for url, address in zip(info["urls"], info["addresses"], strict=True):
        name = urlsplit(url).hostname
        target = f"https://{address}:{https_port}/"
        paths.append("/probe?" + urlencode({"module": "https_2xx", "target": target,
                                            "hostname": name}))
    # warm-up: blackbox's first probes load the CA file and grow its heap once
    asyncio.run(_probe_all(port, paths[:20], min(20, args.concurrency)))
    bb0 = _cpu_of(bb_pid)
    lab0 = _cpu_of(lab_pid)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    outcomes = asyncio.run(_probe_all(port, paths, args.concurrency))
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    bb_cpu = _cpu_of(bb_pid) - bb0
    lab_cpu = _cpu_of(lab_pid) - lab0
    client_cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    n = len(outcomes)
    ok = sum(1 for o in outcomes if o)
    print(json.dumps({
        "probes": n, "probe_success": ok, "concurrency": args.concurrency,
        "latency_s": args.latency, "wall_s": round(wall, 2),
        "blackbox_cpu_s": round(bb_cpu, 2),
        "blackbox_cpu_ms_per_probe": round(bb_cpu * 1000 / n, 2),
        "blackbox_rss_mb": round(_rss_of(bb_pid) / 1024, 1),
        # the /probe requests' own cost, not blackbox's: kept apart
        "client_cpu_s": round(client_cpu, 2),
        "lab_cpu_s": round(lab_cpu, 2),
        "dns": "none (IP literal targets, hostname parameter for Host and TLS server name)",
    }, indent=1))
    if ok != n:
        print(f"warning: {n - ok} probes failed; the CPU per probe is not comparable",
              file=sys.stderr)


async def _probe_all(port: int, paths: list[str], concurrency: int) -> list[bool]:
    """Every path asked over `concurrency` keep-alive connections; True where the probe
    answered probe_success 1."""
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for item in enumerate(paths):
        queue.put_nowait(item)
    outcomes = [False] * len(paths)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while not queue.empty():
                i, path = queue.get_nowait()
                writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                body = await _read_body(reader, head.lower())
                outcomes[i] = head.startswith(b"HTTP/1.1 200") and b"\nprobe_success 1\n" in body
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(paths)))))
    return outcomes


async def _read_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    """A response body, Content-Length or chunked (Go's server chunks bodies over 2 KiB)."""
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return await reader.readexactly(int(line.split(b":", 1)[1]))
    chunks = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        chunks.append(await reader.readexactly(size + 2))
        if size == 0:
            return b"".join(chunks)


async def _wait_listening(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if proc.poll() is not None:
                assert proc.stderr is not None
                raise RuntimeError(f"blackbox_exporter exited: {proc.stderr.read()}") from None
            if time.monotonic() > deadline:
                raise RuntimeError("blackbox_exporter did not listen within 15 s") from None
            await asyncio.sleep(0.05)  # polling a child's start, not test synchronisation
            continue
        writer.close()
        return


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_of(pid: int) -> int:
    """Resident set size of another process in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    sys.exit(main() or os.EX_OK)
