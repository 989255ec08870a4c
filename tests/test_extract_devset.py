"""Extraction against labelled real headlines (tests/fixtures/incidents/devset_*.jsonl, sources in
SOURCES_*.md beside them): every item's labels are well-formed, and quality stays above floors set
just below what was measured, so a regression fails. The `measure` split was never read while
writing rules; its scores are the honest estimate of the rules alone (FLOORS). The `holdout` and
`holdout2` splits were honest estimates when first scored, and have since been read while writing
the precision rules (so, like `rules`, they now only guard against regressions); `holdout3` and
`holdout4`, each collected by people who never saw the extractor, were scored once when they
arrived and read afterwards, as were `holdout5` and `holdout6`; `holdout7`, collected the same way
last, was scored once and is the honest estimate now; `field`, `field2` and `field3` (every item of
listing pages of the feeds' publishers, so incidents are as rare as in the feeds) were each scored
once too, field3 last; `second_labels.jsonl` is a second labeller's reading of 240 held-out items,
which must stay in agreement with the first. The learned model (feeds/model.py, off in the product)
was trained on the rules, measure and holdout items, so its scores there are training scores: they
only guard the weights and their wiring (MODEL_FLOORS); its honest estimates are cross-validated
(benchmarks/extract_cv.py) and those of the held-out sets it was not trained on. Scoring is the one
of benchmarks/extract_quality.py (which prints the numbers and the `rules` split's misses)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from blockwatch.feeds import model
from blockwatch.feeds.extract import STATUSES, TYPES
from blockwatch.targets import load_targets

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("extract_quality", ROOT / "benchmarks" / "extract_quality.py")
assert _spec is not None and _spec.loader is not None
quality = importlib.util.module_from_spec(_spec)
sys.modules["extract_quality"] = quality  # dataclasses look their module up there
_spec.loader.exec_module(quality)

_spec = importlib.util.spec_from_file_location("extract_agreement",
                                               ROOT / "benchmarks" / "extract_agreement.py")
assert _spec is not None and _spec.loader is not None
agreement = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(agreement)

ITEMS: list[dict[str, Any]] = quality.load_items()
TARGETS = {t.name for t in load_targets([ROOT / "probes" / "kz.toml"])}
KEYS = {"id", "lang", "title", "summary", "source_url", "incident", "types", "status", "outlets",
        "people", "country", "split"}

# Floors: (split, language) -> (incident F1, type micro-F1, outlet recall, outlet precision,
# status accuracy, country accuracy), a little below the last measurement (README, "Extraction
# quality").
FLOORS: dict[tuple[str, str], tuple[float, float, float, float, float, float]] = {
    ("measure", "en"): (0.92, 0.78, 0.85, 0.94, 0.85, 0.90),
    ("measure", "ru"): (0.87, 0.78, 0.95, 0.96, 0.87, 0.80),
    ("measure", "kk"): (0.83, 0.65, 0.88, 0.96, 0.91, 0.91),
    ("measure", "all"): (0.89, 0.77, 0.91, 0.96, 0.87, 0.88),
    ("rules", "all"): (0.95, 0.87, 0.97, 0.96, 0.90, 0.87),
    # the holdout's outlet precision is low by labelling (media only; see README)
    ("holdout", "all"): (0.92, 0.78, 0.89, 0.60, 0.86, 0.87),
    # collected after the rules and the model, scored once (0.85, 0.69, 0.95, 0.92, 0.94, 0.93);
    # read since, while writing the precision rules
    ("holdout2", "all"): (0.88, 0.76, 0.92, 0.88, 0.90, 0.90),
    # collected after the precision rules, scored once (0.84, 0.65, 0.87, 0.89, 0.91, 0.82); read
    # since, while aligning the rules to LABELLING.md
    ("holdout3", "all"): (0.83, 0.69, 0.90, 0.93, 0.89, 0.80),
    # collected after that by three people who never saw the extractor, scored once (0.81, 0.70,
    # 0.93, 0.98, 0.94, 0.78); read since, for the kinds of error it showed
    ("holdout4", "all"): (0.83, 0.70, 0.91, 0.96, 0.92, 0.76),
    # collected after the rules written on holdout4, by three more people who never saw the
    # extractor, scored once (0.80, 0.69, 0.97, 1.00, 0.92, 0.80); read since
    ("holdout5", "all"): (0.80, 0.69, 0.95, 0.98, 0.90, 0.78),
    # collected the same way after the speech-offence rule, scored once (0.82, 0.68, 0.92, 0.88,
    # 0.98, 0.86); read since
    ("holdout6", "all"): (0.83, 0.70, 0.90, 0.86, 0.96, 0.84),
    # collected last (English and Russian only), the same way, scored once: the honest estimate now
    ("holdout7", "all"): (0.83, 0.70, 0.93, 0.84, 0.94, 0.86),
    # every item of listing pages of the default feeds' publishers (15% incidents), scored once
    # (0.64, 0.47, 0.86, 1.00, 0.94, 0.78): precision on ordinary news is the weak side; read since
    ("field", "all"): (0.80, 0.70, 0.84, 0.95, 0.90, 0.75),
    # collected the same way after the rules written on field, scored once (0.57, 0.46, 1.00, 0.86,
    # 1.00, 0.75); read since
    ("field2", "all"): (0.60, 0.49, 0.95, 0.82, 0.95, 0.72),
    # collected the same way after the rules written on field2, scored once: the honest estimate for
    # feed text (0.63, 0.57, 1.00, 1.00, 0.88, 0.55)
    ("field3", "all"): (0.61, 0.55, 0.95, 0.95, 0.85, 0.52),
}


# The extractor as shipped (rules and model), on its own training data: (incident F1, type
# micro-F1) a little below the last measurement.
MODEL_FLOORS: dict[tuple[str, str], tuple[float, float]] = {
    ("measure", "all"): (0.96, 0.80),
    ("holdout", "all"): (0.95, 0.76),
    ("rules", "all"): (0.97, 0.87),
}


def test_the_set_is_there() -> None:
    langs = {i["lang"] for i in ITEMS}
    assert {"en", "ru", "kk"} <= langs
    assert sum(i["split"] == "measure" for i in ITEMS) >= 100


@pytest.mark.parametrize("item", ITEMS, ids=[i["_where"] for i in ITEMS])
def test_labels_are_well_formed(item: dict[str, Any]) -> None:
    missing = KEYS - set(item)
    assert not missing, f"{item['_where']}: missing {sorted(missing)}"
    assert isinstance(item["id"], str) and item["id"]
    assert item["lang"] in ("en", "ru", "kk")
    assert item["split"] in quality.SPLITS
    assert isinstance(item["title"], str) and item["title"].strip()
    assert item["summary"] is None or isinstance(item["summary"], str)
    assert isinstance(item["incident"], bool)
    assert isinstance(item["types"], list) and set(item["types"]) <= set(TYPES), item["types"]
    assert len(set(item["types"])) == len(item["types"])
    if not item["incident"]:
        assert item["types"] == [] and item["status"] is None
    else:
        assert item["types"], "an incident has at least one type"
    assert item["status"] is None or item["status"] in STATUSES
    assert isinstance(item["outlets"], list) and set(item["outlets"]) <= TARGETS, item["outlets"]
    assert isinstance(item["people"], list) and all(isinstance(p, str) for p in item["people"])
    assert item["country"] is None or re.fullmatch(r"[A-Z]{2}", item["country"])
    assert isinstance(item["source_url"], str) and item["source_url"].startswith(("http://", "https://"))


def test_ids_are_unique() -> None:
    ids = [i["id"] for i in ITEMS]
    assert len(ids) == len(set(ids))


SECOND = agreement.load_second()


def test_second_labels_are_well_formed() -> None:
    """The second labeller's labels (LABELLING.md section 8) are labels of items in the sets."""
    by_id = {i["id"]: i for i in ITEMS}
    assert len(SECOND) == 240
    for lang in ("en", "ru", "kk"):
        assert sum(by_id[i]["lang"] == lang for i in SECOND if i in by_id) == 80, lang
    for id_, r in SECOND.items():
        assert id_ in by_id, f"{id_}: not in any devset file"
        assert set(r) == {"id", *agreement.LABELS, "notes"}, id_
        assert isinstance(r["incident"], bool) and r["incident"] == bool(r["types"]), id_
        assert set(r["types"]) <= set(TYPES) and len(set(r["types"])) == len(r["types"]), id_
        assert r["status"] is None or (r["incident"] and r["status"] in STATUSES), id_
        assert set(r["outlets"]) <= TARGETS, id_
        assert r["country"] is None or re.fullmatch(r"[A-Z]{2}", r["country"]), id_


def test_the_two_labellers_agree() -> None:
    """The agreement the README reports still holds for the labels as they are now: a relabelling
    that drifts from the guide shows up here."""
    items = agreement.sample(SECOND)
    s = quality.score(items, agreement.Labeller(items, SECOND))[("all", "agree")]
    assert s.incident()[2] >= 0.96 and s.types() >= 0.94, (s.incident(), s.types())


@pytest.fixture(scope="module")
def scores() -> dict[tuple[str, str], Any]:
    """The rules alone."""
    was = model.ENABLED
    model.ENABLED = False
    try:
        return quality.score(ITEMS, quality.load_matcher(None))
    finally:
        model.ENABLED = was


@pytest.fixture(scope="module")
def model_scores() -> dict[tuple[str, str], Any]:
    """With the learned model (off in the product)."""
    was = model.ENABLED
    model.ENABLED = True
    try:
        assert model.active() is not None, "the weight file is missing"
        return quality.score(ITEMS, quality.load_matcher(None))
    finally:
        model.ENABLED = was


@pytest.mark.parametrize("key", sorted(MODEL_FLOORS), ids=[f"{s}-{lang}" for s, lang in sorted(MODEL_FLOORS)])
def test_quality_floor_with_the_model(model_scores: dict[tuple[str, str], Any], key: tuple[str, str]) -> None:
    split, lang = key
    s = model_scores[(lang, split)]
    got = (s.incident()[2], s.types())
    names = ("incident F1", "type micro-F1")
    low = [f"{n} {g:.3f} < {f:.2f}" for n, g, f in zip(names, got, MODEL_FLOORS[key], strict=True) if g < f]
    assert not low, f"{key}: " + "; ".join(low)


@pytest.mark.parametrize("key", sorted(FLOORS), ids=[f"{s}-{lang}" for s, lang in sorted(FLOORS)])
def test_quality_floor(scores: dict[tuple[str, str], Any], key: tuple[str, str]) -> None:
    split, lang = key
    s = scores[(lang, split)]
    got = (s.incident()[2], s.types(), s.outlet_recall(), s.outlet_precision(), s.status_accuracy(),
           s.country_accuracy())
    names = ("incident F1", "type micro-F1", "outlet recall", "outlet precision", "status accuracy",
             "country accuracy")
    low = [f"{n} {g:.3f} < {f:.2f}" for n, g, f in zip(names, got, FLOORS[key], strict=True) if g < f]
    assert not low, f"{key}: " + "; ".join(low)
