"""`blockwatch export --verify FILE`: check an evidence export offline, with nothing but the file
and what `export` wrote beside it (`FILE.manifest.json`, `FILE.chain.json`).

Checked: the file's SHA-256, size and record count against the manifest; each record's
`record_sha256` (JSON lines) and `evidence_sha256` (the SHA-256 of its evidence's canonical JSON;
an agent's evidence exported without its name and address cannot be: only records labelled as
export labels such agents (`agent:CC:ASN`) are let through, and their lines are listed); the
hash chain of each vantage from the value before its first entry to its head (storage/chain.py,
links v1 and v2); each kept record against its chain entry (a withheld agent's record whose uid
has the label in place of the name cannot be: its link digest covers the stored uid; it must
carry its entry's chain value, target and time, and its lines are listed); that every chain entry of the
export's target measured in its period has its record in the file; that every record is of the
target and period chain.json and the manifest name, or a control a verdict names; that a whole
history's chains start at position 1; and that every control a verdict names (`control_uid`) has
its record in the file.

Nothing is signed: whoever rewrites an export can recompute every hash in it. What ties it to
the database is a head kept apart (`--expect-head VANTAGE:SEQ:HASH`, from an earlier export or
the database): the entries up to it cannot be changed, and with them the kept records they
name. The first problem found is reported by line and uid; what was checked (target, period,
each chain's first and last positions and hashes) is printed."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blockwatch.storage import chain
from blockwatch.textsafe import canonical_json

WITHHELD = re.compile(r"agent:[^:]+:[^:]+")  # export.public_vantage of an agent, name withheld
HEX64 = re.compile(r"[0-9a-f]{64}")


class VerifyError(Exception):
    """The export does not verify; the message names the first bad record."""


@dataclass
class Span:
    vantage: str
    first: int  # the first position checked; `prev` is the chain value before it
    prev: str
    last: int
    head: str


@dataclass
class Verified:
    records: int = 0
    kept: int = 0  # records in a hash chain
    evidence_unchecked: list[int] = field(default_factory=list)  # lines: agents, names withheld
    link_unchecked: list[int] = field(default_factory=list)  # lines: kept, their uid masked
    target: str | None = None
    since: str | None = None
    until: str | None = None
    spans: list[Span] = field(default_factory=list)
    anchored: list[str] = field(default_factory=list)  # the --expect-head values found

    @property
    def heads(self) -> list[tuple[str, int, str]]:
        return [(sp.vantage, sp.last, sp.head) for sp in self.spans]


def parse_expect(value: str) -> tuple[str, int, str]:
    """VANTAGE:SEQ:HASH (a vantage label may hold colons: split from the right)."""
    parts = value.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not HEX64.fullmatch(parts[2].lower()):
        raise VerifyError(f"--expect-head {value!r}: not VANTAGE:SEQ:HASH (HASH 64 hex digits)")
    return parts[0], int(parts[1]), parts[2].lower()


def _read(path: Path, fmt: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise VerifyError(f"{path.name}: cannot be read ({exc})") from None
    if fmt == "csv":
        out = []
        for i, row in enumerate(csv.DictReader(io.StringIO(text, newline="")), start=2):
            rec: dict[str, Any] = dict(row)
            try:
                rec["evidence"] = json.loads(row["evidence"]) if row.get("evidence") else None
                rec["chain_seq"] = int(row["chain_seq"]) if row.get("chain_seq") else None
            except ValueError as exc:
                raise VerifyError(f"line {i}: evidence or chain_seq unreadable ({exc})") from None
            # CSV spells None as "" and booleans as words: back to what export printed
            for k in ("verdict", "control_uid", "confirmed"):
                rec[k] = rec.get(k) or None
            rec["confirmed"] = {"True": True, "False": False}.get(rec["confirmed"],
                                                                  rec["confirmed"])
            out.append((i, rec))
        return out
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                got = json.loads(line)
            except ValueError as exc:
                raise VerifyError(f"line {i}: not a JSON record ({exc})") from None
            if not isinstance(got, dict):
                raise VerifyError(f"line {i}: not a JSON object")
            out.append((i, got))
    return out


def _want(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise VerifyError(f"{where}: {what}")


def _chain_file(chains: Any, name: str) -> list[dict[str, Any]]:
    """The vantages of chain.json, each field checked for its type (a clear error, no crash)."""
    _want(isinstance(chains, dict), name, "not a JSON object")
    vantages = chains.get("vantages", [])
    _want(isinstance(vantages, list), f"{name}: vantages", "not a list")
    for f in ("target", "since", "until"):
        _want(chains.get(f) is None or isinstance(chains[f], str), f"{name}: {f}", "not text")
    for i, vc in enumerate(vantages):
        at = f"{name}: vantages[{i}]"
        _want(isinstance(vc, dict), at, "not an object")
        _want(isinstance(vc.get("vantage"), str), f"{at}.vantage", "not text")
        _want(vc.get("prev") is None or isinstance(vc["prev"], str), f"{at}.prev", "not text")
        links = vc.get("links")
        _want(isinstance(links, list) and bool(links), f"{at}.links", "not a list of entries")
        for j, e in enumerate(links):
            le = f"{at}.links[{j}]"
            _want(isinstance(e, dict), le, "not an object")
            _want(type(e.get("seq")) is int and e["seq"] > 0, f"{le}.seq",
                  f"not a positive integer ({e.get('seq')!r})")
            _want(e.get("v", 1) in chain.DIGEST_FIELDS, f"{le}.v",
                  f"not a known link format ({e.get('v')!r})")
            for f in ("digest", "chain"):
                _want(isinstance(e.get(f), str), f"{le}.{f}", "not text")
            for f in ("target", "measured_at"):
                _want(e.get(f) is None or isinstance(e[f], str), f"{le}.{f}", "not text")
            if j:
                _want(e["seq"] == links[j - 1]["seq"] + 1, f"{le}.seq",
                      f"{e['seq']} does not follow {links[j - 1]['seq']}")
        head = vc.get("head")
        _want(isinstance(head, dict) and type(head.get("seq")) is int
              and isinstance(head.get("chain"), str), f"{at}.head", "not {seq, chain}")
    return vantages


def verify(path: Path, expect: list[tuple[str, int, str]] | None = None) -> Verified:
    if not path.is_file():
        raise VerifyError(f"{path}: no such file")
    manifest_path = path.with_name(path.name + ".manifest.json")
    chain_path = path.with_name(path.name + ".chain.json")
    for p in (manifest_path, chain_path):
        if not p.is_file():
            raise VerifyError(f"{p}: missing (export writes it beside the records)")
    loaded = []
    for p in (manifest_path, chain_path):
        try:
            loaded.append(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise VerifyError(f"{p.name}: not JSON ({exc})") from None
    manifest, chains = loaded
    _want(isinstance(manifest, dict), manifest_path.name, "not a JSON object")
    vantages = _chain_file(chains, chain_path.name)
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.get("sha256"):
        # go on: the record that differs is the better message
        file_problem = f"{path.name}: SHA-256 differs from the manifest's"
    elif len(data) != manifest.get("size"):
        file_problem = f"{path.name}: size differs from the manifest's"
    else:
        file_problem = ""
    fmt = manifest.get("format") or ("csv" if path.suffix == ".csv" else "jsonl")
    recs = _read(path, fmt)
    withheld = manifest.get("agent_names") == "withheld"
    target, since, until = chains.get("target"), chains.get("since"), chains.get("until")
    out = Verified(records=len(recs), target=target, since=since, until=until)
    # (vantage label, position) -> records: two agents of one network share a label
    by_seq: dict[tuple[str, int], list[tuple[int, dict[str, Any]]]] = {}
    # withheld agents' kept records whose uid lost the agent's name: their link digest cannot
    # be recomputed, so such a record is matched to its entry by chain value, target and time
    masked: set[int] = set()
    for line, rec in recs:
        where = f"line {line} (uid {rec.get('uid')})"
        if (withheld and rec.get("vantage_kind") == "agent"
                and WITHHELD.fullmatch(str(rec.get("vantage")))):
            out.evidence_unchecked.append(line)  # its evidence lost the name and address
            if str(rec.get("uid")).startswith(f"{rec.get('vantage')}/"):
                masked.add(line)
        else:
            ev = hashlib.sha256(canonical_json(rec.get("evidence")).encode("utf-8")).hexdigest()
            if ev != rec.get("evidence_sha256"):
                raise VerifyError(f"{where}: evidence does not match its evidence_sha256")
        if fmt == "jsonl":
            want = hashlib.sha256(canonical_json(
                {k: v for k, v in rec.items() if k != "record_sha256"}).encode("utf-8")).hexdigest()
            if rec.get("record_sha256") != want:
                raise VerifyError(f"{where}: record_sha256 does not match the record")
        if rec.get("chain_seq") is not None:
            try:
                seq = int(rec["chain_seq"])
            except (TypeError, ValueError):
                raise VerifyError(f"{where}: chain_seq is not a position") from None
            by_seq.setdefault((str(rec.get("vantage")), seq), []).append((line, rec))
    if file_problem:
        raise VerifyError(file_problem)
    if manifest.get("records") != len(recs):
        raise VerifyError(f"{path.name}: {len(recs)} records, the manifest says "
                          f"{manifest.get('records')}")
    for f in ("target", "since", "until"):
        if manifest.get(f) != chains.get(f):
            raise VerifyError(f"{chain_path.name}: {f} {chains.get(f)!r} is not the manifest's "
                              f"({manifest.get(f)!r})")
    uids = {rec.get("uid") for _, rec in recs}
    named = {rec.get("control_uid") for _, rec in recs if rec.get("control_uid")}
    for line, rec in recs:  # a verdict's evidence includes the control it was judged against
        where = f"line {line} (uid {rec.get('uid')})"
        if rec.get("control_uid") and rec["control_uid"] not in uids:
            raise VerifyError(f"{where}: the control it was judged against (uid "
                              f"{rec['control_uid']}) is missing from the export")
        at = str(rec.get("measured_at"))
        if rec.get("uid") not in named and (
                rec.get("target") != target or (since is not None and at < since)
                or (until is not None and at >= until)):
            raise VerifyError(f"{where}: not of the export's target and period ({target}, "
                              f"{since or 'the start'} to {until or 'the end'})")
    used: set[int] = set()  # lines
    for vc in vantages:
        name = vc["vantage"]
        prev = vc.get("prev") or chain.GENESIS
        links = vc["links"]
        if since is None:  # a whole history: every chain from its start
            _want(links[0]["seq"] == 1 and prev == chain.GENESIS, chain_path.name,
                  f"the chain of {name} starts at position {links[0]['seq']}, not at 1 from "
                  "the genesis value, in an export of the whole history")
        span = Span(name, links[0]["seq"], prev, links[0]["seq"], prev)
        for e in links:
            v = e.get("v", 1)
            value = chain.step(prev, e.get("target"), e.get("measured_at"), e["digest"], v)
            if value != e["chain"]:
                raise VerifyError(f"{chain_path.name}: the chain of {name} breaks at position "
                                  f"{e['seq']}")
            prev = value
            key = (name, e["seq"])
            cands = [(line, rec) for line, rec in by_seq.get(key, []) if line not in used]
            match = [line for line, rec in cands if rec.get("chain") == e["chain"] and (
                chain.digest(rec, v) == e["digest"] or (
                    line in masked and rec.get("target") == e.get("target")
                    and rec.get("measured_at") == e.get("measured_at")))]
            if match:
                used.add(match[0])
                if match[0] in masked:
                    out.link_unchecked.append(match[0])
                continue
            if cands:
                line, rec = cands[0]
                raise VerifyError(f"line {line} (uid {rec.get('uid')}): does not match its "
                                  f"chain entry (position {key[1]} of {name})")
            if (e.get("target") == target
                    and (since is None or str(e.get("measured_at")) >= since)
                    and (until is None or str(e.get("measured_at")) < until)):
                raise VerifyError(
                    f"the kept record at position {key[1]} of {name} ({e.get('measured_at')})"
                    " is missing from the export")
        head = vc["head"]
        if head["chain"] != prev or head["seq"] != links[-1]["seq"]:
            raise VerifyError(f"{chain_path.name}: the head of {name} is not where its chain ends")
        span.last, span.head = links[-1]["seq"], prev
        out.spans.append(span)
    for key, got in by_seq.items():
        for line, rec in got:
            if line not in used:
                raise VerifyError(f"line {line} (uid {rec.get('uid')}): chain position {key[1]}"
                                  f" of {key[0]} is not in {chain_path.name}")
    out.kept = len(used)
    for name, seq, value in expect or []:
        out.anchored.append(_anchor(vantages, name, seq, value))
    return out


def _anchor(vantages: list[dict[str, Any]], name: str, seq: int, value: str) -> str:
    """A head kept apart found in the checked chain: every entry up to it is the one hashed
    into it then (the chain was checked whole above)."""
    mine = [vc for vc in vantages if vc["vantage"] == name]
    if not mine:
        raise VerifyError(f"--expect-head {name}:{seq}: the export holds no chain of {name}")
    for vc in mine:
        links = vc["links"]
        got = ((vc.get("prev") or chain.GENESIS) if seq == links[0]["seq"] - 1 else
               next((e["chain"] for e in links if e["seq"] == seq), None))
        if got == value:
            return f"{name}:{seq}"
    spans = ", ".join(f"{vc['links'][0]['seq'] - 1} to {vc['links'][-1]['seq']}" for vc in mine)
    if any(vc["links"][0]["seq"] - 1 <= seq <= vc["links"][-1]["seq"] for vc in mine):
        raise VerifyError(f"--expect-head {name}:{seq}: the export's chain of {name} holds "
                          "another hash at that position: it is not the chain that head ended")
    raise VerifyError(f"--expect-head {name}:{seq}: outside the positions the export's chain of "
                      f"{name} covers ({spans}): it cannot be checked against it")


def verify_main(path: str, expect_heads: list[str] | None = None) -> int:
    """The command: 0 when the export verifies, 1 when it does not (the reason on stderr)."""
    import sys

    try:
        expect = [parse_expect(x) for x in expect_heads or []]
        got = verify(Path(path), expect)
    except VerifyError as exc:
        print(f"blockwatch export --verify: {path}: FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: verified: {got.records} records, {got.kept} of them in hash chains")
    print(f"  target {got.target}, measured from {got.since or 'the start'} "
          f"to {got.until or 'the end'}")
    for sp in got.spans:
        print(f"  chain of {sp.vantage}: positions {sp.first} to {sp.last}, from {sp.prev} "
              f"(before {sp.first}) to {sp.head}")
        print(f"  chain head of {sp.vantage}: position {sp.last} {sp.head}")
    if got.evidence_unchecked:
        lines = got.evidence_unchecked
        print(f"  evidence not checkable (agents exported without their names): "
              f"{len(lines)} records, lines {', '.join(map(str, lines[:50]))}"
              + (" ..." if len(lines) > 50 else ""))
    if got.link_unchecked:
        lines = sorted(got.link_unchecked)
        print(f"  records not checkable against their chain entries (uids without the agents' "
              f"names; the chain itself is checked): {len(lines)} records, lines "
              f"{', '.join(map(str, lines[:50]))}" + (" ..." if len(lines) > 50 else ""))
    if got.anchored:
        print(f"  anchored at the heads given: {', '.join(got.anchored)}")
    else:
        print("  no head given (--expect-head VANTAGE:SEQ:HASH): this shows the export is "
              "consistent, not that it is the database's; compare the heads above with ones "
              "kept apart")
    return 0
