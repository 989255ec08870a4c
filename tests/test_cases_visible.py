"""Cases (an incident and a blocking event of the same outlet) where people see them: the
digest (text and HTML), the outlet's page, status.json and the case alert, in en/ru/kk, with the
report's hostile title escaped; and alerts only for recent incidents. Stored rows on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from html.parser import HTMLParser

from sqlalchemy import select

from blockwatch.alerts import compose as C
from blockwatch.alerts import queue_alerts
from blockwatch.alerts.digest import collect
from blockwatch.site.commands import build_site
from blockwatch.storage import Database
from blockwatch.storage.models import Case, Feed, FeedEntry, Incident, Outbox
from test_alerts_support import RECIPIENTS_3, SITE_3, T0, add_event, add_target, add_vantage, config_text

RATEL = "https://ratel.kz/"
TITLE = 'Ratel editor detained <script>alert("x")</script> "><img src=x onerror=alert(1)>'
LINK = "https://adilet.example/case?a=1&b=2"
WORDS = {"en": "detention \u2014 released", "ru": "задержание \u2014 освобождён",
         "kk": "ұстау \u2014 босатылды"}


def add_report(db: Database, *, title: str, event_id: int | None, published: datetime | None,
               first_seen: datetime, feed: str = "Google News: Ratel",
               source_url: str | None = "https://www.vlast.kz/") -> int:
    """A stored incident (detention, released) about Ratel.kz, linked as a case to `event_id`."""
    with db.write() as s:
        f = s.query(Feed).filter_by(name=feed).one_or_none()
        if f is None:
            f = Feed(name=feed, url="https://news.example/rss", language="ru",
                     consecutive_failures=0)
            s.add(f)
            s.flush()
        en = FeedEntry(feed_id=f.id, entry_key=f"{title}{first_seen}", title=title, link=LINK,
                       summary="", published_at=published, first_seen_at=first_seen,
                       content_sha256="0" * 64, source_url=source_url)
        s.add(en)
        s.flush()
        inc = Incident(entry_id=en.id, types=["detention"], outlets=["Ratel.kz"], people=[],
                       occurred_at=published or first_seen, created_at=first_seen,
                       country="KZ", status="released")
        s.add(inc)
        s.flush()
        if event_id is not None:
            s.add(Case(incident_id=inc.id, event_id=event_id, created_at=first_seen))
        return inc.id


def blocked_ratel(db: Database, at: datetime) -> int:
    t = add_target(db, "Ratel.kz", RATEL)
    v = add_vantage(db, "almaty-1", last_seen_at=at)
    return add_event(db, t, v, RATEL, "http_blockpage", "ok", at,
                     reason="the response is a known blockpage (kz-mic)", confirmed=True)


class _Strict(HTMLParser):
    """Collects start tags and attribute names: an unescaped title would add a <script>, or an
    element with an onerror handler."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.tags += [f"@{name}" for name, _ in attrs]


def tags(html: str) -> list[str]:
    p = _Strict()
    p.feed(html)
    return p.tags


async def test_case_in_alert_digest_page_and_status_json(any_db, write_config,
                                                         tmp_path) -> None:
    cfg = write_config(config_text(2525, recipients=RECIPIENTS_3) + SITE_3)
    e = blocked_ratel(any_db, T0 - timedelta(hours=1))
    add_report(any_db, title=TITLE, event_id=e, published=T0 - timedelta(hours=2),
               first_seen=T0 - timedelta(minutes=50))
    # the alert: the case, what happened, the report
    assert await queue_alerts(cfg, any_db, now=T0) == 3
    with any_db.read() as s:
        sent = {o.destination: o.payload for o in s.scalars(select(Outbox))}
    for lang, who in (("en", "desk"), ("ru", "ru"), ("kk", "kk")):
        p = sent[f"{who}@example.org"]
        assert WORDS[lang] in p["text"] and WORDS[lang] in p["html"]
        assert TITLE in p["text"]
        assert "<script>" not in p["html"] and "&lt;script&gt;" in p["html"]
        assert "script" not in tags(p["html"]) and "@onerror" not in tags(p["html"])
    # the digest: a Cases section, in each language, text and HTML
    with any_db.read() as s:
        d = collect(s, cfg, T0 - timedelta(hours=24), T0)
    assert len(d.cases) == 1
    c = d.cases[0]
    assert (c.target, c.state, c.types, c.status, c.title) == (
        "Ratel.kz", "http_blockpage", ("detention",), "released", TITLE)
    heads = {"en": "== Cases: incidents linked to blocking ==",
             "ru": "== Случаи: инциденты, связанные с блокировкой ==",
             "kk": "== Жағдайлар: бұғаттаумен байланысты оқиғалар =="}
    for lang in ("en", "ru", "kk"):
        m = C.compose_digest(d, lang, "Asia/Almaty")
        section = m.text.split(heads[lang], 1)[1].split("==", 1)[0]
        assert f"* Ratel.kz: {WORDS[lang]}" in section
        assert C.catalog(lang)["verdict"]["http_blockpage"] in section
        # the blocking began (Almaty time), written as each language writes dates
        assert ("2026-11-27 06:45" if lang == "en" else "27.11.2026 06:45") in section
        assert TITLE in section and LINK in section
        assert "<script>" not in m.html and "&lt;script&gt;" in m.html
        assert 'href="https://adilet.example/case?a=1&amp;b=2"' in m.html
        assert "script" not in tags(m.html) and "@onerror" not in tags(m.html)
        assert WORDS[lang] in m.html
    # the outlet's page: the report in the timeline beside its blocking event
    out = tmp_path / "site"
    build_site(cfg, any_db, out, now=T0)
    for lang in ("en", "ru", "kk"):
        page = (out / lang / "t" / "ratel-kz.html").read_text(encoding="utf-8")
        event = page.split(f'id="event-{e}"', 1)[1].split("</li>", 1)[0]
        assert 'class="case"' in event
        assert 'href="https://adilet.example/case?a=1&amp;b=2"' in event
        assert "&lt;script&gt;" in event and "<script>" not in page
        assert "vlast.kz" in event  # the publisher the search named
        assert WORDS[lang] in event
        assert "script" not in tags(page) and "@onerror" not in tags(page)
    st = json.loads((out / "status.json").read_text(encoding="utf-8"))
    ratel = next(t for t in st["targets"] if t["name"] == "Ratel.kz")
    assert ratel["cases"] == [{
        "incident": 1, "title": TITLE, "url": LINK, "publisher": "vlast.kz",
        "source": "Google News: Ratel", "types": ["detention"], "status": "released", "reviewed": False,
        "published": "2026-11-27T01:00:00Z", "event": e, "kind": "http_blockpage",
        "started_at": "2026-11-27T01:45:00Z"}]


async def test_an_old_report_is_history_not_an_alert(any_db, write_config, tmp_path) -> None:
    """A search looking back a week finds a report from three days ago; it links to today's
    block. The block alerts, the case does not; the case is still on the page and in the
    digest."""
    cfg = write_config(config_text(2525, recipients=RECIPIENTS_3) + SITE_3)
    assert cfg.settings.alerts.incident_max_age == timedelta(hours=48)
    e = blocked_ratel(any_db, T0 - timedelta(minutes=10))
    add_report(any_db, title=TITLE, event_id=e, published=T0 - timedelta(days=3),
               first_seen=T0 - timedelta(minutes=8))
    assert await queue_alerts(cfg, any_db, now=T0) == 3
    with any_db.read() as s:
        keys = sorted(s.scalars(select(Outbox.key)))
        text = s.scalars(select(Outbox.payload)).first()["text"]
    assert all(k.endswith(":e1") for k in keys), keys  # the block only, not c1
    assert TITLE not in text
    out = tmp_path / "site"
    build_site(cfg, any_db, out, now=T0)
    assert 'class="case"' in (out / "en" / "t" / "ratel-kz.html").read_text(encoding="utf-8")
    with any_db.read() as s:
        assert len(collect(s, cfg, T0 - timedelta(hours=24), T0).cases) == 1


async def test_a_recent_report_alerts_and_the_age_is_configurable(any_db, write_config) -> None:
    # just inside the limit: published 47 hours ago
    cfg = write_config(config_text(2525, recipients=RECIPIENTS_3))
    e = blocked_ratel(any_db, T0 - timedelta(minutes=10))
    add_report(any_db, title="Ratel editor detained", event_id=e,
               published=T0 - timedelta(hours=47), first_seen=T0 - timedelta(minutes=8))
    assert await queue_alerts(cfg, any_db, now=T0) == 3
    with any_db.read() as s:
        assert all(k.endswith(":c1,e1") for k in s.scalars(select(Outbox.key)))


async def test_no_published_time_counts_from_first_seen(any_db, write_config) -> None:
    cfg = write_config(config_text(2525, extra='incident_max_age = "1h"',
                                   recipients=RECIPIENTS_3))
    assert cfg.settings.alerts.incident_max_age == timedelta(hours=1)
    e = blocked_ratel(any_db, T0 - timedelta(minutes=10))
    add_report(any_db, title="first seen now", event_id=e, published=None,
               first_seen=T0 - timedelta(minutes=8))
    add_report(any_db, title="published two hours ago", event_id=e,
               published=T0 - timedelta(hours=2), first_seen=T0 - timedelta(minutes=8))
    assert await queue_alerts(cfg, any_db, now=T0) == 3
    with any_db.read() as s:
        keys = set(s.scalars(select(Outbox.key)))
        text = s.scalars(select(Outbox.payload)).first()["text"]
    assert all(k.endswith(":c1,e1") for k in keys), keys
    assert "first seen now" in text and "published two hours ago" not in text
