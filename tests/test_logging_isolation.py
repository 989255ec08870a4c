"""Logging set up by a command run in-process stays in its test. Two tests in file order: the
first runs the CLI (which sets up logging for the process), the second checks it got back the
logging it would have had on its own."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from blockwatch.cli import main


def test_a_command_sets_up_process_logging(tmp_path: Path) -> None:
    main(["--config", str(tmp_path / "absent.toml"), "health"])
    root = logging.getLogger()
    assert any(type(h).__name__ == "_StderrHandler" for h in root.handlers)
    assert logging.getLogger("apscheduler").level == logging.WARNING


def test_the_next_test_does_not_inherit_it(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    assert not any(type(h).__name__ == "_StderrHandler" for h in root.handlers)
    assert logging.getLogger("apscheduler").level == logging.NOTSET
    logging.getLogger("blockwatch.collector.server").warning("collector listening on x")
    assert capsys.readouterr().err == ""
