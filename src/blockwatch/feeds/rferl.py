"""RFE/RL feed discovery. RFE/RL's sites (rferl.org, azattyq.org, rus.azattyq.org...) run one
CMS whose feed addresses are opaque ids under /api/ ("/api/zrqiteuuir") that get regenerated;
each site lists its current ones, as plain links with the section's title, on its /rssfeeds
page. Pure: HTML in, (title, url) pairs out; the choice of sections is pure too."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from blockwatch.feeds.parse import decode

MAX_FEEDS = 500
_API_PATH = re.compile(r"^/api/[A-Za-z0-9_$~.-]*/?$")
_SPACES = re.compile(r"\s+")
# the site-wide feed is named like this on the services' pages (en, ru, kk)
_MAIN = re.compile(r"(?i)\b(all news|all|latest|home|main|top stories|все|главн|лента|"
                   r"барлық|басты|жаңалықтар)\b")


@dataclass(frozen=True)
class DiscoveredFeed:
    title: str
    url: str


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._href: str | None = None
        self._title = ""
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            a = dict(attrs)
            self._href = a.get("href") or None
            self._title = a.get("title") or ""
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            text = _SPACES.sub(" ", "".join(self._text)).strip() or self._title.strip()
            self.links.append((self._href, text))
            self._href = None


def parse_rssfeeds(html: bytes, page_url: str, content_type: str | None = None) -> list[DiscoveredFeed]:
    """The feed links of a /rssfeeds page: hrefs under /api/ on the page's own host (relative or
    absolute), with their link text (or title attribute) as the section title; first one wins."""
    text, _ = decode(html, content_type)
    p = _Links()
    p.feed(text)
    p.close()
    host = urlsplit(page_url).hostname
    out: list[DiscoveredFeed] = []
    seen: set[str] = set()
    for href, title in p.links:
        url = urljoin(page_url, href.strip())
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.hostname != host:
            continue
        if not _API_PATH.match(parts.path):
            continue
        url = parts._replace(fragment="").geturl()
        if url in seen:
            continue
        seen.add(url)
        out.append(DiscoveredFeed(title[:200] or parts.path, url))
        if len(out) >= MAX_FEEDS:
            break
    return out


def choose(feeds: Sequence[DiscoveredFeed], sections: Sequence[str]) -> tuple[list[DiscoveredFeed],
                                                                              list[str]]:
    """The feeds to follow and the configured sections no feed matched. A section matches a
    feed whose title equals it or contains it (case-insensitive). With no sections: the
    site-wide feed, named like "All news" / "Все новости" / "Барлық жаңалықтар", else the
    first feed listed (the pages list the main feed first)."""
    if not feeds:
        return [], list(sections)
    if not sections:
        main = [f for f in feeds if _MAIN.search(f.title)]
        return [main[0] if main else feeds[0]], []
    chosen: list[DiscoveredFeed] = []
    missing: list[str] = []
    for sec in sections:
        want = sec.casefold().strip()
        exact = [f for f in feeds if f.title.casefold() == want]
        hits = exact or [f for f in feeds if want in f.title.casefold()]
        if not hits:
            missing.append(sec)
        for f in hits[:1]:
            if f not in chosen:
                chosen.append(f)
    return chosen, missing
