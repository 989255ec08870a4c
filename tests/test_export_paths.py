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


def test_the_default_folder_is_beside_the_site_not_the_working_directory(
        cfg_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["--config", str(cfg_path), "export", "--target", "Ratel.kz"]) == 0
    written = Path(printed_paths(capsys.readouterr().out)["records"])
    # the config's site is conf/site: the export goes to conf/export, as digests to conf/digests
    assert written.parent == tmp_path / "conf" / "export"
    assert re.fullmatch(r"Ratel\.kz-\d{8}T\d{6}Z\.jsonl", written.name)
    assert not (work / "reports").exists()


def test_the_shipped_config_still_exports_to_reports_export() -> None:
    from blockwatch.cli import export_dir
    from blockwatch.config import load

    root = Path(__file__).resolve().parent.parent
    assert export_dir(load(root / "config" / "blockwatch.toml")) == root / "reports" / "export"
