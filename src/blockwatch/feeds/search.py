"""Search feeds: the GDELT DOC 2.0 API and Google News RSS search, asked about every watched
outlet and person, so they are monitored even where no NGO feed writes about them.

Queries are OR-joined quoted names, batched to fit each service's query length; requests to
one service are paced (GDELT: one every 5 s at most) and back off when the service says it is
being asked too often (HTTP 429, or GDELT's plain-text "Please limit requests to one every 5
seconds", which sometimes comes with HTTP 200). Building queries and URLs is pure; `run_search`
does the I/O through `fetch_feed`, so feed safety (size caps, redirect checks) applies here too.
A stop request (the daemon stopping) ends a run at once, pacing pauses and the request in
flight included; the run says where it stopped (`resume_at`) so the next one asks the rest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol, TypeVar
from urllib.parse import urlencode, urlsplit

import httpx

from blockwatch.config import FeedSearch
from blockwatch.feeds.fetch import FetchResult, Resolve, fetch_feed, system_resolve
from blockwatch.feeds.parse import ParsedEntry, parse_feed

MIN_NAME = 4  # shorter names match too much to be worth a query slot
THROTTLED_TEXT = b"please limit requests"
RETRIES = 3


class _Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def aliases(self) -> Sequence[str]: ...


def _common_words() -> frozenset[str]:
    from blockwatch.feeds import extract

    return extract.COMMON_WORDS


def _fold(name: str) -> str:
    from blockwatch.feeds.extract import normalise

    return normalise(name)


def watched_names(search: FeedSearch, targets: Iterable[_Named], people: Iterable[_Named]) -> list[str]:
    """The names one search asks about, in list order, each once. Aliases that are ordinary
    words ("Власть", "Azattyq" = freedom) are left out: a search for them returns the news of
    the day, not the outlet; the outlet's other names ("Vlast.kz", "Радио Азаттык") remain."""
    common = _common_words()
    out: list[str] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        name = " ".join(name.replace('"', " ").split())
        key = _fold(name)
        if len(name) < MIN_NAME or key in seen or key in common:
            return
        seen.add(key)
        out.append(name)

    for group, on in ((targets, search.outlets), (people, search.people)):
        if on:
            for x in group:
                for n in (x.name, *x.aliases):
                    add(n)
    for t in search.terms:
        add(t)
    return out


def _span(d: timedelta, *, minutes: str, hours: str, days: str) -> str:
    secs = int(d.total_seconds())
    if secs % 86400 == 0:
        return f"{secs // 86400}{days}"
    if secs % 3600 == 0:
        return f"{secs // 3600}{hours}"
    return f"{max(1, secs // 60)}{minutes}"


def render_query(search: FeedSearch, names: Sequence[str]) -> str:
    quoted = " OR ".join(f'"{n}"' for n in names)
    if search.kind == "gdelt":
        # GDELT accepts parentheses only around OR'd terms
        q = f"({quoted})" if len(names) > 1 else quoted
        if search.sourcecountry:
            q += f" sourcecountry:{search.sourcecountry.upper()}"
        if search.sourcelang:
            q += f" sourcelang:{search.sourcelang}"
    else:
        q = quoted + " when:" + _span(search.when, minutes="m", hours="h", days="d")
    return f"{q} {search.extra}".strip() if search.extra else q


def batch_names(search: FeedSearch, names: Sequence[str]) -> list[list[str]]:
    """Consecutive batches whose rendered query fits `max_query_length`. A name too long for
    any batch on its own still gets its own query (the service may refuse it: that is visible
    as an error)."""
    limit = search.setting("max_query_length")
    out: list[list[str]] = []
    cur: list[str] = []
    for n in names:
        if cur and len(render_query(search, [*cur, n])) > limit:
            out.append(cur)
            cur = []
        cur.append(n)
    if cur:
        out.append(cur)
    return out


def query_url(search: FeedSearch, query: str) -> str:
    base = search.setting("api_url")
    if search.kind == "gdelt":
        params = {"query": query, "mode": "ArtList", "format": "RSS", "sort": "DateDesc",
                  "maxrecords": str(search.maxrecords),
                  "timespan": _span(search.timespan, minutes="min", hours="h", days="d")}
    else:
        hl = search.hl
        params = {"q": query, "hl": hl, "gl": search.gl,
                  "ceid": search.ceid or f"{search.gl}:{hl.split('-')[0]}"}
    return base + ("&" if "?" in base else "?") + urlencode(params)


@dataclass(frozen=True)
class SearchQuery:
    text: str
    url: str


def build_queries(search: FeedSearch, targets: Iterable[_Named], people: Iterable[_Named]
                  ) -> list[SearchQuery]:
    names = watched_names(search, targets, people)
    return [SearchQuery(q, query_url(search, q))
            for q in (render_query(search, b) for b in batch_names(search, names))]


# --- pacing ----------------------------------------------------------------------------------

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


class Stopped(Exception):
    """A stop was requested while waiting (a pacing pause or a request): the run ends here."""


async def unless_stopped(aw: Awaitable[T], stop: asyncio.Event | None) -> T:
    """`aw`'s result, or Stopped as soon as `stop` is set (`aw` is then cancelled)."""
    if stop is None:
        return await aw
    task = asyncio.ensure_future(aw)
    if stop.is_set():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise Stopped
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        raise Stopped
    return task.result()


class Pacer:
    """At most one request per `min_gap` seconds to one service, across all searches of a poll.
    The clock and sleep are injectable so tests need no real time."""

    def __init__(self, min_gap: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Sleep = asyncio.sleep):
        self.min_gap = min_gap
        self.clock = clock
        self.sleep = sleep
        self.last: float | None = None
        self.lock = asyncio.Lock()

    async def _gap(self, stop: asyncio.Event | None) -> None:
        if self.last is not None:
            wait = self.last + self.min_gap - self.clock()
            if wait > 0:
                await unless_stopped(self.sleep(wait), stop)
        self.last = self.clock()

    async def request(self, fn: Callable[[], Awaitable[FetchResult]],
                      stop: asyncio.Event | None = None) -> tuple[FetchResult, int]:
        """Run `fn` paced; retry with a doubling pause while the service says "too often".
        Returns the last result and the number of throttled answers; Stopped when `stop` is
        set before that (the request in flight is abandoned)."""
        async with self.lock:
            throttled = 0
            while True:
                await self._gap(stop)
                res = await unless_stopped(fn(), stop)
                if not is_throttled(res) or throttled >= RETRIES:
                    return res, throttled + (1 if is_throttled(res) else 0)
                throttled += 1
                await unless_stopped(self.sleep(self.min_gap * (2 ** throttled)), stop)


def is_throttled(res: FetchResult) -> bool:
    if res.http_status == 429:
        return True
    return res.status == "ok" and THROTTLED_TEXT in res.content[:500].lower()


@dataclass
class SearchOutcome:
    entries: list[ParsedEntry] = field(default_factory=list)
    query_of: dict[str, str] = field(default_factory=dict)  # entry key -> query text
    errors: list[str] = field(default_factory=list)
    queries: int = 0
    answered: int = 0  # queries answered with a feed (empty or not)
    documents: int = 0  # items in the answers, before de-duplication
    # a stop request ended the run before query `resume_at` was answered (None: it was not)
    resume_at: int | None = None

    @property
    def failed(self) -> bool:
        """Nothing answered: the search is failing (one query refused among answered ones is a
        note, not a failure)."""
        return self.queries > 0 and self.answered == 0


def _plain_answer(res: FetchResult) -> str:
    text = res.content[:200].decode("utf-8", errors="replace")
    return " ".join(text.split())


async def run_search(client: httpx.AsyncClient, search: FeedSearch, queries: Sequence[SearchQuery],
                     pacer: Pacer, *, max_bytes: int, timeout: float,
                     resolve: Resolve = system_resolve, stop: asyncio.Event | None = None,
                     start: int = 0) -> SearchOutcome:
    """Ask every query from `start` in turn. A throttled service stops the run (the rest is
    asked next time); another failing query is an error and the next one is asked. A set
    `stop` ends the run at once with what was answered so far."""
    out = SearchOutcome(queries=len(queries) - start)
    service = "GDELT" if search.kind == "gdelt" else "Google News"
    for i in range(start, len(queries)):
        q = queries[i]
        try:
            res, throttled = await pacer.request(
                lambda q=q: fetch_feed(client, q.url, max_bytes=max_bytes, timeout=timeout,  # type: ignore[misc]
                                       resolve=resolve), stop)
        except Stopped:
            out.resume_at = i
            break
        if is_throttled(res):
            out.errors.append(f"{service} rate limit: still refused after {throttled} tries "
                              f"({_plain_answer(res) or 'HTTP 429'}); {len(queries) - i - 1} of "
                              f"{len(queries)} queries left for the next run")
            break
        if res.status != "ok":
            out.errors.append(f"query {i + 1}/{len(queries)}: {res.error or res.status}")
            continue
        parsed = parse_feed(res.content, res.content_type, drop_last=res.truncated)
        if not parsed.version and not parsed.entries:
            out.errors.append(f"query {i + 1}/{len(queries)}: {service} answered with no feed: "
                              f"{_plain_answer(res)!r}")
            continue
        out.answered += 1
        out.documents += len(parsed.entries)
        for e in parsed.entries:
            if e.key not in out.query_of:
                out.query_of[e.key] = q.text
                out.entries.append(e)
    return out


def pacer_key(search: FeedSearch) -> str:
    return urlsplit(search.setting("api_url")).netloc.lower()
