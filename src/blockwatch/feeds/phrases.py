"""Phrases over words: a vocabulary entry such as "уголовное дело" or "taken into custody" is
compiled to the keys of its words (see `lemmas`), and matches any inflection and word order
the text uses within a small gap ("возбуждено уголовное дело", "уголовного дела").

Entry syntax, word by word (separated by spaces):
- a plain word: its lemma (Russian), stem (English) or Kazakh forms, in the entry's language;
- `=word`: exactly this normalised surface form ("=fined": "fine" is also an adjective); an entry
  that starts with `=` is surface forms throughout ("=was released": not "release");
- `word~`: any normalised surface form starting with these letters (a Kazakh derivation family
  such as "бұғат~" for бұғаттау, бұғатталды, бұғатталған);
- `*`: any one word (a number, a name);
- `...`: up to `FAR` words of the same sentence ("уголовное дело ... прекращено").
Between two other words of an entry up to `GAP` other words may stand ("charged him with").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from blockwatch.feeds import kazakh, lemmas

GAP = 1  # other words allowed between two words of an entry
FAR = 8  # words that `...` may skip
NONE = "type:none"  # the label of words that look like a type and are none


class Token(NamedTuple):  # a tuple: made for every word of every entry, so cheap to build
    start: int
    end: int
    text: str  # normalised
    keys: frozenset[str]
    sentence: int = 0  # index of the sentence the token is in


@dataclass(frozen=True)
class _Word:
    kind: str  # "keys" | "surface" | "prefix" | "any" | "far"
    keys: frozenset[str] = frozenset()
    text: str = ""
    kazakh: bool = False  # a Kazakh prefix: only a Kazakh word may start with it
    def matches(self, tok: Token) -> bool:
        if self.kind == "keys":
            return not self.keys.isdisjoint(tok.keys)
        if self.kind == "surface":
            return tok.text == self.text
        if self.kind == "prefix":
            # "аңд~" (аңду, to stalk) must not take the Russian "Андрей"
            return tok.text.startswith(self.text) and (not self.kazakh or _is_kazakh(tok))
        return True


@dataclass(frozen=True, eq=False)  # compared by identity: each entry is compiled once
class Entry:
    label: str  # what a match means, e.g. "type:detention", "status:released", "country:KZ"
    text: str  # the entry as written, for explanations
    words: tuple[_Word, ...]
    group: str = ""  # the label's kind, "type" for "type:detention" (set from the label)

    def __post_init__(self) -> None:
        object.__setattr__(self, "group", self.label.split(":", 1)[0])


class Hit(NamedTuple):  # a tuple: made for every match of every text, so cheap to build
    label: str  # one or more labels joined by "+": "type:arrest+type:criminal_case"
    start: int  # offsets in the text
    end: int
    first: int  # token indexes, inclusive
    last: int
    entry: Entry

    @property
    def group(self) -> str:
        return self.entry.group

    @property
    def labels(self) -> list[str]:
        return self.label.split("+")


_SENTENCE_END = re.compile(r"[.!?;…](?=\s|$)|\n")


def tokenize(text: str, norm: str) -> list[Token]:
    """Tokens of `norm` (normalised `text`, same length), with their keys and sentences."""
    out = []
    breaks = [m.start() for m in _SENTENCE_END.finditer(norm)]
    breaks.append(len(norm) + 1)
    sentence = 0
    keys = lemmas.keys
    new = tuple.__new__  # Token(...) without its Python-level __new__: this runs for every word
    if not lemmas.has_kazakh_letters(text):
        nxt = breaks[0]
        for m in lemmas.TOKEN.finditer(norm):
            s, e = m.span()
            while nxt < s:
                sentence += 1
                nxt = breaks[sentence]
            word = m.group()
            out.append(new(Token, (s, e, word, keys(word, False), sentence)))
        return out
    spans = [m.span() for m in lemmas.TOKEN.finditer(norm)]
    marked = [lemmas.has_kazakh_letters(text[s:e]) for s, e in spans]
    all_keys = [keys(norm[s:e], kk) for (s, e), kk in zip(spans, marked, strict=True)]
    # In a text written in Kazakh, a word the Russian dictionary knows is a Kazakh word too: "сот"
    # (court), "полиция", "телефоны" (his phone) may start a Kazakh phrase. A Russian text that
    # only names a Kazakh outlet or person ("журналисты «Азаттық»") stays Russian.
    n_marked = marked.count(True)
    in_kazakh = n_marked >= 2 and n_marked >= KAZAKH_SHARE * len(spans)
    if n_marked and not in_kazakh:
        # a short Kazakh sentence may have one word with a Kazakh letter; then most of its words
        # are still unknown to the Russian dictionary ("босатудан бас тартты")
        unknown = sum(1 for ks in all_keys if any(k.startswith("k:") for k in ks))
        in_kazakh = unknown >= UNKNOWN_SHARE * len(spans)
    for (s, e), kk, ks in zip(spans, marked, all_keys, strict=True):
        while breaks[sentence] < s:
            sentence += 1
        if in_kazakh and not kk:
            ks = lemmas.kazakh_keys(ks)
        out.append(new(Token, (s, e, norm[s:e], ks, sentence)))
    return out


KAZAKH_SHARE = 0.15  # of the words, with a Kazakh letter: a text in Kazakh (most Kazakh words have none)
UNKNOWN_SHARE = 0.5  # of the words, unknown to the Russian dictionary or Kazakh-lettered: Kazakh too


def _compile_word(word: str, lang: str, first: bool, surface: bool,
                  normalise) -> _Word:  # type: ignore[no-untyped-def]
    if word == "*":
        return _Word("any")
    if word == "...":
        return _Word("far")
    if surface or word.startswith("="):
        return _Word("surface", text=normalise(word.removeprefix("=")))
    if word.endswith("~"):
        return _Word("prefix", text=normalise(word[:-1]), kazakh=lang == "kk" and first)
    w = normalise(word)
    if lang == "en":
        return _Word("keys", frozenset({"e:" + lemmas.english_stem(w)}))
    if lang == "ru":
        return _Word("keys", frozenset({"r:" + lemmas.russian_lemma(w)}))
    if lang == "kk":
        # forms of three letters or fewer meet too many other words ("жаб-" of жабу, to close,
        # and of жабық, closed); a short word keeps its own form
        fs = [f for f in kazakh.forms(w) if len(f) >= min(4, len(w))]
        ks = {"k:" + f for f in fs}
        if not first:  # a known Russian word may complete a Kazakh phrase ("қылмыстық іс")
            ks.update("w:" + f for f in fs)
        return _Word("keys", frozenset(ks))
    raise ValueError(f"unknown language {lang!r}")


class PhraseSet:
    """Compiled once from labelled entries; `find` is a pure function of a token list."""

    def __init__(self, entries: Iterable[tuple[str, str, str]], normalise) -> None:  # type: ignore[no-untyped-def]
        """`entries`: (label, language, entry text)."""
        self._by_key: dict[str, list[Entry]] = {}
        self._by_surface: dict[str, list[Entry]] = {}
        self._by_prefix: dict[str, list[Entry]] = {}  # under the first three letters
        self._start_cache: dict[tuple[str, frozenset[str]], tuple[Entry, ...]] = {}
        for label, lang, text in entries:
            surface = text.startswith("=")
            words = tuple(_compile_word(w, lang, i == 0, surface, normalise)
                          for i, w in enumerate(_split(text)))
            if not words or words[0].kind in ("any", "far") or words[-1].kind == "far":
                raise ValueError(f"entry {text!r}: must start with a word")
            e = Entry(label, text, words)
            w0 = words[0]
            if w0.kind == "keys":
                for k in w0.keys:
                    self._by_key.setdefault(k, []).append(e)
            elif w0.kind == "surface":
                self._by_surface.setdefault(w0.text, []).append(e)
            else:
                self._by_prefix.setdefault(w0.text[:3], []).append(e)

    def _starting(self, tok: Token) -> tuple[Entry, ...]:
        """The entries whose first word is this token (cached: texts repeat their words)."""
        key = (tok.text, tok.keys)
        cached = self._start_cache.get(key)
        if cached is not None:
            return cached
        found: dict[int, Entry] = {}
        for k in tok.keys:
            for e in self._by_key.get(k, ()):
                found[id(e)] = e
        for e in self._by_surface.get(tok.text, ()):
            found[id(e)] = e
        for e in self._by_prefix.get(tok.text[:3], ()):
            if e.words[0].matches(tok):
                found[id(e)] = e
        if len(self._start_cache) >= 50_000:
            self._start_cache.clear()
        out = self._start_cache[key] = tuple(found.values())
        return out

    def find(self, tokens: Sequence[Token]) -> list[Hit]:
        """Every match. Where two matches of the same kind of label ("type", "status", ...)
        overlap, the longer one wins: "предупреждение об уголовной ответственности" is a warning,
        not a criminal case."""
        hits: list[Hit] = []
        for i, tok in enumerate(tokens):
            for e in self._starting(tok):
                last = _match_rest(e.words, tokens, i)
                if last is not None:
                    hits.append(Hit(e.label, tok.start, tokens[last].end, i, last, e))
        hits.sort(key=lambda h: (-(h.last - h.first), h.first, h.label != NONE, h.label))
        kept: list[Hit] = []
        # per kind of label and word: the longest kept match covering it (longest come first, so
        # one look at the words of a match tells whether a longer one overlaps it); a "none"
        # match ("type:none": not a type) also wins over others of its own length
        longest: dict[tuple[str, int], float] = {}
        for h in hits:
            size = h.last - h.first
            group = h.entry.group
            if any(longest.get((group, i), -1) > size for i in range(h.first, h.last + 1)):
                continue
            kept.append(h)
            for i in range(h.first, h.last + 1):
                longest.setdefault((group, i), size + 0.5 if h.label == NONE else size)
        kept.sort(key=lambda h: h.first)
        return kept


def _is_kazakh(tok: Token) -> bool:
    """A word with a Kazakh letter or one the Russian dictionary does not know (see `lemmas`)."""
    return any(k.startswith("k:") for k in tok.keys)


def _split(entry: str) -> list[str]:
    """Words of an entry, split as text is ("нур-султан", "rfe/rl" are two words each)."""
    out: list[str] = []
    for w in entry.split():
        if w in ("*", "..."):
            out.append(w)
            continue
        eq, tilde = w.startswith("="), w.endswith("~")
        parts = lemmas.TOKEN.findall(w.strip("=~"))
        for k, part in enumerate(parts):
            out.append(("=" if eq and k == 0 else "") + part + ("~" if tilde and k == len(parts) - 1 else ""))
    return out


def _match_rest(words: Sequence[_Word], tokens: Sequence[Token], i: int) -> int | None:
    pos = i
    far = False
    at = tokens[i].sentence
    n = len(tokens)
    for w in words[1:]:
        if w.kind == "far":
            far = True
            continue
        reach = FAR if far else (0 if w.kind == "any" else GAP)
        for j in range(pos + 1, min(pos + 2 + reach, n)):
            tok = tokens[j]
            if tok.sentence != at:
                return None  # a phrase is one sentence's: "called unfounded. In" is no "called in"
            if w.matches(tok):
                pos = j
                break
        else:
            return None
        far = False
    return pos
