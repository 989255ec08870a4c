"""Target lists (`probes/*.toml`): the outlets to watch, their URLs and how reports name them."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from blockwatch.config import ConfigError

_KEYS = {"name", "urls", "aliases", "country", "category", "parents", "excludes"}


@dataclass(frozen=True)
class Target:
    name: str
    urls: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    country: str = ""
    category: str = ""
    source: str = field(default="", compare=False)
    # names of the organisation the outlet is a service of ("RFE/RL" for Azattyq): a report
    # naming the parent means this outlet when the report is about the outlet's country
    parents: tuple[str, ...] = ()
    # names of other outlets that contain one of this one's names ("Azattyk Media", RFE/RL's
    # Kyrgyz service, is not Azattyq): a report naming them is not about this outlet
    excludes: tuple[str, ...] = ()

    @property
    def domains(self) -> tuple[str, ...]:
        seen: list[str] = []
        for u in self.urls:
            host = urlsplit(u).hostname or ""
            if host and host not in seen:
                seen.append(host)
        return tuple(seen)


def _line_of(text: str, index: int) -> int | None:
    count = -1
    for i, line in enumerate(text.splitlines()):
        if re.match(r"^\s*\[\[\s*target\s*\]\]", line):
            count += 1
            if count == index:
                return i + 1
    return None


def parse_targets(text: str, *, file: str) -> list[Target]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, None, f"invalid TOML: {exc}") from None
    extra = set(data) - {"target"}
    if extra:
        raise ConfigError(file, sorted(extra)[0], "unknown key; a target list holds [[target]] tables")
    items = data.get("target", [])
    if not isinstance(items, list):
        raise ConfigError(file, "target", "expected [[target]] tables")
    out: list[Target] = []
    for i, item in enumerate(items):
        key = f"target[{i}]"
        line = _line_of(text, i)
        if not isinstance(item, dict):
            raise ConfigError(file, key, "expected a table", line)
        out.append(_target(item, file=file, key=key, line=line))
    return out


def _target(item: dict[str, Any], *, file: str, key: str, line: int | None) -> Target:
    unknown = set(item) - _KEYS
    if unknown:
        raise ConfigError(file, f"{key}.{sorted(unknown)[0]}",
                          f"unknown key; expected {', '.join(sorted(_KEYS))}", line)
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(file, f"{key}.name", "required: the target's name, a non-empty string", line)
    urls = item.get("urls")
    if not isinstance(urls, list) or not urls:
        raise ConfigError(file, f"{key}.urls", "required: a list of one or more URLs", line)
    for u in urls:
        parts = urlsplit(u) if isinstance(u, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(file, f"{key}.urls", f"{u!r} is not an http:// or https:// URL", line)
    aliases = item.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ConfigError(file, f"{key}.aliases", "expected a list of strings", line)
    country = item.get("country", "")
    if not isinstance(country, str) or not re.fullmatch(r"([A-Z]{2})?", country):
        raise ConfigError(file, f"{key}.country", "expected a two-letter country code like \"KZ\"", line)
    category = item.get("category", "")
    if not isinstance(category, str):
        raise ConfigError(file, f"{key}.category", "expected a Citizen Lab category code", line)
    parents = item.get("parents", [])
    if not isinstance(parents, list) or not all(isinstance(a, str) for a in parents):
        raise ConfigError(file, f"{key}.parents", "expected a list of strings", line)
    if parents and not country:
        raise ConfigError(file, f"{key}.parents", "parents need the target's country", line)
    excludes = item.get("excludes", [])
    if not isinstance(excludes, list) or not all(isinstance(a, str) for a in excludes):
        raise ConfigError(file, f"{key}.excludes", "expected a list of strings", line)
    return Target(name.strip(), tuple(urls), tuple(aliases), country, category, source=file,
                  parents=tuple(parents), excludes=tuple(excludes))


def load_targets(paths: list[Path]) -> list[Target]:
    """All targets of the given files; names must be unique across files."""
    targets: list[Target] = []
    seen: dict[str, str] = {}
    for p in paths:
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(str(p), None, f"cannot read the target list: {exc.strerror}") from None
        for t in parse_targets(text, file=str(p)):
            if t.name in seen:
                raise ConfigError(str(p), "target.name",
                                  f"{t.name!r} is already defined in {seen[t.name]}")
            seen[t.name] = str(p)
            targets.append(t)
    return targets
