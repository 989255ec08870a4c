"""The people list (probes/people.toml and its loader) and what an incident keeps from the
extractor: country, status and evidence, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from blockwatch.config import ConfigError, Person
from blockwatch.feeds import store
from blockwatch.feeds.parse import parse_feed
from blockwatch.feeds.people import load_people, merge, parse_people
from blockwatch.storage import Database

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_the_shipped_people_list() -> None:
    people = load_people([ROOT / "probes" / "people.toml"])
    assert len(people) >= 20
    names = [p.name for p in people]
    assert len(set(names)) == len(names)
    for p in people:
        # every entry says where its facts come from, and has a Cyrillic spelling
        assert p.source.startswith("https://"), p.name
        assert any(any("а" <= c.lower() <= "я" or c in "әіңғүұқөһ" for c in a) for a in p.aliases), p.name


def test_people_list_errors_name_the_file_and_entry(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        parse_people('[[person]]\nname = "A"\n[[person]]\naliases = ["B"]\n', file="people.toml")
    assert str(e.value).startswith("people.toml:3: person[1].name")
    assert "required" in str(e.value)
    with pytest.raises(ConfigError, match="unknown key"):
        parse_people('[[persons]]\nname = "A"\n', file="people.toml")
    with pytest.raises(ConfigError, match="cannot read the people list"):
        load_people([tmp_path / "missing.toml"])


def test_config_people_come_first() -> None:
    a = [Person(name="Jane Doe", aliases=["Джейн Доу"])]
    b = [Person(name="jane doe"), Person(name="John Roe")]
    assert [p.name for p in merge(a, b)] == ["Jane Doe", "John Roe"]


@dataclass(frozen=True)
class FakeExtraction:
    types: tuple[str, ...]
    outlets: tuple[str, ...]
    people: tuple[str, ...]
    press: bool
    status: str | None
    country: str | None
    evidence: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def is_incident(self) -> bool:
        return bool(self.types)


class FakeMatcher:
    """Stands in for the extractor: what matters here is what the store keeps of its answer."""

    def __init__(self) -> None:
        self.hints: list[str | None] = []

    def extract(self, title: str, summary: str = "", *, country: str | None = None) -> FakeExtraction:
        self.hints.append(country)
        if "задержан" not in title:
            return FakeExtraction((), (), (), False, None, None)
        return FakeExtraction(("detention",), ("Ratel.kz",), (), True, "detained",
                              country or "KZ", {"detention": ("задержан",), "outlet:Ratel.kz": ("Ratel.kz",)})


def test_incidents_keep_country_status_evidence_and_query(any_db: Database) -> None:
    entries = parse_feed((FIXTURES / "rferl_section.rss").read_bytes()).entries
    m = FakeMatcher()
    with any_db.write() as s:
        specs = store.sync_feeds(s, [store.FeedSpec("GDELT", "https://api.example.org/doc", "ru", "gdelt")])
        feed_id = specs["GDELT"].id
        out = store.store_entries(s, feed_id, entries, m, now=NOW,  # type: ignore[arg-type]
                                  query_of={e.key: '"Ratel.kz" OR "Vlast.kz"' for e in entries},
                                  country="KG")
    assert out.new_entries == 2 and len(out.incident_ids) == 1
    assert m.hints == ["KG", "KG"]  # the feed's country is the extractor's fallback
    with any_db.read() as s:
        rows = store.list_incidents(s)
        assert len(rows) == 1
        r = rows[0]
        assert (r.feed, r.feed_kind, r.query, r.country, r.status) == (
            "GDELT", "gdelt", '"Ratel.kz" OR "Vlast.kz"', "KG", "detained")
        assert r.evidence == {"detention": ["задержан"], "outlet:Ratel.kz": ["Ratel.kz"]}
        # reading filters by country; nothing was dropped when storing
        assert [x.id for x in store.list_incidents(s, country="kg")] == [r.id]
        assert store.list_incidents(s, country="KZ") == []


def test_jsonable_evidence() -> None:
    assert store.jsonable({"a": ("x", "y"), "b": frozenset()}) == {"a": ["x", "y"], "b": []}
    assert store.jsonable(FakeExtraction(("t",), (), (), False, None, None))["types"] == ["t"]
