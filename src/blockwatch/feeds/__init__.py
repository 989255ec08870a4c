"""Incident feeds: fetch (httpx) -> parse (feedparser) -> extract (rules) -> store -> correlate.

fetch and store do I/O; parse, extract and correlate are pure functions over plain records.
Entry points for the command line and the daemon: `blockwatch.feeds.commands` (cmd_feeds,
cmd_incidents, poll_feeds, link_cases). Nothing is imported here, so that the pure modules load
without httpx or the database.
"""
