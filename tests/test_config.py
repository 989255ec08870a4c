from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from blockwatch import config as C
from blockwatch.cli import main
from blockwatch.durations import parse_duration

ROOT = Path(__file__).resolve().parent.parent


def test_builtin_defaults_when_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BLOCKWATCH_CONFIG", raising=False)
    cfg = C.load()
    assert cfg.path is None
    assert cfg.database_url == f"sqlite:///{tmp_path / 'blockwatch.db'}"
    assert cfg.target_files == [tmp_path / "probes" / "kz.toml"]
    assert [(v.name, v.kind) for v in cfg.settings.vantage] == [("local", "local")]
    assert cfg.settings.probe.confirm_after == 2


def test_env_variable_names_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "x.toml"
    p.write_text('[probe]\ninterval = "5m"\n')
    monkeypatch.setenv("BLOCKWATCH_CONFIG", str(p))
    assert C.load().settings.probe.interval == timedelta(minutes=5)


def test_shipped_config_is_valid_and_paths_resolve_from_its_folder() -> None:
    cfg = C.load(ROOT / "config" / "blockwatch.toml")
    assert cfg.target_files == [ROOT / "probes" / "kz.toml"]
    assert cfg.database_url == f"sqlite:///{ROOT / 'blockwatch.db'}"
    assert cfg.resolve(cfg.settings.site.out) == ROOT / "reports" / "site"
    # what needs the operator's own data is commented out
    assert all(v.kind == "local" for v in cfg.settings.vantage)
    assert cfg.settings.alerts.recipient == []


def test_unknown_key_names_file_line_and_key(write_config) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(C.ConfigError) as ei:
        write_config('[probe]\ninterval = "15m"\nconfrim_after = 3\n')
    e = ei.value
    assert e.key == "probe.confrim_after"
    assert e.line == 3
    assert "unknown key" in str(e)
    assert str(e).startswith(str(e.file) + ":3: probe.confrim_after")


def test_wrong_value_says_what_was_expected(write_config) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(C.ConfigError) as ei:
        write_config('[probe]\ninterval = 15\n')
    assert ei.value.key == "probe.interval"
    assert "15s" in str(ei.value)  # suggests a unit
    with pytest.raises(C.ConfigError) as ei:
        write_config('[probe]\nconcurrency = 0\n')
    assert ei.value.key == "probe.concurrency"
    assert "greater than or equal to 1" in str(ei.value)


def test_vantage_errors_point_into_the_list(write_config) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(C.ConfigError) as ei:
        write_config('[[vantage]]\nname = "a"\nkind = "local"\n\n[[vantage]]\nname = "b"\n'
                     'kind = "resolver"\nadress = "1.2.3.4"\n')
    assert ei.value.key in ("vantage[1].adress", "vantage[1].address")
    with pytest.raises(C.ConfigError) as ei:
        write_config('[[vantage]]\nname = "a"\nkind = "satellite"\n')
    assert "kind must be one of" in str(ei.value)
    with pytest.raises(C.ConfigError) as ei:
        write_config('[[vantage]]\nname = "a"\nkind = "local"\n[[vantage]]\nname = "a"\nkind = "local"\n')
    assert "used twice" in str(ei.value)


def test_resolver_and_storage_forms(write_config) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config('[control]\nresolvers = ["1.1.1.1", "[2606:4700::1111]:53", "tcp://9.9.9.9",'
                       ' "https://dns.google/dns-query"]\n')
    assert len(cfg.settings.control.resolvers) == 4
    with pytest.raises(C.ConfigError, match="resolver is an IP address"):
        write_config('[control]\nresolvers = ["dns.google"]\n')
    with pytest.raises(C.ConfigError, match="spell the driver"):
        write_config('[storage]\nurl = "postgresql://u@h/db"\n')


def test_invalid_toml_reports_the_line(write_config) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(C.ConfigError) as ei:
        write_config('[probe]\ninterval = "15m\n')
    assert ei.value.line == 2
    assert "invalid TOML" in str(ei.value)


def test_secrets_resolve_only_when_needed(write_config, tmp_path: Path,  # type: ignore[no-untyped-def]
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config('[alerts]\nsmtp_password_env = "BW_TEST_PW"\nsmtp_username_file = "user.txt"\n')
    monkeypatch.delenv("BW_TEST_PW", raising=False)
    with pytest.raises(C.SecretError, match="BW_TEST_PW"):
        cfg.secret(cfg.settings.alerts, "smtp_password", "alerts")
    monkeypatch.setenv("BW_TEST_PW", "s3cret")
    assert cfg.secret(cfg.settings.alerts, "smtp_password", "alerts") == "s3cret"
    with pytest.raises(C.SecretError, match=r"user\.txt"):
        cfg.secret(cfg.settings.alerts, "smtp_username", "alerts")
    (tmp_path / "user.txt").write_text("bw-user\n")
    assert cfg.secret(cfg.settings.alerts, "smtp_username", "alerts") == "bw-user"


@pytest.mark.parametrize("text,seconds", [("10s", 10), ("15m", 900), ("24h", 86400), ("7d", 604800),
                                          ("1h30m", 5400), ("250ms", 0.25)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["", "15", "m15", "15 minutes", "1.5.3s"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_cli_bad_config_exits_2_and_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[probe]\nconfrim_after = 3\n')
    assert main(["--config", str(bad), "check"]) == 2
    err = capsys.readouterr().err
    assert "probe.confrim_after" in err and str(bad) in err
    # --config after the command works the same
    assert main(["check", "--config", str(bad)]) == 2
    assert not (tmp_path / "blockwatch.db").exists()  # nothing ran


def test_missing_target_file_is_a_config_error(write_config, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config('[probe]\ntargets = ["nope.toml"]\n')
    assert main(["--config", str(cfg.path), "verdicts"]) == 0  # verdicts needs no targets
    assert main(["--config", str(cfg.path), "check"]) == 2
    assert "nope.toml" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_config_file_is_valid(path: Path) -> None:
    cfg = C.load(path)
    assert cfg.settings.probe.confirm_after >= 1


def test_a_storage_url_error_does_not_show_the_password(write_config) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(C.ConfigError) as ei:
        write_config('[storage]\nurl = "postgresql://bw:S3cretPW@127.0.0.1/test"\n')
    assert "S3cretPW" not in str(ei.value)
    assert "spell the driver" in str(ei.value)


def _commented_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(start, end) of each commented-out example: a `# [section]` header with the `# key = value`
    lines under it, or a lone `# key = value` line inside an active section."""
    header = re.compile(r"^#\s?\[\[?[a-z_.]+\]\]?\s*(#.*)?$")
    kv = re.compile(r"^#\s{0,3}[a-z_0-9]+\s*=\s*\S")
    blocks, i = [], 0
    while i < len(lines):
        if header.match(lines[i]):
            j = i + 1
            while j < len(lines) and kv.match(lines[j]):
                j += 1
            blocks.append((i, j))
            i = j
            continue
        if kv.match(lines[i]):
            blocks.append((i, i + 1))
        i += 1
    return blocks


def test_every_commented_example_in_the_shipped_config_loads(tmp_path: Path) -> None:
    """config/blockwatch.toml documents every setting as commented examples: uncommenting any
    one of them (a whole block, or one line) must give a configuration that loads."""
    repo = Path(__file__).resolve().parent.parent
    src = (repo / "config" / "blockwatch.toml").read_text(encoding="utf-8").split("\n")
    shutil.copytree(repo / "probes", tmp_path / "probes")
    (tmp_path / "config").mkdir()
    blocks = _commented_blocks(src)
    assert len(blocks) > 20
    failures = []
    for a, b in blocks:
        lines = list(src)
        for k in range(a, b):
            lines[k] = re.sub(r"^#\s{0,3}", "", lines[k])
        path = tmp_path / "config" / "blockwatch.toml"
        path.write_text("\n".join(lines), encoding="utf-8")
        try:
            C.load(path)
        except C.ConfigError as exc:
            failures.append(f"lines {a + 1}-{b}: {exc}")
    assert not failures, "\n".join(failures)
