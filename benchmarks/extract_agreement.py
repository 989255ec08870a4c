"""How far two labellers agree, and how far the extractor is from either, on the same items.

A second labeller relabelled a sample of items of the later held-out sets from their title and
summary and LABELLING.md alone, without seeing the first labels, the notes or the extractor
(tests/fixtures/incidents/second_labels.jsonl: 80 items per language, drawn at random with a
fixed seed from holdout4-holdout7). This prints, on those items:

1. the second labeller scored against the first labels (the agreement between the two: the best
   score an extractor can be expected to reach against either);
2. the rules scored against the first labels, and against the second.

    .venv/bin/python benchmarks/extract_agreement.py            # the tables
    .venv/bin/python benchmarks/extract_agreement.py --types    # and per type

Not a test: prints numbers. The scores are extract_quality.py's (incident F1, type micro-F1,
outlet recall and precision, status and country accuracy).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import extract_quality as q  # noqa: E402

SECOND = q.DEVSET / "second_labels.jsonl"
LABELS = ("incident", "types", "status", "outlets", "people", "country")


def load_second(path: Path = SECOND) -> dict[str, dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return {r["id"]: r for r in rows}


class Labeller:
    """The second labels as if they were an extractor's output, so extract_quality scores them."""

    def __init__(self, items: list[dict[str, Any]], second: dict[str, dict[str, Any]]) -> None:
        self._by_text = {(i["title"], i.get("summary") or ""): second[i["id"]] for i in items}

    def extract(self, title: str, summary: str, country: str | None = None) -> Any:
        r = self._by_text[(title, summary)]
        return SimpleNamespace(is_incident=bool(r["incident"]), types=list(r["types"]),
                               outlets=list(r["outlets"]), status=r["status"],
                               country=r["country"])


def sample(second: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The first-labelled items the second labeller saw, as one split named "agree"."""
    first = {i["id"]: i for i in q.load_items()}
    missing = sorted(set(second) - set(first))
    if missing:
        raise SystemExit(f"{SECOND.name}: ids not in any devset file: {', '.join(missing[:5])}")
    return [dict(first[i], split="agree") for i in second]


def relabelled(items: list[dict[str, Any]], second: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(i, **{k: second[i["id"]][k] for k in LABELS}) for i in items]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--types", action="store_true", help="also print each type's precision and recall")
    args = ap.parse_args()
    second = load_second()
    items = sample(second)
    rules = q.load_matcher(None)
    runs = (
        ("second labeller, scored against the first labels", items, Labeller(items, second)),
        ("rules, scored against the first labels", items, rules),
        ("rules, scored against the second labels", relabelled(items, second), rules),
    )
    for title, gold, system in runs:
        scores = q.score(gold, system)
        print(f"== {title}")
        print(q.table(scores, ("agree",)))
        if args.types:
            print(q.type_table(scores, ("agree",)))
        print()
    same = sum(i["incident"] == second[i["id"]]["incident"]
               and set(i["types"]) == set(second[i["id"]]["types"]) for i in items)
    print(f"{same} of {len(items)} items have the same incident and types from both labellers")


if __name__ == "__main__":
    main()
