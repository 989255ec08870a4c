"""A learned second opinion on the rules of `extract`: logistic regressions over the words of an
entry and over what the rules found, trained on the labelled headlines of
tests/fixtures/incidents/ by benchmarks/train_extract.py (which writes data/extract_model.json).

Features (see `features`), counted over the entry (title + summary):
- every word's keys as `lemmas` gives them (Russian lemma "r:", English stem "e:", Kazakh forms
  "k:"; the weak "w:" keys and numbers are left out), and optionally neighbouring words' pairs;
- the language ("lang:kk": Kazakh letters; "lang:ru": mostly Cyrillic; else "lang:en");
- the rules' own reading: their incident decision, types, status, press, outlet, person and
  aggregate flags, each also crossed with the language ("kk|R:inc"), and the label of every
  vocabulary phrase that matched ("F:type:detention", also when a rule set it aside), so that
  the model learns when the rules are right.

One model says "is an incident" and one per type (one against the rest). How they combine with
the rules (`decide`): the rules decide unless the model is confident the other way (its
probability below a margin or above 1 - margin; one margin for "incident", one for the types);
the margins were chosen by cross-validation (benchmarks/extract_cv.py). When the model changes a
decision the extraction's evidence says so ("model" and "model:<type>" keys, with the
probability and the words that weighed most).

Inference is a sparse dot product: each distinct word's weights for all models are summed once
and cached. `ENABLED = False` (the default, see below) or no weight file gives the rules alone.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from itertools import pairwise, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

from blockwatch.feeds.phrases import Token

# Off: scored once on a holdout collected after it was trained (tests/fixtures/incidents/
# devset_holdout2.jsonl), rules + model gave incident F1 0.84 and type micro-F1 0.69 against the
# rules' 0.85 and 0.69, at about 16% more CPU: it did not generalise beyond its 674 training
# items. Kept for measuring (benchmarks/extract_quality.py --model, extract_cv.py).
ENABLED = False
PATH = Path(__file__).resolve().parent.parent / "data" / "extract_model.json"
TYPES = ("detention", "arrest", "blocking", "raid", "criminal_case", "fine", "assault", "shutdown",
         "harassment")

_KAZAKH_LETTER = re.compile("[әғқңөұүһіӘҒҚҢӨҰҮҺІ]")


_KEYS = itemgetter(3)  # Token.keys, at C speed
_NOT_LETTERS = bytes(c for c in range(128) if not chr(c).isalpha())


def language(text: str) -> str:
    """"en" when Latin letters are at least as many as the other characters beyond ASCII (as
    good as Cyrillic letters here, and much faster to count), else "kk" with two Kazakh letters
    or more, else "ru"."""
    ascii_part = text.encode("ascii", "ignore")
    if len(text) - len(ascii_part) <= len(ascii_part.translate(None, _NOT_LETTERS)):
        return "en"
    return "kk" if len(_KAZAKH_LETTER.findall(text)) >= 2 else "ru"


@lru_cache(maxsize=50_000)
def word_features(keys: frozenset[str]) -> tuple[str, ...]:
    """The features of one word: its strong keys, sorted (a stable order for the same sums)."""
    return tuple(sorted(k for k in keys if k[:2] in ("r:", "e:", "k:")))


@lru_cache(maxsize=50_000)
def _head(keys: frozenset[str]) -> str:
    """One key standing for a word in a pair: the shortest strong key (a Kazakh stem)."""
    strong = word_features(keys)
    return min(strong, key=lambda k: (len(k), k)) if strong else ""


def word_bag(tokens: Sequence[Token], pairs: bool) -> list[frozenset[str] | str]:
    """The distinct words (as key sets) and, with `pairs`, the distinct neighbour pairs of one
    sentence ("r:задержать>r:журналист"), as the units whose features are counted."""
    units: dict[Any, None] = dict.fromkeys(map(_KEYS, tokens))
    if pairs:
        for a, b in pairwise(tokens):
            if a.sentence == b.sentence:
                ha, hb = _head(a.keys), _head(b.keys)
                if ha and hb:
                    units[ha + ">" + hb] = None
    return list(units)


@lru_cache(maxsize=4096)
def rule_features(lang: str, incident: bool = False, types: tuple[str, ...] = (), status: str | None = None,
                  press: bool = False, outlets: bool = False, people: bool = False,
                  aggregate: bool = False, *, rules: bool = True) -> tuple[str, ...]:
    """The language and what the rules decided, alone and crossed with the language (only the
    language when the model does not look at the rules)."""
    if not rules:
        return ("lang:" + lang,)
    base = ["R:inc" if incident else "R:noinc"]
    base += ["R:" + t for t in types]
    base.append(f"R:ntypes:{min(len(types), 3)}")
    if status:
        base.append("R:status:" + status)
    base += [name for name, on in (("R:press", press), ("R:outlet", outlets), ("R:person", people),
                                   ("R:aggregate", aggregate)) if on]
    return ("lang:" + lang, *base, *(f"{lang}|{b}" for b in base))


@lru_cache(maxsize=4096)
def fired_labels(fired: tuple[str, ...]) -> frozenset[str]:
    """The distinct labels of the phrases that matched ("type:arrest+type:criminal_case" is two)."""
    out = set()
    for f in set(fired):
        if "+" in f:
            out.update(f.split("+"))
        else:
            out.add(f)
    return frozenset(out)


class Inputs(NamedTuple):  # a tuple: made for every entry, so cheap to build
    """What the model sees of an entry (see `features`)."""
    units: list[frozenset[str] | str]  # distinct words (key sets) and word pairs
    rules: tuple[str, ...]  # `rule_features`
    fired: frozenset[str]  # `fired_labels`, empty when the model does not look at the rules


def features(inputs: Inputs) -> dict[str, float]:
    """Feature counts (for training and explanations; `Model.score` sums cached vectors instead)."""
    out: dict[str, float] = {}
    for u in inputs.units:
        for f in (word_features(u) if isinstance(u, frozenset) else (u,)):
            out[f] = out.get(f, 0.0) + 1.0
    for f in (*inputs.rules, *("F:" + label for label in inputs.fired)):
        out[f] = out.get(f, 0.0) + 1.0
    return out


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@lru_cache(maxsize=64)
def _bound(margin: float) -> float:
    """The log-odds beyond which the model overrides the rules: 0 for a margin of 0.5 (the model
    decides), infinite for 0 (the rules decide)."""
    return math.inf if margin <= 0 else logit(1 - min(margin, 0.5))


def decide(margins: tuple[float, float], z: float, type_z: Callable[[], Sequence[float]],
           rule_incident: bool, rule_types: Sequence[str]) -> tuple[bool, tuple[str, ...]]:
    """(incident, types): the rules' decision unless the model is confident against it: a
    probability below the margin is no, above 1 - margin yes; a margin of 0.5 lets the model
    decide everything, 0 nothing. `margins`: for "incident" and for the types of an incident.
    An incident keeps at least its likeliest type. `z`: the log-odds of an incident; `type_z`
    gives those of each type, asked only when needed (see `Model.score`)."""
    hi = _bound(margins[0])
    incident = True if z > hi else False if z < -hi else (z >= 0.0 if hi == 0 else rule_incident)
    if not incident:
        return False, tuple(rule_types)  # not an incident: the rules' reading stays as it was
    hi = _bound(margins[1])
    if hi == math.inf and rule_types:
        return True, tuple(rule_types)
    zs = type_z()
    if hi == 0:
        types = tuple(t for t, zt in zip(TYPES, zs, strict=True) if zt >= 0.0)
    else:
        types = tuple(t for t, zt in zip(TYPES, zs, strict=True)
                      if zt > hi or (zt >= -hi and t in rule_types))
    if not types:
        best = max(range(len(TYPES)), key=lambda i: (zs[i], -i))
        types = (TYPES[best],)
    return True, types


class Model:
    """Weights for "incident" and each type, from the weight file (see benchmarks/train_extract.py)."""

    def __init__(self, data: Mapping[str, Any]):
        self.pairs: bool = bool(data["pairs"])
        self.rules: bool = bool(data["rules"])
        # for "incident" and for the types; see `decide`
        self.margins: tuple[float, float] = (float(data["margins"][0]), float(data["margins"][1]))
        models = data["models"]
        self.bias = float(models["incident"]["bias"])
        self.type_bias = tuple(float(models[t]["bias"]) for t in TYPES)
        self.incident = {f: float(w) for f, w in models["incident"]["weights"].items()}
        types: dict[str, list[float]] = {}
        for i, t in enumerate(TYPES):
            for f, w in models[t]["weights"].items():
                types.setdefault(f, [0.0] * len(TYPES))[i] = float(w)
        self.types = {f: tuple(v) for f, v in types.items()}
        # a word's (or pair's, or the rules' features') summed weights: 0.0 or () when none;
        # the incident's are asked for every entry, the types' only when needed
        self._units = _Cache(self._unit_weight)
        self._type_units = _Cache(self._unit_vector)
        self._rules = _Cache(lambda rules: math.fsum(self.incident.get(f, 0.0) for f in rules))
        self._type_rules = _Cache(self._rules_vector)
        self._fired = {f[2:]: w for f, w in self.incident.items() if f.startswith("F:")}
        self._type_fired = {f[2:]: v for f, v in self.types.items() if f.startswith("F:")}

    @staticmethod
    def _features(unit: frozenset[str] | str) -> tuple[str, ...]:
        return word_features(unit) if isinstance(unit, frozenset) else (unit,)

    def _unit_weight(self, unit: frozenset[str] | str) -> float:
        get = self.incident.get
        return math.fsum(get(f, 0.0) for f in self._features(unit))

    def _unit_vector(self, unit: frozenset[str] | str) -> tuple[float, ...]:
        vecs = [v for v in map(self.types.get, self._features(unit)) if v is not None]
        if not vecs:
            return ()
        return vecs[0] if len(vecs) == 1 else tuple(map(math.fsum, zip(*vecs, strict=True)))

    def _rules_vector(self, rules: tuple[str, ...]) -> tuple[float, ...]:
        vecs = [v for v in map(self.types.get, rules) if v is not None]
        return tuple(map(math.fsum, zip((0.0,) * len(TYPES), *vecs, strict=True)))

    def score_incident(self, inputs: Inputs) -> float:
        """The log-odds of an incident: the sum of the weights of `features`."""
        return (self.bias + self._rules[inputs.rules] + sum(map(self._units.__getitem__, inputs.units))
                + sum(map(self._fired.get, inputs.fired, _ZEROS)))

    def score_types(self, inputs: Inputs) -> list[float]:
        """The log-odds of each type (in the order of TYPES)."""
        fired = self._type_fired.get
        # words the model has no weights for give (), which filter drops
        vecs = [self.type_bias, self._type_rules[inputs.rules],
                *filter(None, map(self._type_units.__getitem__, inputs.units)),
                *filter(None, map(fired, inputs.fired))]
        return [sum(col) for col in zip(*vecs, strict=True)]

    def score(self, inputs: Inputs) -> list[float]:
        """The log-odds of an incident, then of each type."""
        return [self.score_incident(inputs), *self.score_types(inputs)]

    def clear(self) -> None:
        """Forget the cached sums (for measuring a cold start)."""
        for c in (self._units, self._type_units, self._rules, self._type_rules):
            c.clear()


_ZEROS = repeat(0.0)


class _Cache(dict):  # type: ignore[type-arg]
    """A cache whose hits are a plain dict lookup (C speed); emptied when it grows too big."""

    LIMIT = 50_000

    def __init__(self, make: Callable[[Any], Any]):
        super().__init__()
        self.make = make

    def __missing__(self, key: Any) -> Any:
        if len(self) >= self.LIMIT:
            self.clear()
        value = self[key] = self.make(key)
        return value


@lru_cache(maxsize=1)
def load(path: Path = PATH) -> Model | None:
    """The shipped model, or None when there is no weight file."""
    if not path.exists():
        return None
    return Model(json.loads(path.read_text(encoding="utf-8")))


def active() -> Model | None:
    return load() if ENABLED else None


def _describe(f: str) -> str:
    """A rule or language feature in words: "rules: no incident", "rules (kk): detention",
    "phrase: type:detention", "language: kk"."""
    if f.startswith("F:"):
        return "phrase: " + f[2:]
    if f.startswith("lang:"):
        return "language: " + f[5:]
    lang, _, rule = f.rpartition("|")
    what = {"R:inc": "incident", "R:noinc": "no incident"}.get(rule, rule[2:].replace(":", " "))
    return f"rules ({lang}): {what}" if lang else f"rules: {what}"


def explain(model: Model, name: str, inputs: Inputs, toward: bool, tokens: Sequence[Token],
            text: str, n: int = 5) -> list[str]:
    """The `n` words (or rule features) that pushed `name` most toward (True) or against its
    decision, as the text writes them ("задержали +1.20", "rules: no incident -0.80"). A word's
    weight is the sum over its keys (a lemma and its Kazakh forms count together)."""
    if name == "incident":
        weights = [*zip(inputs.units, map(model._units.__getitem__, inputs.units), strict=True),
                   *((f, model.incident.get(f, 0.0)) for f in inputs.rules),
                   *((f, model._fired.get(f, 0.0)) for f in sorted(inputs.fired))]
    else:
        i = TYPES.index(name)
        vectors = [*zip(inputs.units, map(model._type_units.__getitem__, inputs.units), strict=True),
                   *((f, model.types.get(f, ())) for f in inputs.rules),
                   *((f, model._type_fired.get(f, ())) for f in sorted(inputs.fired))]
        weights = [(u, v[i] if v else 0.0) for u, v in vectors]
    ranked = sorted(((w, u) for u, w in weights if w and (w > 0) == toward),
                    key=lambda wu: -abs(wu[0]))[:n]
    out = []
    for w, u in ranked:
        if isinstance(u, frozenset):  # a word: as the text writes it
            label = next((text[t.start:t.end] for t in tokens if t.keys is u or t.keys == u), "?")
        elif ">" in u:  # a pair of words
            label = " ".join(next((text[t.start:t.end] for t in tokens if k in t.keys), k[2:])
                             for k in u.split(">"))
        elif u in inputs.fired:
            label = "phrase: " + u
        else:
            label = _describe(u)
        out.append(f"{label} {w:+.2f}")
    return out
