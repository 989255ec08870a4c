"""`blockwatch export --verify FILE`: check an evidence export offline, with nothing but the file
and what `export` wrote beside it (`FILE.manifest.json`, `FILE.chain.json`).

Checked: the file's SHA-256, size and record count against the manifest; each record's
`record_sha256` (JSON lines) and `evidence_sha256` (the SHA-256 of its evidence's canonical JSON;
an agent's evidence exported without its name and address cannot be, and is counted apart); the
hash chain of each vantage from the value before its first entry to its head (storage/chain.py);
each kept record against its chain entry; that every chain entry of the export's target
measured in its period has its record in the file; and that every control a verdict names
(`control_uid`) has its record in the file (export writes the ones from outside the period
too). The first problem found is reported by line
and uid. The head values printed are what to compare with the database or an earlier export."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blockwatch.storage import chain
from blockwatch.textsafe import canonical_json


class VerifyError(Exception):
    """The export does not verify; the message names the first bad record."""


@dataclass
class Verified:
    records: int = 0
    kept: int = 0  # records in a hash chain
    evidence_unchecked: int = 0  # agents' evidence exported without their names
    heads: list[tuple[str, int, str]] = field(default_factory=list)  # (vantage, seq, chain)


def _read(path: Path, fmt: str) -> list[tuple[int, dict[str, Any]]]:
    text = path.read_text(encoding="utf-8")
    if fmt == "csv":
        out = []
        for i, row in enumerate(csv.DictReader(io.StringIO(text, newline="")), start=2):
            rec: dict[str, Any] = dict(row)
            rec["evidence"] = json.loads(row["evidence"]) if row.get("evidence") else None
            rec["chain_seq"] = int(row["chain_seq"]) if row.get("chain_seq") else None
            out.append((i, rec))
        return out
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                out.append((i, json.loads(line)))
            except ValueError as exc:
                raise VerifyError(f"line {i}: not a JSON record ({exc})") from None
    return out


def verify(path: Path) -> Verified:
    if not path.is_file():
        raise VerifyError(f"{path}: no such file")
    manifest_path = path.with_name(path.name + ".manifest.json")
    chain_path = path.with_name(path.name + ".chain.json")
    for p in (manifest_path, chain_path):
        if not p.is_file():
            raise VerifyError(f"{p}: missing (export writes it beside the records)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        chains = json.loads(chain_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise VerifyError(f"{manifest_path.name} or {chain_path.name}: not JSON ({exc})") from None
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
    out = Verified(records=len(recs))
    # (vantage label, position) -> records: two agents of one network share a label
    by_seq: dict[tuple[str, int], list[tuple[int, dict[str, Any]]]] = {}
    for line, rec in recs:
        where = f"line {line} (uid {rec.get('uid')})"
        if withheld and rec.get("vantage_kind") == "agent":
            out.evidence_unchecked += 1
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
            by_seq.setdefault((str(rec.get("vantage")), int(rec["chain_seq"])), []).append(
                (line, rec))
    if file_problem:
        raise VerifyError(file_problem)
    if manifest.get("records") != len(recs):
        raise VerifyError(f"{path.name}: {len(recs)} records, the manifest says "
                          f"{manifest.get('records')}")
    uids = {rec.get("uid") for _, rec in recs}
    for line, rec in recs:  # a verdict's evidence includes the control it was judged against
        if rec.get("control_uid") and rec["control_uid"] not in uids:
            raise VerifyError(f"line {line} (uid {rec.get('uid')}): the control it was judged "
                              f"against (uid {rec['control_uid']}) is missing from the export")
    target, since, until = chains.get("target"), chains.get("since"), chains.get("until")
    used: set[int] = set()  # lines
    for vc in chains.get("vantages") or []:
        name = str(vc.get("vantage"))
        prev = vc.get("prev") or chain.GENESIS
        for e in vc.get("links") or []:
            value = chain.step(prev, e.get("target"), e.get("measured_at"), str(e.get("digest")))
            if value != e.get("chain"):
                raise VerifyError(f"{chain_path.name}: the chain of {name} breaks at position "
                                  f"{e.get('seq')}")
            prev = value
            key = (name, int(e.get("seq")))
            cands = [(line, rec) for line, rec in by_seq.get(key, []) if line not in used]
            match = [line for line, rec in cands if chain.digest(rec) == e.get("digest")
                     and rec.get("chain") == e.get("chain")]
            if match:
                used.add(match[0])
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
        head = vc.get("head") or {}
        if head.get("chain") != prev:
            raise VerifyError(f"{chain_path.name}: the head of {name} is not where its chain ends")
        out.heads.append((name, int(head.get("seq") or 0), prev))
    for key, got in by_seq.items():
        for line, rec in got:
            if line not in used:
                raise VerifyError(f"line {line} (uid {rec.get('uid')}): chain position {key[1]}"
                                  f" of {key[0]} is not in {chain_path.name}")
    out.kept = len(used)
    return out


def verify_main(path: str) -> int:
    """The command: 0 when the export verifies, 1 when it does not (the reason on stderr)."""
    import sys

    try:
        got = verify(Path(path))
    except VerifyError as exc:
        print(f"blockwatch export --verify: {path}: FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: verified: {got.records} records, {got.kept} of them in hash chains"
          + (f", {got.evidence_unchecked} agents' evidence not checkable (exported without "
             "their names)" if got.evidence_unchecked else ""))
    for name, seq, value in got.heads:
        print(f"  chain head of {name}: position {seq} {value}")
    return 0
