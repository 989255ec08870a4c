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
import re
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
LEVEL = 1  # dictionary-primed level 1: within 3% of level 3's size at half the time
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


# A piece: the value of a "chain", "headers" or "answers" key (a certificate chain, a header set,
# an answer set), wherever it stands. In canonical JSON a key's quotes are never escaped, so this
# cannot match inside a string; the value's extent is found by the C JSON scanner.
_PIECE_KEY = re.compile(r'"(chain|headers|answers)":(?=[\[{])')
_scan = json.JSONDecoder().raw_decode
_KIND = {"chain": "chain", "headers": "headers", "answers": "answers"}


def split(text: str) -> Split:
    """The stored form of evidence `text` (canonical JSON). Pieces are exact substrings of the
    text, cut out where they stand and their offsets noted: the result always joins back to
    `text`, character for character."""
    pieces: list[Piece] = []
    digests: list[bytes] = []
    offsets: list[int] = []
    parts: list[str] = []
    pos = 0  # in text
    kept = 0  # characters of the rest so far
    m = _PIECE_KEY.search(text)
    while m is not None:
        at = m.end()
        try:
            _, end = _scan(text, at)
        except ValueError:
            m = _PIECE_KEY.search(text, at)
            continue
        if end - at >= MIN_PIECE:
            piece = text[at:end]
            parts.append(text[pos:at])
            kept += at - pos
            offsets.append(kept)
            digests.append(hashlib.sha256(piece.encode("utf-8")).digest())
            pieces.append(Piece(digests[-1].hex(), _KIND[m.group(1)], piece))
            pos = end
        m = _PIECE_KEY.search(text, end)
    parts.append(text[pos:])
    head = ",".join(map(str, offsets))
    refs = b"".join(digests) or None
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
