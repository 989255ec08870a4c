"""Content-addressed evidence: how a measurement's evidence is stored and the one way it is read.

A measurement's evidence is its canonical JSON text (textsafe.canonical_json), whose SHA-256 is
`evidence_sha256`: what `export` prints and verifies. The parts of it that repeat across rows
(certificate chains, HTTP header sets, long DNS answer sets) are stored once each in
`evidence_pieces`, keyed by the SHA-256 of their own canonical JSON; the row keeps the rest
(`evidence_z`) and the pieces' hashes (`evidence_refs`, 32 bytes each, in order).

The split is made on the text itself: a piece is cut out of the canonical text where its own
canonical text stands, and its offset noted, so joining puts back the very same characters.
The text read back is the text that was hashed, byte for byte, by construction (nothing is
parsed and re-serialised on the way).

Both the rest and the pieces are zstd-compressed against a fixed dictionary (a sample of the
evidence schema's JSON, `data/evidence-zstd-1.txt`: frozen, as every stored row needs it); the
first byte of a stored value names its format, so a later dictionary can sit beside this one.

Rows stored before (or by the ORM test oracle, repo.add_measurement) keep their evidence whole in
the JSON column `evidence` (then `evidence_z` is NULL); rows stored here hold JSON null there.
`texts`/`loads` read both: every reader of evidence goes through them."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import zstandard
from sqlalchemy import select
from sqlalchemy.orm import Session

from blockwatch.textsafe import canonical_json

FORMAT_ZSTD_1 = 1  # zstd against dictionary 1
LEVEL = 3
MIN_PIECE = 48  # characters: shorter values stay in the row (a reference costs 32 bytes)
DIGEST = 32

_DICT_TEXT = resources.files("blockwatch.data").joinpath("evidence-zstd-1.txt").read_bytes()
_local = threading.local()  # zstd (de)compressors are not safe to share between threads


def _codecs() -> tuple[Any, Any]:
    got = getattr(_local, "codecs", None)
    if got is None:
        d = zstandard.ZstdCompressionDict(_DICT_TEXT, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        got = (zstandard.ZstdCompressor(level=LEVEL, dict_data=d, write_checksum=False,
                                        write_dict_id=False, write_content_size=True),
               zstandard.ZstdDecompressor(dict_data=d))
        _local.codecs = got
    return got


def pack(text: str) -> bytes:
    """A stored value: the format byte, then the zstd frame of the UTF-8 text."""
    return bytes((FORMAT_ZSTD_1,)) + _codecs()[0].compress(text.encode("utf-8"))


def unpack(blob: bytes) -> str:
    blob = bytes(blob)  # PostgreSQL hands back a memoryview
    if not blob or blob[0] != FORMAT_ZSTD_1:
        raise ValueError(f"stored evidence of an unknown format ({blob[:1].hex() or 'empty'})")
    return _codecs()[1].decompress(blob[1:]).decode("utf-8")


@dataclass(frozen=True, slots=True)
class Piece:
    sha256: str  # hex, of `text` in UTF-8
    kind: str  # chain | headers | answers
    text: str  # its canonical JSON


@dataclass(slots=True)
class Split:
    blob: bytes  # evidence_z
    refs: bytes | None  # evidence_refs: the pieces' digests in order (None: no pieces)
    pieces: list[Piece] = field(default_factory=list)


def candidates(data: Any) -> list[tuple[str, Any]]:
    """The values of our evidence schema (records.WebMeasurement) that repeat across rows, in the
    order canonical JSON writes them (keys sorted: dns, http (headers, hops), tls). Evidence of
    another shape (an OONI item) has none: it is stored whole."""
    if not isinstance(data, dict) or "dns" not in data:
        return []
    out: list[tuple[str, Any]] = []
    for q in data.get("dns") or []:
        if isinstance(q, dict) and isinstance(q.get("answers"), list) and q["answers"]:
            out.append(("answers", q["answers"]))
    h = data.get("http")
    if isinstance(h, dict):
        if isinstance(h.get("headers"), dict) and h["headers"]:
            out.append(("headers", h["headers"]))
        for hop in h.get("hops") or []:
            if isinstance(hop, dict) and isinstance(hop.get("headers"), list) and hop["headers"]:
                out.append(("headers", hop["headers"]))
    for t in data.get("tls") or []:
        if isinstance(t, dict) and isinstance(t.get("chain"), list) and t["chain"]:
            out.append(("chain", t["chain"]))
    return out


def split(text: str, data: Any = None) -> Split:
    """The stored form of evidence `text` (canonical JSON; `data` is its parsed value when the
    caller has it). A candidate whose text is not found where expected is simply left in place:
    the result always joins back to `text`."""
    if data is None:
        data = json.loads(text)
    pieces: list[Piece] = []
    offsets: list[int] = []
    parts: list[str] = []
    pos = 0  # in text
    kept = 0  # characters of the rest so far
    for kind, value in candidates(data):
        try:
            piece = canonical_json(value)
        except (TypeError, ValueError):
            continue
        if len(piece) < MIN_PIECE:
            continue
        at = text.find(piece, pos)
        if at < 0:
            continue
        parts.append(text[pos:at])
        kept += at - pos
        offsets.append(kept)
        pieces.append(Piece(hashlib.sha256(piece.encode("utf-8")).hexdigest(), kind, piece))
        pos = at + len(piece)
    parts.append(text[pos:])
    head = ",".join(map(str, offsets))
    refs = b"".join(bytes.fromhex(p.sha256) for p in pieces) or None
    return Split(pack(head + "\n" + "".join(parts)), refs, pieces)


def ref_hashes(refs: bytes | None) -> list[str]:
    if not refs:
        return []
    refs = bytes(refs)
    return [refs[i:i + DIGEST].hex() for i in range(0, len(refs), DIGEST)]


def join(blob: bytes, refs: bytes | None, pieces: Mapping[str, str]) -> str:
    """The evidence text of a stored row from its rest, its references and the pieces' texts
    (sha256 -> text). A missing piece is an error, never a silent gap."""
    payload = unpack(blob)
    head, _, rest = payload.partition("\n")
    hashes = ref_hashes(refs)
    offsets = [int(x) for x in head.split(",")] if head else []
    if len(offsets) != len(hashes):
        raise ValueError("stored evidence: references and offsets disagree")
    out: list[str] = []
    pos = 0
    for off, sha in zip(offsets, hashes, strict=True):
        piece = pieces.get(sha)
        if piece is None:
            raise LookupError(f"evidence piece {sha} is missing")
        out += (rest[pos:off], piece)
        pos = off
    out.append(rest[pos:])
    return "".join(out)


# --- reading: the one way evidence comes out of the database -----------------------------------

def columns() -> tuple[Any, Any, Any]:
    """The columns `texts`/`loads` take, in this order, for a select()."""
    from blockwatch.storage.models import Measurement

    return Measurement.evidence_json, Measurement.evidence_z, Measurement.evidence_refs


def piece_texts(s: Session, hashes: Iterable[str]) -> dict[str, str]:
    from blockwatch.storage.models import EvidencePiece

    want = sorted(set(hashes))
    out: dict[str, str] = {}
    for lo in range(0, len(want), 500):
        for sha, data in s.execute(select(EvidencePiece.sha256, EvidencePiece.data)
                                   .where(EvidencePiece.sha256.in_(want[lo:lo + 500]))):
            out[sha] = unpack(data)
    return out


def texts(s: Session, rows: Sequence[Sequence[Any]]) -> list[str]:
    """The canonical evidence text of each row (evidence, evidence_z, evidence_refs), as hashed
    into its evidence_sha256. One query for the pieces of all the rows."""
    pieces = piece_texts(s, (h for r in rows if r[1] is not None for h in ref_hashes(r[2])))
    return [canonical_json(r[0]) if r[1] is None else join(r[1], r[2], pieces) for r in rows]


def loads(s: Session, rows: Sequence[Sequence[Any]]) -> list[Any]:
    """The evidence of each row as data (what the JSON column held before pieces)."""
    pieces = piece_texts(s, (h for r in rows if r[1] is not None for h in ref_hashes(r[2])))
    return [r[0] if r[1] is None else json.loads(join(r[1], r[2], pieces)) for r in rows]


def load(s: Session, row: Sequence[Any]) -> Any:
    return loads(s, [row])[0]
