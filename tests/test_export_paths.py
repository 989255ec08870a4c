"""Where `blockwatch export` writes and how it says so: every path it prints is absolute (a
relative one means nothing to whoever reads a supervisor's log), and the verify line it prints
works as printed, from another working directory."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from blockwatch.cli import main
from blockwatch.storage import open_database, repo
from blockwatch.targets import Target


@pytest.fixture
def cfg_path(write_config, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    (tmp_path / "conf").mkdir()
    cfg = write_config('[storage]\nurl = "sqlite:///bw.db"\n[site]\nout = "site"\n',
                       name="conf/blockwatch.toml")
    db = open_database(cfg.database_url)
    try:
        with db.write() as s:
            repo.sync_targets(s, [Target(name="Ratel.kz", urls=("https://ratel.kz/",),
                                         country="KZ")])
    finally:
        db.close()
    assert cfg.path is not None
    return cfg.path


def printed_paths(out: str) -> dict[str, str]:
    m = re.search(r"^wrote \d+ records to (\S+) \(", out, re.M)
    v = re.search(r"^check it offline: blockwatch export --verify (\S+)$", out, re.M)
    man = re.search(r"manifest: (\S+); hash chain: (\S+)\)$", out, re.M)
    assert m and v and man, out
    return {"records": m[1], "verify": v[1], "manifest": man[1], "chain": man[2]}


def test_every_printed_path_is_absolute_and_the_verify_line_works(
        cfg_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["--config", str(cfg_path), "export", "--target", "ratel.kz",
                 "--out", "mine.jsonl"]) == 0
    paths = printed_paths(capsys.readouterr().out)
    assert paths["records"] == str(work / "mine.jsonl")  # --out is read from the cwd
    for p in paths.values():
        assert os.path.isabs(p) and Path(p).is_file(), p
    monkeypatch.chdir(tmp_path)  # elsewhere: the printed command still finds the files
    assert main(["export", "--verify", paths["verify"]]) == 0
