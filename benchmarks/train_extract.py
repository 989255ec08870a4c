"""Train the extractor's model (src/blockwatch/feeds/model.py) on every labelled headline of
tests/fixtures/incidents/devset_*.jsonl and write its weights to src/blockwatch/data/extract_model.json.
Deterministic: the same devset, code and dictionaries give the same file, byte for byte.

    .venv/bin/python benchmarks/train_extract.py            # writes the weight file
    .venv/bin/python benchmarks/train_extract.py --check    # exit 1 if the file differs

The settings (`CHOSEN`) come from cross-validation, benchmarks/extract_cv.py, over a grid fixed
before any run (see there for the choice). Logistic regression with an L2 penalty, fitted by
L-BFGS in plain Python: one model for "is an incident" and one per type (one against the rest,
over all items).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from blockwatch.feeds import model  # noqa: E402
from blockwatch.feeds.extract import Extraction, Reading, model_inputs  # noqa: E402

OUT = model.PATH
NAMES = ("incident", *model.TYPES)
MIN_COUNT = 2  # a feature must occur in this many training items
DIGITS = 3  # weights are rounded (and the smallest dropped) so the file is small and the same everywhere
# from benchmarks/extract_cv.py (see its docstring): words + the rules' reading, no word pairs,
# lam 3; the model decides "incident" only when it is sure (margin 0.3), the rules the types
CHOSEN: dict[str, Any] = {"lam": 3.0, "pairs": False, "rules": True, "margins": (0.3, 0.0)}


@dataclass
class Sample:
    item: dict[str, Any]
    x: Extraction  # the rules' extraction
    r: Reading

    def targets(self) -> list[float]:
        want = bool(self.item["incident"])
        types = set(self.item["types"] or ())
        return [float(want), *(float(want and t in types) for t in model.TYPES)]


# holdout2 was collected after the model was trained and scored once, to tell whether it
# generalises: never trained on
TRAINED_ON = ("rules", "measure", "holdout")


def training_items() -> list[dict[str, Any]]:
    import extract_quality

    return [i for i in extract_quality.load_items() if i["split"] in TRAINED_ON]


def samples(items: Sequence[dict[str, Any]]) -> list[Sample]:
    import extract_quality

    matcher = extract_quality.load_matcher(None)
    return [Sample(i, *matcher.read(i["title"], i.get("summary") or "", country=None)) for i in items]


def feature_dicts(data: Sequence[Sample], pairs: bool, rules: bool) -> list[dict[str, float]]:
    return [model.features(model_inputs(s.x, s.r, pairs=pairs, rules=rules)) for s in data]


# --- logistic regression -------------------------------------------------------------------------

Rows = list[tuple[list[int], list[float]]]


def _loss_grad(theta: list[float], rows: Rows, y: Sequence[float], lam: float
               ) -> tuple[float, list[float]]:
    """Summed log loss + lam/2 |w|^2 (the bias, theta[0], is not penalised) and its gradient."""
    g = [0.0] * len(theta)
    for j in range(1, len(theta)):
        g[j] = lam * theta[j]
    loss = 0.5 * lam * sum(t * t for t in theta[1:])
    get = theta.__getitem__
    for (idx, val), yi in zip(rows, y, strict=True):
        z = theta[0] + sum(map(float.__mul__, map(get, idx), val))
        # log(1 + exp(-z)) for y = 1, log(1 + exp(z)) for y = 0, computed stably
        s = z if yi < 0.5 else -z
        loss += s + math.log1p(math.exp(-s)) if s > 0 else math.log1p(math.exp(s))
        r = model.sigmoid(z) - yi
        if r:
            g[0] += r
            for j, v in zip(idx, val, strict=True):
                g[j] += r * v
    return loss, g


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return math.fsum(map(float.__mul__, a, b))


def fit(rows: Rows, y: Sequence[float], n: int, lam: float, iters: int = 150) -> list[float]:
    """L-BFGS (memory 8, backtracking line search) from zero; deterministic. Returns theta with
    the bias first."""
    theta = [0.0] * (n + 1)
    loss, g = _loss_grad(theta, rows, y, lam)
    hist: list[tuple[list[float], list[float], float]] = []
    for _ in range(iters):
        q = list(g)
        alphas = []
        for s, yv, rho in reversed(hist):
            a = rho * _dot(s, q)
            alphas.append(a)
            q = [qi - a * yi for qi, yi in zip(q, yv, strict=True)]
        if hist:
            s, yv, _ = hist[-1]
            gamma = _dot(s, yv) / _dot(yv, yv)
            q = [gamma * qi for qi in q]
        else:
            q = [qi / max(1.0, math.sqrt(_dot(g, g))) for qi in q]
        for (s, yv, rho), a in zip(hist, reversed(alphas), strict=True):
            b = rho * _dot(yv, q)
            q = [qi + si * (a - b) for qi, si in zip(q, s, strict=True)]
        d = [-qi for qi in q]
        slope = _dot(g, d)
        if slope >= 0:  # not a descent direction: restart from the gradient
            hist.clear()
            d = [-gi for gi in g]
            slope = -_dot(g, g)
        step = 1.0
        while True:
            new = [t + step * di for t, di in zip(theta, d, strict=True)]
            new_loss, new_g = _loss_grad(new, rows, y, lam)
            if new_loss <= loss + 1e-4 * step * slope or step < 1e-8:
                break
            step *= 0.5
        s = [a - b for a, b in zip(new, theta, strict=True)]
        yv = [a - b for a, b in zip(new_g, g, strict=True)]
        sy = _dot(s, yv)
        if sy > 1e-12:
            hist.append((s, yv, 1.0 / sy))
            del hist[:-8]
        done = loss - new_loss <= 1e-7 * max(1.0, abs(loss))
        theta, loss, g = new, new_loss, new_g
        if done:
            break
    return theta


def train(feats: Sequence[dict[str, float]], targets: Sequence[Sequence[float]], lam: float
          ) -> dict[str, Any]:
    """Every model's bias and weights (by feature name) from feature counts and targets."""
    df: dict[str, int] = {}
    for f in feats:
        for k in f:
            df[k] = df.get(k, 0) + 1
    vocab = sorted(k for k, c in df.items() if c >= MIN_COUNT)
    index = {k: i + 1 for i, k in enumerate(vocab)}
    rows: Rows = []
    for f in feats:
        kept = sorted((index[k], v) for k, v in f.items() if k in index)
        rows.append(([i for i, _ in kept], [v for _, v in kept]))
    out: dict[str, Any] = {}
    for m, name in enumerate(NAMES):
        theta = fit(rows, [t[m] for t in targets], len(vocab), lam)
        weights = {k: round(theta[index[k]], DIGITS) for k in vocab if round(theta[index[k]], DIGITS)}
        out[name] = {"bias": round(theta[0], DIGITS), "weights": weights}
    return out


def build(data: Sequence[Sample], lam: float, pairs: bool, rules: bool, margins: tuple[float, float]
          ) -> dict[str, Any]:
    feats = feature_dicts(data, pairs, rules)
    return {"pairs": pairs, "rules": rules, "margins": list(margins), "lam": lam,
            "trained_on": len(data), "models": train(feats, [s.targets() for s in data], lam)}


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if the shipped file is not what training gives")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    text = dumps(build(samples(training_items()), **CHOSEN))
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        print("the same" if same else f"{args.out} differs from what training gives")
        raise SystemExit(0 if same else 1)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.encode()) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
