"""The measuring context (context.py) is built once per command or daemon and handed down:
every round of a daemon and its collector share one, a reload builds the next."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from blockwatch import context as context_mod
from blockwatch.collector.state import CollectorState
from blockwatch.daemon import Daemon
from blockwatch.storage import open_database

CONFIG = ('[probe]\ninterval = "15m"\ntargets = ["targets.toml"]\ncanaries = []\n'
          'timeout = "{timeout}"\nblock_addresses = ["{block}"]\n'
          '[control]\nresolvers = ["127.0.0.1:9"]\n'
          '[[vantage]]\nname = "kz"\nkind = "local"\ncountry = "KZ"\n'
          '[[vantage]]\nname = "kz-dns"\nkind = "resolver"\ncountry = "KZ"\naddress = "127.0.0.1"\n'
          '[[vantage]]\nname = "agent-1"\nkind = "agent"\ncountry = "KZ"\n'
          'token_sha256 = "' + "a" * 64 + '"\n')


async def test_a_daemon_builds_one_context_and_a_reload_the_next(
        write_config, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(CONFIG.format(timeout="3s", block="10.1.1.1"),
                       targets='[[target]]\nname = "A"\nurls = ["https://a.example/"]\n')
    built: list[Any] = []
    real_build = context_mod.build_context

    def counting_build(*a: Any, **k: Any) -> Any:
        ctx = real_build(*a, **k)
        built.append(ctx)
        return ctx

    monkeypatch.setattr(context_mod, "build_context", counting_build)
    seen: list[tuple[str, Any]] = []  # (which round, the context it was given)

    async def fake_round(cfg: Any, targets: Any, db: Any, *, context: Any, **_: Any) -> None:
        seen.append(("probe", context))

    async def fake_resolver_round(cfg: Any, targets: Any, db: Any, *, context: Any,
                                  **_: Any) -> None:
        seen.append(("resolver", context))

    monkeypatch.setattr("blockwatch.round.run_round", fake_round)
    monkeypatch.setattr("blockwatch.resolver_round.run_resolver_round", fake_resolver_round)
    db = open_database(cfg.database_url)
    try:
        d = Daemon(cfg, db)

        async def nothing() -> None:
            return None

        d.alerts = nothing  # type: ignore[method-assign]
        d.site = nothing  # type: ignore[method-assign]
        await d.run(once=True)  # builds the context, then one probe round
        d.collector = CollectorState.create(d.cfg, db, context=d.context)  # as _serve does
        await d.probe_round()
        first = d.context
        assert len(built) == 1 and built[0] is first
        assert [w for w, _ in seen] == ["probe", "resolver"] * 2
        assert all(c is first for _, c in seen)
        assert d.collector.snapshot.context is first
        assert first.settings.timeout == 3.0 and first.interception.is_block_address("10.1.1.1")
        assert first.asn_table is not None  # [asn] is on by default

        write_config(CONFIG.format(timeout="4s", block="10.2.2.2"))
        assert await d.reload()
        second = d.context
        assert len(built) == 2 and built[1] is second and second is not first
        assert second.settings.timeout == 4.0
        assert second.interception.is_block_address("10.2.2.2")
        assert not second.interception.is_block_address("10.1.1.1")
        assert second.asn_table is first.asn_table  # same file: the loaded table is kept
        assert d.collector.snapshot.context is second  # the collector's too, not its own
        seen.clear()
        await d.probe_round()
        assert len(built) == 2 and [c for _, c in seen] == [second, second]
    finally:
        db.close()


def test_the_collector_does_not_import_the_round() -> None:
    code = ("import sys, blockwatch.collector.state, blockwatch.collector.ingest; "
            "print('blockwatch.round' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
