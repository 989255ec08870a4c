"""Blockpage, server-side-page and interception-CA fingerprints (data files in blockwatch/data)."""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from typing import Any

SCAN_BYTES = 64 * 1024  # how much of a body is scanned
# A 2xx/3xx page larger than this is not scanned: blockpages and anti-bot pages are small, and
# scanning a news homepage for ~1,100 patterns costs ~10 ms of CPU.
SKIP_OK_OVER = 16 * 1024
_LITERAL_META = set(".^$*+?{}[]|()")


@dataclass(frozen=True)
class Fingerprint:
    id: str
    kind: str  # blockpage | false_positive | server_side
    regex: re.Pattern[str]
    literals: tuple[str, ...]  # every match contains one of these (fast pre-filter); () = none
    caseless: bool
    what: str = ""
    source: str = ""


def _split_top(pattern: str) -> list[str]:
    """Split on `|` outside groups and classes."""
    out, cur, depth, i, in_class = [], "", 0, 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            cur += pattern[i:i + 2]
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            out.append(cur)
            cur = ""
            i += 1
            continue
        cur += c
        i += 1
    out.append(cur)
    return out


def _longest_literal(branch: str) -> str:
    best, cur, i, depth = "", "", 0, 0
    while i < len(branch):
        c = branch[i]
        if c == "\\" and i + 1 < len(branch):
            nxt = branch[i + 1]
            if nxt.isalnum():  # \d, \s, \w ...: a class, not a literal
                best, cur = max(best, cur, key=len), ""
            elif depth == 0:
                cur += nxt
            i += 2
            continue
        if c == "(":
            depth += 1
        if c in _LITERAL_META or depth > 0:
            if c in "*?{" and cur:
                cur = cur[:-1]  # a quantifier makes the previous character optional
            best, cur = max(best, cur, key=len), ""
        else:
            cur += c
        if c == ")":
            depth -= 1
        i += 1
    return max(best, cur, key=len)


def prefilter(pattern: str) -> tuple[tuple[str, ...], bool]:
    """(literals, caseless): a match must contain one of the literals."""
    m = re.match(r"^\(\?([aiLmsux]+)\)", pattern)
    flags = m.group(1) if m else ""
    body = pattern[m.end():] if m else pattern
    caseless = "i" in flags
    lits = []
    for branch in _split_top(body):
        lit = _longest_literal(branch)
        if len(lit) < 3:
            return (), caseless
        lits.append(lit.lower() if caseless else lit)
    return tuple(lits), caseless


GRAM = 4


class _Literals:
    """Which of many (literal, fingerprint index) rows occur in a text, as `{i for lit, i in rows
    if lit in text}` says, at a fraction of the CPU: each literal is filed under one of its
    GRAM-character substrings, the one fewest other literals share; a literal can only occur
    where that gram does, so only the literals filed under the text's own grams are looked
    for. (One `in` per literal cost 0.1-0.3 ms even on a 150-byte page, milliseconds on 16 KiB.)"""

    def __init__(self, rows: list[tuple[str, int]]):
        def grams(lit: str) -> set[str]:
            return {lit[j:j + GRAM] for j in range(len(lit) - GRAM + 1)}

        shared = Counter(g for lit, _ in rows for g in grams(lit))
        self.short = [(lit, i) for lit, i in rows if len(lit) < GRAM]  # no gram: looked for as is
        self.by_gram: dict[str, list[tuple[str, int]]] = {}
        for lit, i in rows:
            if len(lit) >= GRAM:
                key = min(grams(lit), key=lambda g: (shared[g], g))
                self.by_gram.setdefault(key, []).append((lit, i))
        self.keys = frozenset(self.by_gram)

    def present(self, text: str) -> set[int]:
        found = {i for lit, i in self.short if lit in text}
        text_grams = map("".join, zip(*(text[k:] for k in range(GRAM)), strict=False))
        for g in self.keys.intersection(text_grams):
            found.update(i for lit, i in self.by_gram[g] if lit in text)
        return found


class Matcher:
    def __init__(self, data: dict[str, Any]):
        self.fingerprints: list[Fingerprint] = []
        for kind in ("blockpage", "false_positive", "server_side"):
            for e in data.get(kind, []):
                lits, caseless = prefilter(e["pattern"])
                self.fingerprints.append(Fingerprint(
                    e["id"], kind, re.compile(e["pattern"]), lits, caseless,
                    e.get("what", ""), e.get("source", "")))
        self.by_id = {f.id: f for f in self.fingerprints}
        # regexes only for the few fingerprints whose literal is present; the literals are
        # looked for through their grams (see _Literals)
        self._case = _Literals([(lit, i) for i, f in enumerate(self.fingerprints)
                                if not f.caseless for lit in f.literals])
        self._nocase = _Literals([(lit, i) for i, f in enumerate(self.fingerprints)
                                  if f.caseless for lit in f.literals])
        self._always = [i for i, f in enumerate(self.fingerprints) if not f.literals]

    def __call__(self, body: bytes, headers: dict[str, str], status: int | None) -> list[str]:
        # A full news homepage is never a blockpage; scanning one costs milliseconds.
        if len(body) > SKIP_OK_OVER and (status or 0) < 400:
            return []
        return self.match(body, headers)

    def match(self, body: bytes, headers: dict[str, str]) -> list[str]:
        head = "\r\n".join(f"{k.title() if k.islower() else k}: {v}" for k, v in headers.items())
        text = head + "\r\n\r\n" + body[:SCAN_BYTES].decode("utf-8", errors="replace")
        lower = text.lower()
        candidates = self._case.present(text)
        candidates.update(self._nocase.present(lower))
        candidates.update(self._always)
        fps = self.fingerprints
        return [fps[i].id for i in sorted(candidates) if fps[i].regex.search(text)]

    def kinds(self, ids: list[str]) -> dict[str, list[Fingerprint]]:
        out: dict[str, list[Fingerprint]] = {"blockpage": [], "false_positive": [], "server_side": []}
        for i in ids:
            f = self.by_id.get(i)
            if f:
                out[f.kind].append(f)
        return out


@cache
def default_matcher() -> Matcher:
    text = resources.files("blockwatch.data").joinpath("fingerprints.json").read_text("utf-8")
    return Matcher(json.loads(text))


@lru_cache(maxsize=4096)
def _dn_attrs(dn: str) -> dict[str, frozenset[str]]:
    """"CN=x, O=y" -> {"CN": {"x"}, "O": {"y"}} (lower-cased values); the same issuers recur in
    every round, so parse each once."""
    attrs: dict[str, set[str]] = {}
    for part in dn.split(", "):
        k, _, v = part.partition("=")
        attrs.setdefault(k.strip().upper(), set()).add(v.strip().lower())
    return {k: frozenset(v) for k, v in attrs.items()}


@dataclass(frozen=True)
class InterceptionCA:
    id: str
    country: str
    match: dict[str, str]
    note: str = ""

    def matches(self, dn: str) -> bool:
        attrs = _dn_attrs(dn)
        return all(v.lower() in attrs.get(k.upper(), frozenset()) for k, v in self.match.items())


_CA_NAMES = 20_000  # names whose interception CA an Interception remembers


@dataclass(frozen=True)
class Interception:
    cas: tuple[InterceptionCA, ...]
    block_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # ca_for's answer per name: every DN is parsed against every CA, and the same issuers and
    # subjects recur in every round and upload
    _by_name: dict[str, InterceptionCA | None] = field(default_factory=dict, compare=False,
                                                       repr=False)

    def with_block_addresses(self, extra: list[str]) -> Interception:
        nets = tuple(ipaddress.ip_network(a, strict=False) for a in extra)
        return Interception(self.cas, self.block_networks + nets)

    def is_block_address(self, address: str) -> bool:
        if not self.block_networks:  # none known (the default): nothing to parse
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in n for n in self.block_networks if n.version == ip.version)

    def ca_for(self, dns_names: list[str]) -> InterceptionCA | None:
        memo = self._by_name
        for dn in dns_names:
            ca = memo.get(dn, memo)
            if ca is memo:
                if len(memo) >= _CA_NAMES:
                    memo.clear()
                ca = memo[dn] = next((c for c in self.cas if c.matches(dn)), None)
            if ca is not None:
                return ca
        return None


@cache
def default_interception() -> Interception:
    text = resources.files("blockwatch.data").joinpath("interception.json").read_text("utf-8")
    data = json.loads(text)
    return Interception(
        tuple(InterceptionCA(c["id"], c.get("country", ""), c["match"], c.get("note", ""))
              for c in data.get("interception_cas", [])),
        tuple(ipaddress.ip_network(a, strict=False) for a in data.get("block_addresses", [])),
    )
