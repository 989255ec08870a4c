"""`blockwatch demo`: see every verdict in a minute, with no network and no configuration.

Starts the in-process lab (`blockwatch.lab`: DNS, HTTP and HTTPS servers on 127.0.0.0/8 that
censor per client source address), writes a real configuration for it into a new folder, runs
two `blockwatch check` rounds through the same function the command uses (so `confirm_after = 2`
confirms the blocks), then builds the status site and the digest with the real builders. The
folder is kept: its config can be used with any other command (`blockwatch --config
DIR/blockwatch.toml verdicts`), though the lab's servers are gone once the demo ends.

Loopback only: the lab binds 127.0.0.0/8 addresses and nothing here touches the network.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gzip
import io
import json
import socket
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# An article the control receives, and a blockpage of a known filtering product (a fingerprint
# the analysis recognises, so the block is confirmed).
ARTICLE = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Independent news from the steppe"
           "</title></head><body>" + "<p>A long report on public affairs.</p>" * 200
           + "</body></html>").encode()
FORTINET_BLOCKPAGE = (b"<html><head><title>Web Filter Violation</title></head><body>"
                      b"<h1>FortiGuard Web Filtering</h1><p>The page you have requested has been "
                      b"blocked, because the URL is banned.</p></body></html>")


@dataclass(frozen=True)
class DemoSite:
    """One lab outlet: its name on the page, its host, how it is reached, what it shows."""

    name: str
    host: str
    scheme: str
    expect: str  # the verdict the demo shows (and tests/test_demo.py checks)


SITES = [
    DemoSite("Open Herald", "open-herald.test", "https", "ok"),
    DemoSite("DNS Gazette", "dns-gazette.test", "https", "dns"),
    DemoSite("IP-blocked Times", "ip-blocked-times.test", "https", "tcp_ip"),
    DemoSite("TLS Reset News", "tls-reset-news.test", "https", "tls"),
    DemoSite("Intercepted Review", "intercepted-review.test", "https", "tls"),  # confirmed
    DemoSite("Blockpage Weekly", "blockpage-weekly.test", "http", "http_blockpage"),
    DemoSite("Changed Page Post", "changed-page-post.test", "http", "http_diff"),
    DemoSite("Throttled Tribune", "throttled-tribune.test", "https", "throttled"),
    DemoSite("Offline Observer", "offline-observer.test", "https", "down"),
]
CANARY = "canary.test"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="DIR",
                   help="a new (or empty) folder for the demo's config, database, site and digest "
                        "(default: ./blockwatch-demo-YYYYmmdd-HHMMSS, else one in the temp folder)")


def demo_main(args: argparse.Namespace) -> int:
    problem = loopback_problem()
    if problem:
        print(f"blockwatch demo: {problem}", file=sys.stderr)
        return EXIT_FAIL
    try:
        out = make_folder(args.out)
    except OSError as exc:
        print(f"blockwatch demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(run_demo(out))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line, as every command fails; the folder keeps what was made
        print(f"blockwatch demo: failed: {type(exc).__name__}: {exc} (folder: {out})", file=sys.stderr)
        return EXIT_FAIL


def loopback_problem() -> str | None:
    """Why the lab cannot run here, or None. Linux routes all of 127.0.0.0/8 to loopback;
    other systems have only 127.0.0.1 unless aliases are added."""
    from blockwatch.lab.net import CONTROL, VANTAGE

    for address in (VANTAGE, CONTROL, "127.0.1.1"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((address, 0))
            except OSError as exc:
                if exc.errno != errno.EADDRNOTAVAIL:
                    return f"cannot bind the lab address {address}: {exc}"
                return (f"cannot bind the loopback address {address} ({exc.strerror}): the demo's "
                        "lab needs all of 127.0.0.0/8 on the loopback interface, as Linux has it. "
                        "On other systems add aliases first (macOS: sudo ifconfig lo0 alias "
                        f"{address}) or run the demo on Linux.")
    return None


def make_folder(out: str | None) -> Path:
    """`--out` must be new or empty (the demo never mixes with existing files); without it, a
    new timestamped folder here, or in the temp folder when here is not writable."""
    if out:
        p = Path(out).resolve()
        if p.exists() and (not p.is_dir() or any(p.iterdir())):
            raise OSError(f"--out {out}: exists and is not an empty folder; name a new one")
        p.mkdir(parents=True, exist_ok=True)
        return p
    name = "blockwatch-demo-" + datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        p = Path.cwd() / name
        p.mkdir()
        return p
    except OSError:
        return Path(tempfile.mkdtemp(prefix=name + "-"))


async def run_demo(out: Path) -> int:
    from blockwatch.lab import Lab

    print(f"blockwatch demo: starting a lab of {len(SITES)} news sites on 127.0.0.0/8 "
          "(nothing leaves this machine)", flush=True)
    async with Lab() as lab:
        cfg_path = await setup(lab, out)
        for n in (1, 2):
            print(f"round {n} of 2: measuring every site from the vantage \"kz\""
                  + (" and the control" if n == 1 else
                     "; the control fetches a page again only where the result is not plainly fine"),
                  flush=True)
            table = await asyncio.to_thread(check_round, cfg_path)
        errors = list(lab.errors)
    print(table, end="")
    site_index, digest = await asyncio.to_thread(build_outputs, cfg_path, out)
    if errors:  # a lab server failed: the page would show the lab's bug, not a verdict
        print(f"blockwatch demo: the lab failed: {errors[0]!r}", file=sys.stderr)
        return EXIT_FAIL
    print()
    print(f"status site: {site_index}")
    print(f"digest:      {digest}")
    print(f"folder:      {out} (config, database, lab CA; kept)")
    print(f"next: open the status site in a browser, or try "
          f"`blockwatch --config {out / 'blockwatch.toml'} verdicts`")
    return EXIT_OK


async def setup(lab: Any, out: Path) -> Path:
    """The lab's sites and censorship, and a real config for them in `out`."""
    from blockwatch.lab import DNS, ISSUER_KZ, Behaviour
    from blockwatch.lab.config import probe_config
    from blockwatch.site.i18n import LANG_NAMES  # every language the site is written in

    await lab.add_site(CANARY)  # the vantage's own connectivity check
    behaviours = {
        "open-herald.test": {},
        "dns-gazette.test": {},  # its answer is a lie, below
        "ip-blocked-times.test": {"vantage": Behaviour.refuse},
        "tls-reset-news.test": {"vantage": Behaviour.tls_reset_after_hello},
        "intercepted-review.test": {"vantage": Behaviour.mitm(issuer=ISSUER_KZ)},
        "blockpage-weekly.test": {"vantage": Behaviour.blockpage(html=FORTINET_BLOCKPAGE)},
        "changed-page-post.test": {"vantage": Behaviour.blockpage(status=403)},
        "throttled-tribune.test": {"vantage": Behaviour.throttle(handshake_delay=1.2)},
        "offline-observer.test": {"behaviour": Behaviour.refuse},
    }
    for s in SITES:
        await lab.add_site(s.host, body=ARTICLE, **behaviours[s.host])
    lab.vantage_dns.set("dns-gazette.test", DNS.nxdomain())

    ca = out / "lab-ca.pem"
    lab.ca.cert_pem.write_to_path(str(ca))
    # one network for all of 127.0.0.0/8, as the ASN table would say of a real hosting network:
    # "the vantage cannot connect where the control can, on the same network" is IP blocking
    with gzip.open(out / "ip2asn-combined.tsv.gz", "wt", encoding="utf-8") as f:
        f.write("127.0.0.0\t127.255.255.255\t64500\tZZ\tDEMO-LOOPBACK\n")
    targets = "".join(
        f'[[target]]\nname = "{s.name}"\nurls = ["{lab.url(s.host, scheme=s.scheme)}"]\n'
        'country = "KZ"\ncategory = "NEWS"\n\n' for s in SITES)
    (out / "targets.toml").write_text(targets, encoding="utf-8")
    probe = f'timeout = "5s"\nconfirm_after = 2\ncanaries = ["{lab.url(CANARY)}"]\n'
    text = (
        "# Written by `blockwatch demo` for its lab on 127.0.0.0/8; the lab is gone after the demo.\n"
        '[storage]\nurl = "sqlite:///blockwatch.db"\n\n'
        + probe_config(targets="targets.toml", ca=str(ca), probe=probe, country="KZ",
                       vantage_resolver=lab.vantage_resolver,
                       control_resolvers=lab.control_resolvers)  # UDP and DoH
        + '\n[site]\nout = "site"\ntitle = "blockwatch demo"\n'
        f'languages = {json.dumps(list(LANG_NAMES))}\n'
    )
    path = out / "blockwatch.toml"
    path.write_text(text, encoding="utf-8")
    return path


def check_round(cfg_path: Path) -> str:
    """One round through `blockwatch check`'s own function; its table, as printed."""
    from blockwatch.cli import cmd_check
    from blockwatch.config import load

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cmd_check(load(cfg_path), argparse.Namespace(json=False, target=None))
    if code != EXIT_OK:
        raise RuntimeError(f"the check round ended with exit code {code}")
    return buf.getvalue()


def build_outputs(cfg_path: Path, out: Path) -> tuple[Path, Path]:
    """The status site and today's digest, by the commands' own functions."""
    from blockwatch.alerts.commands import cmd_digest
    from blockwatch.config import load
    from blockwatch.site.commands import cmd_site

    cfg = load(cfg_path)
    site = out / "site"
    with contextlib.redirect_stdout(io.StringIO()):
        cmd_site(cfg, argparse.Namespace(out=str(site)))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cmd_digest(cfg, argparse.Namespace(out=str(out / "digest"), send=False, since=None))
    written = [Path(line) for line in buf.getvalue().splitlines() if line.strip()]
    html = [p for p in written if p.suffix == ".html"]
    return site / "index.html", (html or written)[0].resolve()
