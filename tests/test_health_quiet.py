"""`blockwatch health` tells a quiet vantage (no check ran since its last usable results) from
one whose checks run and are inconclusive (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from blockwatch.health import check_health
from blockwatch.storage import repo
from test_health import setup, store

__all__ = ["setup"]  # the fixture, shared with test_health


def test_a_quiet_vantage_is_not_called_inconclusive(setup) -> None:  # type: ignore[no-untyped-def]
    cfg, db = setup
    now = datetime.now(UTC).replace(microsecond=0)
    last = now - timedelta(minutes=35)  # past two intervals (30 min), not yet "silent" (45 min)
    store(db, [(last - timedelta(minutes=15), "ok"), (last, "ok")])
    h = check_health(cfg, db, now)
    (p,) = [p for p in h.problems if p.startswith("vantage vps")]
    assert p == (f"vantage vps (local) has run no check since {repo.iso(last)} (more than two "
                 "intervals): it is not measuring; its last results were usable")
    assert "inconclusive" not in p
    (v,) = h.vantages
    assert v["quiet"] is True and v["not_measuring"] is True
    # checks that run and cannot look are still said to be inconclusive
    store(db, [(now - timedelta(minutes=5), "inconclusive")])
    h = check_health(cfg, db, now)
    (p,) = [p for p in h.problems if p.startswith("vantage vps")]
    assert p.endswith("its results are inconclusive") and h.vantages[0]["quiet"] is False


def test_health_text_marks_quiet_and_inconclusive_apart(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    from blockwatch.cli import main

    cfg, db = setup
    now = datetime.now(UTC).replace(microsecond=0)
    last = now - timedelta(minutes=35)
    store(db, [(last - timedelta(minutes=15), "ok"), (last, "ok")])
    assert main(["--config", str(cfg.path), "health"]) == 1
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("vantage vps"))
    assert line.endswith("QUIET (no check since its last usable results)")
    store(db, [(now - timedelta(minutes=5), "inconclusive")])
    main(["--config", str(cfg.path), "health"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("vantage vps"))
    assert line.endswith("NOT MEASURING (checks inconclusive)")
