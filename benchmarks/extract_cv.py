"""Cross-validation of the extractor's model against the rules alone, over every labelled
headline (tests/fixtures/incidents/devset_*.jsonl): stratified (by language and incident) 5-fold,
repeated with seeds 1 and 2. Not a test: prints numbers.

    .venv/bin/python benchmarks/extract_cv.py --jobs 2

The grid, fixed before the first run (the choice is the best mean over seeds of
(incident F1 + type micro-F1) / 2 over all items):
- L2 penalty `lam` in 1, 3, 10 (on the summed log loss);
- features: words only ("model only") or words + the rules' reading ("stacked"); word pairs
  on or off for the stacked model;
- how model and rules combine, a margin for "incident" and one for the types: 0.5 = the model
  decides; 0.3, 0.2, 0.1 = the rules decide unless the model's probability is below the
  margin or above 1 - margin; 0 (types only) = the rules decide the types.
The rules were written while reading the `rules` split, so the rules' features look better there
than on unseen text; the table also gives the scores over the other items alone ("unseen").

The shipped choice (benchmarks/train_extract.py, CHOSEN) departs from the best row in two ways:
word pairs are left out (the best row beats the same row without pairs by less than 0.005, and
pairs triple the features: a bigger weight file, slower scoring), and the incident margin is
0.3, not 0.5 (found before the run ended): the set is about 70% incidents and its negatives are
near misses, so a model that decides alone calls ordinary crime news an incident ("Man detained
for stealing a car", "Activists detained at a rally": scope tests in tests/test_feeds_extract.py
fail at 0.5, pass at 0.3).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import product
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import extract_quality  # noqa: E402
import train_extract as T  # noqa: E402

from blockwatch.feeds import model  # noqa: E402

FOLDS = 5
SEEDS = (1, 2)
LAMS = (1.0, 3.0, 10.0)
FEATURES = (("model only", False, False), ("stacked", False, True), ("stacked+pairs", True, True))
MARGINS = (0.5, 0.3, 0.2, 0.1)
TYPE_MARGINS = (0.5, 0.3, 0.2, 0.1, 0.0)

_DATA: list[T.Sample] = []


def folds(data: Sequence[T.Sample], seed: int) -> list[int]:
    """Each item's fold: every (language, incident) group shuffled and dealt round the folds."""
    rng = random.Random(seed)
    out = [0] * len(data)
    groups: dict[tuple[str, bool], list[int]] = {}
    for i, s in enumerate(data):
        groups.setdefault((s.item["lang"], bool(s.item["incident"])), []).append(i)
    start = 0
    for key in sorted(groups):
        idx = groups[key]
        rng.shuffle(idx)
        for k, i in enumerate(idx):
            out[i] = (start + k) % FOLDS
        start += len(idx)
    return out


def _run(task: tuple[int, int, float, bool, bool]) -> list[tuple[int, list[float]]]:
    """Train on all folds but one and score that one: (item index, log-odds of incident and types)."""
    seed, fold, lam, pairs, rules = task
    data = _DATA
    where = folds(data, seed)
    train = [s for s, f in zip(data, where, strict=True) if f != fold]
    m = model.Model(T.build(train, lam, pairs, rules, (0.5, 0.5)))
    out = []
    for i, (s, f) in enumerate(zip(data, where, strict=True)):
        if f == fold:
            from blockwatch.feeds.extract import model_inputs

            out.append((i, m.score(model_inputs(s.x, s.r, pairs=pairs, rules=rules))))
    return out


def _init(data: list[T.Sample]) -> None:
    _DATA[:] = data


class Counts:
    def __init__(self) -> None:
        self.tp = self.fp = self.fn = self.ttp = self.tfp = self.tfn = 0

    def add(self, item: dict[str, Any], got: bool, types: Sequence[str]) -> None:
        want = bool(item["incident"])
        self.tp += want and got
        self.fp += got and not want
        self.fn += want and not got
        w = set(item["types"]) if want else set()
        g = set(types) if got else set()
        self.ttp += len(w & g)
        self.tfp += len(g - w)
        self.tfn += len(w - g)

    def scores(self) -> tuple[float, float, float, float]:
        p, r, f = extract_quality.Score.f1(self.tp, self.fp, self.fn)
        return p, r, f, extract_quality.Score.f1(self.ttp, self.tfp, self.tfn)[2]


GROUPS = ("all", "en", "ru", "kk", "unseen", "unseen kk")


def _group(item: dict[str, Any]) -> list[str]:
    out = ["all", item["lang"]]
    if item["split"] != "rules":
        out += ["unseen"] + (["unseen kk"] if item["lang"] == "kk" else [])
    return out


def evaluate(data: Sequence[T.Sample], probs: dict[int, list[float]] | None,
             margins: tuple[float, float]) -> dict[str, Counts]:
    out = {g: Counts() for g in GROUPS}
    for i, s in enumerate(data):
        if probs is None:
            got, types = s.x.is_incident, s.x.types
        else:
            z = probs[i]
            got, types = model.decide(margins, z[0], lambda z=z: z[1:], s.x.is_incident, s.x.types)
        for g in _group(s.item):
            out[g].add(s.item, got, types)
    return out


def line(name: str, per_seed: list[dict[str, Counts]], groups: Sequence[str]) -> str:
    cells = []
    for g in groups:
        vals = [c[g].scores() for c in per_seed]
        p, r, f, t = (statistics.mean(v[k] for v in vals) for k in range(4))
        cells.append(f"{p:4.2f} {r:4.2f} {f:4.2f} {t:4.2f}")
    return f"{name:34} " + " | ".join(cells)


def header(groups: Sequence[str]) -> str:
    return f"{'':34} " + " | ".join(f"{g:^19}" for g in groups) + "\n" + f"{'':34} " + " | ".join(
        "P    R    F1   tyF1" for _ in groups)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    model.ENABLED = False  # the rules' own reading is what the model sees
    data = T.samples(T.training_items())
    _init(data)
    configs = [(name, lam, pairs, rules) for (name, pairs, rules), lam in product(FEATURES, LAMS)]
    tasks = [(seed, fold, lam, pairs, rules) for _, lam, pairs, rules in configs
             for seed in SEEDS for fold in range(FOLDS)]
    with ProcessPoolExecutor(args.jobs, initializer=_init, initargs=(data,)) as pool:
        results = list(pool.map(_run, tasks))
    probs: dict[tuple[Any, ...], dict[int, list[float]]] = {}
    for task, res in zip(tasks, results, strict=True):
        seed, _, lam, pairs, rules = task
        probs.setdefault((lam, pairs, rules, seed), {}).update(res)
    rows: list[tuple[float, str, list[dict[str, Counts]], tuple[float, bool, bool]]] = []
    rules_only = [evaluate(data, None, (0.0, 0.0))]
    for name, lam, pairs, rules in configs:
        for margins in product(MARGINS, TYPE_MARGINS) if rules else [(0.5, 0.5)]:
            per_seed = [evaluate(data, probs[(lam, pairs, rules, seed)], margins) for seed in SEEDS]
            aim = statistics.mean((c["all"].scores()[2] + c["all"].scores()[3]) / 2 for c in per_seed)
            rows.append((aim, f"{name} lam={lam:g} m={margins[0]:g}/{margins[1]:g}", per_seed,
                         (lam, pairs, rules)))
    groups = ("all", "unseen", "unseen kk")
    print(f"{len(data)} items, {FOLDS}-fold CV stratified by language and incident, seeds {SEEDS}; "
          "mean over seeds\n")
    print(header(groups))
    print(line("rules only", rules_only, groups))
    # per configuration: the model deciding everything, and its best combination with the rules
    for _, lam, pairs, rules in configs:
        mine = [r for r in rows if r[3] == (lam, pairs, rules)]
        for r in {id(r): r for r in (mine[0], max(mine, key=lambda r: r[0]))}.values():
            print(line(r[1], r[2], groups))
    best = max(rows, key=lambda r: r[0])
    only = max((r for r in rows if r[1].startswith("model only")), key=lambda r: r[0])
    stacked = max((r for r in rows if "m=0.5/0.5" in r[1] and not r[1].startswith("model only")),
                  key=lambda r: r[0])
    print(f"\nchosen (best (incident F1 + type F1) / 2, all items): {best[1]}\n")
    langs = ("en", "ru", "kk", "all")
    print(header(langs))
    print(line("(a) rules only", rules_only, langs))
    print(line(f"(b) {only[1]}", only[2], langs))
    print(line(f"    {stacked[1]}", stacked[2], langs))
    print(line(f"(c) {best[1]}", best[2], langs))


if __name__ == "__main__":
    main()
