"""Parsing: real-shaped RSS 2.0 / Atom / RDF fixtures, ill-formed and mis-encoded feeds, plain
text only, and entity-expansion attacks."""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest

from blockwatch.feeds.parse import decode, html_to_text, neutralise_doctype, parse_feed

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_rss20_wordpress_shape() -> None:
    f = parse_feed(load("rss20_adilsoz.xml"))
    assert f.version == "rss20" and f.bozo is None
    assert f.title == "Адил соз — Международный фонд защиты свободы слова"
    by_title = {e.title: e for e in f.entries}
    first = f.entries[0]
    assert first.key == "https://feeds.example.org/adilsoz/?p=41871"  # the guid
    assert first.published_at == datetime(2026, 11, 10, 9, 5, tzinfo=UTC)  # +0500 -> UTC
    # tags gone, script content gone, entities unescaped, paragraphs on their own lines
    assert first.summary == ("Сотрудники полиции задержали корреспондента Рателя у здания акимата.\n"
                             "Подробности «позже» & не раньше.")
    # the same guid twice in one document is one entry
    assert sum(1 for e in f.entries if e.key == first.key) == 1
    # escaped HTML is stripped like real HTML, twice-escaped too
    assert by_title["Власти объявили о новых правилах аккредитации"].summary == (
        "Министерство информации опубликовало проект приказа.")
    shtraf = by_title["Суд оштрафовал главного редактора Уральской недели"]
    assert shtraf.summary == "Дважды экранированная разметка."
    assert shtraf.key == shtraf.link  # no guid: the link
    nolink = by_title["Обзор недели: свобода слова в цифрах"]
    assert nolink.key == "sha256:" + nolink.content_sha256 and nolink.published_at is None
    # a javascript: link is not kept
    assert by_title["Опасная ссылка"].link == ""
    for e in f.entries:
        assert "<" not in e.title + e.summary


def test_atom_shape() -> None:
    f = parse_feed(load("atom_hrw.xml"))
    assert f.version == "atom10" and len(f.entries) == 3
    e = f.entries[0]
    assert e.title == "Kazakhstan: Journalist Detained After Reporting on Protests"
    assert e.summary == "Police in Almaty detained a reporter for Vlast.kz."
    assert e.published_at == datetime(2026, 11, 10, 1, 0, tzinfo=UTC)
    assert e.key.startswith("tag:feeds.example.org,2026:news/")
    assert f.entries[1].summary == "A court fined the correspondent 200,000 tenge."  # xhtml summary
    assert f.entries[1].published_at == datetime(2026, 11, 5, 9, 0, tzinfo=UTC)  # updated only
    assert f.entries[2].summary == "Annual review of the human rights situation."  # content


def test_rdf_kazakh() -> None:
    f = parse_feed(load("rdf_kk.rdf"))
    assert f.version == "rss10" and [e.title for e in f.entries] == [
        "Азаттық радиосының тілшісі Астанада ұсталды", "Сөз азаттығы туралы дөңгелек үстел өтті"]
    assert f.entries[0].published_at == datetime(2026, 11, 10, 5, 15, tzinfo=UTC)


def test_ill_formed_feed_keeps_what_was_recovered() -> None:
    f = parse_feed(load("illformed.xml"))
    assert f.bozo is not None
    assert [e.title for e in f.entries] == ["KazTAG journalist detained in Shymkent",
                                            "Second item after a broken one"]
    assert f.entries[0].summary == "Police & prosecutors searched the office"


LADA_TITLE = "Редакция Lada.kz сообщила об обыске"
LADA_SUMMARY = "Журналисты «Лады» сообщили, что доступ к сайту ограничен; Ёлка — ёж."


@pytest.mark.parametrize(("name", "content_type"), [
    ("cp1251.xml", None),  # declared windows-1251
    ("wrong_encoding.xml", None),  # windows-1251 bytes declared as utf-8
    ("latin1_declared.xml", None),  # windows-1251 bytes declared as ISO-8859-1
    ("cp1251.xml", "text/xml; charset=iso-8859-1"),  # a server that claims Latin-1
    ("wrong_encoding.xml", "application/rss+xml; charset=UTF-8"),
])
def test_cyrillic_windows_1251(name: str, content_type: str | None) -> None:
    f = parse_feed(load(name), content_type)
    assert f.encoding == "cp1251"
    assert [(e.title, e.summary) for e in f.entries] == [(LADA_TITLE, LADA_SUMMARY)]
    assert f.title == "Лада.kz новости"


def test_decode_prefers_valid_utf8_and_honours_a_real_latin1() -> None:
    assert decode("Жаңалық".encode(), "text/xml; charset=windows-1251") == ("Жаңалық", "utf-8")
    text = '<?xml version="1.0" encoding="iso-8859-1"?><rss>Café à Zürich, déjà vu</rss>'
    assert decode(text.encode("latin-1")) == (text, "iso8859-1")
    assert decode("\ufeff<rss/>".encode("utf-16-le")) == ("<rss/>", "utf-16-le")


def test_utf16_feed() -> None:
    doc = ('<?xml version="1.0" encoding="utf-16"?><rss version="2.0"><channel><item>'
           '<title>Қазақ тілі</title><guid>k1</guid></item></channel></rss>')
    f = parse_feed(b"\xff\xfe" + doc.encode("utf-16-le"))
    assert [e.title for e in f.entries] == ["Қазақ тілі"]


@pytest.mark.parametrize(("html", "text"), [
    ("<p>One</p><p>Two&nbsp;&amp;&#160;three</p>", "One\nTwo & three"),
    ("<script>steal()</script><style>p{}</style>Visible", "Visible"),
    ('<img src=x onerror="alert(1)">caption', "caption"),
    ("&lt;b&gt;escaped&lt;/b&gt;", "escaped"),
    ("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),
    ("a\x00b\x1bc\u200bd", "abcd"),
    ("  lots   of\t\tspace \n\n\n here ", "lots of space\nhere"),
    ("«Ёлка» &laquo;ok&raquo;", "«Ёлка» «ok»"),
])
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_length_bounded() -> None:
    assert len(html_to_text("x" * 50_000)) == 10_000


def test_neutralise_doctype() -> None:
    doc = ('<?xml version="1.0"?>\n<!-- c -->\n<!DOCTYPE rss [<!ENTITY a "x>y]">'
           '<!-- ]> --><!ENTITY b "z">]>\n<rss>&a;</rss>')
    assert neutralise_doctype(doc) == '<?xml version="1.0"?>\n<!-- c -->\n\n<rss>&a;</rss>'
    assert neutralise_doctype('<!DOCTYPE rss SYSTEM "http://x/y.dtd"><rss/>') == "<rss/>"
    # only the prolog: a DOCTYPE-looking text inside the document is content
    assert neutralise_doctype("<rss><![CDATA[<!DOCTYPE x>]]></rss>") == "<rss><![CDATA[<!DOCTYPE x>]]></rss>"


# --- entity expansion ----------------------------------------------------------------------------

def _lol_entities(sep: str) -> str:
    decls = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol;" if i == 1 else f"&lol{i - 1};") * 10}">' for i in range(1, 10)]
    return sep.join(decls)


BILLION_LAUGHS_MULTILINE = (
    '<?xml version="1.0"?>\n<!DOCTYPE rss [\n' + _lol_entities("\n") + "\n]>\n"
    '<rss version="2.0"><channel><title>t</title><item><guid>1</guid><title>x &lol9;</title>'
    "<description>&lol9;&lol9;</description></item></channel></rss>"
)
# feedparser only strips <!ENTITY declarations that start a line; on one line they reach expat,
# which spent 8 s before its amplification limit stopped it (feedparser 6.0.14, expat 2.5.0)
BILLION_LAUGHS_ONE_LINE = BILLION_LAUGHS_MULTILINE.replace("\n", "")
# one 100 KB entity referenced 5,000 times: 500 MB if expanded (without neutralise_doctype,
# 20,000 references took 50 s and 6 GB)
QUADRATIC = (
    '<?xml version="1.0"?>\n<!DOCTYPE rss [\n <!ENTITY a "' + "A" * 100_000 + '">\n]>\n'
    '<rss version="2.0"><channel><item><guid>1</guid><title>' + "&a;" * 5_000
    + "</title></item></channel></rss>"
)


@pytest.mark.parametrize("doc", [BILLION_LAUGHS_MULTILINE, BILLION_LAUGHS_ONE_LINE, QUADRATIC],
                         ids=["billion-laughs", "billion-laughs-one-line", "quadratic-blowup"])
def test_entity_expansion_is_not_performed(doc: str) -> None:
    data = doc.encode()
    t0 = time.perf_counter()
    f = parse_feed(data)
    elapsed = time.perf_counter() - t0
    tracemalloc.start()
    try:
        parse_feed(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 2.0, f"took {elapsed:.2f}s"
    assert peak < 30 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert len(f.entries) == 1
    e = f.entries[0]
    assert "lollol" not in e.title + e.summary and "AAAA" not in e.title
