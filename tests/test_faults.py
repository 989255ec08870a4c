"""The fault benchmark's short version (benchmarks/faults.py): real `blockwatch` subprocesses
killed with SIGKILL, cut off from PostgreSQL (pg_terminate_backend on a database of their own),
left without their SMTP server or collector, and out of disk; after each, the store is audited:
integrity, nothing acknowledged lost, nothing twice, and the process recovered by itself."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import faults

SEED = 7


def _check(row: faults.Row) -> None:
    print(faults.table([row]))
    assert not row.skipped, row.skipped
    assert row.runs > 0
    assert (row.lost, row.duplicates, row.integrity) == (0, 0, 0), row.notes
    assert row.recovered == row.runs, row.notes


@pytest.mark.parametrize("scenario", ["kill-check", "kill-run", "kill-serve"])
def test_sigkill_at_random_moments_loses_and_doubles_nothing(scenario: str, tmp_path: Path) -> None:
    # 2 kills each: 6 in all
    fn = {"kill-check": faults.kill_check, "kill-run": faults.kill_run,
          "kill-serve": faults.kill_serve}[scenario]
    _check(fn(tmp_path, 2, random.Random(SEED)))


def test_agent_delivers_exactly_once_after_a_collector_outage(tmp_path: Path) -> None:
    _check(faults.collector_outage(tmp_path, 1, random.Random(SEED)))


def test_alerts_are_sent_exactly_once_after_an_smtp_outage(tmp_path: Path) -> None:
    _check(faults.smtp_outage(tmp_path, 1, random.Random(SEED)))


def test_postgres_connections_cut_mid_round_the_daemon_goes_on_and_keeps_its_lock(
        tmp_path: Path) -> None:
    """A server restart as the client sees it, on a database of its own (the shared server is
    never restarted). The daemon's instance lock lived in the cut session: a second `run`
    started afterwards must still be refused."""
    with faults.pg_database() as url:
        _check(faults.pg_round(tmp_path, 1, random.Random(SEED), url))


def test_postgres_connections_cut_mid_upload_lose_nothing(tmp_path: Path) -> None:
    with faults.pg_database() as url:
        _check(faults.pg_upload(tmp_path, 1, random.Random(SEED), url))


def test_full_disk_is_a_clear_error_and_the_next_round_is_stored(tmp_path: Path) -> None:
    # a 2 MiB tmpfs where mount works; else a file-size limit in the child (never skipped)
    _check(faults.disk_full(tmp_path, 1, random.Random(SEED), allow_rlimit=True))
