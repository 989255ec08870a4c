"""What the collector knows from its configuration: agent tokens, target URLs, and the
measuring context (context.py: probe settings, control view, interception, ASN lookup).
Swapped as a whole on reload (SIGHUP), so a request sees either the old or the new set."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from blockwatch.analysis.fingerprints import Interception
from blockwatch.analysis.verdict import AnalysisSettings
from blockwatch.config import AgentVantage, Config, load
from blockwatch.context import CONTROL, MeasureContext, build_context
from blockwatch.probe.runner import NetworkView, ProbeSettings
from blockwatch.storage import Database, repo
from blockwatch.targets import Target, load_targets

log = logging.getLogger(__name__)


def token_hash(token: str) -> str:
    """What `[[vantage]] token_sha256` holds: SHA-256 (hex) of the token's text, stripped."""
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Snapshot:
    cfg: Config
    agents: tuple[AgentVantage, ...]
    targets: tuple[Target, ...]
    url_targets: dict[str, int | None]  # URL -> target id (what agents may report)
    vantage_ids: dict[str, int]  # agent name (and "control") -> vantages.id
    context: MeasureContext  # built by the command (or here), shared with its rounds
    interception: Interception  # the context's
    confirm_after: int

    @property
    def control(self) -> NetworkView:
        return self.context.control

    @property
    def settings(self) -> ProbeSettings:
        return self.context.settings

    @property
    def analysis(self) -> AnalysisSettings:
        return self.context.analysis

    @property
    def asn(self) -> Callable[[str], str | None] | None:
        """The same network comparison as local rounds: DNS answers in the control's network
        are consistent (the daemon downloads the table; without it, lookups return None)."""
        return self.context.asn

    def authenticate(self, authorization: str | None) -> AgentVantage | None:
        """The agent whose token this is, or None. Every configured hash is compared in
        constant time, so the answer's timing says nothing about which prefix matched."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = token_hash(token).encode()
        found = None
        for a in self.agents:
            if hmac.compare_digest(digest, a.token_sha256.encode()):
                found = a
        return found


def build_snapshot(cfg: Config, db: Database, *, context: MeasureContext | None = None,
                   keep: MeasureContext | None = None) -> Snapshot:
    """`context`: the command's or daemon's, built from `cfg`; made here when not given
    (`keep`: the one it replaces, whose ASN table is kept when the file is the same)."""
    ctx = context or build_context(cfg, keep=keep)
    targets = load_targets(cfg.target_files)
    agents = tuple(v for v in cfg.settings.vantage if isinstance(v, AgentVantage))
    with db.write() as s:
        tids = repo.sync_targets(s, targets)
        vids = {CONTROL: repo.ensure_vantage(s, CONTROL, "control")}
        for a in agents:
            vids[a.name] = repo.ensure_vantage(s, a.name, "agent", a.country, a.asn)
    url_targets: dict[str, int | None] = {}
    for t in targets:
        for u in t.urls:
            url_targets.setdefault(u, tids.get(t.name))
    return Snapshot(
        cfg=cfg, agents=agents, targets=tuple(targets), url_targets=url_targets, vantage_ids=vids,
        context=ctx, interception=ctx.interception,
        confirm_after=cfg.settings.probe.confirm_after,
    )


@dataclass
class CollectorState:
    db: Database
    snapshot: Snapshot
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, cfg: Config, db: Database, *,
               context: MeasureContext | None = None) -> CollectorState:
        return cls(db, build_snapshot(cfg, db, context=context))

    def reload(self, cfg: Config | None = None, *, context: MeasureContext | None = None) -> bool:
        """Re-read the configuration (SIGHUP). A broken file is logged and the running set kept:
        a typo must not lock every agent out. `context`: the daemon's, already rebuilt from
        `cfg`."""
        with self._lock:
            old = self.snapshot
            try:
                if cfg is None:
                    cfg = load(old.cfg.path) if old.cfg.path else old.cfg
                new = build_snapshot(cfg, self.db, context=context, keep=old.context)
            except Exception as exc:
                log.error("configuration reload failed, keeping the running one: %s", exc)
                return False
            self.snapshot = new
        before = {a.name for a in old.agents}
        after = {a.name for a in new.agents}
        log.warning("configuration reloaded: %d agents (%d added, %d removed), %d target URLs",
                    len(after), len(after - before), len(before - after), len(new.url_targets))
        return True
