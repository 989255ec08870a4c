"""A Kazakh stemmer by rules: strip a chain of inflectional suffixes from the end of a word.

Kazakh is agglutinative: a noun takes plural, possessive and case suffixes in that order
(журналист-тер-і-не "to their journalists"); a verb takes tense, participle or converb suffixes
(ұста-ды "detained", ұста-ған "who detained", ұста-п "having detained"). `forms` strips those
slots from the end, at most one suffix per slot, case or tense first, then possession, then
plural (or the verbal noun's -у), and returns every form on the way down to the stem. Two words
are the same word when their forms meet: "Астанада" -> астанада, астана, аста meets "Астана" ->
астана, аста, although the last step over-strips (-на looks like a dative).

It works on text folded as `extract.normalise` folds it (қ -> к, і -> и, ұ/ү -> у, ...), so text
typed on a Russian keyboard stems the same. Voice suffixes are not stripped (-л is also the end
of "айыппұл", a fine): passive and active verbs are separate vocabulary entries. Neither are
suffixes that change the meaning: -сыз/-сіз ("қолжетімсіз" inaccessible vs "қолжетімді"
accessible), -шы/-ші ("тілші" correspondent).
"""

from __future__ import annotations

from functools import lru_cache

MIN_STEM = 2  # letters left after a strip; "іске" -> "іс" (a case)

_CASE_OR_TENSE = (
    # adjectival locative "-дағы" (the one in)
    "ындагы", "индеги", "ндагы", "ндеги", "дагы", "деги", "тагы", "теги",
    # verb: habitual participle, participles, present 3rd person, intention, converb, conditional
    "атын", "етин", "йтын", "йтин", "ган", "ген", "кан", "кен", "йды", "йди",
    "мак", "мек", "бак", "бек", "пак", "пек", "ып", "ип", "п", "у",
    # genitive, ablative, locative, instrumental, dative, accusative (= past tense -ды/-ді)
    "нын", "нин", "дын", "дин", "тын", "тин", "нан", "нен", "дан", "ден", "тан", "тен",
    "нда", "нде", "да", "де", "та", "те", "мен", "бен", "пен",
    "на", "не", "га", "ге", "ка", "ке", "ны", "ни", "ды", "ди", "ты", "ти", "н",
)
_POSSESSIVE = ("ымыз", "имиз", "мыз", "миз", "сы", "си", "ы", "и")
_PLURAL = ("лар", "лер", "дар", "дер", "тар", "тер", "у")
_SLOTS = tuple(tuple(sorted(s, key=len, reverse=True)) for s in (_CASE_OR_TENSE, _POSSESSIVE, _PLURAL))


@lru_cache(maxsize=65536)
def forms(word: str) -> tuple[str, ...]:
    """The word and every shorter form that stripping the slots in order can give (folded,
    lower-case input). Each slot may take any suffix that fits, not only the longest, because
    a stem can end like a suffix: "Қазақстан" (-тан is an ablative) and "Қазақстандағы" meet
    at "казакстан" only if both readings are kept."""
    found = [word]
    current = {word}
    for slot in _SLOTS:
        nxt = set()
        for w in current:
            for suf in slot:
                if w.endswith(suf) and len(w) - len(suf) >= MIN_STEM:
                    nxt.add(w[: -len(suf)])
        found.extend(sorted(nxt - set(found), key=len, reverse=True))
        current |= nxt
    return tuple(found)


def stem(word: str) -> str:
    """The shortest form."""
    return min(forms(word), key=len)
