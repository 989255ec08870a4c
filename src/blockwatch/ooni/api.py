"""The OONI measurements API over HTTP: one page at a time, with bounded, polite retries.

Facts about the API this relies on (ooni/backend, oonimeasurements `GET /api/v1/measurements`):
- `since` is exclusive and `until` inclusive (measurement_start_time > since, <= until); both
  are ISO dates and times in UTC; a query may span at most 180 days (HTTP 400 otherwise).
- `order_by=measurement_start_time&order=asc` sorts by start time then measurement_uid.
- `metadata.next_url` is null on the last page; otherwise it carries a continuation token
  (`cont`), so pages do not shift when new measurements arrive while we page.
- `next_url` is built from the server's own base URL, which may not be the one we were
  configured with (proxies, renamed hosts): we keep only its query and ask our `api_url`.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from blockwatch import __version__
from blockwatch.durations import format_duration

log = logging.getLogger(__name__)

PATH = "/api/v1/measurements"
USER_AGENT = f"blockwatch/{__version__} (OONI measurement importer)"
MAX_WINDOW = timedelta(days=180)  # the API's limit on since..until
PAGE_LIMIT = 500
MAX_PAGE_BYTES = 32 * 2**20
MAX_PAGES = 2000  # per window: a loop guard, far above any real KZ volume
MAX_ATTEMPTS = 5
BASE_DELAY = 2.0  # seconds; doubles per attempt
MAX_DELAY = 120.0
# A Retry-After longer than this means "come back later": the next scheduled import resumes,
# rather than one job sleeping for an hour and blocking the scheduler's slot.
MAX_RETRY_AFTER = 600.0

Sleep = Callable[[float], Awaitable[Any]]


class FetchError(Exception):
    """The API could not give us a usable page (after retries). Never raised for bad items."""

    def __init__(self, url: str, problem: str, *, malformed: bool = False):
        self.url = url
        self.problem = problem
        self.malformed = malformed  # the response arrived but is not the documented shape
        super().__init__(f"{url}: {problem}")


def make_client() -> httpx.AsyncClient:
    # trust_env=False: proxy or CA variables in the daemon's environment must not silently
    # reroute the import; the read timeout is generous because OONI's queries can be slow.
    return httpx.AsyncClient(
        trust_env=False, follow_redirects=True,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        timeout=httpx.Timeout(60.0, connect=10.0),
    )


def fmt_time(dt: datetime) -> str:
    """The API's documented form, e.g. 2016-10-20T10:30:00 (UTC, no offset)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def windows(since: datetime, until: datetime, max_span: timedelta = MAX_WINDOW
            ) -> list[tuple[datetime, datetime]]:
    """Split since..until into consecutive spans the API accepts, oldest first (so a failure
    part-way keeps the cursor monotonic)."""
    out = []
    start = since
    while start < until:
        end = min(start + max_span, until)
        out.append((start, end))
        start = end
    return out


def retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    v = value.strip()
    if v.isdigit():
        return float(v)
    try:
        when = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def backoff(attempt: int) -> float:
    return min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1))


@dataclass
class Page:
    number: int  # 1-based within one query
    url: str  # what was asked, for log lines
    results: list[dict[str, Any]]
    next_url: str | None


def parse_page(body: bytes, url: str, number: int) -> Page:
    """The envelope {metadata: {next_url, ...}, results: [...]}; raises FetchError(malformed)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FetchError(url, f"the response is not valid JSON ({exc})", malformed=True) from None
    if not isinstance(data, dict):
        raise FetchError(url, f"expected a JSON object, got {type(data).__name__}", malformed=True)
    results = data.get("results")
    if not isinstance(results, list):
        raise FetchError(url, "'results' is missing or not a list", malformed=True)
    for i, item in enumerate(results):
        if not isinstance(item, dict):
            raise FetchError(url, f"results[{i}] is {type(item).__name__}, not an object",
                             malformed=True)
    meta = data.get("metadata")
    if not isinstance(meta, dict):
        raise FetchError(url, "'metadata' is missing or not an object", malformed=True)
    nxt = meta.get("next_url")
    if nxt is not None and not isinstance(nxt, str):
        raise FetchError(url, f"'metadata.next_url' is not a string (got {nxt!r})", malformed=True)
    return Page(number, url, results, nxt or None)


class OoniApi:
    def __init__(self, api_url: str, client: httpx.AsyncClient, *, sleep: Sleep = asyncio.sleep,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.endpoint = api_url.rstrip("/") + PATH
        self.client = client
        self.sleep = sleep
        self.now = now

    async def _get(self, params: httpx.QueryParams) -> tuple[str, bytes]:
        url = str(httpx.URL(self.endpoint, params=params))
        problem = ""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            wait: float | None = None
            try:
                async with self.client.stream("GET", self.endpoint, params=params) as r:
                    if r.status_code == 429 or r.status_code >= 500:
                        problem = f"HTTP {r.status_code}"
                        wait = retry_after(r.headers.get("retry-after"), self.now())
                        if wait is not None and wait > MAX_RETRY_AFTER:
                            raise FetchError(url, f"{problem}, and the API asks to wait "
                                                  f"{format_duration(wait)}: trying again at the next import")
                    elif r.status_code != 200:
                        text = (await r.aread())[:300].decode("utf-8", "replace")
                        raise FetchError(url, f"HTTP {r.status_code}: {text.strip()}")
                    else:
                        chunks, size = [], 0
                        async for chunk in r.aiter_bytes():
                            size += len(chunk)
                            if size > MAX_PAGE_BYTES:
                                raise FetchError(url, f"the response is larger than "
                                                      f"{MAX_PAGE_BYTES} bytes", malformed=True)
                            chunks.append(chunk)
                        return url, b"".join(chunks)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if attempt == MAX_ATTEMPTS:
                break
            delay = wait if wait is not None else backoff(attempt)
            log.warning("OONI API %s: %s; retry %d of %d in %s", url, problem, attempt,
                        MAX_ATTEMPTS - 1, format_duration(delay))
            await self.sleep(delay)
        raise FetchError(url, f"{problem}, still failing after {MAX_ATTEMPTS} attempts")

    async def pages(self, params: dict[str, str]) -> AsyncIterator[Page]:
        """Every page of one query, following metadata.next_url."""
        q = httpx.QueryParams(params)
        seen: set[str] = set()
        for number in range(1, MAX_PAGES + 1):
            url, body = await self._get(q)
            page = parse_page(body, url, number)
            yield page
            if page.next_url is None:
                return
            q = httpx.URL(page.next_url).params
            key = str(q)
            if key in seen:
                raise FetchError(url, "metadata.next_url repeats an earlier page", malformed=True)
            seen.add(key)
        raise FetchError(self.endpoint, f"more than {MAX_PAGES} pages for one query")
