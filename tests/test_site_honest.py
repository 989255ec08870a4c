"""The status page never claims more than was measured, and its numbers agree with each other
(SQLite and PostgreSQL, rows stored through the real state machine):

- an outlet whose one network went quiet while another cannot look says since when nothing
  usable came (never "no usable measurement yet" beside a card that shows one), and its open
  block is said to have held "at least until" its last measurement, not "ongoing";
- the index says which networks ran no check and which checked but could not look;
- minutes affected stop at the last measurement that showed the state;
- interference and slowing are counted, filtered, exported and worded as "interfered";
- agreement says how many networks measured of how many the country has.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from blockwatch.site.build import build_site_from_db
from blockwatch.storage import Database, repo
from blockwatch.storage.models import DailyRollup, Event, Target
from test_site_build import Page
from test_site_states import INFO, SCHED, record, rounds

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
AGENT = "almaty-volunteer-c"
# the local probe measured the DNS outlet until here, then stopped; the agent keeps trying
LAST = NOW - timedelta(minutes=50)
FIRST = LAST - timedelta(minutes=45)


def world(db: Database, *, fresh: bool) -> dict[str, int]:
    """Dns.kz: blocked (DNS) by the local probe until LAST, nothing since; the agent's checks
    all inconclusive. With `fresh`: Slow.kz throttled and Tls.kz TLS-blocked by the local probe
    now, the agent inconclusive on both."""
    names = ["Dns.kz"] + (["Slow.kz", "Tls.kz"] if fresh else [])
    ids: dict[str, int] = {}
    with db.write() as s:
        for name in names:
            t = Target(name=name, country="KZ", category="NEWS",
                       urls=[f"https://{name.lower()}/"], aliases=[], active=True)
            s.add(t)
            s.flush()
            ids[name] = t.id
        agent = repo.ensure_vantage(s, AGENT, "agent", "KZ", "AS9198")
        local = repo.ensure_vantage(s, "kz", "local", "KZ")
        repo.ensure_vantage(s, "control", "control")
        recent = rounds(NOW - timedelta(minutes=50), NOW - timedelta(minutes=5))
        for at in rounds(FIRST, LAST):
            record(s, ids["Dns.kz"], local, "https://dns.kz/", at, "dns")
        for name, tid in ids.items():
            url = f"https://{name.lower()}/"
            for at in recent:
                record(s, tid, agent, url, at, "inconclusive")
                if name != "Dns.kz":
                    record(s, tid, local, url, at, "throttled" if name == "Slow.kz" else "tls")
    return ids


def build(db: Database, out: Path) -> dict:  # type: ignore[type-arg]
    import json

    build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED)
    return json.loads((out / "status.json").read_text(encoding="utf-8"))


def headline(html: str) -> str:
    m = re.search(r"</h1>\s*<p>(.*?)</p>", html, re.S)
    assert m
    return Page(m.group(1)).all_text


def test_a_quiet_network_and_a_failing_one_say_since_when(any_db: Database,
                                                           tmp_path: Path) -> None:
    world(any_db, fresh=False)
    out = tmp_path / "site"
    data = build(any_db, out)
    (t,) = data["targets"]
    assert t["display"] == "not_measured" and t["since"] == repo.iso(LAST)
    html = (out / "en" / "t" / "dns-kz.html").read_text(encoding="utf-8")
    head = headline(html)
    assert "not measured since 15 Mar 2026 11:10 UTC" in head, head
    assert "no usable measurement yet" not in head
    text = Page(html).all_text
    # the open DNS event: known to hold until the last measurement, not "ongoing (N min)"
    assert "at least until 15 Mar 2026 11:10 UTC (45 min)" in text, text
    assert "ongoing" not in text
    ru = Page((out / "ru" / "t" / "dns-kz.html").read_text(encoding="utf-8")).all_text
    assert "как минимум до 15 марта 2026 11:10 UTC (45 мин)" in ru, ru
    kk = Page((out / "kk" / "t" / "dns-kz.html").read_text(encoding="utf-8")).all_text
    assert "кемінде осы уақытқа дейін жалғасты: 2026 жылғы 15 наурыз 11:10 UTC (45 мин)" in kk, kk
    # the index: one network ran no check, the other could not look
    index = Page((out / "en" / "index.html").read_text(encoding="utf-8")).all_text
    assert ("Right now blockwatch is not measuring: some of its networks have run no check "
            "since 15 Mar 2026 11:10 UTC, the others checked but could not look") in index, index
    assert "cannot measure" not in index
    ru = Page((out / "ru" / "index.html").read_text(encoding="utf-8")).all_text
    assert "часть сетей не проводила проверок с 15 марта 2026 11:10 UTC" in ru, ru


def test_minutes_affected_stop_at_the_last_measurement(any_db: Database,
                                                       tmp_path: Path) -> None:
    world(any_db, fresh=False)
    build(any_db, tmp_path / "site")
    with any_db.read() as s:
        (ev,) = s.scalars(select(Event).where(Event.state == "dns"))
        started = ev.started_at.replace(tzinfo=UTC)
        (minutes,) = s.scalars(select(DailyRollup.minutes_affected)
                               .join(Target, Target.id == DailyRollup.target_id)
                               .where(Target.name == "Dns.kz", DailyRollup.worst == "dns"))
    assert ev.ended_at is None
    # from the event's start to the last DNS measurement, not to the build's "now"
    assert minutes == (LAST - started).total_seconds() // 60 == 45
    # the bar's hover text on the outlet page says the same 45 minutes
    html = (tmp_path / "site" / "en" / "t" / "dns-kz.html").read_text(encoding="utf-8")
    titles = [a["title"] for a in Page(html).find("i") if "title" in a]
    assert "15 Mar: blocked (DNS tampering), 45 min affected" in titles, titles


def test_interference_is_counted_and_worded_as_interference(any_db: Database,
                                                            tmp_path: Path) -> None:
    world(any_db, fresh=True)
    out = tmp_path / "site"
    data = build(any_db, out)
    by = {t["name"]: t for t in data["targets"]}
    # display stays "blocked" (backward compatible); `group` is what the pages count by
    assert by["Slow.kz"]["display"] == "blocked" and by["Slow.kz"]["group"] == "interfered"
    assert by["Tls.kz"]["display"] == "blocked" and by["Tls.kz"]["group"] == "blocked"
    assert data["groups"] == {"blocked": 1, "interfered": 1, "down": 0, "unknown": 1,
                              "reachable": 0}
    index = Page((out / "en" / "index.html").read_text(encoding="utf-8")).all_text
    assert "3 outlets now: 1 blocked, 1 interfered with or slowed down, 1 not measured." in index
    assert "blocked (1)" in index and "interfered with or slowed down (1)" in index
    slow = Page((out / "en" / "t" / "slow-kz.html").read_text(encoding="utf-8")).all_text
    tls = Page((out / "en" / "t" / "tls-kz.html").read_text(encoding="utf-8")).all_text
    # Kazakhstan has two networks; the agent's checks were all inconclusive
    assert "interfered with on 1 of 1 network that measured (2 in Kazakhstan)" in slow, slow
    assert "blocked on" not in slow
    assert "blocked on 1 of 1 network that measured (2 in Kazakhstan)" in tls, tls
    ru = Page((out / "ru" / "t" / "tls-kz.html").read_text(encoding="utf-8")).all_text
    assert "заблокирован в 1 из 1 сети, где удалось измерить (в Казахстане всего 2)" in ru, ru
    kk = Page((out / "kk" / "t" / "slow-kz.html").read_text(encoding="utf-8")).all_text
    assert ("кедергі бар желілер: 1 / 1, өлшей алған желілер арасында (Қазақстанда барлығы 2)"
            in kk), kk


def test_an_open_state_counts_to_its_last_measurement_as_the_header_does() -> None:
    """Pure: an open block measured 10:00:00 to 10:01:50 is 1 minute in the rollup (not the
    build's 10:30, nor rounded up to 2) and "1 min" in the header's words."""
    from blockwatch.site import i18n
    from blockwatch.site.rollup import Span, rollup_day

    start = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)
    last = start + timedelta(minutes=1, seconds=50)
    (row,) = rollup_day([Span(1, 1, "throttled", start, None, last)], {(1, 1): 3}, start.date(),
                        start + timedelta(minutes=30))
    assert row.minutes_affected == 1
    assert i18n.fmt_minutes("en", row.minutes_affected) == i18n.fmt_duration("en", last - start)
    # unknown last measurement (an older caller): counted to "now" as before
    (row,) = rollup_day([Span(1, 1, "throttled", start, None)], {(1, 1): 3}, start.date(),
                        start + timedelta(minutes=30))
    assert row.minutes_affected == 30


def test_a_lone_slowed_network_is_a_lone_interference(any_db: Database, tmp_path: Path) -> None:
    """One of two networks sees the outlet slowed, the other reaches it: the line says
    interference, and that not enough networks agree to call it that."""
    with any_db.write() as s:
        t = Target(name="Slow.kz", country="KZ", category="NEWS", urls=["https://slow.kz/"],
                   aliases=[], active=True)
        s.add(t)
        s.flush()
        agent = repo.ensure_vantage(s, AGENT, "agent", "KZ", "AS9198")
        local = repo.ensure_vantage(s, "kz", "local", "KZ")
        repo.ensure_vantage(s, "control", "control")
        for at in rounds(NOW - timedelta(minutes=50), NOW - timedelta(minutes=5)):
            record(s, t.id, agent, "https://slow.kz/", at, "ok")
            record(s, t.id, local, "https://slow.kz/", at, "throttled")
    out = tmp_path / "site"
    data = build(any_db, out)
    assert data["targets"][0]["display"] == "reachable"
    page = Page((out / "en" / "t" / "slow-kz.html").read_text(encoding="utf-8")).all_text
    assert ("interfered with on 1 of 2 networks in Kazakhstan · not enough networks agree to "
            "call it interference (2 needed)") in page, page
    ru = Page((out / "ru" / "t" / "slow-kz.html").read_text(encoding="utf-8")).all_text
    assert "работает с помехами в 1 из 2 сетей в Казахстане" in ru, ru
    assert "недостаточно сетей согласны, что это помехи (нужно 2)" in ru, ru
