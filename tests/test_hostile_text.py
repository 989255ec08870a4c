"""Hostile text from probed sites, feeds and agents, end to end (Hypothesis): arbitrary Unicode
(NUL, C0/C1 controls, lone surrogates, bidi marks, markup) in page titles, headers, certificate
names, reasons and feed entries is stored on SQLite and PostgreSQL alike, recoverable from the
evidence, and every output built from it parses strictly: Atom (xml.dom.minidom), status.json,
webhook bodies and exports (json.loads refusing NaN), the site and email HTML (no character a
parser must reject or replace), email (the stdlib parser, no defects)."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
import re
import uuid
import xml.dom.minidom
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

import test_alerts_support as support
from blockwatch.alerts import compose as C
from blockwatch.alerts import webhook
from blockwatch.alerts.digest import collect
from blockwatch.alerts.email import build_message
from blockwatch.alerts.scan import event_item
from blockwatch.analysis.display import Schedule
from blockwatch.export import write_export
from blockwatch.feeds import store as feed_store
from blockwatch.feeds.extract import Matcher
from blockwatch.feeds.parse import ParsedEntry
from blockwatch.probe.records import CertInfo, HttpHop, HttpResult, TlsHandshake, WebMeasurement
from blockwatch.site.build import build_site_from_db, site_info
from blockwatch.storage import Database, bulk, repo
from blockwatch.storage.models import Event, Feed, FeedEntry, Incident, Measurement, Target, Vantage
from blockwatch.targets import Target as TargetSpec
from blockwatch.textsafe import (
    canonical_json,
    dumps,
    no_nan,
    printable,
    restore,
    storable,
    storable_data,
    storable_evidence,
)

SPECIALS = ["\x00", "\x01", "\x08", "\x0b", "\x1b[31m", "\x7f", "\x85", "\x9f", "\u200f",
            "\u202e", "\u2028", "\ufeff", "\ufffe", "\uffff", "\ud800", "\udfff", "\\u0000",
            "\\", "\r\n", "\t", "]]>", "<script>x</script>", "&amp;", '"', "'", "Ратель",
            "\U0001f600"]
hostile = st.lists(st.one_of(st.sampled_from(SPECIALS), st.characters(exclude_categories=())),
                   max_size=24).map("".join)
# What no XML 1.0 document, HTML parser or strict JSON reader accepts as text.
FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
SCHED = Schedule(probe=timedelta(hours=6))
# a database example costs a site build: few of them, and a failure is reported as found
# (shrinking one took minutes)
DB_SETTINGS = settings(max_examples=4, deadline=None, derandomize=True,
                       phases=[Phase.explicit, Phase.generate],
                       suppress_health_check=[HealthCheck.function_scoped_fixture,
                                              HealthCheck.too_slow])


def strict_json(text: str) -> Any:
    return json.loads(text, parse_constant=no_nan)


# --- the one function ---------------------------------------------------------------------------

@settings(max_examples=300, deadline=None, derandomize=True)
@given(hostile)
def test_storable_is_safe_reversible_and_stable(s: str) -> None:
    out = storable(s)
    assert restore(out) == s  # the original characters stay recoverable
    assert FORBIDDEN.search(out) is None
    out.encode("utf-8")  # no lone surrogate left
    assert printable(out) == out  # outputs do not escape stored text a second time
    assert storable(s) == out  # deterministic: SQLite and PostgreSQL store the same text
    doc = xml.dom.minidom.Document()
    doc.appendChild(doc.createElement("a")).appendChild(doc.createTextNode(out))
    back = xml.dom.minidom.parseString(doc.toxml("utf-8")).documentElement.firstChild
    # XML reads a line break as LF, whatever it was
    assert (back.data if back else "") == out.replace("\r\n", "\n").replace("\r", "\n")
    if FORBIDDEN.search(s) is None and "\\u" not in s:
        assert out == s  # ordinary text is not touched


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.recursive(st.one_of(hostile, st.floats(), st.integers(), st.booleans(), st.none()),
                    lambda kids: st.lists(kids, max_size=4)
                    | st.dictionaries(hostile, kids, max_size=4), max_leaves=12))
def test_evidence_encoding_is_strict_json(data: Any) -> None:
    clean, text = storable_evidence(data)
    assert strict_json(text) == clean
    assert FORBIDDEN.search(text.replace("\\u", "")) is None
    assert canonical_json(clean) == text
    strict_json(dumps(data))  # any output: NaN written as null, controls escaped


# --- probe records through both databases to every output --------------------------------------

def _measurement(url: str, at: datetime, title: str, header: str, name: str) -> WebMeasurement:
    return WebMeasurement(
        url=url, vantage="vps", role="vantage", measured_at=repo.iso(at) or "",
        uid=uuid.uuid4().hex,
        tls=[TlsHandshake(address="192.0.2.1", port=443, sni="ratel.kz", failure="ssl_invalid",
                          verify_error=name, chain=[CertInfo(subject=f"CN={name}", issuer=name,
                                                             not_before="", not_after="",
                                                             sha256="00", san=[name])])],
        http=HttpResult(hops=[HttpHop(url=url, status=200, headers=[[header, title]])],
                        status=200, headers={header.lower(): title, "server": header},
                        title=title, body_excerpt=title, failure=None))


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _check_html(page: str) -> str:
    assert FORBIDDEN.search(page) is None
    assert "<script>x" not in page  # hostile markup is escaped
    p = _Html()
    p.feed(page)
    p.close()
    return "".join(p.text)


def _check_email(m: C.Message, lang: str) -> None:
    assert FORBIDDEN.search(m.subject) is None and "\n" not in m.subject
    msg = build_message(sender="bw@example.org", to="staff@example.org", subject=m.subject,
                        text=m.text, html=m.html, message_id="<x@example.org>",
                        date=datetime(2026, 11, 27, tzinfo=UTC), lang=lang)
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert not parsed.defects
    for part in parsed.walk():
        assert not part.defects
        if part.get_content_maintype() == "text":
            body = part.get_content()
            assert FORBIDDEN.search(body) is None
            if part.get_content_subtype() == "html":
                _check_html(body)


def _populate(db: Database, texts: list[str], now: datetime) -> dict[str, Any]:
    """A target measured from a local vantage with hostile titles, headers, certificate names
    and reasons (through the bulk store, as rounds and the collector store), a hostile OONI-like
    vantage name and reason (through the ORM path), and a hostile feed entry."""
    title, header, name, reason, feed_text = texts
    db.compact_runs = False  # every measurement read back by its uid (runs: test_runs.py)
    tname = f"Ratel {uuid.uuid4().hex[:8]}"
    url = f"https://{uuid.uuid4().hex[:8]}.ratel.test/"
    with db.write() as s:
        tid = repo.sync_targets(s, [TargetSpec(tname, (url,), country="KZ", category="NEWS")],
                                retire_others=False)[tname]
        vid = repo.ensure_vantage(s, "vps", "local")
        ooni = repo.ensure_vantage(s, f"ooni {name}", "ooni", "KZ", "AS9198")
    rows, evidence = [], []
    for k, verdict in enumerate(["dns", "dns", "ok"]):
        at = now - timedelta(hours=3 - k)
        m = _measurement(url, at, title, header, name)
        evidence.append(m.to_json())
        rows.append(bulk.Row(uid=m.uid, target_id=tid, url=url, measured_at=at,
                             evidence=m.to_json(), failure=m.failure(), round_id=reason[:64],
                             verdict=verdict, confirmed=True, reason=f"{reason} “{title}”"))
    with db.write() as s:
        made = bulk.record(db, s, vid, rows, confirm_after=1, now=now)
        assert made.accepted == 3 and len(made.events) == 2
        m2 = repo.add_measurement(s, uid=uuid.uuid4().hex, target_id=tid, vantage_id=ooni, url=url,
                                  role="vantage", measured_at=now - timedelta(hours=1),
                                  evidence={"title": title, name: header}, failure=reason)
        repo.record_verdict(s, measurement=m2, control_id=None, verdict="http_blockpage",
                            confirmed=True, reason=reason, confirm_after=1)
        feed = Feed(name=f"Adil Soz {uuid.uuid4().hex[:6]}", url="https://adilsoz.example/rss",
                    consecutive_failures=0)
        s.add(feed)
        s.flush()
        feed_store.record_failure(s, feed.id, at=now, error=feed_text,
                                  next_attempt_at=now + timedelta(hours=1))
        feed_store.store_entries(s, feed.id, [ParsedEntry(
            key=f"k{uuid.uuid4().hex}{feed_text}", title=f"{tname} blocked {feed_text}",
            link=f"https://adilsoz.example/{feed_text}", summary=feed_text,
            published_at=now - timedelta(hours=2), content_sha256="0" * 64)],
            Matcher(), now=now - timedelta(hours=1))
        entry = s.scalar(select(FeedEntry).where(FeedEntry.feed_id == feed.id))
        assert entry is not None
        # the incident row itself (what extraction would add; its text is the entry's)
        if s.scalar(select(Incident.id).where(Incident.entry_id == entry.id)) is None:
            s.add(Incident(entry_id=entry.id, types=["blocking"], outlets=[tname], people=[],
                           occurred_at=now - timedelta(hours=2), created_at=now - timedelta(hours=1)))
    return {"target": tname, "tid": tid, "url": url, "vid": vid, "ooni": ooni, "rows": rows,
            "evidence": evidence, "entry_title": f"{tname} blocked {feed_text}"}


def _check_stored(db: Database, w: dict[str, Any], texts: list[str]) -> None:
    title, _, name, reason, feed_text = texts
    with db.read() as s:
        for r, ev in zip(w["rows"], w["evidence"], strict=True):
            m = s.scalar(select(Measurement).where(Measurement.uid == r.uid))
            assert m is not None
            clean, text = storable_evidence(ev)
            assert m.evidence == clean  # the same on both databases
            assert m.evidence_sha256 == bulk.hashlib.sha256(text.encode()).hexdigest()
            assert restore(m.evidence["http"]["title"]) == title  # recoverable
            assert restore(m.evidence["tls"][0]["chain"][0]["subject"]) == f"CN={name}"
        reasons = set(s.scalars(select(Event.reason).where(Event.target_id == w["tid"])))
        assert storable(f"{reason} “{title}”") in reasons
        ooni = s.scalar(select(Vantage.name).where(Vantage.id == w["ooni"]))
        assert ooni == storable(f"ooni {name}")
        entry = s.scalar(select(FeedEntry).where(FeedEntry.title == storable(w["entry_title"])))
        assert entry is not None and restore(entry.summary) == feed_text
        error = s.scalar(select(Feed.last_error).where(Feed.id == entry.feed_id))
        assert error is not None and FORBIDDEN.search(error) is None


def _check_outputs(db: Database, w: dict[str, Any], out: Path, cfg: Any, now: datetime) -> None:
    info = site_info("KZ \x00 press\x1b", "https://status.example.org/", ["en", "ru", "kk"])
    build_site_from_db(db, out / "site", info, now=now, schedule=SCHED)
    for lang in ("en", "ru", "kk"):
        doc = xml.dom.minidom.parse(str(out / "site" / lang / "feed.xml"))
        assert doc.documentElement.tagName == "feed"
        for page in (out / "site" / lang).rglob("*.html"):
            _check_html(page.read_text(encoding="utf-8"))
    strict_json((out / "site" / "status.json").read_text(encoding="utf-8"))
    # the digest and an alert, as email, and the webhook body
    with db.read() as s:
        d = collect(s, cfg, now - timedelta(hours=24), now + timedelta(minutes=1))
        items = [event_item(e, s.get(Target, e.target_id), s.get(Vantage, e.vantage_id), "blocked")
                 for e in s.scalars(select(Event).where(Event.target_id == w["tid"]))]
    for lang in ("en", "ru"):
        digest = C.compose_digest(d, lang, "Asia/Almaty")
        _check_email(digest, lang)
        alert = C.compose_alert(items, lang, "Asia/Almaty")
        _check_email(alert, lang)
        body = webhook.encode(C.webhook_body("k1", "alert", items, alert, now, lang))
        strict_json(body.decode("utf-8"))
    # the evidence export
    res = write_export(db, w["target"], out / "x.jsonl", fmt="jsonl", since=None, until=None)
    # one record a line even for str.splitlines (U+2028, U+0085 are escaped)
    lines = res.path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == res.records >= 4
    for line in lines:
        strict_json(line)
    strict_json(res.manifest.read_text(encoding="utf-8"))
    res = write_export(db, w["target"], out / "x.csv", fmt="csv", since=None, until=None)
    rows = list(csv.DictReader(io.StringIO(res.path.read_text(encoding="utf-8"), newline="")))
    assert len(rows) == res.records
    for row in rows:
        strict_json(row["evidence"])


@DB_SETTINGS
@given(st.lists(hostile, min_size=5, max_size=5))
def test_hostile_text_from_probe_to_every_output(any_db: Database, tmp_path: Path,
                                                 write_config: Any, texts: list[str]) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(support.config_text(2525))
    w = _populate(any_db, texts, now)
    _check_stored(any_db, w, texts)
    _check_outputs(any_db, w, tmp_path / uuid.uuid4().hex, cfg, now)


def test_text_stored_before_textsafe_still_gives_well_formed_outputs(db: Database, tmp_path: Path,
                                                                     write_config: Any) -> None:
    """Rows an older version stored raw on SQLite (controls, NaN): every output stays
    well-formed, with the characters as visible escapes."""
    now = datetime.now(UTC).replace(microsecond=0)
    texts = ["T\x00\x01", "X-\x7f", "n\x1b", "r\x00\x0b", "f\x02"]
    w = _populate(db, texts, now)
    raw = "Ratel\x00\x01\x1b\x85\ufffe <script>x</script>"
    with db.write() as s:  # as an older version stored it: no textsafe on the way in
        for e in s.scalars(select(Event).where(Event.target_id == w["tid"])):
            e.reason = raw
        for m in s.scalars(select(Measurement).where(Measurement.target_id == w["tid"])):
            m.evidence = {**m.evidence, "title": raw, "t_ms": float("nan")}
        for entry in s.scalars(select(FeedEntry)):
            entry.title = f"{w['target']} blocked {raw}"
    _check_outputs(db, w, tmp_path, write_config(support.config_text(2525)), now)
    feed = (tmp_path / "site" / "en" / "feed.xml").read_text(encoding="utf-8")
    assert "Ratel\\u0000\\u0001\\u001b\\u0085\\ufffe" in feed
    assert "\\u0000" in dumps({"t": raw}) and "NaN" not in dumps({"n": float("nan")})
    assert storable_data({"n": float("inf")}) == {"n": None}


# --- agent uploads: one bad measurement is named, never a failure of the upload ------------------

@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.tuples(hostile, st.sampled_from([0.5, float("nan"), float("inf"), -float("inf")]),
                          st.sampled_from(["now", "1970-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00",
                                           "yesterday", "9999-12-31T23:59:59Z"])),
                min_size=1, max_size=5))
def test_any_upload_is_read_item_by_item(items: list[tuple[str, float, str]]) -> None:
    from pydantic import ValidationError

    from blockwatch.collector.schema import UPLOAD, parse_per_item

    now = repo.iso(datetime.now(UTC)) or ""
    ms = [{"url": "https://ratel.kz/", "uid": f"u{i:08d}", "measured_at": now if at == "now" else at,
           "t_ms": t, "http": {"title": title, "headers": {title: title}}}
          for i, (title, t, at) in enumerate(items)]
    raw = json.dumps({"measurements": ms}).encode()  # as Python writes it: NaN, \ud800 escapes
    # as the collector reads it: the plain-data mirror first, item by item when it refuses
    try:
        accepted, rejected = UPLOAD.validate_json(raw)["measurements"], []
    except ValidationError:
        batch, rejected = parse_per_item(raw)
        accepted = batch.model_dump()["measurements"]
    assert len(accepted) + len(rejected) == len(items)
    for r in rejected:
        assert r.uid == f"u{r.index:08d}" and r.status == 422 and r.error
    # accepted: exactly those with a sane time, a finite number and text (lone surrogates are not)
    good = {f"u{i:08d}" for i, (title, t, at) in enumerate(items)
            if at == "now" and t == 0.5 and not re.search("[\ud800-\udfff]", title)}
    assert {m["uid"] for m in accepted} == good
    for m in accepted:
        assert m["http"] is not None and m["http"]["title"] == items[int(m["uid"][1:])][0]
