from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from blockwatch.analysis.events import UrlState, step

T = [datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=15 * i) for i in range(12)]


def run(seq: list[str], confirm_after: int = 2) -> list[tuple[str | None, str] | None]:
    s = UrlState()
    out = []
    for i, v in enumerate(seq):
        s, tr = step(s, v, T[i], confirm_after)
        out.append((tr.previous, tr.state) if tr else None)
    return out


@pytest.mark.parametrize("seq,expected", [
    (["ok", "ok"], [None, (None, "ok")]),
    # one lost packet never wakes anyone up
    (["ok", "ok", "tcp_ip", "ok", "ok"], [None, (None, "ok"), None, None, None]),
    (["ok", "ok", "dns", "dns"], [None, (None, "ok"), None, ("ok", "dns")]),
    # inconclusive neither confirms nor resets a pending change
    (["ok", "ok", "tls", "inconclusive", "tls"], [None, (None, "ok"), None, None, ("ok", "tls")]),
    (["ok", "ok", "tls", "inconclusive", "inconclusive", "ok"],
     [None, (None, "ok"), None, None, None, None]),
    # a different new state restarts the count
    (["ok", "ok", "dns", "tls", "tls"], [None, (None, "ok"), None, None, ("ok", "tls")]),
    (["ok", "ok", "dns", "dns", "tls", "tls", "ok", "ok"],
     [None, (None, "ok"), None, ("ok", "dns"), None, ("dns", "tls"), None, ("tls", "ok")]),
])
def test_state_machine(seq: list[str], expected: list[object]) -> None:
    assert run(seq) == expected


def test_confirm_after_one_and_three() -> None:
    assert run(["ok", "dns"], 1) == [(None, "ok"), ("ok", "dns")]
    assert run(["ok", "ok", "ok", "dns", "dns", "dns"], 3) == [
        None, None, (None, "ok"), None, None, ("ok", "dns")]


def test_started_at_is_when_first_seen() -> None:
    s = UrlState()
    s, _ = step(s, "ok", T[0], 2)
    s, _ = step(s, "ok", T[1], 2)
    s, _ = step(s, "tls", T[2], 2)
    s, _ = step(s, "inconclusive", T[3], 2)
    s, tr = step(s, "tls", T[4], 2)
    assert tr is not None and tr.started_at == T[2] and tr.detected_at == T[4]
    assert s.state == "tls" and s.since == T[2] and s.pending is None
