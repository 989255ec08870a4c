"""The storage benchmarks' setup: n synthetic targets and a config whose resolvers are never asked
(the benchmarks store measurements they make up; nothing is probed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

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


@contextmanager
def pg_schema(pg_url: str) -> Iterator[str]:
    """A throwaway schema on the PostgreSQL server: the URL that writes into it, dropped after."""
    schema = f"bw_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in pg_url else "?"
        yield f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
