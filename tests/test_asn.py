"""IP -> ASN table: parsing, lookups (IPv4, IPv6), tolerance, lazy loading, weekly refresh.

Fixtures: ip2asn-v4-small.tsv and ip2asn-combined-small.tsv are in iptoasn.com's format with
plausible, hand-written ranges (not copied from a real table); the combined one ends with
malformed lines on purpose.
"""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import respx

from blockwatch import asn
from blockwatch.asn import AsnLookup, load_table, parse_lines, refresh_if_stale, table_path

FIX = Path(__file__).parent / "fixtures"
V4 = FIX / "ip2asn-v4-small.tsv"
COMBINED = FIX / "ip2asn-combined-small.tsv"
URL = asn.IP2ASN_URL
NOW = datetime(2024, 5, 2, tzinfo=UTC)


@pytest.fixture
def gz_bytes() -> bytes:
    return gzip.compress(COMBINED.read_bytes())


@pytest.mark.parametrize(("ip", "expected"), [
    ("2.72.0.0", "AS9198"),  # first address of a range
    ("2.79.255.255", "AS9198"),  # last address (ranges are inclusive)
    ("37.150.12.1", "AS9198"),
    ("5.76.200.1", "AS21299"),
    ("8.8.8.8", "AS15169"),
    ("1.0.0.1", "AS13335"),
    ("1.0.2.1", None),  # AS 0: not routed
    ("2.80.0.0", None),  # in a gap between ranges
    ("0.0.0.1", None),  # before the first range
    ("255.255.255.255", None),  # after the last
    ("not an ip", None),
    ("", None),
])
def test_v4_lookups(ip, expected):
    assert load_table(V4).lookup(ip) == expected


@pytest.mark.parametrize(("ip", "expected"), [
    ("2001:4860:4860::8888", "AS15169"),
    ("2a00:1a28:1251::1", "AS9198"),
    ("2a03:2880:f10c:83:face:b00c::25de", "AS32934"),
    ("::1", None),  # not routed (AS 0)
    ("2001:db8::1", None),  # gap
    ("::ffff:8.8.8.8", "AS15169"),  # IPv4-mapped addresses use the IPv4 table
    ("fe80::1%eth0", None),
])
def test_v6_lookups(ip, expected):
    assert load_table(COMBINED).lookup(ip) == expected


def test_malformed_lines_are_skipped_and_counted():
    t = load_table(COMBINED)
    assert t.stats.skipped == 5 and t.stats.lines == 18
    assert t.lookup("9.9.9.9") is None  # its AS field was "AS19281": skipped, not guessed


def test_adjacent_ranges_of_one_as_are_merged_and_names_kept():
    t = load_table(V4)
    # 9 lines: one not routed, two adjacent Kar-Tel ranges merged into one
    assert t.stats.ranges == len(t) == 7
    assert t.name("AS9198") == "KAZTELECOM-AS" and t.name("AS64999") is None
    assert t.name("garbage") is None


def test_unsorted_input_still_works():
    lines = V4.read_text().splitlines(keepends=True)
    t = parse_lines(reversed(lines))
    assert t.lookup("95.57.1.1") == "AS9198" and t.lookup("1.0.0.9") == "AS13335"


def test_gzip_and_plain_files_give_the_same_table(tmp_path, gz_bytes):
    p = tmp_path / "t.tsv.gz"
    p.write_bytes(gz_bytes)
    a, b = load_table(p), load_table(COMBINED)
    for ip in ("2.72.1.1", "2001:4860::1", "1.0.2.1"):
        assert a.lookup(ip) == b.lookup(ip)


def test_a_truncated_gzip_is_a_table_error(tmp_path, gz_bytes):
    p = tmp_path / "t.tsv.gz"
    p.write_bytes(gz_bytes[: len(gz_bytes) // 2])
    with pytest.raises(asn.TableError, match="cannot read"):
        load_table(p)


def test_lookup_works_without_the_file_and_picks_it_up_later(tmp_path, monkeypatch):
    monkeypatch.setattr(asn, "_RECHECK_SECONDS", 0.0)
    p = tmp_path / "ip2asn-combined.tsv.gz"
    lk = AsnLookup(p)
    assert lk.lookup("8.8.8.8") is None and lk.table is None
    p.write_bytes(V4.read_bytes())
    assert lk.lookup("8.8.8.8") == "AS15169"
    assert lk.name("AS15169") == "GOOGLE"


def test_reload_only_when_the_file_changes_and_keeps_a_good_table(tmp_path):
    p = tmp_path / "ip2asn-combined.tsv.gz"
    p.write_bytes(V4.read_bytes())
    lk = AsnLookup(p)
    assert lk.reload() is True and lk.reload() is False
    p.write_bytes(b"\x1f\x8bnot really gzip")
    os.utime(p, (1, 1))  # a different mtime
    assert lk.reload() is False
    assert lk.lookup("2.72.0.1") == "AS9198"  # the previous table stays in use


def test_binary_index_is_used_and_rebuilt_when_the_file_changes(tmp_path):
    p = tmp_path / "ip2asn-combined.tsv"
    p.write_bytes(COMBINED.read_bytes())
    first = load_table(p, cache=True)
    idx = tmp_path / "ip2asn-combined.tsv.idx"
    assert idx.is_file()
    again = load_table(p, cache=True)
    assert again.stats == first.stats.__class__(first.stats.lines, first.stats.ranges,
                                                first.stats.skipped, again.stats.seconds)
    for ip in ("2.72.0.0", "5.76.200.1", "2a00:1a28::1", "1.0.2.1", "9.9.9.9"):
        assert again.lookup(ip) == first.lookup(ip)
    assert again.name("AS9198") == "KAZTELECOM-AS"
    p.write_bytes(V4.read_bytes())  # a new table: the old index must not be used
    os.utime(p, ns=(1, 1))
    assert load_table(p, cache=True).lookup("2a00:1a28::1") is None
    idx.write_bytes(b"garbage")  # a broken index is ignored, not fatal
    assert load_table(p, cache=True).lookup("8.8.8.8") == "AS15169"


def test_table_path_next_to_sqlite_database(write_config, tmp_path):
    cfg = write_config('[storage]\nurl = "sqlite:///data/bw.db"\n')
    assert table_path(cfg) == tmp_path / "data" / "ip2asn-combined.tsv.gz"
    cfg = write_config('[storage]\nurl = "postgresql+psycopg://u@127.0.0.1/bw"\n')
    assert table_path(cfg) == tmp_path / "data" / "ip2asn-combined.tsv.gz"


# --- refresh ------------------------------------------------------------------------------------

@respx.mock
async def test_first_download_is_written_atomically_with_its_validators(tmp_path, gz_bytes):
    p = tmp_path / "data" / "ip2asn-combined.tsv.gz"
    route = respx.get(URL).mock(return_value=httpx.Response(
        200, content=gz_bytes, headers={"Last-Modified": "Wed, 01 May 2024 06:00:00 GMT",
                                        "ETag": '"abc"'}))
    res = await refresh_if_stale(p, min_rows=1, now=NOW)
    assert res.status == "downloaded" and res.ok
    assert "if-modified-since" not in route.calls[0].request.headers
    assert route.calls[0].request.headers["user-agent"].startswith("blockwatch/")
    assert p.read_bytes() == gz_bytes
    meta = json.loads((p.parent / (p.name + ".meta.json")).read_text())
    assert meta["last_modified"] == "Wed, 01 May 2024 06:00:00 GMT" and meta["etag"] == '"abc"'
    assert sorted(x.name for x in p.parent.iterdir()) == [p.name, p.name + ".idx",
                                                          p.name + ".meta.json"]
    assert AsnLookup(p).lookup("2a00:1a28::5") == "AS9198"


@respx.mock
async def test_fresh_file_is_not_requested(tmp_path, gz_bytes):
    p = tmp_path / "ip2asn-combined.tsv.gz"
    respx.get(URL).mock(return_value=httpx.Response(200, content=gz_bytes))
    await refresh_if_stale(p, min_rows=1, now=NOW)
    route = respx.get(URL).mock(return_value=httpx.Response(500))
    route.reset()  # respx hands back the same route: forget the first download
    res = await refresh_if_stale(p, timedelta(days=7), min_rows=1, now=NOW + timedelta(days=6))
    assert res.status == "fresh" and route.call_count == 0


@respx.mock
async def test_stale_file_uses_a_conditional_get_and_304_keeps_it(tmp_path, gz_bytes):
    p = tmp_path / "ip2asn-combined.tsv.gz"
    respx.get(URL).mock(return_value=httpx.Response(
        200, content=gz_bytes, headers={"Last-Modified": "Wed, 01 May 2024 06:00:00 GMT",
                                        "ETag": '"abc"'}))
    await refresh_if_stale(p, min_rows=1, now=NOW)
    route = respx.get(URL).mock(return_value=httpx.Response(304))
    later = NOW + timedelta(days=8)
    res = await refresh_if_stale(p, min_rows=1, now=later)
    assert res.status == "not_modified"
    h = route.calls.last.request.headers
    assert h["if-modified-since"] == "Wed, 01 May 2024 06:00:00 GMT"
    assert h["if-none-match"] == '"abc"'
    # checked now: the next week needs no request
    assert (await refresh_if_stale(p, min_rows=1, now=later + timedelta(days=1))).status == "fresh"
    assert p.read_bytes() == gz_bytes


@respx.mock
async def test_a_bad_download_never_replaces_a_good_table(tmp_path, gz_bytes):
    p = tmp_path / "ip2asn-combined.tsv.gz"
    respx.get(URL).mock(return_value=httpx.Response(200, content=gz_bytes))
    await refresh_if_stale(p, min_rows=1, now=NOW)
    later = NOW + timedelta(days=8)
    for response, problem in [
        (httpx.Response(200, content=gz_bytes[:100]), "not a readable table"),
        (httpx.Response(200, content=b"<html>maintenance</html>"), "fewer than"),
        (httpx.Response(503), "HTTP 503"),
    ]:
        respx.get(URL).mock(return_value=response)
        res = await refresh_if_stale(p, min_rows=1, now=later)
        assert res.status == "failed" and problem in res.detail
        assert p.read_bytes() == gz_bytes
        assert not [x for x in tmp_path.iterdir() if x.name.endswith(".part")]


@respx.mock
async def test_size_cap(tmp_path, gz_bytes):
    p = tmp_path / "ip2asn-combined.tsv.gz"
    respx.get(URL).mock(return_value=httpx.Response(200, content=gz_bytes))
    res = await refresh_if_stale(p, max_bytes=100, min_rows=1, now=NOW)
    assert res.status == "failed" and "cap" in res.detail
    assert not p.exists() and list(tmp_path.iterdir()) == []


@respx.mock
async def test_network_error_is_reported_not_raised(tmp_path):
    respx.get(URL).mock(side_effect=httpx.ConnectError("refused"))
    res = await refresh_if_stale(tmp_path / "t.gz", min_rows=1, now=NOW)
    assert res.status == "failed" and "ConnectError" in res.detail


@respx.mock
async def test_real_sized_default_requires_many_rows(tmp_path, gz_bytes):
    respx.get(URL).mock(return_value=httpx.Response(200, content=gz_bytes))
    res = await refresh_if_stale(tmp_path / "t.gz", now=NOW)  # MIN_ROWS: the fixture is tiny
    assert res.status == "failed" and "fewer than 1000" in res.detail
