"""The public status site: static HTML per language, status.json, an Atom feed and SVG badges,
built from verdicts, events, daily rollups and incidents."""

from blockwatch.site.build import BuildReport
from blockwatch.site.commands import build_site, cmd_site
from blockwatch.site.rollup import rollup, rollup_due, rollup_range
from blockwatch.site.serve import make_site_server, serve_site

__all__ = ["BuildReport", "build_site", "cmd_site", "make_site_server", "rollup", "rollup_due",
           "rollup_range", "serve_site"]
