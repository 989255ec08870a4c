"""Entry points the CLI and the daemon call (wired by the lead in cli.py / daemon.py)."""

from __future__ import annotations

import argparse
import hashlib
from datetime import datetime
from pathlib import Path

from blockwatch.analysis.display import Schedule
from blockwatch.config import Config
from blockwatch.site.build import BuildReport, build_site_from_db, site_info
from blockwatch.site.cache import SiteCache
from blockwatch.storage import Database

EXIT_OK = 0


def default_out(cfg: Config) -> Path:
    return cfg.resolve(cfg.settings.site.out)


def config_key(cfg: Config) -> str:
    """A digest of the configuration the pages are made from ([site], the probe schedule, the
    agreement quorum): when it changes, the next build renders every page. Nothing else of the
    configuration (no secret) goes into it."""
    s = cfg.settings
    site = s.site
    return hashlib.sha256(repr((site.title, site.base_url, tuple(site.languages),
                                s.alerts.quorum, Schedule.of(cfg), site.incidents)).encode()).hexdigest()


def build_site(cfg: Config, db: Database, out_dir: Path | str | None = None,
               now: datetime | None = None, *, full: bool = False,
               cache: SiteCache | None = None) -> BuildReport:
    """Build the site into `out_dir` (default: `[site] out`). The daemon calls this after each
    round with its `cache` (site/cache.py: rollup rows and page parts kept in memory between
    builds); incremental: only outlets whose data or freshness changed are rendered again
    (after a local probe round that is every measured outlet: their pages show each network's
    last check, but only those checks and what moved are rendered anew when the cache is
    warm), and unchanged files are not rewritten. `full`: render every page from scratch."""
    s = cfg.settings.site
    out = Path(out_dir) if out_dir is not None else default_out(cfg)
    return build_site_from_db(db, out, site_info(s.title, s.base_url, list(s.languages),
                                                 s.incidents), now,
                              Schedule.of(cfg), cfg.settings.alerts.quorum, full=full,
                              config=config_key(cfg), cache=cache)


def cmd_site(cfg: Config, args: argparse.Namespace) -> int:
    """`blockwatch site [--out DIR] [--full]`: --out is relative to the working directory (a
    command-line path), `[site] out` to the config file's folder (a config path)."""
    from blockwatch.storage import open_database

    out = Path(args.out) if getattr(args, "out", None) else default_out(cfg)
    db = open_database(cfg.database_url)
    try:
        report = build_site(cfg, db, out, full=bool(getattr(args, "full", False)))
    finally:
        db.close()
    print(report.summary())
    return EXIT_OK
