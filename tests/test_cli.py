from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from blockwatch.cli import main

DESIGN_COMMANDS = ["check", "run", "serve", "agent", "verdicts", "feeds", "incidents", "digest",
                   "site", "export", "db", "health"]


def test_help_lists_every_command_of_the_design() -> None:
    out = subprocess.run([sys.executable, "-m", "blockwatch", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for c in DESIGN_COMMANDS:
        assert f"    {c}" in out, c


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ei:
        main(["frobnicate"])
    assert ei.value.code == 2


def test_every_command_is_built() -> None:
    from blockwatch.cli import COMMANDS, build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) - {"agent"} == set(COMMANDS)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_db_upgrade(backend: str, request: pytest.FixtureRequest, tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    url = (f"sqlite:///{tmp_path / 'x.db'}" if backend == "sqlite"
           else request.getfixturevalue("pg_url"))
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[storage]\nurl = "{url}"\n')
    assert main(["db", "upgrade", "--config", str(cfg)]) == 0
    from blockwatch.storage.db import head_revision

    assert f"upgraded from empty to {head_revision()}" in capsys.readouterr().out
    assert main(["--config", str(cfg), "db", "upgrade"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_verdicts_on_a_fresh_database(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BLOCKWATCH_CONFIG", raising=False)
    assert main(["verdicts", "--json"]) == 0
    assert capsys.readouterr().out == ""
    assert (tmp_path / "blockwatch.db").exists()  # brought up to date by itself


def test_check_unknown_target_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t.toml").write_text('[[target]]\nname = "A"\nurls = ["https://a.test/"]\n')
    cfg = tmp_path / "c.toml"
    cfg.write_text('[probe]\ntargets = ["t.toml"]\n')
    assert main(["--config", str(cfg), "check", "--target", "B"]) == 2
    assert "no target named 'B'" in capsys.readouterr().err


