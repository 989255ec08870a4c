"""Pure composition: what counts as an alert, filters, subjects, keys, strings in both languages."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from blockwatch.alerts import compose as C
from test_alerts_support import T0


@pytest.mark.parametrize(("state", "previous", "kind"), [
    ("dns", "ok", "blocked"), ("tls", None, "blocked"), ("tls", "dns", "blocked"),
    ("ok", "dns", "unblocked"), ("ok", "throttled", "unblocked"), ("down", "ok", "down"),
    ("ok", "down", "recovered"), ("ok", None, None), ("inconclusive", "ok", None),
])
def test_classify(state: str, previous: str | None, kind: str | None) -> None:
    assert C.classify(state, previous) == kind


ITEM = C.AlertItem(kind="blocked", ref="e1", at=T0, detected_at=T0, target="Ratel.kz",
                   country="KZ", vantage="almaty-1", vantage_country="KZ",
                   url="https://ratel.kz/", state="dns", previous="ok")


def test_filters() -> None:
    assert C.item_matches(C.Filter(), ITEM)
    assert C.item_matches(C.Filter.of(targets=["ratel.KZ"]), ITEM)
    assert not C.item_matches(C.Filter.of(targets=["Vlast.kz"]), ITEM)
    assert C.item_matches(C.Filter.of(countries=["kz"]), ITEM)
    assert not C.item_matches(C.Filter.of(countries=["UZ"]), ITEM)
    assert C.item_matches(C.Filter.of(verdicts=["dns"]), ITEM)
    assert C.item_matches(C.Filter.of(verdicts=["blocked"]), ITEM)
    assert not C.item_matches(C.Filter.of(verdicts=["tls"]), ITEM)
    unblock = replace(ITEM, kind="unblocked", state="ok", previous="dns")
    assert C.item_matches(C.Filter.of(verdicts=["dns"]), unblock)  # the block that ended
    silent = C.AlertItem(kind="silent", ref="s", at=T0, detected_at=T0, vantage="almaty-1",
                         vantage_country="KZ")
    assert C.item_matches(C.Filter.of(targets=["Vlast.kz"]), silent)  # about no outlet
    assert not C.item_matches(C.Filter.of(verdicts=["dns"]), silent)


def test_catalogs_have_the_same_keys() -> None:
    def keys(d: dict, prefix: str = "") -> set[str]:  # type: ignore[type-arg]
        out = set()
        for k, v in d.items():
            out |= keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
        return out

    assert keys(C.catalog("en")) == keys(C.catalog("ru"))
    assert set(C.catalog("en")["kind"]) == set(C.KIND_ORDER)
    for lang in C.LANGUAGES:  # every template renders in every language
        C.compose_alert([ITEM], lang, "UTC")
        C.compose_test(lang, "UTC", T0)
        C.compose_digest(C.DigestData(since=T0, until=T0), lang, "UTC")


def test_subject_is_one_plain_line() -> None:
    evil = replace(ITEM, target="Ratel\r\nBcc: all@example.org\u2028x")
    s = C.alert_subject([evil], "en")
    assert "\n" not in s and "\r" not in s and "\u2028" not in s
    assert s == "blockwatch: Ratel Bcc: all@example.org x blocked (DNS tampering), almaty-1"
    many = [replace(ITEM, ref=f"e{i}", target=f"Outlet {i}") for i in range(8)]
    s = C.alert_subject(many, "en")
    assert s.startswith("blockwatch: 8 changes: Outlet 0 blocked, Outlet 1 blocked, Outlet 2 "
                        "blocked and 5 more")
    assert len(C.alert_subject([replace(ITEM, target="x" * 1000)], "en")) <= C.SUBJECT_MAX


def test_storm_is_one_bounded_message() -> None:
    many = [replace(ITEM, ref=f"e{i}", target=f"Outlet {i}") for i in range(C.MAX_ITEMS + 7)]
    m = C.compose_alert(many, "en", "UTC")
    assert m.text.count("* Outlet") == C.MAX_ITEMS and "7 more changes" in m.text


def test_links_only_for_http() -> None:
    assert C.safe_url("https://example.org/a?b=1") == "https://example.org/a?b=1"
    for bad in ("javascript:alert(1)", " JAVASCRIPT:alert(1)", "data:text/html,x", "//x", "",
                None, "http://[bad"):
        assert C.safe_url(bad) is None


def test_keys_fit_the_column_and_message_ids_are_stable() -> None:
    refs = ",".join(f"e{i}" for i in range(500))
    key = C.outbox_key("alert", "email", "desk@example.org", refs)
    assert len(key) <= 255 and key.startswith("alert:email:sha256:")
    assert key == C.outbox_key("alert", "email", "desk@example.org", refs)
    assert C.message_id(key, "bw@example.org") == C.message_id(key, "bw@example.org")
    assert C.message_id(key, "bw@example.org").endswith("@example.org>")


def test_webhook_body_is_json() -> None:
    m = C.compose_alert([ITEM], "en", "UTC")
    body = C.webhook_body("k", "alert", [ITEM], m, T0, "en")
    again = json.loads(json.dumps(body))
    assert again["items"][0]["at"] == "2026-11-27T03:00:00Z" and "incident" not in again["items"][0]
