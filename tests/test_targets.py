from __future__ import annotations

from pathlib import Path

import pytest

from blockwatch.config import ConfigError
from blockwatch.targets import load_targets, parse_targets

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_kazakhstan_list() -> None:
    targets = load_targets([ROOT / "probes" / "kz.toml"])
    names = {t.name for t in targets}
    assert len(targets) >= 30
    for must in ["Ratel.kz", "Vlast.kz", "Azattyq", "Azattyq (Russian)", "KazTAG", "Orda.kz",
                 "Informburo", "Exclusive.kz", "Holanews", "Kursiv", "Tengrinews", "Adil Soz",
                 "KIBHR"]:
        assert must in names, must
    cyrillic = 0
    for t in targets:
        assert t.country == "KZ" and t.category and t.urls and t.aliases
        cyrillic += any(any("а" <= ch.lower() <= "я" or ch in "әғқңөұүһі" for ch in a)
                        for a in t.aliases)
    # aliases in Latin and Cyrillic, as reports name them (a few Latin-only brands have no
    # Cyrillic form that would not also be a common word)
    assert cyrillic >= 0.9 * len(targets)
    ratel = next(t for t in targets if t.name == "Ratel.kz")
    assert "Ратель" in ratel.aliases and ratel.domains == ("ratel.kz",)
    azattyq = next(t for t in targets if t.name == "Azattyq")
    assert "RFE/RL" in azattyq.parents and ratel.parents == ()
    assert "Azattyk Media" in azattyq.excludes


@pytest.mark.parametrize("text,key", [
    ('[[target]]\nurls = ["https://a.kz/"]\n', "target[0].name"),
    ('[[target]]\nname = "A"\n', "target[0].urls"),
    ('[[target]]\nname = "A"\nurls = ["ftp://a.kz/"]\n', "target[0].urls"),
    ('[[target]]\nname = "A"\nurls = ["https://a.kz/"]\ncountry = "Kazakhstan"\n', "target[0].country"),
    ('[[target]]\nname = "A"\nurls = ["https://a.kz/"]\nalias = ["x"]\n', "target[0].alias"),
    ('[[target]]\nname = "A"\nurls = ["https://a.kz/"]\nparents = "RFE/RL"\n', "target[0].parents"),
    ('[[target]]\nname = "A"\nurls = ["https://a.kz/"]\nparents = ["RFE/RL"]\n', "target[0].parents"),
    ('[[target]]\nname = "A"\nurls = ["https://a.kz/"]\nexcludes = "B"\n', "target[0].excludes"),
])
def test_bad_target_lists(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as ei:
        parse_targets(text, file="t.toml")
    assert ei.value.key == key and ei.value.line == 1


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('[[target]]\nname = "X"\nurls = ["https://x.kz/"]\n')
    b.write_text('[[target]]\nname = "X"\nurls = ["https://y.kz/"]\n')
    with pytest.raises(ConfigError, match="already defined"):
        load_targets([a, b])
