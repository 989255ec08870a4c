"""`blockwatch db stats` counts what is stored and what retention removes next by the same rule
prune() deletes by, and `health` carries size and growth in one line (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from blockwatch import dbstats
from blockwatch.cli import main
from blockwatch.retention import prune
from blockwatch.storage import Database, bulk, open_database, repo

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.fixture
def setup(any_db_url: str, write_config):  # type: ignore[no-untyped-def]
    cfg = write_config(f'[storage]\nurl = "{any_db_url}"\n[retention]\nraw = "30d"\n'
                       '[[vantage]]\nname = "vps"\nkind = "local"\n')
    db = open_database(cfg.database_url)
    yield cfg, db
    db.close()


def fill(db: Database, now: datetime) -> None:
    """Four measurements a day for 40 days: one URL always ok, one blocked on days 5 to 7."""
    with db.write() as s:
        vid = repo.ensure_vantage(s, "vps", "local")
    for day in range(40, 0, -1):
        rows = []
        for h in range(0, 24, 6):
            at = now - timedelta(days=day) + timedelta(hours=h)
            for url in ("https://a.test/", "https://b.test/"):
                blocked = url == "https://b.test/" and 33 <= day <= 35
                rows.append(bulk.Row(uid=f"{url}{at.isoformat()}", target_id=None, url=url,
                                     measured_at=at, evidence={"u": url, "at": at.isoformat()},
                                     verdict="dns" if blocked else "ok", reason="r"))
        with db.write() as s:
            bulk.record(db, s, vid, rows, 2, now)


def test_stats_count_what_retention_removes_next(setup) -> None:  # type: ignore[no-untyped-def]
    _, db = setup
    fill(db, NOW)
    st = dbstats.collect(db, timedelta(days=30), NOW)
    assert st.measurements == 320 and st.rows["verdicts"] == 320
    # days 40..31 are past the 30-day cutoff (80 measurements); kept among them: the first of
    # each URL (its first state), the 12 blocked ones and the ok one that ended the block
    assert st.measurements_kept == 15
    assert st.measurements_prunable == 80 - 15
    due = st.next_prune["now"]
    assert due["count"] == 65
    assert due["oldest"] == repo.iso(NOW - timedelta(days=40))
    assert due["newest"] == repo.iso(NOW - timedelta(days=31) + timedelta(hours=18))
    assert st.next_prune["within_a_day"]["count"] == 65 + 8
    assert st.rows["events"] == 4  # new -> ok (a); new -> ok -> dns -> ok (b)
    assert st.per_day == pytest.approx(8 * 7 / 7)
    assert st.size_bytes > 0 and st.bytes_per_measurement == st.size_bytes / 320
    # the same rule as prune
    assert prune(db, timedelta(days=30), NOW) == 65
    assert dbstats.collect(db, timedelta(days=30), NOW).measurements_prunable == 0


def test_db_stats_command_and_health_line(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg, db = setup
    fill(db, datetime.now(UTC) - timedelta(hours=3))  # day 30's first pair is past the cutoff
    assert main(["--config", str(cfg.path), "db", "stats", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["measurements"] == 320 and got["measurements_prunable"] == 67
    assert got["retention_raw_days"] == 30 and got["growth_bytes_per_day"] > 0
    assert main(["--config", str(cfg.path), "db", "stats"]) == 0
    out = capsys.readouterr().out
    assert "320 (15 kept for good, 67 past retention now)" in out
    assert "next run removes: 67 measurements measured" in out
    main(["--config", str(cfg.path), "health"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("database:"))
    assert "growing" in line and "8 measurements/day over the last 7 days" in line
    main(["--config", str(cfg.path), "health", "--json"])
    health = json.loads(capsys.readouterr().out)
    assert health["storage"]["measurements_per_day"] == pytest.approx(54 / 7)


def test_rows_and_the_measurements_they_stand_for_are_counted_apart(any_db: Database) -> None:
    import random

    from test_runs import measurement

    rng = random.Random(2)
    with any_db.write() as s:
        vid = repo.ensure_vantage(s, "vps", "local")
    rows = []
    for h in range(10):  # one day, the same outcome: the first, the confirming one, 8 repeats
        at = NOW - timedelta(days=1) + timedelta(hours=h)
        m = measurement("https://a.test/", "vps", "vantage", at, "ok", rng)
        rows.append(bulk.Row(m.uid, None, "https://a.test/", at, m.to_json(), verdict="ok"))
    with any_db.write() as s:
        bulk.record(any_db, s, vid, rows, 2, NOW)
    st = dbstats.collect(any_db, timedelta(days=30), NOW)
    assert (st.measurements, st.measured) == (2, 10)
    # a database one day old: its growth over that day, not spread over a week
    assert st.growth_window_days == 1
    assert (st.rows_per_day, st.per_day) == (2, 10)
    assert st.bytes_per_measurement == st.size_bytes / 10
    assert "standing for 10 measured" in "\n".join(dbstats.lines(st))


def test_a_young_database_grows_over_its_own_age_not_a_week(setup) -> None:  # type: ignore[no-untyped-def]
    """An hour-old database with 48 measurements grows 48 an hour, not 48 a week."""
    _, db = setup
    with db.write() as s:
        vid = repo.ensure_vantage(s, "vps", "local")
    rows = [bulk.Row(uid=f"u{i}", target_id=None, url=f"https://{i}.test/",
                     measured_at=NOW - timedelta(minutes=90) + timedelta(minutes=i),
                     evidence={"i": i}, verdict="ok", reason="r") for i in range(48)]
    with db.write() as s:
        bulk.record(db, s, vid, rows, 2, NOW)
    st = dbstats.collect(db, timedelta(days=30), NOW)
    assert st.growth_window_days == pytest.approx(1.5 / 24)
    assert st.per_day == pytest.approx(48 / (1.5 / 24))
    assert any("the 1h30m since the first measurement" in line for line in dbstats.lines(st))
    assert "since the first measurement" in dbstats.brief(db, NOW)["line"]
