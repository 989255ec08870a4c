"""A person's reading of a feed entry, and how the extractor compares with such readings (pure).

Staff correct what the extractor got wrong (`blockwatch review mark`); each reviewed entry is then
labelled text from the feeds this installation actually reads. `score` measures an extractor on
those entries with the scores of the labelled sets in tests/fixtures/incidents (incident
precision, recall and F1, type micro-F1, outlet recall, status and country accuracy), and
`labelled_item` writes an entry in those sets' schema, so the benchmarks read it as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from blockwatch.feeds.extract import STATUSES, TYPES


class ReviewError(ValueError):
    """A review that cannot be stored: says which field and what was expected."""


@dataclass(frozen=True)
class Labels:
    """One reading of an entry: a person's, or the extractor's."""

    incident: bool
    types: tuple[str, ...] = ()
    status: str | None = None
    outlets: tuple[str, ...] = ()
    people: tuple[str, ...] = ()
    country: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"incident": self.incident, "types": list(self.types), "status": self.status,
                "outlets": list(self.outlets), "people": list(self.people),
                "country": self.country}

    @classmethod
    def from_json(cls, v: Any) -> Labels | None:
        if not isinstance(v, dict) or not isinstance(v.get("incident"), bool):
            return None

        def strings(key: str) -> tuple[str, ...]:
            x = v.get(key)
            return tuple(str(i) for i in x) if isinstance(x, list) else ()

        status, country = v.get("status"), v.get("country")
        return cls(v["incident"], strings("types"), status if isinstance(status, str) else None,
                   strings("outlets"), strings("people"),
                   country if isinstance(country, str) else None)

    @classmethod
    def of(cls, x: Any) -> Labels:
        """The extractor's reading (an `Extraction`) as labels: no types when it is no incident."""
        inc = bool(x.is_incident)
        return cls(inc, tuple(x.types) if inc else (), (x.status or None) if inc else None,
                   tuple(x.outlets), tuple(x.people), x.country or None)


def split_list(text: str | None, separators: str = ",;") -> tuple[str, ...]:
    """"a, b" or "a;b" as a list (people: ";" only, since a name may hold a comma)."""
    if not text:
        return ()
    parts = re.split(f"[{re.escape(separators)}]", text)
    return tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))


def checked(labels: Labels, *, outlets: Iterable[str]) -> Labels:
    """The labels if every field holds what it may, else ReviewError naming the field."""
    known = set(outlets)
    bad = [t for t in labels.types if t not in TYPES]
    if bad:
        raise ReviewError(f"types: unknown {', '.join(bad)} (expected some of {', '.join(TYPES)})")
    if labels.incident and not labels.types:
        raise ReviewError("types: an incident needs at least one type "
                          f"({', '.join(TYPES)}); use --not-incident for no incident")
    if not labels.incident and (labels.types or labels.status):
        raise ReviewError("--not-incident takes no types and no status")
    if labels.status is not None and labels.status not in STATUSES:
        raise ReviewError(f"status: unknown {labels.status!r} (expected one of "
                          f"{', '.join(STATUSES)}, or none)")
    bad = [o for o in labels.outlets if o not in known]
    if bad:
        raise ReviewError(f"outlets: {', '.join(bad)} not in the target lists (names as in "
                          "probes/*.toml, e.g. " + ", ".join(sorted(known)[:3]) + ")")
    if labels.country is not None and not re.fullmatch(r"[A-Z]{2}", labels.country):
        raise ReviewError(f"country: {labels.country!r} is not a two-letter code (KZ, KG, RU), "
                          "or none")
    return Labels(labels.incident, tuple(dict.fromkeys(labels.types)), labels.status,
                  tuple(dict.fromkeys(labels.outlets)), tuple(dict.fromkeys(labels.people)),
                  labels.country)


@dataclass
class Score:
    """The labelled sets' scores, of one language or all."""

    n: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    type_tp: int = 0
    type_fp: int = 0
    type_fn: int = 0
    outlets: int = 0
    outlets_found: int = 0
    status_n: int = 0
    status_ok: int = 0
    country_n: int = 0
    country_ok: int = 0
    by_type: dict[str, list[int]] = field(default_factory=dict)  # type -> [tp, fp, fn]

    @staticmethod
    def f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    def incident_prf(self) -> tuple[float, float, float]:
        return self.f1(self.tp, self.fp, self.fn)

    def type_f1(self) -> float:
        return self.f1(self.type_tp, self.type_fp, self.type_fn)[2]

    def outlet_recall(self) -> float:
        return self.outlets_found / self.outlets if self.outlets else 1.0

    def status_accuracy(self) -> float:
        return self.status_ok / self.status_n if self.status_n else 1.0

    def country_accuracy(self) -> float:
        return self.country_ok / self.country_n if self.country_n else 1.0

    def add(self, want: Labels, got: Labels) -> None:
        self.n += 1
        self.tp += want.incident and got.incident
        self.fp += got.incident and not want.incident
        self.fn += want.incident and not got.incident
        want_types = set(want.types) if want.incident else set()
        got_types = set(got.types) if got.incident else set()
        self.type_tp += len(want_types & got_types)
        self.type_fp += len(got_types - want_types)
        self.type_fn += len(want_types - got_types)
        for t in want_types | got_types:
            c = self.by_type.setdefault(t, [0, 0, 0])
            c[0] += t in want_types and t in got_types
            c[1] += t in got_types and t not in want_types
            c[2] += t in want_types and t not in got_types
        self.outlets += len(set(want.outlets))
        self.outlets_found += len(set(want.outlets) & set(got.outlets))
        if want.incident:
            self.status_n += 1
            self.status_ok += got.status == want.status
        if want.country:
            self.country_n += 1
            self.country_ok += got.country == want.country


def score(pairs: Iterable[tuple[str, Labels, Labels]]) -> dict[str, Score]:
    """(language, a person's labels, the extractor's) -> scores per language and "all"."""
    out: dict[str, Score] = {}
    for lang, want, got in pairs:
        for key in (lang, "all"):
            out.setdefault(key, Score()).add(want, got)
    return out


def score_lines(scores: dict[str, Score], languages: Sequence[str]) -> list[str]:
    rows = ["LANG  ENTRIES  INC.P  INC.R  INC.F1  TYPE-F1  OUTLET-R  STATUS  COUNTRY"]
    for lang in [*[x for x in languages if x in scores and x != "all"], "all"]:
        s = scores.get(lang)
        if s is None:
            continue
        p, r, f = s.incident_prf()
        status = f"{s.status_accuracy():7.2f}" if s.status_n else f"{'-':>7}"
        country = f"{s.country_accuracy():8.2f}" if s.country_n else f"{'-':>8}"  # nothing to score
        rows.append(f"{lang:5} {s.n:7} {p:6.2f} {r:6.2f} {f:7.2f} {s.type_f1():8.2f} "
                    f"{s.outlet_recall():9.2f} {status} {country}")
    return rows


def labelled_item(*, entry_id: int, lang: str, title: str, summary: str, url: str,
                  published: str | None, labels: Labels, note: str, feed: str,
                  extracted: Labels | None) -> dict[str, Any]:
    """A reviewed entry in the labelled sets' schema (split "reviewed"); `extracted` is what the
    extractor said before the review, kept beside the labels."""
    return {
        "id": f"reviewed-{entry_id}", "lang": lang, "title": title, "summary": summary,
        "source_url": url, "published": (published or "")[:10] or None,
        "incident": labels.incident, "types": list(labels.types), "status": labels.status,
        "outlets": list(labels.outlets), "people": list(labels.people),
        "country": labels.country, "notes": note, "split": "reviewed", "feed": feed,
        "extracted": extracted.to_json() if extracted else None,
    }
