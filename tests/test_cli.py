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
    assert set(sub.choices) - {"agent", "demo"} == set(COMMANDS)  # these two need no config


def test_every_option_of_every_command_says_what_it_takes() -> None:
    import argparse

    from blockwatch.cli import build_parser

    def parsers(p: argparse.ArgumentParser, name: str) -> list[tuple[str, argparse.ArgumentParser]]:
        out = [(name, p)]  # and the actions of commands that have them (review mark, ...)
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub_name, sp in a.choices.items():
                    out += parsers(sp, f"{name} {sub_name}".strip())
        return out

    bare = [f"{name} {'/'.join(a.option_strings) or a.dest}"
            for name, sp in parsers(build_parser(), "") for a in sp._actions
            if not a.help and not isinstance(a, argparse._HelpAction)]
    assert bare == []


def test_export_help_says_what_target_since_and_until_take(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--target NAME the target to export (required): a target's name, alias, URL or " \
           "host name, any case" in out
    assert "--since T only measurements from T on: an ISO 8601 date or time" in out
    assert "a duration back from now (48h, 7d)" in out
    assert "--until T only measurements before T (same forms as --since)" in out


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




# --- clear errors instead of traces --------------------------------------------------------------

def _blocked(modules: list[str], args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """blockwatch in a subprocess where importing `modules` fails, as when an extra is not
    installed (None in sys.modules makes `import x` raise ModuleNotFoundError)."""
    code = ("import sys\n"
            f"for m in {modules!r}:\n    sys.modules[m] = None\n"
            "from blockwatch.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd)


SERVER_STACK = ["fastapi", "uvicorn", "starlette"]


def test_agent_token_needs_no_server_stack(tmp_path: Path) -> None:
    r = _blocked(SERVER_STACK, ["agent-token", "almaty-2"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'name = "almaty-2"' in r.stdout and "token_sha256 = " in r.stdout


def test_serve_and_run_without_the_server_extra_name_it(tmp_path: Path) -> None:
    r = _blocked(SERVER_STACK, ["serve"], tmp_path)
    assert r.returncode == 2, r.stderr
    assert "pip install -e '.[server]'" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "c.toml").write_text('[server]\nport = 9\n[asn]\nenabled = false\n')
    r = _blocked(SERVER_STACK, ["--config", "c.toml", "run"], tmp_path)
    assert r.returncode == 2, r.stderr
    assert "[server] extra" in r.stderr and "pip install -e '.[server]'" in r.stderr
    assert not (tmp_path / "blockwatch.db").exists()  # refused before any work


def test_postgres_url_without_the_postgres_extra(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        '[storage]\nurl = "postgresql+psycopg://bw@127.0.0.1/bw"\n')
    r = _blocked(["psycopg", "psycopg_binary"], ["--config", "c.toml", "verdicts"], tmp_path)
    assert r.returncode == 2, r.stderr
    assert "pip install -e '.[postgres]'" in r.stderr and "Traceback" not in r.stderr


def _targets_config(tmp_path: Path) -> Path:
    (tmp_path / "t.toml").write_text(
        '[[target]]\nname = "Ratel.kz"\naliases = ["Ратель"]\nurls = ["http://127.0.0.7:9/"]\n'
        '[[target]]\nname = "Vlast.kz"\nurls = ["https://vlast.kz/"]\n')
    cfg = tmp_path / "c.toml"
    cfg.write_text('[storage]\nurl = "sqlite:///bw.db"\n[probe]\ntargets = ["t.toml"]\n')
    return cfg


def test_targets_by_alias_url_and_any_case(tmp_path: Path) -> None:
    from blockwatch.cli import _select
    from blockwatch.config import load
    from blockwatch.targets import load_targets

    targets = load_targets(load(_targets_config(tmp_path)).target_files)
    for name in ("ratel.KZ", "ратель", "http://127.0.0.7:9/", "http://127.0.0.7:9", "127.0.0.7"):
        assert [t.name for t in _select(targets, [name], "t.toml")] == ["Ratel.kz"], name
    assert [t.name for t in _select(targets, ["vlast.kz", "Ratel.kz", "ratel.kz"], "")] == [
        "Vlast.kz", "Ratel.kz"]


def test_unknown_targets_suggest_the_nearest(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(_targets_config(tmp_path))
    assert main(["--config", cfg, "check", "--target", "Ratl.kz"]) == 2
    assert "no target named 'Ratl.kz'" in (err := capsys.readouterr().err)
    assert "did you mean 'Ratel.kz'" in err
    # verdicts: the database's targets (synced by `check`); an unknown one is not "no verdicts"
    assert main(["--config", cfg, "verdicts", "--target", "NoSuch"]) == 2
    assert "no target named 'NoSuch' in the database" in capsys.readouterr().err
    from blockwatch.config import load
    from blockwatch.storage import open_database, repo
    from blockwatch.targets import load_targets

    c = load(cfg)
    db = open_database(c.database_url)
    with db.write() as s:
        repo.sync_targets(s, load_targets(c.target_files))
    db.close()
    assert main(["--config", cfg, "verdicts", "--target", "ратель"]) == 0
    assert main(["--config", cfg, "verdicts", "--target", "Vlst.kz"]) == 2
    assert "did you mean 'Vlast.kz'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["digest", "--since", "99999999999d"],
                                  ["export", "--target", "Ratel.kz", "--since", "99999999999d"],
                                  ["export", "--target", "Ratel.kz", "--until", "9" * 400 + "w"]])
def test_absurd_durations_are_usage_errors(argv: list[str], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(_targets_config(tmp_path))
    assert main(["--config", cfg, *argv]) == 2
    err = capsys.readouterr().err
    assert "too long a duration" in err and "Overflow" not in err


def test_durations_parse_and_refuse() -> None:
    from datetime import timedelta

    from blockwatch.durations import DurationTooLong, parse_duration

    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("36500d") == timedelta(days=36500)
    for text in ("99999999999d", "9" * 400 + "w", "40000d", "5300w"):
        with pytest.raises(DurationTooLong):
            parse_duration(text)


def test_the_collector_needs_no_postgres_extra() -> None:
    """[server] without [postgres] (a collector on SQLite): the collector imports without psycopg."""
    code = ("import sys; sys.modules['psycopg'] = None\n"
            "import blockwatch.collector.ingest, blockwatch.collector.app\n"
            "from blockwatch.daemon import server_available; server_available()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
