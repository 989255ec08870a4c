"""The storage benchmarks' setup: n synthetic targets and a config whose resolvers are never asked
(the benchmarks store measurements they make up; nothing is probed)."""

from __future__ import annotations

from pathlib import Path

from blockwatch.config import Config, load
from blockwatch.targets import Target, load_targets


def storage_config(db_url: str, tmp: Path, n: int) -> tuple[list[str], Config, list[Target]]:
    urls = [f"https://site{i:04d}.bench/" for i in range(n)]
    (tmp / "targets.toml").write_text("".join(
        f'[[target]]\nname = "T{i}"\nurls = ["{u}"]\n' for i, u in enumerate(urls)))
    (tmp / "c.toml").write_text(f"""
[storage]
url = "{db_url}"
[probe]
targets = ["targets.toml"]
canaries = []
[control]
resolvers = ["127.0.0.1:9"]
[[vantage]]
name = "kz"
kind = "local"
resolver = "127.0.0.1:9"
""")
    cfg = load(tmp / "c.toml")
    return urls, cfg, load_targets(cfg.target_files)
