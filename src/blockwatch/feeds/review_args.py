"""The arguments of `blockwatch review` (standard library only: the parser is built for every
command, the agent's included)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return n


def add_arguments(p: argparse.ArgumentParser, common: Callable[[argparse.ArgumentParser], None],
                  parser_class: type[argparse.ArgumentParser]) -> None:
    sub = p.add_subparsers(dest="review_action", metavar="ACTION", parser_class=parser_class,
                           help="what to do (each has its own --help)")
    sub.required = True

    def action(name: str, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        common(sp)
        return sp

    a = action("entries", "stored feed entries with their id, newest first: find one to review")
    a.add_argument("--search", metavar="TEXT", help="only entries whose title or summary holds "
                   "TEXT (any case)")
    which = a.add_mutually_exclusive_group()
    which.add_argument("--incident", action="store_true",
                       help="only entries that are an incident now (with --unreviewed: what to check "
                            "for false alarms)")
    which.add_argument("--no-incident", action="store_true",
                       help="only entries with no incident now (the extractor found none, or a "
                            "person dismissed it): what it may have missed")
    a.add_argument("--unreviewed", action="store_true", help="only entries not reviewed yet")
    a.add_argument("--sample", type=_positive, metavar="N",
                   help="N entries drawn at random instead of the newest (review them all, "
                        "incident or not, for a fair measure of what the extractor misses)")
    a.add_argument("--limit", type=_positive, default=50, help="at most N (default 50)")
    a.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    a = action("mark", "say what an entry reports: it overrides the extractor everywhere "
               "(site, status.json, digest, alerts, incidents)")
    a.add_argument("entry", type=int, help="the entry's id (from `review entries` or "
                   "`incidents`)")
    what = a.add_mutually_exclusive_group(required=True)
    what.add_argument("--not-incident", action="store_true", help="no incident: the incident "
                      "and its cases go")
    what.add_argument("--types", metavar="T,T", help="an incident of these types: "
                      "detention, arrest, blocking, raid, criminal_case, fine, assault, "
                      "shutdown, harassment")
    a.add_argument("--status", metavar="S", help="released, acquitted, charges_dropped, "
                   "unblocked, sentenced, convicted, or none (default: as stored)")
    a.add_argument("--country", metavar="CC", help="where it happened, e.g. KZ, or none "
                   "(default: as stored)")
    a.add_argument("--outlets", metavar="A,B", help="the watched outlets it names, as in the "
                   "target lists, or none (default: as stored)")
    a.add_argument("--people", metavar="A;B", help="the people it names, separated by ';' (a "
                   "name may hold a comma), or none (default: as stored)")
    a.add_argument("--note", default="", help="why (kept with the review)")
    a = action("confirm", "the stored reading of an entry is right, incident or not")
    a.add_argument("entry", type=int, help="the entry's id")
    a.add_argument("--note", default="", help="kept with the review")
    a = action("list", "every review: what the extractor said and what the reviewer decided")
    a.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    a = action("stats", "how the extractor scores on the reviewed entries")
    a.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    a = action("export", "the reviewed entries as labelled data (JSON lines, the schema of the "
               "labelled sets in tests/fixtures/incidents)")
    a.add_argument("--out", metavar="FILE", help="write here (default: standard output)")
