"""`blockwatch review`: a person's reading of a feed entry overrides the extractor everywhere, is
kept across polls, and measures the extractor on the feeds this installation reads."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import respx
from sqlalchemy import func, select

from blockwatch.cli import main
from blockwatch.config import Config
from blockwatch.feeds import review_store, store
from blockwatch.feeds.commands import poll_feeds
from blockwatch.feeds.review import Labels, ReviewError, checked, score
from blockwatch.storage import Database, open_database, repo
from blockwatch.storage.models import Case, Event, FeedEntry, IncidentReview
from blockwatch.targets import load_targets

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
ROOT = Path(__file__).resolve().parent.parent
ADIL = "https://feeds.example.org/adilsoz/feed/"
NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=72)

CONFIG = f"""
[storage]
url = "sqlite:///bw.db"
[probe]
targets = ["targets.toml"]
[feeds]
interval = "30m"
[[feeds.source]]
name = "Adil Soz"
url = "{ADIL}"
language = "ru"
"""

RATEL = "В Алматы задержан журналист Ratel.kz"
VLAST = "Сайт издания «Власть» заблокирован на территории Казахстана"
RULES = "Власти объявили о новых правилах аккредитации"


@pytest.fixture
def cfg(write_config, tmp_path: Path) -> Config:  # type: ignore[no-untyped-def]
    shutil.copy(FIXTURES / "targets.toml", tmp_path / "targets.toml")
    return write_config(CONFIG)


def mock_feed(router: respx.MockRouter, etag: str = '"v1"') -> respx.Route:
    return router.get(ADIL).mock(return_value=httpx.Response(
        200, content=(FIXTURES / "rss20_adilsoz.xml").read_bytes(), headers={"ETag": etag}))


async def poll(cfg: Config, db: Database, etag: str = '"v1"') -> None:
    with respx.mock as router:
        mock_feed(router, etag)
        await poll_feeds(cfg, db, force=True, now=NOW)


def entry_id(db: Database, title: str) -> int:
    with db.read() as s:
        return s.scalars(select(FeedEntry.id).where(FeedEntry.title == title)
                         .order_by(FeedEntry.id)).first()  # type: ignore[return-value]


def incidents(db: Database) -> dict[str, store.IncidentRow]:
    with db.read() as s:
        return {r.title: r for r in store.list_incidents(s)}


def count(db: Database, model: type) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def blocking_events(cfg: Config, db: Database) -> dict[str, int]:
    """A DNS block of Ratel.kz and of Vlast.kz the night before, at one agent."""
    with db.write() as s:
        ids = repo.sync_targets(s, load_targets(cfg.target_files))
        v = repo.ensure_vantage(s, "almaty-1", "agent", "KZ")
        out = {}
        for name in ("Ratel.kz", "Vlast.kz"):
            e = Event(target_id=ids[name], vantage_id=v, url="https://example.kz/", state="dns",
                      previous="ok", confirmed=True, reason="", started_at=NOW - timedelta(hours=14),
                      detected_at=NOW - timedelta(hours=14))
            s.add(e)
            s.flush()
            out[name] = e.id
    return out


def apply(db: Database, entry: int, labels: Labels, note: str = "") -> review_store.Applied:
    with db.write() as s:
        return review_store.apply(s, entry, labels, note=note, now=NOW, window=WINDOW)


async def test_a_review_overrides_the_extractor_and_survives_polls(cfg: Config, any_db: Database) -> None:
    events = blocking_events(cfg, any_db)
    await poll(cfg, any_db)
    before = incidents(any_db)
    assert RATEL in before and VLAST in before and RULES not in before
    assert count(any_db, Case) == 2  # Ratel's and Vlast's incidents, each with its outlet's block
    ratel, vlast, rules = (entry_id(any_db, t) for t in (RATEL, VLAST, RULES))

    # dismissed: the incident and its case go; the extractor's reading is kept with the review
    res = apply(any_db, ratel, Labels(False), note="a court reporter, not detained")
    assert (res.action, res.cases_removed, res.incident_id) == ("dismissed", 1, None)
    assert RATEL not in incidents(any_db)
    assert count(any_db, Case) == 1
    with any_db.read() as s:
        rev = s.scalar(select(IncidentReview).where(IncidentReview.entry_id == ratel))
        assert rev is not None and rev.incident is False and rev.note == "a court reporter, not detained"
        assert rev.extracted["incident"] is True and rev.extracted["types"] == ["detention"]
        assert rev.extracted["outlets"] == ["Ratel.kz"]

    # added: an entry the extractor passed over becomes an incident, linked to the outlet's block
    res = apply(any_db, rules, Labels(True, ("harassment",), None, ("Ratel.kz",), (), "KZ"))
    assert (res.action, res.cases_added) == ("added", 1)
    added = incidents(any_db)[RULES]
    assert added.types == ("harassment",) and added.country == "KZ" and added.reviewed_at == NOW
    assert [e.id for e in added.linked_events] == [events["Ratel.kz"]]

    # corrected: other types, the outlet taken away, so its case goes
    res = apply(any_db, vlast, Labels(True, ("blocking", "shutdown"), None, (), (), "KZ"))
    assert (res.action, res.cases_removed, res.cases_added) == ("corrected", 1, 0)
    row = incidents(any_db)[VLAST]
    assert row.types == ("blocking", "shutdown") and row.outlets == () and row.linked_events == ()

    # the same entries again, under a new ETag: nothing comes back, nothing is stored twice
    entries, cases = count(any_db, FeedEntry), count(any_db, Case)
    await poll(cfg, any_db, etag='"v2"')
    assert count(any_db, FeedEntry) == entries and count(any_db, Case) == cases
    after = incidents(any_db)
    assert RATEL not in after and after[VLAST].types == ("blocking", "shutdown")
    assert after[RULES].types == ("harassment",)

    # a second review of the same entry replaces the first and keeps the first reading
    apply(any_db, ratel, Labels(True, ("detention",), "released", ("Ratel.kz",), (), "KZ"))
    assert count(any_db, IncidentReview) == 3
    with any_db.read() as s:
        rows = {r.entry.id: r for r in review_store.reviews(s)}
    assert rows[ratel].labels.status == "released"
    assert rows[ratel].extracted is not None and rows[ratel].extracted.types == ("detention",)
    assert rows[rules].extracted == Labels(False)


async def test_deleting_an_entry_takes_its_review(cfg: Config, any_db: Database) -> None:
    await poll(cfg, any_db)
    apply(any_db, entry_id(any_db, RULES), Labels(False))
    with any_db.write() as s:
        s.execute(FeedEntry.__table__.delete().where(FeedEntry.title == RULES))
    assert count(any_db, IncidentReview) == 0


def test_labels_are_checked_field_by_field() -> None:
    outlets = ["Ratel.kz", "Vlast.kz"]
    cases = [
        (Labels(True, ("jailed",)), "types: unknown jailed"),
        (Labels(True, ()), "types: an incident needs at least one type"),
        (Labels(True, ("detention",), "freed"), "status: unknown 'freed'"),
        (Labels(True, ("detention",), None, ("Ratel",)), "outlets: Ratel not in the target lists"),
        (Labels(True, ("detention",), None, (), (), "Kazakhstan"), "country: 'Kazakhstan'"),
        (Labels(False, (), "released"), "--not-incident takes no types and no status"),
    ]
    for labels, message in cases:
        with pytest.raises(ReviewError, match=message.replace("(", r"\(")):
            checked(labels, outlets=outlets)
    ok = checked(Labels(True, ("fine", "fine"), "convicted", ("Vlast.kz",), ("A", "A"), "KZ"),
                 outlets=outlets)
    assert ok.types == ("fine",) and ok.people == ("A",)


def test_score_counts_like_the_labelled_sets() -> None:
    det = Labels(True, ("detention",), None, ("Ratel.kz",), (), "KZ")
    pairs = [
        ("ru", det, det),  # right
        ("ru", Labels(False, country="KZ"), det),  # a false incident
        ("en", Labels(True, ("fine",), "convicted", ("Vlast.kz",), (), "KZ"),
         Labels(False, outlets=("Vlast.kz",), country="KZ")),  # a missed one
        ("en", Labels(True, ("detention", "raid"), None, (), (), "KG"),
         Labels(True, ("detention",), None, (), (), "KZ")),  # a type and the country wrong
    ]
    s = score(pairs)
    assert set(s) == {"ru", "en", "all"}
    a = s["all"]
    assert (a.tp, a.fp, a.fn) == (2, 1, 1)
    assert (a.type_tp, a.type_fp, a.type_fn) == (2, 1, 2)
    assert a.outlet_recall() == 1.0 and a.outlets == 2
    assert a.status_accuracy() == pytest.approx(2 / 3) and a.country_accuracy() == 0.75
    assert s["ru"].incident_prf() == (0.5, 1.0, pytest.approx(2 / 3))


def entry_id_in(cfg: Config, title: str) -> int:
    db = open_database(cfg.database_url)
    try:
        return entry_id(db, title)
    finally:
        db.close()


def shown(site: Path) -> str:
    """Every page and status.json of a built site, as one text."""
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(site.rglob("*"))
                     if p.suffix in (".html", ".json", ".xml"))


# --- the command, as an operator runs it --------------------------------------------------------

def run(cfg: Config, *argv: str) -> int:
    return main(["--config", str(cfg.source), *argv])


def test_review_commands(cfg: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = open_database(cfg.database_url)
    try:
        blocking_events(cfg, db)
        import asyncio

        asyncio.run(poll(cfg, db))
        ratel, rules = entry_id(db, RATEL), entry_id(db, RULES)
    finally:
        db.close()

    assert run(cfg, "incidents", "--json") == 0
    listed = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {x["entry"] for x in listed if x["title"] == RATEL} == {ratel}

    assert run(cfg, "review", "entries", "--search", "аккредитации", "--no-incident") == 0
    out = capsys.readouterr().out
    assert f"{rules}  Adil Soz [ru]  no incident" in out and RATEL not in out

    site = tmp_path / "site"
    assert run(cfg, "site", "--out", str(site)) == 0
    assert RATEL in shown(site)
    capsys.readouterr()

    assert run(cfg, "review", "mark", str(ratel), "--not-incident", "--note", "not detained") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"entry {ratel}: dismissed (was: detention outlets Ratel.kz")
    assert "cases 1 removed, 0 linked" in out
    assert run(cfg, "review", "mark", str(rules), "--types", "harassment", "--outlets", "Ratel.kz",
               "--country", "kz") == 0
    assert "added" in capsys.readouterr().out

    # what is wrong is named, and nothing is stored
    assert run(cfg, "review", "mark", str(rules), "--types", "jailed") == 2
    assert "blockwatch review mark: types: unknown jailed" in capsys.readouterr().err
    assert run(cfg, "review", "mark", "999999", "--types", "fine") == 2
    assert "entry 999999: no such feed entry" in capsys.readouterr().err
    assert run(cfg, "review", "mark", str(rules), "--not-incident", "--status", "released") == 2
    assert "--not-incident takes no status" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # --types or --not-incident is required
        run(cfg, "review", "mark", str(rules))
    assert usage.value.code == 2
    assert "one of the arguments --not-incident --types is required" in capsys.readouterr().err

    # the next build (only what changed) no longer shows it, on any page or in status.json
    assert run(cfg, "site", "--out", str(site)) == 0
    assert RATEL not in shown(site) and RULES in shown(site)
    capsys.readouterr()
    # each report says whether a person checked it
    page = (site / "en" / "incidents.html").read_text(encoding="utf-8")
    assert "Those marked “checked” were read and confirmed by a person" in page
    entry = page[page.index(RULES):]
    assert entry.index("· checked</p>") < entry.index("</li>")
    entry = page[page.index(VLAST):]
    assert entry.index("· found automatically</p>") < entry.index("</li>")
    cases = [c for t in json.loads((site / "status.json").read_text(encoding="utf-8"))["targets"]
             for c in t.get("cases", [])]
    assert {c["title"]: c["reviewed"] for c in cases} == {RULES: True, VLAST: False}

    assert run(cfg, "incidents", "--json") == 0
    now = {x["title"]: x for x in map(json.loads, capsys.readouterr().out.splitlines())}
    assert RATEL not in now and now[RULES]["types"] == ["harassment"]
    assert now[RULES]["review"]["reviewed_at"] and now[RULES]["country"] == "KZ"

    assert run(cfg, "review", "list", "--json") == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["entry"], r["extracted"]["incident"], r["review"]["incident"]) for r in rows] == [
        (ratel, True, False), (rules, False, True)]

    # the digest tells staff each report's entry, whether it was checked, and how to correct it
    digests = tmp_path / "digests"
    assert run(cfg, "digest", "--out", str(digests), "--since", "2026-11-01T00:00Z") == 0
    capsys.readouterr()
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(digests.rglob("*.txt")))
    assert f"entry {rules}, checked by a person: blockwatch review mark {rules} ... corrects it" in text
    vlast = entry_id_in(cfg, VLAST)
    assert f"entry {vlast}, found automatically: blockwatch review mark {vlast}" in text
    assert f"entry {ratel}," not in text  # dismissed: no longer an incident

    # stats: the extractor as it is now, against the two reviews: one false incident, one missed
    assert run(cfg, "review", "stats", "--json") == 0
    st = json.loads(capsys.readouterr().out)
    assert st["reviewed"] == 2
    assert st["extractor_now"]["all"]["incident_precision"] == 0.0
    assert st["extractor_now"]["all"]["incident_recall"] == 0.0
    assert st["as_stored"]["ru"]["entries"] == 2
    assert run(cfg, "review", "stats") == 0
    assert "2 reviewed entries" in capsys.readouterr().out

    # export: the labelled sets' schema, which the quality benchmark reads as it is
    out_file = tmp_path / "reviewed.jsonl"
    assert run(cfg, "review", "export", "--out", str(out_file)) == 0
    items = [json.loads(x) for x in out_file.read_text(encoding="utf-8").splitlines()]
    assert [(i["id"], i["split"], i["incident"], i["types"]) for i in items] == [
        (f"reviewed-{ratel}", "reviewed", False, []),
        (f"reviewed-{rules}", "reviewed", True, ["harassment"])]
    spec = importlib.util.spec_from_file_location("extract_quality",
                                                  ROOT / "benchmarks" / "extract_quality.py")
    assert spec is not None and spec.loader is not None
    quality = importlib.util.module_from_spec(spec)
    sys.modules["extract_quality"] = quality
    spec.loader.exec_module(quality)
    loaded = quality.load_items(out_file)
    scores = quality.score(loaded, quality.load_matcher(None))
    assert scores[("all", "reviewed")].n == 2 and scores[("all", "reviewed")].fp == 1


def test_public_pages_can_show_only_reviewed_incidents(write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shutil.copy(FIXTURES / "targets.toml", tmp_path / "targets.toml")
    cfg = write_config(CONFIG.replace("[feeds]", '[site]\nincidents = "reviewed"\n[feeds]'))
    assert cfg.settings.site.incidents == "reviewed"
    db = open_database(cfg.database_url)
    try:
        blocking_events(cfg, db)
        import asyncio

        asyncio.run(poll(cfg, db))
        apply(db, entry_id(db, VLAST), Labels(True, ("blocking",), None, ("Vlast.kz",), (), "KZ"))
    finally:
        db.close()
    site = tmp_path / "site"
    assert run(cfg, "site", "--out", str(site)) == 0
    text = shown(site)
    assert VLAST in text and RATEL not in text  # Ratel's report was never reviewed
    page = (site / "ru" / "incidents.html").read_text(encoding="utf-8")
    assert "Показаны только сообщения, прочитанные и подтверждённые человеком." in page



async def test_a_review_and_case_linking_take_turns_on_postgresql(cfg: Config, pg_url: str) -> None:
    """While a review's transaction is open, a linker cannot take the cases' lock (and so waits
    for it): it never links from an incident the review is changing or deleting."""
    from sqlalchemy import create_engine, text

    db = open_database(pg_url)
    other = create_engine(pg_url)
    try:
        await poll(cfg, db)
        ratel = entry_id(db, RATEL)
        probe = text("SELECT pg_try_advisory_xact_lock(:k)")
        with db.write() as s:
            review_store.apply(s, ratel, Labels(False), note="", now=NOW, window=WINDOW)
            with other.begin() as conn:
                assert conn.execute(probe, {"k": store.CASES_LOCK}).scalar_one() is False
        with other.begin() as conn:  # released at commit
            assert conn.execute(probe, {"k": store.CASES_LOCK}).scalar_one() is True
        with db.write() as s:
            store.link_cases(s, window=WINDOW, now=NOW)
            with other.begin() as conn:
                assert conn.execute(probe, {"k": store.CASES_LOCK}).scalar_one() is False
    finally:
        other.dispose()
        db.close()


def test_review_options_are_checked_and_forgiving(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    db = open_database(cfg.database_url)
    try:
        import asyncio

        asyncio.run(poll(cfg, db))
        rules = entry_id(db, RULES)
    finally:
        db.close()
    for bad in (["--sample", "0"], ["--limit", "-1"], ["--sample", "many"]):
        with pytest.raises(SystemExit) as usage:
            run(cfg, "review", "entries", *bad)
        assert usage.value.code == 2
        assert "expected a whole number of 1 or more" in capsys.readouterr().err
    # what to check for false alarms: incidents nobody reviewed yet
    assert run(cfg, "review", "entries", "--incident", "--unreviewed", "--json") == 0
    listed = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert listed and all(r["stored"]["incident"] and not r["reviewed"] for r in listed)
    assert RULES not in {r["title"] for r in listed}
    # a sample of what matches the search, not of everything
    assert run(cfg, "review", "entries", "--search", "Ratel", "--sample", "5", "--json") == 0
    titles = [json.loads(x)["title"] for x in capsys.readouterr().out.splitlines()]
    assert titles and all("Ratel" in t for t in titles)
    # any case for types; "None" clears; people split on ";" only (a name may hold a comma)
    assert run(cfg, "review", "mark", str(rules), "--types", "Harassment", "--people",
               "Ivanov, Ivan; Aigul Saparova", "--note", "first") == 0
    assert "people Ivanov, Ivan; Aigul Saparova" in capsys.readouterr().out
    assert run(cfg, "review", "mark", str(rules), "--not-incident", "--status", "None") == 0
    assert run(cfg, "review", "confirm", str(rules)) == 0  # no note: the earlier one stays
    capsys.readouterr()
    assert run(cfg, "review", "list", "--json") == 0
    (row,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert row["review"]["incident"] is False and row["note"] == "first"
    assert row["review"]["people"] == ["Ivanov, Ivan", "Aigul Saparova"]
