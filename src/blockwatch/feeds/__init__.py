"""Incident feeds: fetch (httpx) -> parse (feedparser) -> extract (rules) -> store -> correlate.

fetch and store do I/O; parse, extract and correlate are pure functions over plain records.
The entry points for the daemon and the command line are in `blockwatch.feeds.commands`.
"""

from blockwatch.feeds.commands import PollSummary, cmd_feeds, cmd_incidents, link_cases, poll_feeds

__all__ = ["PollSummary", "cmd_feeds", "cmd_incidents", "link_cases", "poll_feeds"]
