"""Extraction precision rules, each on small made-up sentences: what a text says happened, as
against what it says could happen, what a phrase across two sentences would read, and so on."""

from __future__ import annotations

import pytest

from blockwatch.feeds.extract import Matcher, read_text


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher()


def _types(text: str) -> set[str]:
    return set(read_text(text).types)


# --- a phrase is one sentence's words ---------------------------------------------------------

def test_a_phrase_does_not_run_across_a_sentence_end() -> None:
    # "=called in" (summoned) must not join "called" and "In" of the next sentence
    assert "harassment" not in _types("The editor said the charges were called unfounded. In May he left.")
    assert "harassment" in _types("The editor was called in by the police.")
