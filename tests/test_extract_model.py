"""The extractor's model (feeds/model.py): the shipped weights are what the training script gives
from the labelled set, it changes decisions only when it is confident, and then the evidence
says so, with the words that weighed most."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from blockwatch.config import Person
from blockwatch.feeds import model
from blockwatch.feeds.extract import Matcher, second_opinion
from blockwatch.targets import load_targets

ROOT = Path(__file__).resolve().parent.parent


def _bench(name: str) -> Any:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(autouse=True)
def model_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model is off in the product; these tests are about what it does when on."""
    monkeypatch.setattr(model, "ENABLED", True)


@pytest.fixture(scope="module")
def shipped() -> Matcher:
    return Matcher(load_targets([ROOT / "probes" / "kz.toml"]),
                   [Person(name="Aigul Saparova", aliases=["Айгуль Сапарова"])])


def _model(incident: dict[str, float], bias: float = 0.0, types: dict[str, float] | None = None,
           type_weights: dict[str, dict[str, float]] | None = None, margin: float = 0.2) -> model.Model:
    """A hand-made model: `types` gives each type's bias (default -5: never), `type_weights` its words."""
    models = {"incident": {"bias": bias, "weights": incident}}
    for t in model.TYPES:
        models[t] = {"bias": (types or {}).get(t, -5.0), "weights": (type_weights or {}).get(t, {})}
    return model.Model({"pairs": False, "rules": True, "margins": [margin, margin], "models": models})


def test_the_weights_are_what_training_gives() -> None:
    train = _bench("train_extract")
    text = train.dumps(train.build(train.samples(train.training_items()), **train.CHOSEN))
    assert model.PATH.read_text(encoding="utf-8") == text, \
        "run .venv/bin/python benchmarks/train_extract.py and commit the weight file"
    assert len(text.encode()) < 1_000_000


def test_the_shipped_model_loads() -> None:
    m = model.load()
    assert m is not None and all(0 <= margin <= 0.5 for margin in m.margins)
    data = json.loads(model.PATH.read_text(encoding="utf-8"))
    assert set(data["models"]) == {"incident", *model.TYPES}
    assert data["trained_on"] >= 600


@pytest.mark.parametrize(("title", "incident"), [
    ("Журналиста задержали в Алматы", True),
    ("Police detained a reporter for Vlast.kz in Shymkent", True),
    ("Алматыда журналист ұсталды", True),
    ("Погода в Астане: снег и гололёд", False),
    ("Kazakhstan: government announces new budget for water", False),
    ("Рейс в Астану задерживается: задержка составила три часа", False),
])
def test_known_decisions_with_the_model(shipped: Matcher, title: str, incident: bool) -> None:
    x = shipped.extract(title)
    assert x.model is not None  # the model was asked
    assert x.is_incident is incident


def test_the_switch_gives_the_rules_alone(shipped: Matcher, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model, "ENABLED", False)
    x = shipped.extract("Журналиста задержали в Алматы")
    assert x.model is None and x.verdict is None
    assert x == shipped.read("Журналиста задержали в Алматы")[0]


def test_evidence_names_the_model_when_it_says_yes(shipped: Matcher) -> None:
    x, r = shipped.read("Задержан активист")
    assert x.types == ("detention",) and not x.is_incident  # no press: the rules say no
    m = _model({"r:задержать": 5.0}, bias=-2.0, types={"detention": 0.0})
    y = second_opinion(m, x, r)
    assert y.is_incident and y.verdict is True and y.model == pytest.approx(0.953, abs=1e-3)
    assert y.evidence["model"][0] == "incident: 0.95 (rules: no incident)"
    assert y.evidence["model"][1:] == ("Задержан +5.00",)
    assert y.types == ("detention",) and y.evidence["detention"] == ("Задержан",)


def test_evidence_names_the_model_when_it_says_no(shipped: Matcher) -> None:
    x, r = shipped.read("Журналиста задержали")
    assert x.is_incident
    m = _model({"r:журналист": -6.0, "r:задержать": 1.0}, bias=0.0, types={"detention": 0.0})
    y = second_opinion(m, x, r)
    assert not y.is_incident and y.verdict is False
    assert y.evidence["model"] == ("incident: 0.01 (rules: an incident)", "Журналиста -6.00")
    assert y.types == x.types  # not an incident: the rules' reading stays


def test_types_the_model_adds_or_removes(shipped: Matcher) -> None:
    x, r = shipped.read("Журналиста задержали и оштрафовали")
    assert x.is_incident and set(x.types) == {"detention", "fine"}
    m = _model({}, bias=5.0, types={"detention": 0.0, "fine": -5.0, "arrest": 0.0},
               type_weights={"arrest": {"r:журналист": 3.0}})
    y = second_opinion(m, x, r)
    assert y.is_incident and y.verdict is None  # the rules said so too
    assert y.types == ("detention", "arrest")
    assert y.evidence["model:arrest"] == ("arrest: 0.95 (added)", "Журналиста +3.00")
    assert y.evidence["model:fine"][0] == "fine: 0.01 (removed)"
    assert "fine" not in y.evidence and "model" not in y.evidence


def test_an_unsure_model_leaves_the_rules_alone(shipped: Matcher) -> None:
    x, r = shipped.read("Задержан активист")
    y = second_opinion(_model({"r:задержать": 1.0}, bias=0.0, types={"detention": 0.0}), x, r)
    assert not y.is_incident and y.verdict is None and y.evidence == x.evidence
    assert y.model == pytest.approx(0.731, abs=1e-3)


def test_decide() -> None:
    def z(p: float) -> float:
        return model.logit(p)

    even = [0.0] * len(model.TYPES)

    def types(**p: float) -> Callable[[], list[float]]:
        return lambda: [z(p[t]) if t in p else -5.0 for t in model.TYPES]

    def never() -> list[float]:
        raise AssertionError("the types' scores were not needed")

    assert model.decide((0.2, 0.2), z(0.5), lambda: even, True, ("fine",)) == (True, ("fine",))
    assert model.decide((0.2, 0.2), z(0.9), lambda: even, False, ("fine",)) == (True, ("fine",))
    # not sure enough; 0.5: the model decides; 0: the rules' types
    assert model.decide((0.2, 0.2), z(0.7), never, False, ("fine",)) == (False, ("fine",))
    assert model.decide((0.5, 0.2), z(0.4), never, True, ("fine",)) == (False, ("fine",))
    assert model.decide((0.5, 0.0), z(0.6), never, False, ("fine",)) == (True, ("fine",))
    # types: confident additions and removals; an incident keeps its likeliest type
    fire = ("fine",)
    assert model.decide((0.2, 0.2), z(0.9), types(raid=0.9, fine=0.1), True, fire) == (True, ("raid",))
    assert model.decide((0.2, 0.2), z(0.9), types(fine=0.1, raid=0.4), True, fire) == (True, ("raid",))
    assert model.decide((0.2, 0.5), z(0.9), types(fine=0.6, raid=0.4), True, ()) == (True, ("fine",))
