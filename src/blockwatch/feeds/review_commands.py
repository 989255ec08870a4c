"""`blockwatch review`: correct the extractor, and measure it on the feeds this installation reads.

    review entries [--search TEXT] [--incident | --no-incident] [--unreviewed] [--sample N] [--json]
    review mark ENTRY (--not-incident | --types T,T) [--status S] [--country CC] [--outlets A,B]
                [--people "A;B"] [--note TEXT]
    review confirm ENTRY [--note TEXT]
    review list [--json]
    review stats [--json]
    review export [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from blockwatch.config import Config
from blockwatch.feeds import review_store
from blockwatch.feeds.commands import build_matcher, feed_specs, iso, watched
from blockwatch.feeds.review import (
    Labels,
    ReviewError,
    checked,
    labelled_item,
    score,
    score_lines,
    split_list,
)
from blockwatch.storage import open_database
from blockwatch.textsafe import printable

EXIT_OK, EXIT_USAGE = 0, 2


def _emit(obj: dict[str, Any], out: Any = None) -> None:
    (out or sys.stdout).write(json.dumps(obj, ensure_ascii=False) + "\n")


def _said(labels: Labels) -> str:
    if not labels.incident:
        return "no incident"
    bits = [",".join(labels.types)]
    if labels.status:
        bits.append(labels.status)
    if labels.outlets:
        bits.append("outlets " + ",".join(labels.outlets))
    if labels.country:
        bits.append(labels.country)
    if labels.people:
        bits.append("people " + "; ".join(labels.people))
    return " ".join(bits)


def _short(text: str, n: int = 90) -> str:
    text = printable(" ".join(text.split()))
    return text if len(text) <= n else text[:n - 1] + "…"


def _cleared(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("none", "-", "")


def _none_or(value: str | None, default: Any, conv: Callable[[str], Any]) -> Any:
    if value is None:
        return default
    return None if _cleared(value) else conv(value.strip())


def _people(text: str) -> tuple[str, ...]:
    return split_list(text, ";")


def _labels_from(args: argparse.Namespace, stored: Labels) -> Labels:
    outlets = tuple(_none_or(args.outlets, stored.outlets, split_list) or ())
    people = tuple(_none_or(args.people, stored.people, _people) or ())
    country = _none_or(args.country, stored.country, str.upper)
    if args.not_incident:
        if args.status is not None and not _cleared(args.status):
            raise ReviewError("--not-incident takes no status")
        return Labels(False, (), None, outlets, people, country)
    return Labels(True, split_list(args.types.lower()),
                  _none_or(args.status, stored.status if stored.incident else None, str.lower),
                  outlets, people, country)


def _entry_json(r: review_store.EntryRow) -> dict[str, Any]:
    return {"entry": r.id, "feed": r.feed, "language": r.language, "title": r.title,
            "summary": r.summary, "url": r.url, "published": iso(r.published),
            "first_seen": iso(r.first_seen), "stored": r.incident.to_json(),
            "reviewed": r.reviewed}


def cmd_review(cfg: Config, args: argparse.Namespace) -> int:
    try:
        return _ACTIONS[args.review_action](cfg, args)
    except ReviewError as exc:
        print(f"blockwatch review {args.review_action}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _entries(cfg: Config, args: argparse.Namespace) -> int:
    db = open_database(cfg.database_url)
    try:
        with db.read() as s:
            rows = review_store.entries(s, search=args.search, no_incident=args.no_incident,
                                        incident=args.incident, unreviewed=args.unreviewed,
                                        sample=args.sample, limit=args.limit)
    finally:
        db.close()
    if args.json:
        for r in rows:
            _emit(_entry_json(r))
        return EXIT_OK
    if not rows:
        print("no entries match", file=sys.stderr)
        return EXIT_OK
    for r in rows:
        mark = " (reviewed)" if r.reviewed else ""
        print(f"{r.id:>7}  {r.feed} [{r.language}]  {_said(r.incident)}{mark}\n"
              f"         {_short(r.title)}")
    return EXIT_OK


def _apply(cfg: Config, args: argparse.Namespace, confirm: bool) -> int:
    targets, _people = watched(cfg)
    db = open_database(cfg.database_url)
    try:
        with db.write() as s:
            _entry, stored = review_store.current(s, args.entry)
            labels = stored if confirm else _labels_from(args, stored)
            labels = checked(labels, outlets=[t.name for t in targets] + list(stored.outlets))
            res = review_store.apply(s, args.entry, labels, note=args.note,
                                     now=datetime.now(UTC),
                                     window=cfg.settings.feeds.correlation_window)
    finally:
        db.close()
    line = f"entry {res.entry_id}: {res.action}"
    if res.action not in ("confirmed", "confirmed no incident"):
        line += f" (was: {_said(res.before)}; now: {_said(res.after)})"
    if res.cases_removed or res.cases_added:
        line += f"; cases {res.cases_removed} removed, {res.cases_added} linked"
    print(line)
    return EXIT_OK


def _mark(cfg: Config, args: argparse.Namespace) -> int:
    return _apply(cfg, args, confirm=False)


def _confirm(cfg: Config, args: argparse.Namespace) -> int:
    return _apply(cfg, args, confirm=True)


def _reviews(cfg: Config) -> list[review_store.ReviewRow]:
    db = open_database(cfg.database_url)
    try:
        with db.read() as s:
            return review_store.reviews(s)
    finally:
        db.close()


def _list(cfg: Config, args: argparse.Namespace) -> int:
    rows = _reviews(cfg)
    if args.json:
        for r in rows:
            _emit({**_entry_json(r.entry), "review": r.labels.to_json(),
                   "extracted": r.extracted.to_json() if r.extracted else None,
                   "note": r.note, "reviewed_at": iso(r.reviewed_at)})
        return EXIT_OK
    if not rows:
        print("no reviews yet: `blockwatch review entries` lists entries, "
              "`blockwatch review mark ENTRY ...` records one", file=sys.stderr)
        return EXIT_OK
    for r in rows:
        was = _said(r.extracted) if r.extracted else "?"
        print(f"{r.entry.id:>7}  {(iso(r.reviewed_at) or '')[:16]}Z  extracted: {was}  ->  "
              f"reviewed: {_said(r.labels)}\n         {_short(r.entry.title)}"
              + (f"\n         note: {_short(r.note)}" if r.note else ""))
    return EXIT_OK


def _stats(cfg: Config, args: argparse.Namespace) -> int:
    rows = _reviews(cfg)
    if not rows:
        print("no reviews yet: nothing to measure (see `blockwatch review --help`)",
              file=sys.stderr)
        return EXIT_OK
    matcher = build_matcher(cfg)
    country_of = {spec.name: conf.country or None for spec, conf in feed_specs(cfg)}
    now = score((r.entry.language, r.labels,
                 Labels.of(matcher.extract(r.entry.title, r.entry.summary,
                                           country=country_of.get(r.entry.feed))))
                for r in rows)
    # (an entry stored without an incident kept no country: "as stored" scores no country)
    then = score((r.entry.language, replace(r.labels, country=None), r.extracted)
                 for r in rows if r.extracted)
    langs = ("en", "ru", "kk")
    if args.json:
        def js(sc: dict[str, Any]) -> dict[str, Any]:
            out = {}
            for k, v in sc.items():
                p, rc, f = v.incident_prf()
                out[k] = {"entries": v.n, "incident_precision": round(p, 4),
                          "incident_recall": round(rc, 4), "incident_f1": round(f, 4),
                          "type_f1": round(v.type_f1(), 4), "outlet_recall": round(v.outlet_recall(), 4),
                          "status_accuracy": round(v.status_accuracy(), 4) if v.status_n else None,
                          "country_accuracy": round(v.country_accuracy(), 4) if v.country_n else None,
                          "types": {t: dict(zip(("tp", "fp", "fn"), c, strict=True))
                                    for t, c in sorted(v.by_type.items())}}
            return out
        _emit({"reviewed": len(rows), "extractor_now": js(now), "as_stored": js(then)})
        return EXIT_OK
    print(f"{len(rows)} reviewed entries. The extractor as it is now, scored against the reviews:")
    print("\n".join(score_lines(now, langs)))
    if then:
        print("\nAs stored when the entries arrived (before the reviews):")
        print("\n".join(score_lines(then, langs)))
    picked = sum(1 for r in rows if r.extracted and not r.extracted.incident)
    print(f"\n{picked} of the reviewed entries had no incident when stored. Recall means something "
          "only if entries without an incident are reviewed too: `blockwatch review entries "
          "--sample 50 --unreviewed` draws them at random.")
    return EXIT_OK


def _export(cfg: Config, args: argparse.Namespace) -> int:
    rows = _reviews(cfg)
    out = Path(args.out).open("w", encoding="utf-8") if args.out else sys.stdout
    try:
        for r in rows:
            e = r.entry
            _emit(labelled_item(entry_id=e.id, lang=e.language, title=e.title, summary=e.summary,
                                url=e.url, published=iso(e.published), labels=r.labels,
                                note=r.note, feed=e.feed, extracted=r.extracted), out)
    finally:
        if args.out:
            out.close()
    if args.out:
        print(f"wrote {len(rows)} reviewed entries to {args.out}", file=sys.stderr)
    return EXIT_OK


_ACTIONS: dict[str, Callable[[Config, argparse.Namespace], int]] = {
    "entries": _entries, "mark": _mark, "confirm": _confirm, "list": _list, "stats": _stats,
    "export": _export,
}
