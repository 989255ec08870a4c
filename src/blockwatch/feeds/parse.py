"""Feed bytes -> plain-text entries. Pure: no I/O, no clock.

Feed content is untrusted third-party input. What this module guarantees:
- no XML entity expansion: the DOCTYPE (with any internal subset) is cut out before feedparser
  sees the document. feedparser strips `<!ENTITY` declarations only when each starts a line, so a
  one-line "billion laughs" took 8 s and a quadratic blow-up 50 s and 6 GB in expat before it hit
  its amplification limit (measured with feedparser 6.0.14, expat 2.5.0);
- the text is decoded by us (BOM, UTF-8, the declared charsets, then windows-1251), so a feed
  that declares the wrong encoding or none still reads as Cyrillic, and feedparser is handed
  UTF-8 with a matching declaration;
- every stored string is plain text: tags removed, entities unescaped, control characters
  (NUL breaks PostgreSQL text) dropped, lengths bounded. Nothing is escaped: escaping is the job
  of whoever renders the text.
"""

from __future__ import annotations

import calendar
import codecs
import hashlib
import io
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import feedparser

MAX_TITLE = 1_000
MAX_SUMMARY = 10_000
MAX_LINK = 2_000
MAX_KEY = 255  # FeedEntry.entry_key is String(255)


@dataclass(frozen=True)
class ParsedEntry:
    key: str  # guid, else link, else "sha256:<content hash>"
    title: str
    link: str
    summary: str
    published_at: datetime | None
    content_sha256: str
    source_url: str = ""  # the publisher site an aggregator's item names (<source url=...>)


@dataclass(frozen=True)
class ParsedFeed:
    entries: tuple[ParsedEntry, ...]
    title: str
    version: str  # feedparser's name for the format: rss20, atom10, rss10, ... or ""
    encoding: str  # what the bytes were decoded as
    bozo: str | None  # why the document was ill-formed, when it was (entries are still kept)


# --- decoding ------------------------------------------------------------------------------------

_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?\?>", re.S)
_XML_DECL_ENC = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.I)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Latin single-byte charsets a server or CMS claims by default; Cyrillic bytes decode in them
# without error, as mojibake ("Ãàçåòà"), so a claim of one of these is checked, not trusted.
_LATIN_1BYTE = {"iso8859-1", "cp1252", "latin-1", "iso8859-15", "ascii", "cp1250", "iso8859-2"}


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _looks_like_mojibake(text: str) -> bool:
    """Cyrillic windows-1251 read as a Latin charset gives runs of accented capitals and C1
    controls; real Western text has few accented letters per word."""
    high = [c for c in text if ord(c) > 0x7F]
    if len(high) < 8:
        return False
    latin = sum(1 for c in high if 0xC0 <= ord(c) <= 0xFF or 0x80 <= ord(c) <= 0x9F)
    return latin / len(high) > 0.5 and len(high) / max(1, len(text)) > 0.1


def decode(data: bytes, content_type: str | None = None) -> tuple[str, str]:
    """(text, encoding). Order: BOM; valid UTF-8 (invalid UTF-8 is near impossible to produce
    from Cyrillic single-byte text, so validity is strong evidence); the HTTP charset and the
    XML declaration when they decode and do not look like mojibake; windows-1251 (the legacy
    charset of Russian and Kazakh sites); latin-1 (never fails)."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(enc, errors="replace"), enc
    if data[:4] in (b"<\x00?\x00", b"\x00<\x00?"):  # UTF-16 without a BOM (XML 1.0 appendix F)
        enc = "utf-16-le" if data[0] == 0x3C else "utf-16-be"
        return data.decode(enc, errors="replace"), enc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    declared: list[str] = []
    if content_type and (m := _CHARSET.search(content_type)):
        declared.append(m.group(1))
    if (d := _XML_DECL.match(data)) and (m := _XML_DECL_ENC.search(d.group(0))):
        declared.append(m.group(1).decode("ascii"))
    for name in declared:
        enc = _codec(name)
        if enc is None or enc in ("utf-8", "utf-16", "utf-32"):
            continue
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if enc in _LATIN_1BYTE and _looks_like_mojibake(text):
            continue
        return text, enc
    try:
        return data.decode("cp1251"), "cp1251"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


# --- DOCTYPE neutralisation ----------------------------------------------------------------------

_DOCTYPE_SPECIAL = re.compile(r"[\"'\[\]>]|<!--")


def _doctype_end(text: str, i: int) -> int:
    """Index just past the `>` that closes the DOCTYPE starting at i; quotes, the internal
    subset `[...]` and comments inside it may all hold a `>`."""
    n, depth = len(text), 0
    j = i + len("<!DOCTYPE")
    while (m := _DOCTYPE_SPECIAL.search(text, j)) is not None:
        tok, j = m.group(0), m.end()
        if tok == "<!--":
            k = text.find("-->", j)
            j = n if k < 0 else k + 3
        elif tok in "\"'":
            k = text.find(tok, j)
            j = n if k < 0 else k + 1
        elif tok == "[":
            depth += 1
        elif tok == "]":
            depth = max(0, depth - 1)
        elif depth == 0:  # ">"
            return j
    return n  # unterminated: everything after it is part of the broken DOCTYPE


def neutralise_doctype(text: str) -> str:
    """Remove every DOCTYPE in the prolog (before the root element), internal subset included:
    no entity declarations survive, so nothing can expand. A feed never needs its DTD; HTML
    entities such as &nbsp; then make the strict parser fail and feedparser's loose parser, which
    knows the HTML entities and expands nothing else, takes over."""
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace() or text[i] == "\ufeff":
            i += 1
        elif text.startswith("<?", i):
            k = text.find("?>", i + 2)
            if k < 0:
                return text
            i = k + 2
        elif text.startswith("<!--", i):
            k = text.find("-->", i + 4)
            if k < 0:
                return text
            i = k + 3
        elif text[i:i + 9].upper() == "<!DOCTYPE":
            text = text[:i] + text[_doctype_end(text, i):]
            n = len(text)
        else:
            break
    return text


# --- HTML to text --------------------------------------------------------------------------------

_BLOCK = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th",
          "blockquote", "pre", "section", "article", "header", "footer", "figure", "figcaption",
          "table", "hr", "dd", "dt"}
_SKIP = {"script", "style", "template", "noscript", "iframe", "object", "svg", "math", "head", "title"}
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(\s[^<>]*)?/?>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff\ufffe\uffff]")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_NEWLINES = re.compile(r"\s*\n\s*")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def _strip_once(s: str) -> str:
    p = _TextExtractor()
    p.feed(s)
    p.close()
    return "".join(p.parts)


def html_to_text(s: str, *, limit: int = MAX_SUMMARY) -> str:
    """Plain text of an HTML fragment: tags dropped (script/style with their content), entities
    unescaped, whitespace collapsed, paragraphs kept as single newlines. Runs again while the
    result still holds tags, because some feeds escape their HTML twice (`&amp;lt;p&amp;gt;`)."""
    text = s
    for _ in range(3):
        text = _strip_once(text)
        if not _TAG.search(text):
            break
    else:
        text = _TAG.sub(" ", text)  # still tags after three rounds: a hostile input; drop them
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _NEWLINES.sub("\n", text).strip()
    return text[:limit]


def _plain(s: Any, limit: int) -> str:
    return html_to_text(s, limit=limit) if isinstance(s, str) and s else ""


# --- entries -------------------------------------------------------------------------------------

def _when(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        st = entry.get(key)
        if isinstance(st, time.struct_time):
            try:
                return datetime.fromtimestamp(calendar.timegm(st), UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return None


def _clean_link(s: Any) -> str:
    if not isinstance(s, str):
        return ""
    s = _CONTROL.sub("", s).strip()
    # only web links are kept: a "javascript:" or "data:" link must not reach an HTML page
    return s[:MAX_LINK] if re.match(r"(?i)^https?://", s) else ""


def _key(guid: str, link: str, content_sha256: str) -> str:
    for k in (guid, link):
        if k:
            return k if len(k) <= MAX_KEY else "sha256:" + hashlib.sha256(k.encode()).hexdigest()
    return "sha256:" + content_sha256


def entry_from(raw: Any) -> ParsedEntry:
    title = _plain(raw.get("title"), MAX_TITLE).replace("\n", " ")
    summary_html = raw.get("summary") or ""
    if not summary_html and raw.get("content"):
        summary_html = raw["content"][0].get("value") or ""
    summary = _plain(summary_html, MAX_SUMMARY)
    link = _clean_link(raw.get("link"))
    guid = raw.get("id")
    guid = _CONTROL.sub("", guid).strip() if isinstance(guid, str) else ""
    published = _when(raw)
    digest = hashlib.sha256(
        "\x1f".join([title, link, summary, published.isoformat() if published else ""]).encode()
    ).hexdigest()
    src = raw.get("source")
    source_url = _clean_link(src.get("href") or src.get("url")) if isinstance(src, dict) else ""
    return ParsedEntry(_key(guid, link, digest), title, link, summary, published, digest, source_url)


_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")


def parse_feed(data: bytes, content_type: str | None = None, *,
               drop_last: bool = False) -> ParsedFeed:
    """Parse a feed document. `drop_last`: the body was cut at the size cap, so the last entry
    recovered may be incomplete; leave it out (it is read in full once the feed shrinks)."""
    text, encoding = decode(data, content_type)
    text = neutralise_doctype(text)
    text = '<?xml version="1.0" encoding="utf-8"?>' + _DECL.sub("", text, count=1)
    # BytesIO, never bytes or str: feedparser treats a string that looks like a path or URL as
    # one and reads it itself.
    d = feedparser.parse(
        io.BytesIO(text.encode("utf-8", errors="replace")),
        response_headers={"content-type": "application/xml; charset=utf-8"},
        resolve_relative_uris=False, sanitize_html=True,
    )
    raw_entries = list(d.entries)
    if drop_last and raw_entries:
        raw_entries.pop()
    seen: set[str] = set()
    entries: list[ParsedEntry] = []
    for raw in raw_entries:
        e = entry_from(raw)
        if not (e.title or e.summary or e.link) or e.key in seen:
            continue  # nothing to show, or the same entry twice in one document
        seen.add(e.key)
        entries.append(e)
    bozo = None
    if d.get("bozo"):
        exc = d.get("bozo_exception")
        bozo = f"{type(exc).__name__}: {exc}"[:300] if exc is not None else "ill-formed"
    return ParsedFeed(tuple(entries), _plain(d.feed.get("title"), MAX_TITLE), d.get("version") or "",
                      encoding, bozo)
