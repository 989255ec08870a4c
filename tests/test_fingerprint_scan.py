"""The fingerprint scan's literal pre-filter finds exactly what one `in` per literal finds: over
the shipped signatures, on bodies made of their literals (whole, cut short, case-changed, glued
to each other and to random text) and on real pages."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from blockwatch.analysis.fingerprints import GRAM, Matcher, _Literals, default_matcher
from lab import DEFAULT_BLOCKPAGE

ROOT = Path(__file__).resolve().parent.parent
MATCHER = default_matcher()
CASE = [(lit, i) for i, f in enumerate(MATCHER.fingerprints) if not f.caseless
        for lit in f.literals]
NOCASE = [(lit, i) for i, f in enumerate(MATCHER.fingerprints) if f.caseless for lit in f.literals]
LITERALS = sorted({lit for lit, _ in CASE + NOCASE})


def reference_match(m: Matcher, body: bytes, headers: dict[str, str]) -> list[str]:
    """`Matcher.match` as it was: one `in` check per literal."""
    head = "\r\n".join(f"{k.title() if k.islower() else k}: {v}" for k, v in headers.items())
    text = head + "\r\n\r\n" + body[:64 * 1024].decode("utf-8", errors="replace")
    lower = text.lower()
    case = [(lit, i) for i, f in enumerate(m.fingerprints) if not f.caseless for lit in f.literals]
    nocase = [(lit, i) for i, f in enumerate(m.fingerprints) if f.caseless for lit in f.literals]
    candidates = {i for lit, i in case if lit in text}
    candidates.update(i for lit, i in nocase if lit in lower)
    candidates.update(i for i, f in enumerate(m.fingerprints) if not f.literals)
    return [m.fingerprints[i].id for i in sorted(candidates) if m.fingerprints[i].regex.search(text)]


def pieces(rng: random.Random, n: int) -> str:
    out = []
    for _ in range(n):
        lit = rng.choice(LITERALS)
        r = rng.random()
        if r < 0.2:
            lit = lit[:-1]  # one character short of a match
        elif r < 0.3:
            lit = lit[1:]
        elif r < 0.45:
            lit = lit.upper() if rng.random() < 0.5 else lit.title()
        elif r < 0.55:
            cut = rng.randrange(len(lit))
            lit = lit[:cut] + rng.choice(" x\n<") + lit[cut:]
        out.append(lit)
        out.append(rng.choice(["", " ", "\n", "<p>", "ab", "Қазақстан ", "\ufffd"]))
    return "".join(out)


def real_bodies() -> list[bytes]:
    out = [DEFAULT_BLOCKPAGE, b"", b"<html><head><title>site0001.test</title></head><body>"
           b"<p>site0001.test works</p></body></html>"]
    for path in [ROOT / "README.md", ROOT / "tests/fixtures/feeds/rferl_rssfeeds.html",
                 *sorted((ROOT / "src/blockwatch/lab").glob("*.py"))]:
        data = path.read_bytes()
        out += [data[:150], data[:4096], data[:70_000]]
    return out


def test_every_literal_is_filed_and_found_alone() -> None:
    for rows in (CASE, NOCASE):
        index = _Literals(rows)
        filed = [row for rows_ in index.by_gram.values() for row in rows_] + index.short
        assert sorted(filed) == sorted(rows)
        for key, filed_rows in index.by_gram.items():
            assert len(key) == GRAM and all(key in lit for lit, _ in filed_rows)
        for lit, i in rows:
            assert i in index.present(lit) and i in index.present("  " + lit + "  ")


def test_same_matches_as_one_check_per_literal_on_shipped_signatures() -> None:
    rng = random.Random(20261204)
    headers_choices = [{}, {"server": "nginx"}, {"Server": "FortiGate", "x-cache": "MISS"},
                       {"cf-mitigated": "challenge", "content-type": "text/html"}]
    seen_matches = 0
    bodies = real_bodies() + [pieces(rng, rng.randrange(1, 40)).encode() for _ in range(400)]
    for body in bodies:
        headers = rng.choice(headers_choices)
        got = MATCHER.match(body, headers)
        assert got == reference_match(MATCHER, body, headers), body[:200]
        seen_matches += bool(got)
    assert seen_matches > 50  # the bodies did hit signatures, not only miss them


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(LITERALS), max_size=6), st.text(max_size=300),
       st.integers(min_value=0, max_value=300), st.booleans())
def test_same_matches_on_generated_bodies(lits: list[str], noise: str, at: int,
                                          upper: bool) -> None:
    glued = "".join(lit.upper() if upper else lit for lit in lits)
    body = (noise[:at] + glued + noise[at:]).encode("utf-8", errors="replace")
    assert MATCHER.match(body, {}) == reference_match(MATCHER, body, {})


def test_short_literals_and_custom_signatures() -> None:
    """A table of its own: literals shorter than a gram, caseless ones, shared grams."""
    m = Matcher({"blockpage": [
        {"id": "short", "pattern": "abc|xyz"},
        {"id": "caseless", "pattern": "(?i)Blocked by ORDER"},
        {"id": "shared1", "pattern": "common-prefix-one"},
        {"id": "shared2", "pattern": "common-prefix-two"},
        {"id": "any", "pattern": "a.c"},
    ]})
    for body in [b"abc", b"xy", b"xyz!", b"BLOCKED BY order", b"common-prefix-two", b"a-c",
                 b"common-prefix-on", b"", b"common-prefix-one common-prefix-two abc"]:
        assert m.match(body, {}) == reference_match(m, body, {}), body
    assert m.match(b"common-prefix-two", {}) == ["shared2"]
