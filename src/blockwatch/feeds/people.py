"""People lists (`[feeds] people = [...]`): TOML files of `[[person]]` tables, each a journalist
or blogger to watch for in incident reports, with the public report the entry rests on."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import ValidationError

from blockwatch.config import ConfigError, Person, _describe


def parse_people(text: str, *, file: str) -> list[Person]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, None, f"invalid TOML: {exc}") from None
    unknown = set(data) - {"person"}
    if unknown:
        raise ConfigError(file, ", ".join(sorted(unknown)),
                          "unknown key; a people list holds [[person]] tables only")
    out: list[Person] = []
    for i, raw in enumerate(data.get("person", [])):
        try:
            out.append(Person.model_validate(raw))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            key = f"person[{i}].{field}" if field else f"person[{i}]"
            raise ConfigError(file, key, _describe(err), _entry_line(text, i)) from None
    return out


def _entry_line(text: str, index: int) -> int | None:
    """The line of the index-th `[[person]]` header."""
    heads = [n + 1 for n, line in enumerate(text.splitlines()) if line.strip() == "[[person]]"]
    return heads[index] if index < len(heads) else None


def load_people(paths: Iterable[Path]) -> list[Person]:
    out: list[Person] = []
    for p in paths:
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(str(p), None, f"cannot read the people list: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(str(p), None, "not UTF-8 text") from None
        out.extend(parse_people(text, file=str(p)))
    return out


def merge(*lists: Sequence[Person]) -> list[Person]:
    """One entry per name (the first wins: `[[feeds.person]]` before the files)."""
    seen: set[str] = set()
    out: list[Person] = []
    for people in lists:
        for p in people:
            if p.name.casefold() not in seen:
                seen.add(p.name.casefold())
                out.append(p)
    return out
