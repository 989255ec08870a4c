"""Words, not surface forms: every token of a text becomes a small set of keys, one per language
it may belong to, so that any inflection of a known word finds that word.

- English (Latin letters): the Snowball (Porter2) stem, "e:" + stem ("charged", "charges" ->
  e:charg). Snowball rather than a dictionary lemmatiser: English inflection is regular enough
  for suffix rules, it needs no data files and it is fast.
- Russian (Cyrillic): the dictionary lemmas from pymorphy3, "r:" + lemma ("задержали",
  "задержан" -> r:задержать). Every distinct lemma among the analyses is kept ("стали" ->
  стать, сталь), because a missed word costs more here than a rare extra one.
- Kazakh (Cyrillic): the forms of `kazakh.forms`, "k:" + form. A word with a Kazakh letter or one
  the Russian dictionary does not know gets strong "k:" keys; a known Russian word gets only weak
  "w:" keys, which may complete a Kazakh phrase but not start one ("устал", Russian "tired", is
  not "ұстал-", Kazakh "was detained").

Tokens are taken from normalised text (lower case, Kazakh letters folded, see
`extract.normalise`), except that the Kazakh check looks at the original letters. The analyser is
built once, lazily, and every token's keys are cached.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

from blockwatch.feeds import kazakh

if TYPE_CHECKING:
    import pymorphy3

TOKEN = re.compile(r"[^\W_]+(?:['’][a-z]+)?")  # words; "rfe/rl's" -> "rfe", "rl's"
_LATIN = re.compile(r"[a-z]")
_CYRILLIC = re.compile(r"[а-яё]")
INFINITIVE = "#inf"  # a key marking a Russian infinitive: "призвал освободить" is no release


@lru_cache(maxsize=1)
def _morph() -> pymorphy3.MorphAnalyzer:
    import pymorphy3  # loading the dictionaries takes ~30 ms and some MB; only when first needed

    return pymorphy3.MorphAnalyzer()


@lru_cache(maxsize=1)
def _english():  # type: ignore[no-untyped-def]
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def english_stem(word: str) -> str:
    return str(_english().stemWord(word))


@lru_cache(maxsize=50_000)  # ~25 MB at most; a feed day has far fewer distinct words
def keys(token: str, kazakh_letters: bool = False) -> frozenset[str]:
    """The keys of one normalised token; `kazakh_letters`: the original had a Kazakh letter."""
    if token.isdigit():
        return frozenset(("#num",))
    if _LATIN.search(token):
        word = token.replace("’", "'")
        if word.endswith("'s"):
            word = word[:-2]
        return frozenset(("e:" + english_stem(word),))
    if not _CYRILLIC.search(token):
        return frozenset()
    out: set[str] = set()
    morph = _morph()
    known = not kazakh_letters and morph.word_is_known(token)
    if not kazakh_letters:
        parses = morph.parse(token)
        for p in parses[:4]:
            out.add("r:" + p.normal_form.replace("ё", "е"))
        if parses and parses[0].tag.POS == "INFN":
            out.add(INFINITIVE)
    prefix = "w:" if known else "k:"
    out.update(prefix + f for f in kazakh.forms(token))
    return frozenset(out)


@lru_cache(maxsize=50_000)
def kazakh_keys(keys: frozenset[str]) -> frozenset[str]:
    """The keys of a word in a text written in Kazakh: its weak "w:" keys count as Kazakh ("k:")."""
    if not any(k.startswith("w:") for k in keys):
        return keys
    return frozenset("k:" + k[2:] if k.startswith("w:") else k for k in keys)


_KAZAKH_LETTER = re.compile("[әғқңөұүһіӘҒҚҢӨҰҮҺІ]")


def has_kazakh_letters(word: str) -> bool:
    return _KAZAKH_LETTER.search(word) is not None


def russian_lemma(word: str) -> str:
    return _morph().parse(word)[0].normal_form.replace("ё", "е")
