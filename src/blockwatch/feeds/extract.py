"""Which outlets and people an entry is about and what happened to them. Pure and rule-based;
English, Russian and Kazakh.

How names match (outlets: target names and aliases; people: `[[feeds.person]]` name and aliases):
- Text and names are normalised the same way: lower case, ё -> е, and the Kazakh letters folded
  to their Russian neighbours (қ -> к, ұ/ү -> у, і -> и, ...), because Kazakh text is often typed
  on a Russian keyboard ("Азаттык" for "Азаттық").
- Domain forms ("Ratel.kz", "Орда.kz") match anywhere, in any case, also inside URLs.
- Word forms match whole words, and a Cyrillic word of four letters or more may take a Russian
  or Kazakh ending ("Ратель", "Рателя", "Рателем", "Рательдің"); a Latin name may take a
  hyphenated Cyrillic ending ("Ratel-дің", "Vlast-а").
- Proper-noun rule: a capitalised word of a name must be capitalised in the text too
  ("Ратель" matches, "медоед ратель" does not), except generic words such as "радио", "газета".
- Common-word rule: a name that is also an ordinary word (COMMON_WORDS: "Власть" = power,
  "Азаттық" = freedom, "Курсив", "Время", "Article 19"...) matches only with evidence that the
  outlet is meant: in quotes («Власть», "Власти"), right after a media noun ("издание Власть",
  "журналистка Власти", "главный редактор Власти", "outlet Vlast"), right before a Kazakh
  possessive media noun ("Азаттық тілшісі"), written in capitals in a normal-case text
  ("ARTICLE 19"), or, for a Russian or Kazakh name, capitalised inside a sentence ("журналисты
  Азаттыка": Russian and Kazakh do not title-case headlines). So "Власти заблокировали..." (the
  authorities blocked, at the start of a sentence) is not Vlast.kz.
- A name of two or more words may be in lower case in quotes or after a media noun («Adil
  soz», "сообщает правовой медиацентр").
- Parent organisations (`parents` in the target list: "RFE/RL" for Azattyq) count as the outlet
  only when the story's country is the outlet's.
- A domain alias also gives its bare name ("Orda.kz" -> "Orda"), treated as a common word: it
  counts in quotes or after a media noun ("СМИ Orda", "издание Ratel", "the Vlast outlet").
  Reporting words count as context too, because an outlet that reports an incident is part of
  it: "сообщает «Власть»", "according to Vlast", "Orda reported".
- When two names overlap, the longer one wins ("Azattyq Ruhy" is not also "Azattyq").

How incidents are recognised: the text is split into words and each word becomes its lemma
(Russian, pymorphy3), stem (English, Snowball) or Kazakh forms (suffix chains stripped, see
`kazakh`), then matched against the phrases of `vocabulary` (detention, arrest, ... harassment;
statuses such as released or sentenced; countries). So "задержали", "задержана" and
"задержание" are one word, as are "charged", "charges" and "charging", or "ұсталды" and
"ұсталған".

An incident needs an incident type and something about the press: a watched outlet, a watched
person, or a press or internet word (journalist, editor, media, website, internet, covering...).
Activists alone do not make one: a detention at a protest is not a press-freedom incident.
General news feeds report many detentions that are not press-freedom incidents. The result
carries its evidence: which words made each type, status, country and name.

What a text says could happen, usually happens or is counted is no case: a possibility, plan,
threat or question ("can shut down", "вопрос блокировки", "бұғаттала ма"), a count of incidents or
a survey ("347 attacks", "содержит обзор"), a sentence about what usually happens ("часто",
"often"), and pressure named as a topic by a noun ("amid pressure on journalists"). Some words
say which type: a prison term beside its sentence is the criminal case, not an arrest; a word for
pressure in general beside a concrete act says what the act is; the internet itself cut off is a
shutdown, a site or service a blocking; blocked bank accounts are harassment.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from operator import itemgetter
from typing import Protocol

from blockwatch.feeds import lemmas, model, phrases, vocabulary

TYPES = model.TYPES  # one list: the model's scores come in this order
STATUSES = vocabulary.STATUSES

# --- normalisation -------------------------------------------------------------------------------

_FOLD = str.maketrans({
    "q": "k",  # Kazakh in Latin letters: "Azattyq" / "Azattyk", "Qazaq" / "Kazak"
    "ё": "е", "қ": "к", "ғ": "г", "ң": "н", "ү": "у", "ұ": "у", "ө": "о", "ә": "а", "һ": "х",
    "і": "и", "«": '"', "»": '"', "“": '"', "”": '"', "„": '"', "‟": '"', "‘": "'", "’": "'",
    "ʼ": "'", "`": "'", "–": "-", "—": "-", "‑": "-", "\u00a0": " ",
})


# Latin letters with diacritics fold to the bare letter: Kazakh and Turkic Latin spellings
# ("Azattyq Rýhy", "Qazaqstan", "Şymkent") and names written with or without their accents
_FOLD.update({cp: ord(base) for cp, base in (
    (cp, unicodedata.normalize("NFD", chr(cp))[0]) for cp in range(0xC0, 0x250))
    if base != chr(cp) and base.isascii() and base.isalpha()})
_FOLD.update({ord("ı"): "i"})  # dotless i has no decomposition


def normalise(text: str) -> str:
    """Lower case and folded, with the same length as `text` so offsets map back to it."""
    low = text.lower()
    if len(low) != len(text):  # "İ".lower() is two characters; keep such a character as it is
        low = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    return low.translate(_FOLD)


# --- ordinary words that some outlets are named after --------------------------------------------

# Normalised forms. A single-word alias in this set needs context (see the module docstring).
# Extend it when a target list names an outlet after an ordinary word.
COMMON_WORDS = frozenset(normalise(w) for w in (
    # Russian
    "Власть", "Время", "Закон", "Курсив", "Республика", "Правда", "Голос", "Свобода", "Мир",
    "Жизнь", "Новости", "Неделя", "Орда", "Лада", "Фергана", "Эксклюзив", "Караван", "Экспресс",
    "Итоги", "Медуза", "Дождь", "Репортер", "Деловой", "Знамя", "Сибирь", "Азия", "Время",
    # Kazakh (азаттық = freedom, бостандық = liberty, уақыт = time, айқын = clear, ...)
    "Азаттық", "Азаттык", "Бостандық", "Уақыт", "Айқын", "Заман", "Таң", "Күн", "Алаш", "Ел",
    "Егемен", "Жас", "Ақиқат", "Дала", "Орда",
    # English
    "Time", "Exclusive", "Freedom", "Voice", "Truth", "News", "Today", "Week", "World",
    "Express", "Mirror", "Article 19", "Liberty", "Power",
))

# Words that, right before a common-word name, show that an outlet is meant.
_MEDIA_BEFORE = re.compile(
    r"(издани|портал|сайт|журналист|редакци|редактор|главред|газет|журнал|телеканал|агентств|"
    r"радио|сми|медиа|корреспондент|колумнист|обозревател|блогер|интернет-издани|"
    r"тилши|басылым|"
    r"outlet|website|site|newspaper|magazine|journalist|reporter|editor|correspondent|"
    r"broadcaster|portal|agency|channel|radio|publication|weekly|daily|paper|tabloid|"
    r"канал|информагентств|медиапортал|"
    # reporting words: the outlet is the source of the report
    r"сообщает|сообщил|сообщило|сообщила|сообщают|пишет|передает|данным|цитирует|"
    r"хабарлады|жазды|малимдеди|told|reports|reported|according to)\w*$"
)
# Kazakh possessive media nouns that follow the name ("Азаттық тілшісі", "Власть сайтының").
# Russian plurals ("сайты", "порталы") are left out on purpose: "Власти сайты закрыли".
_MEDIA_AFTER = re.compile(
    r"(тилшиси|тилшилери|редакциясы|журналиси|журналистери|басылымы|сайтын|сайтына|сайтында|"
    r"сайтынан|порталын|порталы[нд]|радиосы|телеарнасы|кызметкер|"
    # English: "the Vlast outlet", "Orda reported"
    r"outlet|website|site|newspaper|magazine|portal|reporter|journalist|editor|correspondent|"
    r"staff|publication|newsroom|news|weekly|daily|paper|reported|reports|wrote|writes|told)\w*$"
)
# Kazakh possessive media nouns that are also Russian plurals: only in Kazakh text
_MEDIA_AFTER_KK = re.compile(r"(сайты|порталы|газети|газеты|басылым|арнасы|агенттиги|журналы)\w*$")
_KAZAKH_TEXT = re.compile(r"[әғқңөұүһі]", re.IGNORECASE)
# Generic words inside a name that running text writes in lower case ("радио Азаттык").
_GENERIC = frozenset(normalise(w) for w in (
    "радио", "газета", "журнал", "телеканал", "издание", "портал", "агентство", "ИА", "МИА",
    "сайт", "радиосы", "журналы", "газеті", "the", "radio", "newspaper", "magazine", "service",
))

_CYR_WORD = re.compile(r"^[а-яё]+$")
# Endings a Russian or Kazakh proper noun takes (normalised; one Russian ending, or up to two
# Kazakh suffixes: plural or possessive, then case).
_RU_END = ("ами|ями|ого|его|ому|ему|ыми|ими|ою|ею|ью|ом|ем|ой|ей|ам|ям|ах|ях|ов|ев|ым|им|ую|юю|"
           "ая|яя|ое|ее|ые|ие|ых|их|а|я|у|ю|е|и|ы|ь|о|й")
_KK_END = ("ндагы|ндеги|дагы|деги|тагы|теги|лар|лер|дар|дер|тар|тер|дын|дин|тын|тин|нын|нин|ын|ин|"
           "нда|нде|дан|ден|тан|тен|нан|нен|мен|бен|пен|га|ге|ка|ке|на|не|ны|ни|ды|ди|ты|ти|да|"
           "де|та|те|сы|си|ы|и|н")
_INFLECT = f"(?:(?:{_RU_END})|(?:{_KK_END}){{1,2}})?"
_DROP = "аяоеыиьйу"  # a final letter that inflection replaces ("Ратель" -> "Рателя")
_ADJ_END = {"ая", "яя", "ое", "ее", "ый", "ые", "ой", "ий"}  # adjectival endings that inflection replaces
_HYPHEN_END = r"(?:-[а-я]{1,6})?"  # "Ratel.kz-тің", "Vlast-а"


@dataclass(frozen=True)
class _Alias:
    owner: str  # the target or person name
    # fields below: see _compile
    kind: str  # "outlet" | "person" | "parent" (an outlet's parent) | "other" (not this outlet)
    text: str  # the alias as written
    pattern: re.Pattern[str]
    domain: bool
    common: bool
    capital: tuple[bool, ...]  # per word: must start with a capital in the text
    length: int
    derived: bool = False  # a bare name made from a domain alias, not written in the list
    # every spelling in the list that normalises to this alias ("Азаттык", "Азаттық")
    spellings: list[str] = field(default_factory=list, compare=False)


def _token_pattern(tok: str) -> str:
    if _CYR_WORD.match(tok) and len(tok) >= 4:
        if tok[-2:] in _ADJ_END and len(tok) >= 6:  # "Уральская" -> "Уральской", "Уральскую"
            return re.escape(tok[:-2]) + f"(?:{re.escape(tok[-2:])})?" + _INFLECT
        if tok[-1] in _DROP and len(tok) >= 5:
            return re.escape(tok[:-1]) + f"(?:{re.escape(tok[-1])})?" + _INFLECT
        return re.escape(tok) + _INFLECT
    if re.match(r"^[a-z]+$", tok):
        return re.escape(tok) + "(?:'s)?"
    return re.escape(tok)


def _compile(owner: str, kind: str, alias: str, common: bool = False) -> _Alias | None:
    alias = " ".join(alias.split())
    norm = normalise(alias)
    if not re.search(r"\w", norm):
        return None
    if " " not in norm and "." in norm.strip("."):
        # a domain form: anywhere, any case, also as "www.ratel.kz" or in a URL
        body = re.escape(norm.strip("."))
        pat = rf"(?:(?<=www\.)|(?<![\w.]))(?:www\.)?{body}(?![\w]|\.\w){_HYPHEN_END}"
        return _Alias(owner, kind, alias, re.compile(pat), True, False, (), len(norm))
    words = re.findall(r"\w+", norm)
    orig_words = re.findall(r"\w+", alias)
    parts = [_token_pattern(w) for w in words]
    if len(words) > 1 and len(words[-1]) == 3 and _CYR_WORD.match(words[-1]):
        parts[-1] = re.escape(words[-1]) + _INFLECT  # "Әділ сөздің", "Әділ сөзге"
    sep = r"[\s,\-'\"/]{1,3}"
    pat = r"(?<!\w)" + sep.join(parts) + r"(?!\w)" + _HYPHEN_END
    capital = tuple(o[:1].isupper() and w not in _GENERIC for o, w in zip(orig_words, words, strict=True))
    derived = common
    common = common or " ".join(words) in COMMON_WORDS
    return _Alias(owner, kind, alias, re.compile(pat), False, common, capital, len(norm), derived)


class _Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def aliases(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class Extraction:
    types: tuple[str, ...]  # in the order of TYPES
    outlets: tuple[str, ...]  # target names, sorted
    people: tuple[str, ...]  # person names, sorted
    press: bool  # mentions the press, the internet or speech
    status: str | None = None  # one of STATUSES where the text says so
    country: str | None = None  # ISO code: from the text, else the caller's or the outlets'
    # why: "detention" -> ["задержали"], "outlet:Ratel.kz" -> ["«Ратель»"], "status:released",
    # "country:KZ", "press" -> the words as written in the text
    evidence: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    aggregate: bool = False  # a count or a ranking ("the number of detained rose to 100")
    # the model's probability of an incident (None: the rules alone), see `model`
    model: float | None = field(default=None, compare=False)
    # the decision when the model overrode the rules' (None: the rules' decision stands)
    verdict: bool | None = None

    @property
    def is_incident(self) -> bool:
        """A type, and a watched outlet or person or the press; not a count or a ranking; unless
        the model overrode that (`verdict`)."""
        if self.verdict is not None:
            return self.verdict
        return bool(self.types) and not self.aggregate and bool(self.outlets or self.people or self.press)


@dataclass(frozen=True)
class _Match:
    start: int
    end: int
    alias: _Alias


class Matcher:
    """Compiled once from the targets and people; `extract` is then a pure function of text."""

    def __init__(self, targets: Iterable[_Named] = (), people: Iterable[_Named] = ()):
        self._by_key: dict[str, list[_Alias]] = {}
        self._countries: dict[str, str] = {}
        for kind, items in (("outlet", targets), ("person", people)):
            for item in items:
                if kind == "outlet" and getattr(item, "country", ""):
                    self._countries[item.name] = item.country
                names = [(n, False, kind) for n in (item.name, *item.aliases)]
                if kind == "outlet":
                    names += [(b, True, kind) for b in _bare_names(names)]
                    names += [(p, False, "parent") for p in getattr(item, "parents", ())]
                    names += [(x, False, "other") for x in getattr(item, "excludes", ())]
                seen: dict[str, _Alias] = {}
                for n, bare, k in names:
                    # another outlet's name: its own owner, so that, being longer, it wins the overlap
                    a = _compile(item.name if k != "other" else f"not {item.name}", k, n, common=bare)
                    if a is None:
                        continue
                    if normalise(a.text) in seen:
                        seen[normalise(a.text)].spellings.append(" ".join(n.split()))
                        continue
                    a.spellings.append(a.text)
                    seen[normalise(a.text)] = a
                    first = re.match(r"\w+", normalise(a.text).lstrip("."))
                    if first:
                        self._by_key.setdefault(first.group(0)[:3], []).append(a)
        self._short = {k for k in self._by_key if len(k) < 3}
        # one C-level scan finds the words that start like some name's first word; only those
        # are looked at in Python
        keys = sorted(self._by_key, key=len, reverse=True)
        self._starts = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, keys)) + ")" if keys else r"(?!)")
        for lst in self._by_key.values():
            lst.sort(key=lambda a: -a.length)  # longer names first: they win overlaps

    def _candidates(self, norm: str) -> list[_Match]:
        found: list[_Match] = []
        for s in self._starts.finditer(norm):
            m = _WORD.match(norm, s.start())
            if m is None:
                continue
            tok = m.group(0)
            # aliases are filed under the first three letters of their first word (fewer when
            # that word is shorter), so a text word finds them under one of its prefixes
            for key in (tok[:3], tok[:2], tok[:1]) if len(tok) >= 3 else (tok[:2], tok[:1]):
                if len(key) < len(tok[:3]) and key not in self._short:
                    continue
                for a in self._by_key.get(key, ()):
                    mm = a.pattern.match(norm, m.start())
                    if mm is not None:
                        found.append(_Match(mm.start(), mm.end(), a))
        return found

    def names(self, text: str, norm: str | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(outlets, people) named in `text`."""
        kept = self._names(text, normalise(text) if norm is None else norm)
        outlets = sorted({k.alias.owner for k in kept if k.alias.kind == "outlet"})
        people = sorted({k.alias.owner for k in kept if k.alias.kind == "person"})
        return tuple(outlets), tuple(people)

    def _names(self, text: str, norm: str) -> list[_Match]:
        upper_text = _mostly_upper(text)
        accepted = _prefer_exact([c for c in self._candidates(norm) if _accept(c, text, norm, upper_text)],
                                 text)
        # the longer of two overlapping names wins ("Azattyq Ruhy" over "Azattyq")
        accepted.sort(key=lambda c: (-(c.end - c.start), c.start))
        kept: list[_Match] = []
        covered: dict[int, list[_Match]] = {}  # character -> kept names over it
        for c in accepted:
            size = c.end - c.start
            if any(k.alias.owner != c.alias.owner and (k.end - k.start) > size
                   for i in range(c.start, c.end) for k in covered.get(i, ())):
                continue
            kept.append(c)
            for i in range(c.start, c.end):
                covered.setdefault(i, []).append(c)
        return kept

    def extract(self, title: str, summary: str = "", *, country: str | None = None) -> Extraction:
        """What `title` and `summary` say. `country`: the fallback when the text names no
        country (the feed's or the target list's country); without it, the named outlets'
        country, then Kazakhstan for a text in Kazakh. The rules decide, with the model's second
        opinion when one is shipped (see `model`)."""
        x, r = self.read(title, summary, country=country)
        m = model.active()
        return x if m is None else second_opinion(m, x, r)

    def read(self, title: str, summary: str = "", *, country: str | None = None
             ) -> tuple[Extraction, Reading]:
        """The rules' extraction and the reading behind it (its words and matched phrases)."""
        text = f"{title}\n{summary}" if summary else title
        norm = normalise(text)
        evidence: dict[str, list[str]] = {}
        kept = self._names(text, norm)
        outlet_set = {k.alias.owner for k in kept if k.alias.kind == "outlet"}
        people = tuple(sorted({k.alias.owner for k in kept if k.alias.kind == "person"}))
        r = read_text(text, norm, title_end=len(title))
        for key, words in r.evidence.items():
            evidence.setdefault(key, []).extend(words)
        bylines = _bylines(norm)
        press = next((m for rx in (_PRESS, _ANY_DOMAIN) for m in rx.finditer(norm)
                      if not _inside(m.start(), bylines)), None)
        if press and "press" not in evidence:
            evidence["press"] = [text[press.start():press.end()]]
        found = r.country or country
        if found is None:
            codes = {self._countries[o] for o in outlet_set if o in self._countries}
            found = codes.pop() if len(codes) == 1 else None
        if found is None and _KAZAKH_TEXT.search(text):
            found = "KZ"  # Kazakh is written mostly in Kazakhstan; any named place wins over this
        # a parent organisation ("RFE/RL") is its service for the story's country (Azattyq)
        kept = [k for k in kept if k.alias.kind != "parent" or (
            found is not None and self._countries.get(k.alias.owner) == found)]
        outlet_set |= {k.alias.owner for k in kept if k.alias.kind == "parent"}
        outlets = tuple(sorted(outlet_set))
        reach: dict[str, tuple[int, int]] = {}  # owner -> the furthest-reaching match so far
        for k in sorted(kept, key=lambda k: (k.start, -(k.end - k.start))):
            far = reach.get(k.alias.owner)
            if far is not None and far[1] >= k.end and far != (k.start, k.end):
                continue  # inside a longer match of the same name ("Vlast" in "Vlast.kz")
            reach[k.alias.owner] = (k.start, k.end)
            if k.alias.kind == "other":
                continue
            kind = "person" if k.alias.kind == "person" else "outlet"
            have = evidence.setdefault(f"{kind}:{k.alias.owner}", [])
            words = _quoted(text, k.start, k.end)
            if words not in have:
                have.append(words)
        return Extraction(r.types, outlets, people, press is not None or r.press, r.status, found,
                          {k: tuple(v) for k, v in evidence.items()}, r.aggregate), r


def model_inputs(x: Extraction, r: Reading, *, pairs: bool, rules: bool) -> model.Inputs:
    """The model's inputs for an entry: its words (and pairs) and the rules' reading."""
    lang = model.language(r.text)
    units = model.word_bag(r.tokens, pairs)
    if not rules:
        return model.Inputs(units, model.rule_features(lang, rules=False), frozenset())
    return model.Inputs(units, model.rule_features(
        lang, x.is_incident, x.types, x.status, x.press, bool(x.outlets), bool(x.people), x.aggregate),
        model.fired_labels(r.fired))


def second_opinion(m: model.Model, x: Extraction, r: Reading) -> Extraction:
    """`x` with the model's decisions where they differ from the rules', saying so in the
    evidence: "model" -> ("incident: 0.91 (rules: no incident)", the words that weighed most),
    and "model:<type>" for a type the model added or removed."""
    inputs = model_inputs(x, r, pairs=m.pairs, rules=m.rules)
    z = m.score_incident(inputs)
    type_z: list[float] = []

    def types_z() -> list[float]:
        if not type_z:
            type_z.extend(m.score_types(inputs))
        return type_z

    rule_incident = x.is_incident
    incident, types = model.decide(m.margins, z, types_z, rule_incident, x.types)
    p = round(model.sigmoid(z), 3)
    if incident == rule_incident and types == x.types:
        # (the constructor, not dataclasses.replace: this runs for every entry)
        return Extraction(x.types, x.outlets, x.people, x.press, x.status, x.country, x.evidence,
                          x.aggregate, p)
    evidence = dict(x.evidence)
    if incident != rule_incident:
        said = "an incident" if rule_incident else "no incident"
        evidence["model"] = (f"incident: {model.sigmoid(z):.2f} (rules: {said})",
                             *model.explain(m, "incident", inputs, incident, r.tokens, r.text))
    for t in sorted(set(types) ^ set(x.types), key=TYPES.index):
        added = t in types
        evidence.pop(t, None)
        q = model.sigmoid(types_z()[TYPES.index(t)])
        evidence[f"model:{t}"] = (f"{t}: {q:.2f} ({'added' if added else 'removed'})",
                                  *model.explain(m, t, inputs, added, r.tokens, r.text))
    return replace(x, types=types, evidence=evidence, model=p,
                   verdict=incident if incident != rule_incident else None)


_WORD = re.compile(r"\w+")


def _prefer_exact(matches: list[_Match], text: str) -> list[_Match]:
    """Where names of different owners match the same words, the ones spelled as the text spells
    them win: Kazakh «Азаттықтың» is Azattyq (alias "Азаттық"), not only the Russian service
    (alias "Азаттык", which matches it after folding)."""
    by_span: dict[tuple[int, int], list[_Match]] = {}
    for c in matches:
        by_span.setdefault((c.start, c.end), []).append(c)
    out: list[_Match] = []
    for (start, end), group in by_span.items():
        if len({c.alias.owner for c in group}) > 1:
            span = text[start:end].lower()
            exact = {c.alias.owner for c in group
                     if any(span.startswith(sp.lower()) for sp in c.alias.spellings)}
            if exact:
                group = [c for c in group if c.alias.owner in exact]
        out.extend(group)
    return out


def _bare_names(names: list[tuple[str, bool, str]]) -> list[str]:
    """"Orda" from "Orda.kz": the name a text uses when it says it is a media outlet."""
    have = {normalise(n) for n, _, _ in names}
    out = []
    for n, _, _ in names:
        n = n.strip()
        if " " in n or n.count(".") != 1:
            continue  # not a two-label domain form ("rus.azattyq.org" has no bare name)
        bare = n.split(".", 1)[0]
        if len(bare) >= 3 and bare.isalnum() and normalise(bare) not in have:
            have.add(normalise(bare))
            out.append(bare)
    return out


def _quoted(text: str, start: int, end: int) -> str:
    """The matched words, with the quotes around them when the text has them."""
    if start > 0 and end < len(text) and text[start - 1] in "«\"'“„" and text[end] in "»\"'”“":
        return text[start - 1:end + 1]
    return text[start:end]


def _mostly_upper(text: str) -> bool:
    letters = sum(map(str.isalpha, text))  # map over str methods: C speed, no Python loop
    return bool(letters) and sum(map(str.isupper, text)) / letters > 0.6


# a website named in the text makes it about the internet ("Kub.kz was notified of its closure")
_ANY_DOMAIN = re.compile(
    r"(?<![\w.@])[a-z0-9][a-z0-9-]+\.(?:kz|kg|uz|tj|tm|ru|by|com|org|net|media|asia|info|news)(?![\w.])")
_SENTENCE_PUNCT = frozenset(".!?:;\n-\"'(…")
# the people of an organisation: "RFE/RL journalist", "корреспондент Радио Свобода"
_STAFF = re.compile(r"(journalist|correspondent|reporter|cameraman|contributor|freelancer|staff|"
                    r"журналист|корреспондент|репортер|оператор|сотрудни|внештатн|тилши|кызметкер)\w*$")
# words that official names capitalise anywhere ("Қазақстан Республикасы", "Закон о СМИ"): a
# capital says nothing about them
_OFFICIAL_WORDS = frozenset(normalise(w) for w in ("Республика", "Закон", "Мир", "Правда", "Свобода"))
# a name followed by a comma or dash and a media noun within five words says what it is
_APPOSITION = re.compile(r"\s*(?:,|\s-)\s*([^.,;:!?\n]{0,60})")
_MEDIA_NOUN = re.compile(r"(outlet|website|site|newspaper|portal|magazine|agency|channel|publication|"
                         r"weekly|daily|издани|сайт|портал|газет|агентств|телеканал|журнал|басылым)\w*$")
_NOT_AN_OUTLET_AFTER = frozenset(("of", "конституции", "закона", "кодекса", "ук", "коап", "части"))


def _starts_sentence(norm: str, at: int) -> bool:
    pre = norm[max(0, at - 40):at].rstrip(" \t")
    return not pre or pre[-1] in _SENTENCE_PUNCT


def _accept(c: _Match, text: str, norm: str, upper_text: bool) -> bool:
    a = c.alias
    span = text[c.start:c.end]
    if a.domain:
        # q and k are one letter in names, not in domains: "azattyk.org" (RFE/RL Kyrgyz) is not
        # "azattyq.org" (Kazakh)
        low = _keep_q(span)
        return any(_keep_q(sp).strip(".") in low for sp in a.spellings)
    words = _WORD.findall(span)
    before = norm[:c.start].rstrip()
    quoted = before.endswith(('"', "'"))
    prev = _WORD.findall(before[-40:])
    media_before = bool(prev) and not before.endswith((".", "!", "?", ":", ";")) and bool(
        _MEDIA_BEFORE.match(prev[-1]) or prev[-2:] == ["according", "to"])
    capitals = all(w[:1].isupper() for need, w in zip(a.capital, words, strict=False) if need)
    if a.kind == "other":
        return True
    if a.kind == "parent":
        # "RFE/RL journalist", "журналиста Радио Свобода": the parent's people in the story, not
        # the organisation's statements ("RFE/RL condemns...")
        nxt = _WORD.findall(norm[c.end:c.end + 40])[:2]
        return capitals and ((bool(prev) and bool(_STAFF.match(prev[-1])))
                             or any(_STAFF.match(w) for w in nxt))
    # proper-noun rule; a name of two or more words in quotes or after a media noun may be in
    # lower case («Adil soz», "сообщает правовой медиацентр")
    if not capitals and not (len(words) > 1 and (quoted or media_before)):
        return False
    if not a.common:
        return True
    # common-word rule: quotes, a media noun before or after, or capitals
    if quoted or media_before:
        return True
    nxt = _WORD.findall(norm[c.end:c.end + 40])[:2]
    if nxt and (_MEDIA_AFTER.match(nxt[0]) or (nxt[0] == "бас" and nxt[1:] and
                                                nxt[1].startswith("редактор"))):
        return True
    if nxt and _MEDIA_AFTER_KK.match(nxt[0]) and _KAZAKH_TEXT.search(text):
        return True
    m = _APPOSITION.match(norm, c.end)
    if m and any(_MEDIA_NOUN.match(w) for w in _WORD.findall(m.group(1))[:5]):
        return True  # "Orda, an independent news site", "Orda — независимое издание"
    if (capitals and not a.derived and not upper_text and _CYR_WORD.match(normalise(words[0]))
            and not _starts_sentence(norm, c.start) and not _capitalised_neighbour(text, c)
            and normalise(a.text) not in _OFFICIAL_WORDS):
        # a Russian or Kazakh common word with a capital inside a sentence is a name: Russian
        # and Kazakh headlines do not capitalise every word ("журналисты Азаттыка", "Власти"
        # at the start of a sentence stays the authorities). Not when it is part of a longer
        # name: "Республики Казахстан", "Қазақстан Республикасының"
        return True
    if any(ch.isdigit() for ch in a.text) and capitals:
        # "Article 19" is the organisation unless it is an article of something
        return not nxt or nxt[0] not in _NOT_AN_OUTLET_AFTER
    letters = [ch for ch in span if ch.isalpha()]
    # capitals ("ARTICLE 19"); not for a bare name from a domain ("NUR OTAN" is no Nur.kz)
    return len(letters) >= 2 and all(ch.isupper() for ch in letters) and not upper_text and not a.derived


def _keep_q(text: str) -> str:
    return "".join("q" if ch in "qQ" else n for ch, n in zip(text, normalise(text), strict=True))


def _capitalised_neighbour(text: str, c: _Match) -> bool:
    """Part of a longer Russian name: "Республики Казахстан", "Власть Советов". (Kazakh puts a
    person before the name it acts on, "Мамай Азаттыққа берді", so only Russian is checked.)"""
    if _KAZAKH_TEXT.search(text):
        return False
    after = _WORD.findall(text[c.end:c.end + 40])
    return bool(after) and after[0][:1].isupper()


# --- incident types, statuses, countries ---------------------------------------------------------

# "press service", "press secretary", "press release": an authority's own spokesman, not the press
_OFFICIAL = ("service", "centre", "center", "office", "secretary", "release", "conference", "officer", "team")
_OFFICIAL_PRESS = r"(?:" + "|".join(_OFFICIAL) + r")s?\b"
_OFFICIAL_PRESS_WORDS = frozenset(_OFFICIAL + tuple(w + "s" for w in _OFFICIAL))


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


_PRESS = _rx(
    r"journalist\w*", r"reporter\w*", r"editor\w*", r"media", r"press(?![ -]" + _OFFICIAL_PRESS + ")",
    r"newspaper\w*",
    r"outlet\w*", r"website\w*", r"blog\w*", r"correspondent\w*", r"broadcaster\w*", r"internet",
    r"telegram", r"whatsapp", r"youtube", r"facebook", r"instagram", r"tiktok", r"vpn",
    r"social (?:media|networks?)", r"human rights defender\w*",
    r"freedom of (?:speech|expression|the press)", r"news (?:site|agency|portal)\w*",
    r"журналист\w*", r"редактор\w*", r"главред\w*", r"редакци\w*", r"сми", r"издани\w*",
    r"газет\w*", r"сайт\w*", r"портал\w*", r"блог\w*", r"корреспондент\w*", r"телеканал\w*",
    r"интернет\w*", r"мессенджер\w*", r"соцсет\w*", r"телеграм\w*", r"ютуб\w*", r"впн",
    r"правозащитни\w*", r"свобод\w* слова", r"медиа\w*", r"репортер\w*",
    r"тилши\w*", r"басылым\w*", r"букаралык акпарат\w*", r"соз бостандыг\w*",
    r"адам кукыг\w*", r"телеарна\w*", r"журналис\w*",
)



@lru_cache(maxsize=1)
def _vocabulary() -> phrases.PhraseSet:
    """Types, statuses, countries, press words and calls, compiled once on first use."""
    entries = [(label, lang, e)
               for table in (vocabulary.TYPES, vocabulary.STATUS, vocabulary.CASE_OPENED,
                             vocabulary.AGGREGATE, vocabulary.NOT_TYPES, vocabulary.QUESTIONING,
                             vocabulary.CHARGES, vocabulary.LIABILITY, vocabulary.BACKGROUND,
                             vocabulary.SUSPECTS, vocabulary.STOPS, vocabulary.GENERIC, vocabulary.OUTAGES,
                             vocabulary.HOAXES)
               for label, by_lang in table.items() for lang, es in by_lang.items() for e in es]
    entries += [(f"country:{code}", lang, e) for code, by_lang in vocabulary.COUNTRIES.items()
                for lang, es in by_lang.items() for e in es]
    entries += [("press:", lang, e) for lang, es in vocabulary.PRESS.items() for e in es]
    entries += [("call:", lang, e) for lang, es in vocabulary.CALLS.items() for e in es]
    entries += [("modal:", lang, e) for lang, es in vocabulary.MODALS.items() for e in es]
    entries += [("callafter:", lang, e) for lang, es in vocabulary.CALLS_AFTER.items() for e in es]
    entries += [("modalafter:", lang, e) for lang, es in vocabulary.MODALS_AFTER.items() for e in es]
    return phrases.PhraseSet(entries, normalise)


@dataclass(frozen=True)
class Reading:
    types: tuple[str, ...]
    status: str | None
    country: str | None
    press: bool
    aggregate: bool
    evidence: dict[str, list[str]]
    text: str = ""
    tokens: Sequence[phrases.Token] = ()
    fired: tuple[str, ...] = ()  # the labels of every phrase that matched, also those set aside


_LABEL = itemgetter(0)  # Hit.label, at C speed
_CALL_WINDOW = 3  # words before a status that can make it a wish ("призвал ... освободить")
_AFTER_WINDOW = 2  # words after a Kazakh verb that make it a wish or a possibility ("босатуды талап етті")
_MODAL_WINDOW = 5  # words before a type that can make it a possibility ("may face charges and a fine")
_NEGATIONS = frozenset(("not", "never", "no", "не", "нет", "ни"))
_ABLATIVE = ("нан", "нен", "дан", "ден", "тан", "тен")  # Kazakh "X-тан бұрын": before X
_ATTRIBUTIVE = frozenset(("jailed", "imprisoned"))  # "a jailed journalist": a description, not the news
_DETERMINERS = frozenset(("a", "an", "the", "to", "of", "for", "with", "two", "three", "several"))
_NEGATIONS_AFTER = frozenset(("жок", "емес"))  # Kazakh: "ұсталған жоқ" (was not detained)
# a domain in the text says where a story is: "24.kg", "Taftish.uz"
_COUNTRY_DOMAIN = re.compile(r"(?<![\w.])[a-z0-9][a-z0-9-]*\.(kz|kg|uz|tj|tm|ru|by|az|ge|am|ua)(?![\w.])")


# Bylines: the outlet or correspondent that reports the story, at the end of a sentence: "...,
# деп хабарлайды BAQ.KZ тілшісі.", "..., сообщает корреспондент Tengrinews.kz". The press words in
# them say who reports, not that the story is about the press (a protest detention reported by a
# correspondent is no press-freedom incident). Named outlets still count (see the module docstring).
_BYLINE = re.compile(
    r"(?:деп (?:хабарла|жаз|малимде)\w*|(?:сообщает|сообщил[аио]?|передает|пишет|информирует) "
    r"(?:корреспондент|журналист|собкор)\w*)[^\n]{0,60}?(?=[.!?](?:\s|$)|$|\n)"
    # English: the reporter of the story at work ("an AFP correspondent saw", "reported from the scene")
    r"|(?:correspondent|reporter)s? "
    r"(?:saw|reported|reports|said|says|witnessed|told|at the scene|on the scene)")


def _bylines(norm: str) -> list[tuple[int, int]]:
    return [m.span() for m in _BYLINE.finditer(norm)] if "деп " in norm or "сообщ" in norm \
        or "переда" in norm or "пишет" in norm or "информир" in norm or "correspondent" in norm \
        or "reporter" in norm else []


def _inside(at: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(s <= at < e for s, e in spans)


def _negated(tokens: Sequence[phrases.Token], sentence: Sequence[int], first: int, last: int) -> bool:
    for i in (first - 1, first - 2):
        if i >= 0 and sentence[i] == sentence[first] and (
                tokens[i].text in _NEGATIONS or tokens[i].text.endswith("n't")):
            return True
    return last + 1 < len(tokens) and tokens[last + 1].text in _NEGATIONS_AFTER


# Incidents counted: "347 attacks", "32 случая нападения", "12 фактов давления" (a statistic, not a case)
_COUNTED = frozenset(("e:attack", "e:incid", "e:violat", "e:threat", "r:случай", "r:факт", "r:инцидент",
                      "r:нарушение", "k:факт", "k:факти", "k:жагдай"))


# The title of a report over a year: CPJ's "Attacks on the Press 2009: Kazakhstan", "Attacks on
# the Press in 2012", "Killed in 2012: A Worldwide Roundup", "Annual report: ...", "Our annual
# report analyzes..." (not "CPJ condemns attacks on the press in ...", nor "..., it said in its
# annual report")
_REPORT_TITLE = re.compile(r"\battacks on the press:? (?:in )?(?:19|20)\d\d\b"
                           r"|\bin (?:19|20)\d\d: a worldwide\b"
                           # a title that begins with a report's name; a report telling what it does
                           r"|^\W*(?:attacks on the press|annual report)\b"
                           r"|\b(?:our|this|the|a new) (?:annual |new )?report (?:analy[sz]es|finds|shows"
                           r"|documents|reveals|examines|tracks)\b")

# "3 attackers" counts people, not attacks (English stems "attackers" to "attack")
_AGENT_NOUN = ("er", "ers")
# (a scan at C speed first: most texts count nothing)
_COUNT_GATE = re.compile(r"\d\s+(?:\w+\s+)?(?:attack|incid|violat|threat|случа|факт|инцидент|нарушен|жагда)")


def _counted(tokens: Sequence[phrases.Token], sentence: Sequence[int], norm: str) -> str:
    """The words of a count of incidents in the text, or ""."""
    if _COUNT_GATE.search(norm) is None:
        return ""
    for i, t in enumerate(tokens):
        if not t.text.isdigit() or t.text in ("0", "1") or (len(t.text) == 4 and t.text[:2] in ("19", "20")):
            continue  # (a year is no count)
        for j in range(i + 1, min(i + 3, len(tokens))):
            if sentence[j] == sentence[i] and not _COUNTED.isdisjoint(tokens[j].keys) \
                    and not tokens[j].text.endswith(_AGENT_NOUN):
                return f"{t.text} {tokens[j].text}"
    return ""


# A restriction of the internet itself, cut, slowed or throttled, is a network shutdown; of a
# site, service or platform on it, a blocking ("интернет-ресурсы", "internet platform TikTok")
_NETWORK = ("интернет", "internet", "галамтор")
_ON_THE_NETWORK = ("сайт", "site", "web", "ресурс", "resource", "платформ", "platform", "мессенджер",
                   "messenger", "соцсет", "social", "жели", "telegram", "телеграм", "youtube", "ютуб",
                   "tiktok", "тикток", "whatsapp", "facebook", "instagram", "vpn", "впн", "google", "яндекс",
                   "сервис", "service", "app", "издани", "outlet", "портал", "portal", "канал", "channel",
                   "трафик", "traffic")
_NETWORK_WINDOW = 3
# "интернет-трафик" is the network itself
_A_SITE = tuple(w for w in _ON_THE_NETWORK if w not in ("трафик", "traffic"))


def _the_internet(h: phrases.Hit, tokens: Sequence[phrases.Token], sentence: Sequence[int]) -> bool:
    at, first, last = sentence[h.first], h.first - _NETWORK_WINDOW, h.last + 1 + _NETWORK_WINDOW
    near = [i for i in range(max(0, first), min(len(tokens), last))
            if tokens[i].sentence == at and tokens[i].text.startswith(_NETWORK)]
    # "интернет-изданию", "internet platform": the word after "internet" says what on it
    return bool(near) and not _near(h, tokens, sentence, _ON_THE_NETWORK, _NETWORK_WINDOW) and not all(
        i + 1 < len(tokens) and tokens[i + 1].sentence == at and tokens[i + 1].text.startswith(_A_SITE)
        for i in near)


# Who restricts a site or the network: with one named, an outage is a restriction
_RESTRICTOR = _rx(r"government\w*", r"authorit\w*", r"regulator\w*", r"ministr\w*", r"officials",
                  r"roskomnadzor", r"власт(?!ь)\w*", r"правительств\w*", r"роскомнадзор\w*", r"ркн",
                  r"министерств\w*", r"ведомств\w*", r"регулятор\w*", r"прокуратур\w*", r"кнб", r"гкнб",
                  r"силовик\w*", r"билик\w*", r"укимет\w*", r"министрлик\w*")


# Bank accounts blocked or frozen: financial pressure (harassment), not a blocked site
_MONEY = ("bank", "банк", "счет", "шот")


def _near(h: phrases.Hit, tokens: Sequence[phrases.Token], sentence: Sequence[int], words: tuple[str, ...],
          window: int = 3) -> bool:
    at = sentence[h.first]
    return any(t.text.startswith(words) for t in tokens[max(0, h.first - window):h.last + 1 + window]
               if t.sentence == at)


# Words for pressure in general ("harassment", "persecution", "давление", "қысым"): beside a
# concrete act (a detention, a case, a closure) they say what the act is, not another incident.
_PRESSURE = ("harass", "intimidat", "persecut", "pressur", "давлен", "давит", "преследова", "запугива",
             "травл", "кысым", "кудала")
_CONCRETE = frozenset(TYPES) - {"harassment"}


_PRESSURE_NOUNS = frozenset(("pressure", "harassment", "intimidation", "persecution", "r:давление",
                             "r:преследование", "r:травля", "r:запугивание"))


def _pressure_noun(h: phrases.Hit, tokens: Sequence[phrases.Token], text: str) -> bool:
    """Pressure named by a noun as a topic ("pressure on journalists", "давления", "қысым"), not
    done by a verb ("pressured", "оказывают давление", "қысым көрсетті") nor of someone named
    ("harassment of Kursiv reporters": a capital within three words)."""
    first = tokens[h.first]
    if first.text == "under" and h.last == h.first + 1:
        # "Bloggers Under Pressure": a state of things; "came under pressure from police": done
        return not (h.last + 1 < len(tokens) and tokens[h.last + 1].text in ("from", "by"))
    if first.text in _PRESSURE_NOUNS or not _PRESSURE_NOUNS.isdisjoint(first.keys):
        noun = h.first == h.last or tokens[h.first + 1].text in ("on", "against", "на")
    else:
        noun = first.text == "кысым" and h.first == h.last
    return noun and not any(text[t.start].isupper() for t in tokens[h.last + 1:h.last + 4]
                            if t.sentence == first.sentence)


# words for serving a prison term: with a prison sentence in the text they are that sentence
_PRISON = ("imprison", "jail", "prison", "тюрьм", "турм", "туткын", "колони")


def _in_prison(h: phrases.Hit, tokens: Sequence[phrases.Token]) -> bool:
    """An arrest word that names a prison term ("imprisonment", "jailed", "түрмеде"), not custody
    before a trial or days in jail."""
    return "admin:days" not in h.labels and tokens[h.first].text.startswith(_PRISON)


# English "arrested", Kazakh "қамауға алынды", "тұтқындалды" are custody ordered by a court only
# with a court beside it ("a court ordered his arrest", "remanded", "сот ... 2 айға"); said of the
# police they are a detention
_COURT = ("court", "judge", "remand", "pretrial", "pre-trial", "tribunal", "warrant", "absentia", "extend",
          "сот", "судья", "санкция", "айга", "бултартпау", "акимшилик")
_COURT_WINDOW = 6


_THREATS = ("threaten", "угрож", "пригроз")
_WISHES = ("want", "хоте", "seek", "sought")
# The modals that plan or threaten (see plan_at)
_PLANS = ("plan", "intend", "threaten", "want", "seek", "sought", "планир", "намерева", "угрож", "пригроз",
          "хоте")


# A type word that names what a law or a bill is about: "the 'foreign agents' law", "criminal
# defamation laws", «закон об иноагентах», «законопроект о блокировке». The law word must follow
# at once (quotes aside: "detained, law enforcement said" is no law) and not begin another noun
# ("law enforcement", "law student").
_LAWS = ("law", "laws", "bill", "bills", "legislation", "закон", "законы", "законопроект", "законопроекты",
         "заң", "заңы", "заңын")
_NOT_LAWS = ("enforcement", "student", "students", "firm", "firms", "professor", "school", "faculty",
             "graduate", "officers", "officer", "agencies", "agency")


def _names_a_law(h: phrases.Hit, tokens: Sequence[phrases.Token], sentence: Sequence[int],
                 text: str) -> bool:
    at, nxt = sentence[h.first], h.last + 1
    if nxt < len(tokens) and tokens[nxt].sentence == at and tokens[nxt].text in _LAWS \
            and not text[tokens[h.last].end:tokens[nxt].start].strip(" '\"«»“”‘’"):
        return not (nxt + 1 < len(tokens) and tokens[nxt + 1].text in _NOT_LAWS)
    before = [t.text for t in tokens[max(0, h.first - 3):h.first] if t.sentence == at]
    return len(before) >= 2 and before[-2] in _LAWS and before[-1] in ("on", "о", "об", "about")


def _court_does_it(h: phrases.Hit, tokens: Sequence[phrases.Token], sentence: Sequence[int]) -> bool:
    """A court is the word right before the custody verb: "court detains", «суд задержал» (not
    «суд отправил задержанного», the police's detainee sent on by a court)."""
    at = sentence[h.first]
    return any(t.sentence == at and t.text in ("court", "суд", "сот", "сотты")
               for t in tokens[max(0, h.first - 1):h.first])


def _month(tokens: Sequence[phrases.Token], i: int) -> bool:
    """"may" next to a number is the month."""
    return tokens[i].text == "may" and any(
        0 <= j < len(tokens) and tokens[j].text.isdigit() for j in (i - 1, i + 1))


def read_text(text: str, norm: str | None = None, *, title_end: int | None = None) -> Reading:
    """Incident types, status and country named in `text`, with the words that said so.
    `title_end`: where the title ends; a country in the title outweighs one in the summary."""
    norm = normalise(text) if norm is None else norm
    tokens = phrases.tokenize(text, norm)
    sentence = [t.sentence for t in tokens]
    hits = _vocabulary().find(tokens)
    bylines = _bylines(norm)
    by_group: dict[str, list[phrases.Hit]] = {}
    for h in hits:
        by_group.setdefault(h.group, []).append(h)
    call_at = {h.first for h in by_group.get("call", ())}
    # (not "May 13", "13 May": a month)
    modal_at = {h.first for h in by_group.get("modal", ()) if not _month(tokens, h.first)}
    # of these, a plan or a threat: a case only planned is not (yet) a case ("planned to indict")
    plan_at = {c for c in modal_at if tokens[c].text.startswith(_PLANS)}
    after_at = {h.first for g in ("callafter", "modalafter") for h in by_group.get(g, ())}
    suspects_in = {sentence[h.first] for h in by_group.get("suspect", ())}
    court_custody: list[phrases.Hit] | None = None  # arrest phrases, read once a custody word needs them
    stop_to = {h.last for h in by_group.get("stop", ())}
    # (only words side by side: "convicted of extremism, jailed" is no "of jailed")
    # ("мерзімінен бұрын босатылды" is released before the end of the term, not previously)
    generic_in = {sentence[h.first] for h in by_group.get("generic", ())}
    background_to = [h.last for h in by_group.get("background", ()) if h.last - h.first < len(h.entry.words)
                     and not (h.first > 0 and tokens[h.first - 1].text.endswith(_ABLATIVE))]

    def past(h: phrases.Hit) -> bool:
        """Right after a word that puts it in someone's past ("previously jailed", "бұрын
        сотталған"), an English participle used as an adjective ("a jailed journalist"), or in a
        sentence about what usually happens ("journalists are often prosecuted")."""
        if generic_in and sentence[h.first] in generic_in:
            return True
        if h.first > 0 and tokens[h.first].text in _ATTRIBUTIVE and tokens[h.first - 1].text in _DETERMINERS:
            return True
        return bool(background_to) and any(h.first - 1 <= b <= h.last for b in background_to)

    def followed(h: phrases.Hit) -> bool:
        """A Kazakh wish or possibility after the verb: "босатуды талап етті", "айырылуы мүмкін"."""
        return bool(after_at) and any(
            h.last < c <= h.last + _AFTER_WINDOW and sentence[c] == sentence[h.first] for c in after_at)
    evidence: dict[str, list[str]] = {}
    types: set[str] = set()
    statuses: set[str] = set()
    press = False
    case_words: list[str] = []
    questioning: list[tuple[int, str]] = []
    detained_in: set[int] = set()
    charge_words: list[str] = []
    liability_words: list[str] = []
    days = prison = False  # days in jail (administrative) and a prison sentence (criminal)
    foreground = False  # a type word that is not a mention of someone's past
    of_suspects: list[tuple[str, str]] = []  # detentions and cases of suspects, maybe the attackers
    stopped: list[str] = []  # pressure someone is called on to stop
    counted = _counted(tokens, sentence, norm)
    if not counted and (report := _REPORT_TITLE.search(norm)) is not None:
        counted = text[report.start():report.end()]
    aggregate = bool(counted)
    arrests: list[bool] = []  # per arrest word: does it name a prison term
    outages: list[tuple[phrases.Hit, str]] = []  # a site or the network not working
    hoax = False  # a bomb or terror hoax: whatever was done to its author is no press incident
    pressures: list[bool] = []  # per harassment word: is it a word for pressure in general
    topics: list[bool] = []  # ... and a noun for it ("pressure on journalists", "давление")
    if counted:
        evidence["aggregate"] = [counted]
    country_score: dict[str, tuple[int, int]] = {}

    def add(key: str, words: str) -> None:
        have = evidence.setdefault(key, [])
        if words not in have:
            have.append(words)

    def vote(code: str, start: int, words: str) -> None:
        weight = 2 if title_end is not None and start < title_end else 1
        score, first = country_score.get(code, (0, start))
        country_score[code] = (score + weight, min(first, start))
        add(f"country:{code}", words)

    for h in hits:
        words = text[h.start:h.end]
        for label in h.labels:
            kind, value = label.split(":", 1)
            if kind == "status":
                # (a call word inside the matched words is part of a fact: "decided to close the case")
                if any(h.first - _CALL_WINDOW <= c <= h.first and sentence[c] == sentence[h.first]
                       for c in call_at) or lemmas.INFINITIVE in tokens[h.first].keys \
                        or _negated(tokens, sentence, h.first, h.last) or followed(h) or past(h):
                    continue
                if value == "sentenced" and "type:criminal_case" in h.labels:
                    prison = True
                statuses.add(value)
                add(label, words)
            elif kind == "admin":
                days = True
            elif kind == "type":
                if value == "none" or _negated(tokens, sentence, h.first, h.last):
                    continue
                if value == "custody":
                    if court_custody is None:
                        court_custody = [a for a in hits if "type:arrest" in a.labels]
                    if any(a.first - 2 <= h.last and h.first <= a.last + 2 for a in court_custody):
                        # part of "house arrest", "days of administrative arrest", "15 тәулікке
                        # қамауға", or where: "тергеу изоляторына қамалды"
                        continue
                    value = "arrest" if _near(h, tokens, sentence, _COURT, _COURT_WINDOW) else "detention"
                if value == "detention" and _court_does_it(h, tokens, sentence):
                    value = "arrest"  # "Moscow court detains journalist", «суд задержал»: a court's custody
                if value == "detention":
                    detained_in.add(sentence[h.first])
                before = [c for c in (plan_at if value == "criminal_case" else modal_at)
                          if h.first - _MODAL_WINDOW <= c < h.first and sentence[c] == sentence[h.first]]
                if before or (value != "criminal_case" and followed(h)):
                    # "may face a fine": not (yet) a fine; but a case announced or a block
                    # threatened against someone is pressure on them ("planned to indict her",
                    # "threatened to block the site")
                    threat = any(tokens[c].text.startswith(_THREATS) for c in before)
                    planned = value == "criminal_case" and any(
                        not tokens[c].text.startswith(_WISHES) for c in before)
                    if value != "harassment" and (threat or planned):
                        types.add("harassment")
                        add("harassment", words)
                        foreground = foreground or not past(h)
                    continue
                if value == "harassment" and stop_to and any(h.first - 2 <= c < h.first for c in stop_to):
                    stopped.append(words)  # "... to stop harassing reporters": decided below
                    continue
                if value == "outage":
                    outages.append((h, words))  # decided below: did anyone restrict it?
                    continue
                if _names_a_law(h, tokens, sentence, text):
                    continue  # "the foreign agents law", «закон об иноагентах»: what a law is about
                if value == "blocking" and _near(h, tokens, sentence, _MONEY):
                    value = "harassment"  # "the blocking of bank accounts": pressure on money, not a site
                if value == "blocking" and _the_internet(h, tokens, sentence):
                    value = "shutdown"  # "доступ в интернет заблокирован": the network, not a site
                if value in ("detention", "arrest", "criminal_case") and sentence[h.first] in suspects_in:
                    of_suspects.append((value, words))  # decided below: whose detention is it?
                    continue
                if not past(h):
                    foreground = True  # not "a jailed journalist", "ранее задержанный", "бұрын сотталған"
                if value == "arrest":
                    arrests.append(_in_prison(h, tokens))
                elif value == "harassment":
                    pressures.append(tokens[h.first].text.startswith(_PRESSURE))
                    topics.append(_pressure_noun(h, tokens, text))
                types.add(value)
                add(value, words)
            elif kind == "charge":
                if not _negated(tokens, sentence, h.first, h.last) and sentence[h.first] not in generic_in:
                    charge_words.append(words)
            elif kind == "liability":
                liability_words.append(words)
            elif kind == "country":
                vote(value, h.start, words)
            elif kind == "press":
                if _inside(h.start, bylines):
                    continue  # the reporter of the story, not a subject of it
                if tokens[h.first].text == "reportedly" and h.first == h.last:
                    continue  # "homes reportedly attacked": hearsay, not the press
                if tokens[h.first].text == "press" and h.first == h.last and h.last + 1 < len(tokens) \
                        and tokens[h.last + 1].text in _OFFICIAL_PRESS_WORDS:
                    continue  # "the press service of the police"
                press = True
                add("press", words)
            elif kind == "case":
                if sentence[h.first] not in generic_in:
                    case_words.append(words)
            elif kind == "question":
                if not _negated(tokens, sentence, h.first, h.last):
                    questioning.append((sentence[h.first], words))
            elif kind == "aggregate":
                aggregate = True
                add("aggregate", words)
            elif kind == "hoax":
                hoax = True
                add("hoax", words)
    for at, words in questioning:
        if at not in detained_in:
            types.add("harassment")
            foreground = True
            add("harassment", words)
    if outages and (types & {"blocking", "shutdown"} or _RESTRICTOR.search(norm)):
        for h, words in outages:  # someone restricted it, or a blocking is named besides
            value = "shutdown" if _the_internet(h, tokens, sentence) else "blocking"
            types.add(value)
            foreground = foreground or not past(h)
            add(value, words)
    if case_words and not types & {"assault", "harassment"}:
        types.add("criminal_case")
        foreground = True
        for words in case_words:
            add("criminal_case", words)
    if stopped and not types:
        types.add("harassment")  # the call is the story: "Kazakhstan must stop persecuting journalists"
        foreground = True
        for words in stopped:
            add("harassment", words)
    if of_suspects and "assault" not in types:
        for value, words in of_suspects:  # no attack in the story: the suspects may be the press
            types.add(value)
            foreground = True
            add(value, words)
    if charge_words and not days and not types & {"fine", "blocking", "shutdown"}:
        # charges with days in jail or a fine are administrative: an arrest or a fine, not a case;
        # an offence named with a blocked site is why it was blocked
        types.add("criminal_case")
        foreground = True
        for words in charge_words:
            add("criminal_case", words)
    if liability_words and "arrest" not in types and not days:
        types.add("fine")  # administrative liability with no days in jail said: a fine
        foreground = True
        for words in liability_words:
            add("fine", words)
    if days and not prison:
        statuses.discard("sentenced")  # "sentenced to 10 days" is an arrest, not a prison sentence
    if types == {"harassment"} and topics and all(topics) and not questioning and not stopped:
        # "amid pressure on journalists", "на фоне давления на журналистов": pressure named as a
        # topic, with nothing done to anyone
        types.clear()
        evidence.pop("harassment", None)
    if "harassment" in types and pressures and all(pressures) and types & _CONCRETE:
        # "11 journalists detained in a move aimed at intimidating them": the detention is the pressure
        types.discard("harassment")
        evidence.pop("harassment", None)
    if "arrest" in types and not days and statuses & {"sentenced", "convicted"} and all(arrests):
        # "sentenced to 7 years; CPJ condemned his imprisonment": the prison is the sentence's
        types.discard("arrest")
        evidence.pop("arrest", None)
    if "acquitted" in statuses and "criminal_case" not in types:
        types.add("criminal_case")  # an acquittal ends a court case ("ақтап шығарды")
        add("criminal_case", evidence["status:acquitted"][0])
    if hoax:
        for t in types:
            evidence.pop(t, None)
        types.clear()
        statuses.clear()
    if types and not foreground and not statuses:
        types.clear()  # every type word is someone's past in a story about something else
    for m in _COUNTRY_DOMAIN.finditer(norm):
        vote(m.group(1).upper(), m.start(), text[m.start():m.end()])
    status = next((s for s in STATUSES if s in statuses), None)
    country = None
    if country_score:
        country = min(country_score, key=lambda c: (-country_score[c][0], country_score[c][1]))
    return Reading(tuple(t for t in TYPES if t in types), status, country, press, aggregate, evidence,
                   text, tokens, tuple(map(_LABEL, hits)))


def incident_types(text: str) -> tuple[str, ...]:
    """The incident types named in `text`, in the order of TYPES."""
    return read_text(text).types
