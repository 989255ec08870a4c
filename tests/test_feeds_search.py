"""Search feeds: names -> batched queries within each service's limits, GDELT and Google News
URLs, pacing with an injected clock (no real sleeping), backoff on HTTP 429 and on GDELT's
"Please limit requests" answer that comes with HTTP 200, and Google News items whose link is a
Google redirect and whose <source url> names the publisher. HTTP is mocked with respx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from blockwatch.config import FeedSearch, Person
from blockwatch.feeds.fetch import make_client
from blockwatch.feeds.search import (
    Pacer,
    SearchQuery,
    batch_names,
    build_queries,
    query_url,
    render_query,
    run_search,
    watched_names,
)

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
GDELT = "https://api.gdeltproject.org/api/v2/doc/doc"
GNEWS = "https://news.google.com/rss/search"
LIMIT_TEXT = (b"Please limit requests to one every 5 seconds or contact the project for larger "
              b"queries.")


@dataclass
class Target:
    name: str
    aliases: tuple[str, ...] = ()


@dataclass
class FakeTime:
    """A clock that only moves when someone sleeps."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)
    requests: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def gdelt(**kw: object) -> FeedSearch:
    return FeedSearch.model_validate({"name": "GDELT", "kind": "gdelt", **kw})


def gnews(**kw: object) -> FeedSearch:
    return FeedSearch.model_validate({"name": "Google News", "kind": "google_news", **kw})


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    c = make_client(concurrency=4, timeout=10)
    yield c
    await c.aclose()


def fifty_fifty() -> tuple[list[Target], list[Person]]:
    outlets = [Target(f"Outlet{i:02d}.kz", (f"Издание Номер{i:02d}",)) for i in range(50)]
    people = [Person(name=f"Journalist Surname{i:02d}", aliases=[f"Журналист Фамилия{i:02d}"])
              for i in range(50)]
    return outlets, people


# --- names and queries (pure) --------------------------------------------------------------------

def test_names_skip_ordinary_words_short_names_and_repeats() -> None:
    targets = [Target("Vlast.kz", ("Vlast", "Vlast.kz", "Власть")), Target("KTK", ("КТК",)),
               Target("Azattyq", ("Азаттык", "Радио Азаттык"))]
    people = [Person(name="Gulnara Bazhkenova", aliases=["Гульнара Бажкенова"])]
    names = watched_names(gdelt(terms=["Адил Соз"]), targets, people)
    assert names == ["Vlast.kz", "Vlast", "Azattyq", "Радио Азаттык", "Gulnara Bazhkenova",
                     "Гульнара Бажкенова", "Адил Соз"]
    assert watched_names(gdelt(people=False), targets, people)[-1] == "Радио Азаттык"
    assert "Gulnara Bazhkenova" not in watched_names(gdelt(outlets=True, people=False), targets, people)


def test_gdelt_query_and_url() -> None:
    s = gdelt(sourcecountry="kz", sourcelang="rus", timespan="12h", maxrecords=100)
    q = render_query(s, ["Ratel.kz", "Гульнара Бажкенова"])
    assert q == '("Ratel.kz" OR "Гульнара Бажкенова") sourcecountry:KZ sourcelang:rus'
    assert render_query(s, ["Ratel.kz"]) == '"Ratel.kz" sourcecountry:KZ sourcelang:rus'  # no lone ()
    url = query_url(s, q)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == GDELT
    assert {k: v[0] for k, v in parse_qs(parts.query).items()} == {
        "query": q, "mode": "ArtList", "format": "RSS", "sort": "DateDesc", "maxrecords": "100",
        "timespan": "12h"}


def test_google_news_query_and_url_keep_hl_gl_ceid_consistent() -> None:
    s = gnews(hl="ru", gl="KZ", when="7d")
    q = render_query(s, ["Vlast.kz", "Orda.kz"])
    assert q == '"Vlast.kz" OR "Orda.kz" when:7d'
    qs = parse_qs(urlsplit(query_url(s, q)).query)
    assert (qs["hl"], qs["gl"], qs["ceid"], qs["q"]) == (["ru"], ["KZ"], ["KZ:ru"], [q])
    with pytest.raises(ValueError, match="ceid"):
        gnews(hl="ru", gl="KZ", ceid="US:en")
    with pytest.raises(ValueError, match="5 s"):
        gdelt(min_gap="2s")


@pytest.mark.parametrize("search", [gdelt(), gnews()], ids=["gdelt", "google_news"])
def test_fifty_outlets_and_fifty_people_fit_the_limits(search: FeedSearch) -> None:
    outlets, people = fifty_fifty()
    queries = build_queries(search, outlets, people)
    limit = search.setting("max_query_length")
    names = watched_names(search, outlets, people)
    assert len(names) == 200  # 50 outlets and 50 people, two spellings each
    # every name asked exactly once, every query within the limit, and batches are full
    asked = [n for b in batch_names(search, names) for n in b]
    assert asked == names
    assert all(len(q.text) <= limit for q in queries)
    total = sum(len(f'"{n}"') + 4 for n in names)
    assert len(queries) <= total // (limit - 40) + 1
    # GDELT's pace: one request per 5 s, so one run of this search takes len(queries) * 5 s
    if search.kind == "gdelt":
        assert len(queries) * 5 < 30 * 60 / 2  # well inside a 30-minute poll interval


def test_an_overlong_name_gets_its_own_query() -> None:
    s = gdelt(max_query_length=40)
    assert batch_names(s, ["A" * 60, "Short.kz", "Other.kz"]) == [["A" * 60], ["Short.kz", "Other.kz"]]


# --- pacing and backoff (respx + fake clock) -----------------------------------------------------

def gdelt_queries(n: int) -> list[SearchQuery]:
    s = gdelt()
    return [SearchQuery(f'"Name{i}"', query_url(s, f'"Name{i}"')) for i in range(n)]


async def test_gdelt_requests_are_paced_five_seconds_apart(client: httpx.AsyncClient) -> None:
    t = FakeTime()
    pacer = Pacer(5.0, clock=t.clock, sleep=t.sleep)

    def answer(request: httpx.Request) -> httpx.Response:
        t.requests.append(t.now)
        t.now += 0.7  # the request itself takes a while
        return httpx.Response(200, content=(FIXTURES / "gdelt_artlist.rss").read_bytes())

    with respx.mock:
        respx.get(url__startswith=GDELT).mock(side_effect=answer)
        out = await run_search(client, gdelt(), gdelt_queries(4), pacer, max_bytes=10**6, timeout=10)
    assert out.answered == 4 and out.errors == [] and not out.failed
    gaps = [b - a for a, b in zip(t.requests, t.requests[1:], strict=False)]
    assert gaps == [5.0, 5.0, 5.0]
    # the same three articles came back for every query: stored once, with the first query
    assert len(out.entries) == 3 and set(out.query_of.values()) == {'"Name0"'}


async def test_a_429_backs_off_and_retries(client: httpx.AsyncClient) -> None:
    t = FakeTime()
    pacer = Pacer(5.0, clock=t.clock, sleep=t.sleep)
    answers = iter([httpx.Response(429, content=LIMIT_TEXT),
                    httpx.Response(429, content=LIMIT_TEXT),
                    httpx.Response(200, content=(FIXTURES / "gdelt_artlist.rss").read_bytes())])

    def answer(request: httpx.Request) -> httpx.Response:
        t.requests.append(t.now)
        return next(answers)

    with respx.mock:
        respx.get(url__startswith=GDELT).mock(side_effect=answer)
        out = await run_search(client, gdelt(), gdelt_queries(1), pacer, max_bytes=10**6, timeout=10)
    assert out.answered == 1 and out.errors == [] and len(out.entries) == 3
    assert len(t.requests) == 3
    # doubling pauses after each refusal (10 s, 20 s), never less than the 5 s pace between tries
    gaps = [b - a for a, b in zip(t.requests, t.requests[1:], strict=False)]
    assert gaps == [10.0, 20.0]


async def test_please_limit_requests_with_http_200_is_throttling_not_a_feed(
        client: httpx.AsyncClient) -> None:
    t = FakeTime()
    pacer = Pacer(5.0, clock=t.clock, sleep=t.sleep)
    with respx.mock:
        route = respx.get(url__startswith=GDELT).mock(
            return_value=httpx.Response(200, content=LIMIT_TEXT, headers={"Content-Type": "text/html"}))
        out = await run_search(client, gdelt(), gdelt_queries(3), pacer, max_bytes=10**6, timeout=10)
    # 1 try + 3 retries for the first query, then the run stops: the rest is for the next run
    assert route.call_count == 4
    assert out.failed and out.answered == 0
    assert len(out.errors) == 1
    assert "GDELT rate limit" in out.errors[0] and "2 of 3 queries left for the next run" in out.errors[0]
    assert "Please limit requests" in out.errors[0]
    assert t.sleeps == [10.0, 20.0, 40.0]  # doubling pauses (each longer than the 5 s pace)


async def test_one_refused_query_is_an_error_and_the_next_is_asked(client: httpx.AsyncClient) -> None:
    t = FakeTime()
    pacer = Pacer(5.0, clock=t.clock, sleep=t.sleep)
    qs = gdelt_queries(2)
    with respx.mock:
        respx.get(qs[0].url).mock(return_value=httpx.Response(
            200, content=b"The specified phrase is too short.", headers={"Content-Type": "text/html"}))
        respx.get(qs[1].url).mock(return_value=httpx.Response(
            200, content=(FIXTURES / "gdelt_artlist.rss").read_bytes()))
        out = await run_search(client, gdelt(), qs, pacer, max_bytes=10**6, timeout=10)
    assert not out.failed and out.answered == 1 and len(out.entries) == 3
    assert out.errors == ["query 1/2: GDELT answered with no feed: 'The specified phrase is too short.'"]
    assert set(out.query_of.values()) == {'"Name1"'}


async def test_google_news_items_keep_the_redirect_and_the_publisher(client: httpx.AsyncClient) -> None:
    t = FakeTime()
    s = gnews()
    q = SearchQuery('"Ratel.kz" OR "Vlast.kz" when:7d', query_url(s, '"Ratel.kz" OR "Vlast.kz" when:7d'))
    with respx.mock:
        respx.get(q.url).mock(return_value=httpx.Response(
            200, content=(FIXTURES / "google_news_search.rss").read_bytes(),
            headers={"Content-Type": "application/xml; charset=utf-8"}))
        out = await run_search(client, s, [q], Pacer(2.0, clock=t.clock, sleep=t.sleep),
                               max_bytes=10**6, timeout=10)
    assert [(e.link.split("?")[0][:40], e.source_url) for e in out.entries] == [
        ("https://news.google.com/rss/articles/CBM", "https://vlast.kz"),
        ("https://news.google.com/rss/articles/CBM", "https://orda.kz")]
    assert out.query_of[out.entries[0].key] == q.text


def test_pacer_defaults_per_service() -> None:
    assert gdelt().setting("min_gap") == timedelta(seconds=5)
    assert gnews().setting("min_gap") == timedelta(seconds=2)
    assert gdelt(api_url="https://gdelt.example.org/doc").setting("api_url") == "https://gdelt.example.org/doc"
