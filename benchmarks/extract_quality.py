"""Extraction quality on labelled real headlines (tests/fixtures/incidents/devset_*.jsonl):
precision, recall and F1 of "is an incident", micro-F1 over incident types, outlet recall and
precision, status and country accuracy, per language and per split. Not a test: prints numbers.

    .venv/bin/python benchmarks/extract_quality.py            # the tables
    .venv/bin/python benchmarks/extract_quality.py --misses   # and what the `rules` split misses
    .venv/bin/python benchmarks/extract_quality.py --split rules --misses   # while writing rules

Whoever writes rules iterates with `--split rules`, which scores and prints only that split: the
`measure` table is run once, at the end, and its numbers are reported as they are.

Each item is `split` "rules" (may be read while writing rules) or "measure" (never read: the
honest estimate). Only misses of the `rules` split are ever printed. Extraction runs on title +
summary against the shipped target list probes/kz.toml and people list probes/people.toml,
with no country fallback from a feed (the text, the named outlets or the language give it).

The extractor as shipped is the rules alone. `--model` adds the learned model
(src/blockwatch/feeds/model.py, off by default), which was trained on the rules, measure and
holdout items: with it, those splits are scores on its training data, not an estimate; the honest
comparison is cross-validated (benchmarks/extract_cv.py) and the later held-out sets, which it
never saw:

    .venv/bin/python benchmarks/extract_quality.py --model
    .venv/bin/python benchmarks/extract_quality.py --devset PATH  # a .jsonl file or a folder

`--extractor FILE` measures another version of extract.py (for a before/after comparison, e.g.
`git show HEAD~5:src/blockwatch/feeds/extract.py > /tmp/old_extract.py`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from blockwatch.feeds import review  # noqa: E402
from blockwatch.feeds.people import load_people  # noqa: E402
from blockwatch.targets import load_targets  # noqa: E402

DEVSET = ROOT / "tests" / "fixtures" / "incidents"
# rules: may be read while writing rules; measure: never read (the set's own estimate);
# holdout: collected later by someone who never saw the rules, from other articles, and scored
# once (devset_holdout.jsonl; its sources in SOURCES_holdout.md); holdout2: collected the same
# way after the rules and the learned model were written, scored once (devset_holdout2.jsonl);
# holdout and holdout2 were read later, while writing rules; holdout3: collected the same way
# after that, scored once (devset_holdout3.jsonl), then read; holdout4: collected the same way
# after the labels were aligned to LABELLING.md and the rules that followed, scored once, then
# read; holdout5: collected the same way after the rules written on holdout4, scored once, then
# read; holdout6: collected the same way after the rules written on holdout5, scored once, then
# read; holdout7 (en, ru): collected the same way after the rules written on holdout6, scored once;
# field: every item of listing pages of the default feeds' publishers, whatever it is about, so
# incidents are as rare as in the feeds (15%), scored once (devset_field.jsonl, SOURCES_field.md),
# then read; field2: collected the same way after the rules written on field, scored once, then
# read; field3: collected the same way after the rules written on field2, scored once
SPLITS = ("rules", "measure", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6",
          "holdout7", "field", "field2", "field3")


def load_items(folder: Path = DEVSET) -> list[dict[str, Any]]:
    items = []
    for path in [folder] if folder.is_file() else sorted(folder.glob("devset_*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{n}: not JSON: {exc}") from None
            item["_where"] = f"{path.name}:{n}"
            items.append(item)
    return items


@dataclass
class Score(review.Score):
    """The product's scores (blockwatch.feeds.review, which `blockwatch review stats` prints),
    plus the extractor's outlet precision and the `rules` split's misses."""

    outlets_named: int = 0  # by the extractor
    misses: list[str] = field(default_factory=list)

    def incident(self) -> tuple[float, float, float]:
        return self.incident_prf()

    def types(self) -> float:
        return self.type_f1()

    def outlet_precision(self) -> float:
        return self.outlets_found / self.outlets_named if self.outlets_named else 1.0


def _extract(matcher: Any, item: dict[str, Any]) -> Any:
    try:
        return matcher.extract(item["title"], item.get("summary") or "", country=None)
    except TypeError:  # an older extractor without the country argument
        return matcher.extract(item["title"], item.get("summary") or "")


def score(items: Iterable[dict[str, Any]], matcher: Any) -> dict[tuple[str, str], Score]:
    """Scores by (language, split), plus ("all", split)."""
    out: dict[tuple[str, str], Score] = {}
    for item in items:
        x = _extract(matcher, item)
        labels = review.Labels(bool(item["incident"]), tuple(item["types"] or ()), item.get("status"),
                               tuple(item["outlets"] or ()), (), item.get("country"))
        # the extractor's status and country as it gives them, on an incident or not
        read = review.Labels(bool(x.is_incident), tuple(x.types), getattr(x, "status", None),
                             tuple(x.outlets), (), getattr(x, "country", None))
        for key in ((item["lang"], item["split"]), ("all", item["split"])):
            s = out.setdefault(key, Score())
            s.add(labels, read)
            s.outlets_named += len(x.outlets)
            if key[0] == "all" or item["split"] != "rules":
                continue  # only the rules split's misses may be shown
            want, got = labels.incident, read.incident
            want_types = set(labels.types) if want else set()
            got_types = set(read.types) if got else set()
            want_outlets = set(labels.outlets)
            wrong = []
            if want != got:
                wrong.append(f"incident {got} (want {want})")
            if want_types != got_types:
                wrong.append(f"types {sorted(got_types)} (want {sorted(want_types)})")
            if want_outlets - set(x.outlets):
                wrong.append(f"outlets {sorted(x.outlets)} (want {sorted(want_outlets)})")
            if want and getattr(x, "status", None) != item.get("status"):
                wrong.append(f"status {getattr(x, 'status', None)} (want {item.get('status')})")
            if item.get("country") and getattr(x, "country", None) != item["country"]:
                wrong.append(f"country {getattr(x, 'country', None)} (want {item['country']})")
            if wrong:
                s.misses.append(f"{item['id']}: {'; '.join(wrong)}\n    {item['title'][:160]}")
    return out


def load_matcher(extractor: Path | None) -> Any:
    if extractor is None:
        from blockwatch.feeds.extract import Matcher
    else:
        spec = importlib.util.spec_from_file_location("other_extract", extractor)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules["other_extract"] = mod
        spec.loader.exec_module(mod)
        Matcher = mod.Matcher
    people_file = ROOT / "probes" / "people.toml"
    people = load_people([people_file]) if people_file.exists() else []
    return Matcher(load_targets([ROOT / "probes" / "kz.toml"]), people)


def table(scores: dict[tuple[str, str], Score], splits: Iterable[str] = SPLITS) -> str:
    rows = ["split    lang  items  inc.P  inc.R  inc.F1  type-F1  outlet-R  outlet-P  status  country"]
    for split in splits:
        for lang in ("en", "ru", "kk", "all"):
            s = scores.get((lang, split))
            if s is None:
                continue
            p, r, f = s.incident()
            rows.append(f"{split:8} {lang:4} {s.n:6} {p:6.2f} {r:6.2f} {f:7.2f} {s.types():8.2f} "
                        f"{s.outlet_recall():9.2f} {s.outlet_precision():9.2f} {s.status_accuracy():7.2f} "
                        f"{s.country_accuracy():8.2f}")
    return "\n".join(rows)


def type_table(scores: dict[tuple[str, str], Score], splits: Iterable[str]) -> str:
    """Precision, recall and F1 of each incident type over incidents (the type micro-F1's parts)."""
    rows = ["split    type           want  found  P     R     F1"]
    for split in splits:
        s = scores.get(("all", split))
        if s is None:
            continue
        for t in sorted(s.by_type):
            tp, fp, fn = s.by_type[t]
            p, r, f = Score.f1(tp, fp, fn)
            rows.append(f"{split:8} {t:14} {tp + fn:4} {tp + fp:6}  {p:4.2f}  {r:4.2f}  {f:4.2f}")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--misses", action="store_true", help="print the rules split's misses")
    ap.add_argument("--extractor", type=Path, help="another extract.py to measure")
    ap.add_argument("--types", action="store_true", help="also print each type's precision and recall")
    ap.add_argument("--model", action="store_true",
                    help="rules and the (off by default) learned model, see feeds/model.py")
    ap.add_argument("--devset", type=Path, default=DEVSET,
                    help="a .jsonl file or a folder of devset_*.jsonl files")
    ap.add_argument("--split", choices=SPLITS,
                    help="score and print only this split (`rules` while writing rules)")
    args = ap.parse_args()
    if args.model:
        from blockwatch.feeds import model

        model.ENABLED = True
    items = [i for i in load_items(args.devset) if args.split is None or i["split"] == args.split]
    scores = score(items, load_matcher(args.extractor))
    present = {i["split"] for i in items}  # another set may name its own splits
    splits = [s for s in SPLITS if s in present] + sorted(present - set(SPLITS))
    print(table(scores, (args.split,) if args.split else splits))
    print("status: accuracy over labelled incidents; country: over items with a country label")
    if args.types:
        print()
        print(type_table(scores, (args.split,) if args.split else splits))
    if args.misses:
        for lang in ("en", "ru", "kk"):
            s = scores.get((lang, "rules"))
            if s and s.misses:
                print(f"\n--- misses, rules split, {lang} ({len(s.misses)})")
                print("\n".join(s.misses))


if __name__ == "__main__":
    main()
