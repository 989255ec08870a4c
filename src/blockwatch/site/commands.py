"""Entry points the CLI and the daemon call (wired by the lead in cli.py / daemon.py)."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from blockwatch.analysis.display import Schedule
from blockwatch.config import Config
from blockwatch.site.build import BuildReport, build_site_from_db, site_info
from blockwatch.storage import Database

EXIT_OK = 0


def default_out(cfg: Config) -> Path:
    return cfg.resolve(cfg.settings.site.out)


def build_site(cfg: Config, db: Database, out_dir: Path | str | None = None,
               now: datetime | None = None) -> BuildReport:
    """Build the whole site into `out_dir` (default: `[site] out`). The daemon calls this after
    each round; cheap when little changed (unchanged files are not rewritten)."""
    s = cfg.settings.site
    out = Path(out_dir) if out_dir is not None else default_out(cfg)
    return build_site_from_db(db, out, site_info(s.title, s.base_url, list(s.languages)), now,
                              Schedule.of(cfg), cfg.settings.alerts.quorum)


def cmd_site(cfg: Config, args: argparse.Namespace) -> int:
    """`blockwatch site [--out DIR]`: --out is relative to the working directory (a command-line
    path), `[site] out` to the config file's folder (a config path)."""
    from blockwatch.storage import open_database

    out = Path(args.out) if getattr(args, "out", None) else default_out(cfg)
    db = open_database(cfg.database_url)
    try:
        report = build_site(cfg, db, out)
    finally:
        db.close()
    print(report.summary())
    return EXIT_OK
