"""Every message exists in every language, with the same placeholders: the status site's
(site/i18n.py) and the alerts' and digest's (templates/alerts/i18n/*.toml). A key added in
English only fails here, not on a reader's page (where Kazakh would quietly fall back)."""

from __future__ import annotations

import re
import string
from typing import Any

import pytest

from blockwatch.alerts import compose as C
from blockwatch.site import i18n

LANGS = ("en", "ru", "kk")
# letters of the Latin Kazakh alphabet that plain English never uses: Kazakh here is Cyrillic
LATIN_KAZAKH = re.compile(r"[äǵğıńñöşúüýÁǴĞİŃÖŞÚÜÝ]")
CYRILLIC = re.compile(r"[а-яёәғқңөұүһі]", re.I)


def _fields(s: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(s) if f}


def _site_tables() -> dict[str, dict[str, dict[str, str]]]:
    """Every table of site/i18n.py keyed by language."""
    return {name: v for name, v in vars(i18n).items()
            if isinstance(v, dict) and set(LANGS) <= set(v) and name.isupper()
            and all(isinstance(x, dict) for x in v.values())}


def test_site_tables_are_found() -> None:
    assert {"STRINGS", "HOW", "CATEGORY_WORDS", "DISPLAY_WORDS", "COUNT_WORDS",
            "COUNTRIES"} <= set(_site_tables())


@pytest.mark.parametrize("table", sorted(_site_tables()))
def test_every_site_message_is_in_every_language(table: str) -> None:
    words = _site_tables()[table]
    for lang in LANGS[1:]:
        missing = sorted(set(words["en"]) - set(words[lang]))
        extra = sorted(set(words[lang]) - set(words["en"]))
        assert missing == [] and extra == [], f"{table}[{lang}]: missing {missing}, extra {extra}"
        for key, text in words["en"].items():
            assert _fields(words[lang][key]) == _fields(text), f"{table}[{lang}][{key}]"
            assert words[lang][key].strip(), f"{table}[{lang}][{key}] is empty"


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.mark.parametrize("lang", LANGS[1:])
def test_every_alert_and_digest_message_is_in_every_language(lang: str) -> None:
    en = _flat(C.catalog("en"))
    other = _flat(C.catalog(lang))
    en.pop("language")
    other.pop("language")
    assert sorted(set(en) - set(other)) == [], f"missing in {lang}"
    assert sorted(set(other) - set(en)) == [], f"only in {lang}"
    for key, text in en.items():
        if isinstance(text, str):
            assert _fields(other[key]) == _fields(text), f"{lang}: {key}"


def test_kazakh_is_written_in_cyrillic() -> None:
    texts = [v for t in _site_tables().values() for v in t["kk"].values()]
    texts += [v for v in _flat(C.catalog("kk")).values() if isinstance(v, str)]
    assert [t for t in texts if LATIN_KAZAKH.search(t)] == []
    # words, not English left in place: any message with letters has Cyrillic ones, except
    # names that stay as they are (formats, product names)
    same = {"status.json", "{range}: {word}", "blockwatch"}
    latin_only = [t for t in texts if re.search(r"[A-Za-z]{4,}", t) and not CYRILLIC.search(t)
                  and t not in same and not re.fullmatch(r"[{}\w\s:.,/()-]*\{[^}]+\}[^а-я]*", t)]
    assert latin_only == []
