"""Text from probed sites, feeds and agents made storable and printable, the same way everywhere.

PostgreSQL's `text` and `jsonb` refuse NUL (one NUL in a page title failed a whole round's
write), SQLite takes it; XML 1.0 forbids C0 controls but tab, LF and CR; lone surrogates
cannot be encoded as UTF-8 at all. So every string that is stored passes `storable` first, on
SQLite and PostgreSQL alike, and outputs that may meet older stored text pass it again.

Each refused code point becomes a visible escape `\\uXXXX`. A backslash that already stands
before `u` and four hex digits is escaped too (`\\u005c`), so `restore` gives back the exact
original: the raw bytes stay in the evidence, only spelled differently. Text without such
characters (nearly all of it) is returned unchanged.

NaN and Infinity are not JSON: numbers that are not finite become null here, and every JSON
writer in the project uses `allow_nan=False`."""

from __future__ import annotations

import json
import math
import re
from typing import Any

# C0 controls but tab/LF/CR, DEL, C1 controls, surrogates (only lone ones reach a Python str),
# and the two non-characters XML 1.0 excludes; plus a backslash that looks like our escape.
_CHARS = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]"
_BAD = re.compile(_CHARS + r"|\\(?=u[0-9a-fA-F]{4})")
_UNPRINTABLE = re.compile(_CHARS)
# What any of those (or a non-finite number) looks like inside canonical JSON text: control
# characters are written as \uXXXX or \b \f, a literal backslash as \\ , the rest raw. A match
# only sends the text down the slow path, so false alarms cost time, never correctness.
_JSON_SUSPECT = re.compile("\\\\[ubf]|[\x7f-\x9f\ud800-\udfff\ufffe\uffff]|NaN|Infinity")
_JSON_SUSPECT_CHARS = re.compile("[\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _json_suspect(text: str) -> bool:
    """Whether _JSON_SUSPECT matches `text`, in a tenth of the regular expression's time (its
    alternation defeats the regex engine's fast scan; ingest spent a tenth of its CPU here)."""
    if "\\" in text and ("\\u" in text or "\\b" in text or "\\f" in text):
        return True
    if "NaN" in text or "Infinity" in text:
        return True
    if text.isascii():  # the one ASCII character of the class
        return "\x7f" in text
    return _JSON_SUSPECT_CHARS.search(text) is not None

_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
# The explicit bidi controls (embeddings, overrides, isolates): legal text everywhere, but one
# from a probed page inside a sentence of ours turns the rest of the line around (U+202E).
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _esc(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def storable(s: str) -> str:
    """`s` with every character that a database, XML or UTF-8 refuses written as `\\uXXXX`."""
    if _BAD.search(s) is None:
        return s
    return _BAD.sub(_esc, s)


def printable(s: str) -> str:
    """`s` with the refused characters escaped, nothing else: for outputs, where text that
    was stored already (storable) must come out as it is, not escaped twice."""
    if _UNPRINTABLE.search(s) is None:
        return s
    return _UNPRINTABLE.sub(_esc, s)


def visible_bidi(s: str) -> str:
    """`s` with every explicit bidi control written as `\\uXXXX`: for text from outside said
    inside a sentence of ours (a reason), which must read in the order it was written. The
    evidence and a verdict's keys keep them as they came (and their hashes); a sentence escapes
    them when it is said."""
    if _BIDI.search(s) is None:
        return s
    return _BIDI.sub(_esc, s)


def storable_opt(s: str | None) -> str | None:
    return None if s is None else storable(s)


def restore(s: str) -> str:
    """The original text of `storable(original)` (for readers of the evidence, and tests)."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), s)


def storable_data(v: Any, text: Any = storable) -> Any:
    """A JSON-like value with `text` (storable) applied to every string, keys included, and
    every non-finite float replaced by None."""
    if isinstance(v, str):
        return text(v)
    if isinstance(v, dict):
        return {text(k) if isinstance(k, str) else k: storable_data(x, text) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [storable_data(x, text) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def canonical_json(data: Any) -> str:
    """The one spelling of evidence that is hashed and stored (strict JSON: no NaN)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def storable_evidence(data: Any, text: str | None = None) -> tuple[Any, str]:
    """(data, its canonical JSON), both storable. `text` is data's canonical JSON when the
    caller already has it. Clean evidence (nearly all) costs one regular-expression scan."""
    if text is None:
        try:
            text = canonical_json(data)
        except ValueError:  # NaN or Infinity somewhere
            clean = storable_data(data)
            return clean, canonical_json(clean)
    if not _json_suspect(text):
        return data, text
    clean = storable_data(json.loads(text) if data is None else data)
    return clean, canonical_json(clean)


def dumps(v: Any, **kw: Any) -> str:
    """json.dumps for outputs: strict JSON (a non-finite number is written as null) of printable
    text (no lone surrogates, no controls a strict reader trips on), with U+2028 and U+2029
    escaped (line breaks to str.splitlines and to JavaScript before ES2019: a JSON-lines file
    must stay one record a line). Clean data costs one scan of the result."""
    kw.setdefault("ensure_ascii", False)
    try:
        out = json.dumps(v, allow_nan=False, **kw)
    except ValueError:
        out = json.dumps(storable_data(v, printable), allow_nan=False, **kw)
    else:
        if _json_suspect(out):
            out = json.dumps(storable_data(v, printable), allow_nan=False, **kw)
    if "\u2028" in out or "\u2029" in out:  # only inside strings: JSON has no other place for them
        out = out.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return out


def no_nan(name: str) -> float:
    """json.loads(parse_constant=no_nan): NaN and Infinity are refused, not read."""
    raise ValueError(f"{name} is not a number JSON allows")
