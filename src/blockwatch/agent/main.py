"""`blockwatch agent`: fetch targets, measure from this network, queue, deliver.

Exit codes (as in the README): 0 everything was delivered, 75 measurements are queued for a later
delivery, 1 a failure (pin mismatch, token refused), 2 a usage error. Works without a
blockwatch config file: the collector says what to measure."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import re
import signal
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blockwatch import aio
from blockwatch.agent.link import AuthRejected, Collector, CollectorError, PinMismatch, Rejected
from blockwatch.agent.pin import PinError, parse_pin
from blockwatch.agent.queue import DEFAULT_MAX, Queue, default_path
from blockwatch.vocabulary import ASN_PATTERN

if TYPE_CHECKING:  # the probes are imported when a round starts
    from blockwatch.probe.resolvers import ResolverSet
    from blockwatch.probe.runner import NetworkView, ProbeSettings

log = logging.getLogger("blockwatch.agent")

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_TEMPFAIL = 0, 1, 2, 75
BATCH = 100
DEFAULT_INTERVAL = 15 * 60.0


class UsageError(Exception):
    pass


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The agent's options, for cli.py's `agent` subparser (and `python -m blockwatch.agent`)."""
    p.add_argument("--collector", metavar="URL", help="the collector, e.g. https://203.0.113.7:8443")
    p.add_argument("--token-file", metavar="F", help="file holding this agent's token")
    p.add_argument("--pin", metavar="sha256:...",
                   help="SHA-256 of the collector's public key (SPKI), base64 or hex")
    p.add_argument("--once", action="store_true",
                   help="one round; exit 0 when all was delivered, 75 when some is queued")
    p.add_argument("--interval", type=float, metavar="SECONDS",
                   help="seconds between rounds (default: what the collector says, else 900)")
    p.add_argument("--queue", metavar="PATH", help=f"queue file (default: {default_path()})")
    p.add_argument("--queue-max", type=int, default=DEFAULT_MAX, metavar="N",
                   help="keep at most N undelivered measurements (oldest dropped first)")
    p.add_argument("--asn", metavar="AS9198", help="this agent's network, reported with its results")
    p.add_argument("--resolver", metavar="IP[:PORT]|URL",
                   help="ask this resolver instead of the system's (e.g. the ISP's)")
    p.add_argument("--source-address", metavar="IP", help="connect from this local address")
    p.add_argument("--ca-bundle", metavar="PEM", help="extra CA certificates trusted by the probes")
    p.add_argument("--allow-network", action="append", default=[], metavar="CIDR",
                   help="private network the probes may connect to (an intranet; repeat)")
    p.add_argument("--concurrency", type=int, default=16, metavar="N",
                   help="URLs measured at once (default 16: a home link)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="blockwatch agent",
                                description="in-country probe that reports to a collector")
    add_arguments(p)
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p


def _opt(args: argparse.Namespace, name: str, default: Any = None) -> Any:
    # cli.py's parser may not define every option: absent means the default
    value = getattr(args, name, default)
    return default if value is None else value


def read_token(path: str) -> str:
    try:
        token = Path(path).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"--token-file {path}: cannot read it: {exc.strerror}") from None
    if not token:
        raise UsageError(f"--token-file {path} is empty")
    return token


def agent_main(args: argparse.Namespace) -> int:
    """The entry point: no Config, no pydantic."""
    try:
        agent = Agent.from_args(args)
    except (UsageError, PinError) as exc:
        print(f"blockwatch agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return aio.run(agent.run_once() if agent.once else agent.run_forever())
    except KeyboardInterrupt:
        return 130
    finally:
        agent.queue.close()


class Agent:
    def __init__(self, *, collector: str, token: str, pin: bytes | None, queue: Queue,
                 once: bool, interval: float | None, asn: str | None, resolver: str | None,
                 source_address: str | None, ca_bundle: str | None, allow_networks: list[str],
                 concurrency: int):
        self.url = collector
        self.token = token
        self.pin = pin
        self.queue = queue
        self.once = once
        self.interval = interval
        self.asn = asn
        self.resolver = resolver
        self.source_address = source_address
        self.ca_bundle = ca_bundle
        self.allow_networks = allow_networks
        self.concurrency = max(1, concurrency)
        self.batch = BATCH
        self.max_body = 2 * 2**20  # the collector's default; its /targets answer says the real one
        self.stopping = asyncio.Event()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Agent:
        url = _opt(args, "collector")
        if not url or not url.startswith(("http://", "https://")):
            raise UsageError("--collector URL is required (https://host:port of the collector)")
        if not _opt(args, "token_file"):
            raise UsageError("--token-file F is required (the token from `blockwatch agent-token`)")
        token = read_token(args.token_file)
        pin = parse_pin(args.pin) if _opt(args, "pin") else None
        if url.startswith("http://"):
            print("blockwatch agent: WARNING: the collector URL is plain http://: anyone on the "
                  "path can read and change what is sent. Use https:// with --pin, unless this "
                  "goes through a tunnel.", file=sys.stderr)
        elif pin is None:
            print("blockwatch agent: WARNING: no --pin: a certificate from any trusted CA "
                  "(a state CA installed on this machine included) is accepted for the collector.",
                  file=sys.stderr)
        asn = _opt(args, "asn")
        if asn and not re.match(ASN_PATTERN, asn):
            raise UsageError(f"--asn {asn}: expected AS followed by digits, like AS9198")
        for n in _opt(args, "allow_network", []):
            try:
                ipaddress.ip_network(n, strict=False)
            except ValueError:
                raise UsageError(f"--allow-network {n}: not a network like 10.0.0.0/8") from None
        if _opt(args, "resolver"):
            from blockwatch.hostport import check_doh_url, split_hostport

            r = args.resolver
            if r.startswith("https://"):
                try:
                    check_doh_url(r)
                except ValueError as exc:
                    raise UsageError(f"--resolver {exc}") from None
            else:
                try:
                    ipaddress.ip_address(split_hostport(r.removeprefix("tcp://"), 53)[0])
                except ValueError:
                    raise UsageError(f"--resolver {r}: expected an IP[:port] or a DoH URL") from None
        ca = _opt(args, "ca_bundle")
        if ca:
            import ssl

            try:
                ssl.create_default_context(cafile=ca)
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(f"--ca-bundle {ca}: not readable PEM certificates ({exc})") from None
        queue = Queue(_opt(args, "queue") or default_path(),
                      max_items=_opt(args, "queue_max", DEFAULT_MAX))
        return cls(collector=url, token=token, pin=pin, queue=queue, once=bool(_opt(args, "once")),
                   interval=_opt(args, "interval"), asn=asn, resolver=_opt(args, "resolver"),
                   source_address=_opt(args, "source_address"), ca_bundle=_opt(args, "ca_bundle"),
                   allow_networks=list(_opt(args, "allow_network", [])),
                   concurrency=_opt(args, "concurrency", 16))

    # -- one round ----------------------------------------------------------------------------
    async def run_once(self) -> int:
        link = Collector(self.url, self.token, pin=self.pin)
        try:
            try:
                plan = await link.targets()
                self.queue.save_plan(plan)
            except CollectorError as exc:
                # Offline (or the collector is blocked): measure the last known targets anyway;
                # the results wait in the queue.
                cached = self.queue.load_plan()
                log.warning("collector unreachable (%s)%s", exc,
                            ": measuring the last known targets" if cached else "")
                if cached is not None:
                    await self.measure(cached)
                print(f"blockwatch agent: collector unreachable: {exc}; "
                      f"{len(self.queue)} measurements queued for later", file=sys.stderr)
                return EXIT_TEMPFAIL
            await self.measure(plan)
            return await self.deliver(link)
        except PinMismatch as exc:
            print(f"blockwatch agent: PIN MISMATCH, nothing was sent: {exc}. Someone may be "
                  "intercepting the connection to the collector (or its key changed: ask its "
                  "operator for the new pin).", file=sys.stderr)
            return EXIT_FAIL
        except AuthRejected as exc:
            print(f"blockwatch agent: the collector refused this agent's token ({exc}); "
                  "measurements stay queued", file=sys.stderr)
            return EXIT_FAIL
        finally:
            await link.aclose()

    async def measure(self, plan: dict[str, Any]) -> int:
        """Measure every target URL; each result is queued as soon as it exists."""
        from blockwatch.analysis.fingerprints import default_matcher
        from blockwatch.probe.dnsprobe import ResolverSpec
        from blockwatch.probe.resolvers import ResolverSet
        from blockwatch.probe.runner import NetworkView, ProbeSettings

        if isinstance(plan.get("max_body"), int) and plan["max_body"] > 0:
            self.max_body = plan["max_body"]
        probe = plan.get("probe", {})
        if self.interval is None and probe.get("interval_seconds"):
            self.interval = float(probe["interval_seconds"])
        settings = ProbeSettings(
            timeout=float(probe.get("timeout_seconds", 10.0)),
            body_limit=int(probe.get("body_limit", 512 * 1024)),
            user_agent=str(probe.get("user_agent", "Mozilla/5.0")),
            ca_bundle=self.ca_bundle, matcher=default_matcher(),
            allow_networks=tuple(ipaddress.ip_network(n, strict=False) for n in self.allow_networks))
        resolvers = (ResolverSpec.parse(self.resolver),) if self.resolver else ()
        view = NetworkView("agent", "vantage", resolvers, self.source_address)
        async with ResolverSet.for_view(view, settings) as dns:
            return await self._measure_round(plan, view, settings, dns)

    async def _measure_round(self, plan: dict[str, Any], view: NetworkView,
                             settings: ProbeSettings, dns: ResolverSet) -> int:
        from blockwatch.probe.runner import measure

        sem = asyncio.Semaphore(self.concurrency)
        round_id = uuid.uuid4().hex

        async def one(url: str) -> Any:
            async with sem:
                return await measure(url, view, settings, dns)

        canaries = [u for u in plan.get("canaries", []) if isinstance(u, str)]
        vantage_ok = True
        if canaries:
            ms = await asyncio.gather(*(one(u) for u in canaries))
            vantage_ok = any(m.http is not None and m.http.status is not None for m in ms)
            if not vantage_ok:
                log.warning("every canary failed: this round's results will be inconclusive")
        urls = [u for t in plan.get("targets", []) for u in t.get("urls", [])]

        async def job(url: str) -> None:
            try:
                m = await one(url)
            except Exception:  # a bug met by one URL must not end the round for the others
                log.exception("measuring %s failed; it has no result this round", url)
                return
            data = m.to_json()
            # what the collector must not learn: the local address this agent connected from
            data["source_address"] = None
            data["vantage_ok"] = vantage_ok
            data["round_id"] = round_id
            self.queue.put(data)

        await asyncio.gather(*(job(u) for u in urls))
        log.info("measured %d URLs; %d queued", len(urls), len(self.queue))
        return len(urls)

    async def deliver(self, link: Collector) -> int:
        """Send the queue, oldest first. 0 when it is empty afterwards, 75 when not."""
        while True:
            rows = self.queue.oldest(self.batch)
            if not rows:
                return EXIT_OK
            # stay under the collector's body limit (room left for the envelope)
            size, keep = 256, 0
            for _, body in rows:
                size += len(body.encode()) + 1
                if keep and size > self.max_body:
                    break
                keep += 1
            rows = rows[:keep]
            try:
                answer = await link.upload([body for _, body in rows], asn=self.asn)
            except CollectorError as exc:
                log.warning("delivery failed (%s): %d measurements stay queued", exc, len(self.queue))
                print(f"blockwatch agent: delivery failed: {exc}; {len(self.queue)} measurements "
                      "queued for later", file=sys.stderr)
                return EXIT_TEMPFAIL
            except Rejected as exc:
                if len(rows) > 1:
                    # too big, or a collector that refuses a whole upload for one bad
                    # measurement: halve until the culprit is alone
                    self.batch = max(1, len(rows) // 2)
                    continue
                log.error("the collector refused a measurement (%s): set aside in the queue's "
                          "rejected table", exc)
                self.queue.reject({rows[0][0]: str(exc)})
                continue
            refused = _refused(rows, answer.get("rejected"))
            if refused:
                # refused for what they are: set aside, never sent again; the rest delivered
                self.queue.reject(refused)
                log.error("the collector rejected %d of %d measurements (set aside in the "
                          "queue's rejected table); first: %s", len(refused), len(rows),
                          next(iter(refused.values())))
            self.queue.remove([seq for seq, _ in rows if seq not in refused])
            self.batch = min(BATCH, self.batch * 2)
            log.info("delivered %d (%s accepted, %s duplicates, %d rejected)", len(rows),
                     answer.get("accepted"), answer.get("duplicates"), len(refused))

    # -- the loop -----------------------------------------------------------------------------
    async def run_forever(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stopping.set)
        while not self.stopping.is_set():
            code = await self.run_once()
            if code == EXIT_FAIL:
                # a pin mismatch or a refused token does not heal by itself; keep trying, loudly
                log.error("round failed; trying again next interval")
            wait = self.interval or DEFAULT_INTERVAL
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=wait)
        return EXIT_OK


def _refused(rows: list[tuple[int, str]], rejected: Any) -> dict[int, str]:
    """seq -> reason of the sent rows the collector's answer lists as rejected (by position
    when it gives one, else by uid)."""
    if not isinstance(rejected, list) or not rejected:
        return {}
    by_uid: dict[str, int] = {}
    for seq, body in rows:
        try:
            by_uid[str(json.loads(body).get("uid"))] = seq
        except (ValueError, AttributeError):
            continue
    out: dict[int, str] = {}
    for r in rejected:
        if not isinstance(r, dict):
            continue
        i, uid = r.get("index"), r.get("uid")
        seq = rows[i][0] if isinstance(i, int) and 0 <= i < len(rows) else by_uid.get(str(uid))
        if seq is not None:
            out[seq] = str(r.get("error", "rejected"))[:1000]
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return agent_main(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
