"""Configuration: TOML in, validated settings out, with errors a person can act on.

Rules (a contract with users, see the README): unknown keys are errors; paths are relative to the
folder of the file that names them; durations read "10s"; secrets live in the environment or in
files, named by keys ending in `_env` / `_file`, and are resolved only when the feature that needs
them runs.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from blockwatch.durations import parse_duration
from blockwatch.hostport import check_doh_url, split_hostport
from blockwatch.redact import url as redact_url
from blockwatch.vocabulary import VERDICTS

ENV_VAR = "BLOCKWATCH_CONFIG"
DEFAULT_PATH = Path("config/blockwatch.toml")


class ConfigError(Exception):
    """A configuration problem: where it is, what is wrong, what was expected."""

    def __init__(self, file: str | None, key: str | None, problem: str, line: int | None = None):
        self.file = file
        self.key = key
        self.problem = problem
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file or "<built-in defaults>"
        if self.line:
            where += f":{self.line}"
        if self.key:
            where += f": {self.key}"
        return f"{where}: {self.problem}"


class SecretError(Exception):
    """A secret named by `*_env` / `*_file` is missing when a feature needs it."""


def _duration(v: Any) -> Any:
    if isinstance(v, str):
        return parse_duration(v)
    if isinstance(v, int | float) and not isinstance(v, bool):
        raise ValueError(f"{v!r} has no unit; write a duration like \"{v}s\" or \"{v}m\"")
    return v


Duration = Annotated[timedelta, BeforeValidator(_duration)]

_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.I)
_SIZE_UNITS = {None: 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 10**6, "mib": 2**20,
               "gb": 10**9, "gib": 2**30}


def _size(v: Any) -> Any:
    if isinstance(v, str):
        m = _SIZE.match(v)
        if not m:
            raise ValueError(f"{v!r} is not a size; expected bytes or a size like \"512KiB\", \"5MB\"")
        return int(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").lower() or None]
    return v


Size = Annotated[int, BeforeValidator(_size), Field(gt=0)]
SizeOrOff = Annotated[int, BeforeValidator(_size), Field(ge=0)]  # 0: the feature is off


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_hostport(v: str) -> str:
    if v.startswith("https://"):
        return check_doh_url(v)
    host, port = split_hostport(v.removeprefix("tcp://"), 53)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"{v!r}: a resolver is an IP address with an optional port (\"1.1.1.1\", "
            "\"1.1.1.1:53\", \"[2606:4700::1111]:53\"), \"tcp://\" and one of those, "
            "or a DoH URL (\"https://...\")"
        ) from None
    if not 0 < port < 65536:
        raise ValueError(f"{v!r}: port out of range")
    return v


Resolver = Annotated[str, BeforeValidator(lambda v: _check_hostport(v) if isinstance(v, str) else v)]


def _check_ip(v: str) -> str:
    if v:
        try:
            ipaddress.ip_address(v)
        except ValueError:
            raise ValueError(f"{v!r} is not an IP address") from None
    return v


SourceAddress = Annotated[str, BeforeValidator(lambda v: _check_ip(v) if isinstance(v, str) else v)]


def _check_url(v: Any) -> Any:
    if isinstance(v, str):
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{v!r} is not an http:// or https:// URL")
    return v


HttpUrl = Annotated[str, BeforeValidator(_check_url)]


class StorageConfig(_Strict):
    url: str = "sqlite:///blockwatch.db"

    @field_validator("url")
    @classmethod
    def _known_driver(cls, v: str) -> str:
        if v.startswith("sqlite:///") or v.startswith("postgresql+psycopg://"):
            return v
        if v.startswith("postgresql://") or v.startswith("postgres://"):
            raise ValueError(
                f"{redact_url(v)!r}: spell the driver, \"postgresql+psycopg://user@host/db\""
            )
        raise ValueError(
            f"{redact_url(v)!r}: expected \"sqlite:///path.db\" or \"postgresql+psycopg://user@host/db\""
        )


class ProbeConfig(_Strict):
    targets: list[str] = Field(default_factory=lambda: ["probes/kz.toml"])
    interval: Duration = timedelta(minutes=15)
    timeout: Duration = timedelta(seconds=10)
    concurrency: int = Field(64, ge=1, le=10000)
    ca_bundle: str = ""
    confirm_after: int = Field(2, ge=1, le=100)
    canaries: list[HttpUrl] = Field(default_factory=lambda: ["https://www.wikipedia.org/"])
    body_limit: Size = 512 * 1024
    throttle_factor: float = Field(4.0, gt=1.0)
    user_agent: str = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/130.0 Safari/537.36"
    )
    block_addresses: list[str] = Field(default_factory=list)
    allow_networks: list[str] = Field(default_factory=list)
    # how old the last control of a URL may be and still be judged against, when a vantage's
    # result is plainly fine and matches it (round.py); "0": the control fetches every URL
    control_reuse: Duration = timedelta(hours=1)

    @field_validator("control_reuse", mode="before")
    @classmethod
    def _zero(cls, v: Any) -> Any:
        return "0s" if isinstance(v, str) and v.strip() == "0" else v

    @field_validator("allow_networks", "block_addresses")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for n in v:
            try:
                ipaddress.ip_network(n, strict=False)
            except ValueError:
                raise ValueError(f"{n!r} is not an IP address or network like \"10.0.0.0/8\"") from None
        return v


class ControlConfig(_Strict):
    resolvers: list[Resolver] = Field(
        default_factory=lambda: ["1.1.1.1", "8.8.8.8:53", "https://dns.google/dns-query"],
        min_length=1,
    )
    source_address: SourceAddress = ""


class _VantageBase(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    country: str = Field("", pattern=r"^([A-Z]{2})?$")


class LocalVantage(_VantageBase):
    kind: Literal["local"]
    resolver: Resolver = ""  # empty: the system resolver
    source_address: SourceAddress = ""


class ResolverVantage(_VantageBase):
    kind: Literal["resolver"]
    address: Resolver
    control_name: str = "www.wikipedia.org"
    tries: int = Field(2, ge=1, le=10)


class OoniVantage(_VantageBase):
    kind: Literal["ooni"]
    country: str = Field(pattern=r"^[A-Z]{2}$")
    api_url: HttpUrl = "https://api.ooni.io"
    lookback: Duration = timedelta(days=7)
    interval: Duration = timedelta(hours=1)


class AgentVantage(_VantageBase):
    kind: Literal["agent"]
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    asn: str = Field("", pattern=r"^(AS\d+)?$")


Vantage = Annotated[
    LocalVantage | ResolverVantage | OoniVantage | AgentVantage, Field(discriminator="kind")
]


class FeedSource(_Strict):
    """One incident feed. `kind = "feed"`: an RSS/Atom address. `kind = "rferl"`: an RFE/RL
    (Pangea CMS) site whose `/rssfeeds` page is read at run time for the feed addresses, because
    RFE/RL regenerates its feed ids."""

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["feed", "rferl"] = "feed"
    url: HttpUrl | None = None
    site: HttpUrl | None = None
    sections: list[str] = Field(default_factory=list)
    language: Literal["en", "ru", "kk"] = "en"
    # the country an incident is tagged with when its text names none (a national outlet)
    country: str = Field("", pattern=r"^([A-Z]{2})?$")
    interval: Duration | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _address(self) -> FeedSource:
        if self.kind == "feed" and not self.url:
            raise ValueError("a feed needs url = \"https://...\" (or kind = \"rferl\" with site)")
        if self.kind == "rferl" and not self.site:
            raise ValueError("kind = \"rferl\" needs site = \"https://www.rferl.org\" (the site "
                             "whose /rssfeeds page lists its feeds)")
        if self.kind == "feed" and (self.site or self.sections):
            raise ValueError("site and sections belong to kind = \"rferl\"")
        return self

    @property
    def address(self) -> str:
        """What is fetched first: the feed, or the RFE/RL site's feed list page."""
        if self.kind == "rferl":
            assert self.site is not None
            return self.site.rstrip("/") + "/rssfeeds"
        assert self.url is not None
        return self.url


SEARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    # GDELT answers one request per 5 s per address; its query box takes a few hundred characters.
    "gdelt": {"api_url": "https://api.gdeltproject.org/api/v2/doc/doc", "min_gap": timedelta(seconds=5),
              "max_query_length": 250},
    # Google News RSS search is undocumented; keep requests slow and queries short.
    "google_news": {"api_url": "https://news.google.com/rss/search", "min_gap": timedelta(seconds=2),
                    "max_query_length": 400},
}


class FeedSearch(_Strict):
    """A news search run for the watched names: target names and aliases (`outlets`), the
    people list (`people`) and `terms`, OR-joined in batches that fit the service's query box."""

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["gdelt", "google_news"]
    enabled: bool = True
    interval: Duration | None = None
    api_url: HttpUrl | None = None
    outlets: bool = True
    people: bool = True
    terms: list[str] = Field(default_factory=list)
    extra: str = ""  # appended to every query, e.g. "sourcecountry:KZ" or "site:kz"
    max_query_length: int | None = Field(None, ge=40, le=2000)
    min_gap: Duration | None = None
    language: Literal["en", "ru", "kk"] = "ru"
    country: str = Field("", pattern=r"^([A-Z]{2})?$")  # as for a feed
    # gdelt
    timespan: Duration = timedelta(days=1)
    sourcecountry: str = Field("", pattern=r"^([A-Za-z]{2})?$")  # FIPS 10-4 (KZ, KG, TI, UZ)
    sourcelang: str = Field("", pattern=r"^[a-z]*$")  # "rus", "kaz", "eng"
    maxrecords: int = Field(250, ge=1, le=250)
    # google_news
    hl: str = Field("ru", pattern=r"^[A-Za-z-]{2,10}$")
    gl: str = Field("KZ", pattern=r"^[A-Z]{2}$")
    ceid: str = ""  # default "<gl>:<hl>"
    when: Duration = timedelta(days=7)

    @model_validator(mode="after")
    def _checks(self) -> FeedSearch:
        if self.kind == "gdelt" and self.min_gap is not None and self.min_gap < timedelta(seconds=5):
            raise ValueError("min_gap: GDELT allows one request every 5 s at most")
        if self.ceid and self.ceid != f"{self.gl}:{self.hl.split('-')[0]}":
            raise ValueError(f"ceid {self.ceid!r} does not match gl and hl; expected "
                             f"\"{self.gl}:{self.hl.split('-')[0]}\"")
        if not (self.outlets or self.people or self.terms):
            raise ValueError("nothing to search: set outlets, people or terms")
        return self

    def setting(self, key: str) -> Any:
        """A setting, or the kind's default when it is not set."""
        v = getattr(self, key)
        return SEARCH_DEFAULTS[self.kind][key] if v is None else v


class Person(_Strict):
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    outlet: str = ""
    source: str = ""  # where the facts come from (a public report)


class FeedsConfig(_Strict):
    interval: Duration = timedelta(minutes=30)
    timeout: Duration = timedelta(seconds=30)
    max_bytes: Size = 5 * 10**6
    concurrency: int = Field(8, ge=1, le=256)
    correlation_window: Duration = timedelta(hours=72)
    people: list[str] = Field(default_factory=list)  # people lists (TOML files of [[person]])
    source: list[FeedSource] = Field(default_factory=list)
    search: list[FeedSearch] = Field(default_factory=list)
    person: list[Person] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> FeedsConfig:
        seen: set[str] = set()
        for f in [*self.source, *self.search]:
            if f.name in seen:
                raise ValueError(f"feed name {f.name!r} is used twice; names must be unique")
            seen.add(f.name)
        return self

    @property
    def names(self) -> set[str]:
        """The enabled feeds and searches (each is one row of the feeds table)."""
        return {f.name for f in [*self.source, *self.search] if f.enabled}

    @property
    def active(self) -> bool:
        return bool(self.names)


ALERT_FILTER_NAMES = (*VERDICTS, "blocked", "unblocked", "recovered", "silent", "back", "case")


class _Audience(_Strict):
    """What an email recipient and a Telegram chat share: language and filters."""

    language: Literal["en", "ru", "kk"] = "en"
    targets: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    verdicts: list[str] = Field(default_factory=list)
    digest: bool = True
    alerts: bool = True

    @field_validator("verdicts")
    @classmethod
    def _known_verdicts(cls, v: list[str]) -> list[str]:
        for name in v:
            if name not in ALERT_FILTER_NAMES:
                raise ValueError(f"{name!r} is not a verdict or alert kind; expected one of "
                                 + ", ".join(ALERT_FILTER_NAMES))
        return v


class Recipient(_Audience):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")


class Webhook(_Strict):
    # a Slack/Discord-style URL is itself the secret: url_env / url_file keep it out of here
    url: HttpUrl | None = None
    url_env: str = ""
    url_file: str = ""
    secret_env: str = ""
    secret_file: str = ""
    language: Literal["en", "ru", "kk"] = "en"

    @model_validator(mode="after")
    def _one_url(self) -> Webhook:
        given = [k for k in ("url", "url_env", "url_file") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give the webhook's address as exactly one of url, url_env "
                             "(an environment variable) or url_file (a file)"
                             + (f"; got {', '.join(given)}" if given else ""))
        return self

    @property
    def ref(self) -> str:
        """What names this webhook in the config (the URL itself only when written here)."""
        if self.url_env:
            return f"env:{self.url_env}"
        if self.url_file:
            return f"file:{self.url_file}"
        return self.url or ""


def _chat_id(v: Any) -> Any:
    # TOML lets one write the id as a number; Telegram takes either
    if isinstance(v, int) and not isinstance(v, bool):
        v = str(v)
    if isinstance(v, str) and not re.fullmatch(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}", v):
        raise ValueError(f"{v!r} is not a Telegram chat id; expected a number like "
                         "\"-1001234567890\" or a public channel's \"@username\"")
    return v


class Telegram(_Audience):
    """A Telegram chat, group or channel the bot posts alerts and digests to; the filters are
    a recipient's."""

    chat_id: Annotated[str, BeforeValidator(_chat_id)]
    bot_token_env: str = ""
    bot_token_file: str = ""
    api_url: HttpUrl = "https://api.telegram.org"

    @model_validator(mode="after")
    def _one_token(self) -> Telegram:
        if bool(self.bot_token_env) == bool(self.bot_token_file):
            raise ValueError("give the bot token as exactly one of bot_token_env (an environment "
                             "variable) or bot_token_file (a file); never in this file")
        return self


class AlertsConfig(_Strict):
    smtp_host: str = "localhost"
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username_env: str = ""
    smtp_password_env: str = ""
    smtp_username_file: str = ""
    smtp_password_file: str = ""
    sender: str = "blockwatch@localhost"
    digest_at: str = Field("07:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: str = "UTC"
    group_window: Duration = timedelta(minutes=5)
    all_clear: bool = False
    # incidents (and cases) alert only while this recent: older ones are history, not news
    incident_max_age: Duration = timedelta(hours=48)
    quorum: int = Field(0, ge=0)  # vantages of a country that must agree; 0: 1 or 2 (README)
    recipient: list[Recipient] = Field(default_factory=list)
    webhook: list[Webhook] = Field(default_factory=list)
    telegram: list[Telegram] = Field(default_factory=list)

    @field_validator("telegram")
    @classmethod
    def _unique_chats(cls, v: list[Telegram]) -> list[Telegram]:
        seen: set[str] = set()
        for t in v:
            if t.chat_id in seen:  # the outbox names a chat by its id
                raise ValueError(f"chat_id {t.chat_id!r} is used twice; each chat once")
            seen.add(t.chat_id)
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone, like \"Asia/Almaty\"") from None
        return v


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    max_body: Size = 2 * 2**20
    # a request's headers within this of its first byte, its body never paused longer
    request_timeout: Duration = timedelta(seconds=10)
    max_connections_per_client: int = Field(64, ge=0)  # 0: no cap (behind a reverse proxy)
    max_connections: int = Field(4096, ge=16)


class SiteConfig(_Strict):
    out: str = "reports/site"
    base_url: str = ""
    languages: list[Literal["en", "ru", "kk"]] = Field(default_factory=lambda: ["en", "ru"])
    title: str = "blockwatch"
    # which incidents the public pages and status.json show: "all" (each marked checked or found
    # automatically) or "reviewed" (only those a person confirmed with `blockwatch review`)
    incidents: Literal["all", "reviewed"] = "all"
    # the most memory (estimated) the daemon's site cache keeps between builds; 0: no cache.
    # The default holds 500 outlets in two languages (about 80 MB) or 1,000 in three (about
    # 200 MB) whole; more is held to it (site/cache.py). Not part of what the pages depend on:
    # a change renders nothing again
    cache_limit: SizeOrOff = 256 * 10**6


class AsnConfig(_Strict):
    enabled: bool = True
    url: HttpUrl = "https://iptoasn.com/data/ip2asn-combined.tsv.gz"
    file: str = ""  # empty: next to the SQLite database, else data/ beside this config
    max_age: Duration = timedelta(days=7)


class RetentionConfig(_Strict):
    raw: Duration = timedelta(days=90)


class Settings(_Strict):
    storage: StorageConfig = StorageConfig()
    probe: ProbeConfig = ProbeConfig()
    control: ControlConfig = ControlConfig()
    vantage: list[Vantage] = Field(
        default_factory=lambda: [LocalVantage(kind="local", name="local")]
    )
    feeds: FeedsConfig = FeedsConfig()
    alerts: AlertsConfig = AlertsConfig()
    server: ServerConfig | None = None
    site: SiteConfig = SiteConfig()
    retention: RetentionConfig = RetentionConfig()
    asn: AsnConfig = AsnConfig()

    @model_validator(mode="after")
    def _unique_vantages(self) -> Settings:
        seen: set[str] = set()
        for v in self.vantage:
            if v.name in seen:
                raise ValueError(f"vantage name {v.name!r} is used twice; names must be unique")
            seen.add(v.name)
        return self


@dataclass(frozen=True)
class Config:
    """Validated settings plus where they came from (for relative paths and messages)."""

    settings: Settings
    path: Path | None  # None: built-in defaults
    base_dir: Path

    def resolve(self, p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() else Path(os.path.normpath(self.base_dir / path))

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "<built-in defaults>"

    @property
    def database_url(self) -> str:
        url = self.settings.storage.url
        if url.startswith("sqlite:///"):
            rest = url[len("sqlite:///"):]
            if rest and rest != ":memory:" and not rest.startswith("/"):
                return "sqlite:///" + str(self.resolve(rest))
        return url

    @property
    def target_files(self) -> list[Path]:
        return [self.resolve(p) for p in self.settings.probe.targets]

    @property
    def people_files(self) -> list[Path]:
        return [self.resolve(p) for p in self.settings.feeds.people]

    def secret(self, owner: BaseModel, base: str, where: str) -> str | None:
        """The secret named by `<base>_env` or `<base>_file` on `owner`; None when neither is set.

        Raises SecretError naming the variable or file when it is set but missing.
        """
        env = getattr(owner, f"{base}_env", "")
        file = getattr(owner, f"{base}_file", "")
        if env:
            value = os.environ.get(env)
            if value is None or value == "":
                raise SecretError(
                    f"{where}.{base}_env names the environment variable {env}, which is not set"
                )
            return value
        if file:
            path = self.resolve(file)
            try:
                return path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SecretError(
                    f"{where}.{base}_file names {path}, which cannot be read: {exc.strerror}"
                ) from None
        return None


def _loc_to_key(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """('vantage', 1, 'local', 'nmae') -> 'vantage[1].nmae' (dropping union tags)."""
    out = ""
    node: Any = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if isinstance(node, dict) and part not in node and part in (
            "local", "resolver", "ooni", "agent"
        ) and node.get("kind") == part:
            continue  # the discriminator's tag, not a key the user wrote
        if isinstance(part, str) and part.startswith("function-after["):
            continue  # a model validator's tag
        out += ("." if out else "") + str(part)
        node = node.get(part) if isinstance(node, dict) else None
    return out


def _find_line(text: str, key: str) -> int | None:
    """Best effort: the line where the last component of `key` is written."""
    last = re.split(r"[.\[]", key)[-1].rstrip("]")
    if not last or last.isdigit():
        return None
    pat = re.compile(rf"^\s*\"?{re.escape(last)}\"?\s*=")
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if pat.match(line)]
    return hits[0] if len(hits) == 1 else None


def _describe(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; config/blockwatch.toml lists every setting)"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        return "kind must be one of \"local\", \"resolver\", \"ooni\", \"agent\""
    if kind == "union_tag_not_found":
        return "missing kind; expected one of \"local\", \"resolver\", \"ooni\", \"agent\""
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    if "input" in err and kind not in ("value_error",) and not isinstance(err["input"], dict):
        msg += f" (got {err['input']!r})"
    return msg


def parse(data: dict[str, Any], *, file: str | None, text: str = "") -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        key = _loc_to_key(tuple(first["loc"]), data)
        line = _find_line(text, key) if text and key else None
        problem = _describe(first)
        for other in errors[1:6]:
            okey = _loc_to_key(tuple(other["loc"]), data)
            oline = _find_line(text, okey) if text and okey else None
            problem += f"\n  also {'line ' + str(oline) + ': ' if oline else ''}{okey}: {_describe(other)}"
        raise ConfigError(file, key or None, problem, line) from None


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the config: the given path, else $BLOCKWATCH_CONFIG, else config/blockwatch.toml if
    present, else built-in defaults (relative paths then resolve from the working directory)."""
    if path is None:
        env = os.environ.get(ENV_VAR)
        if env:
            path = env
        elif DEFAULT_PATH.is_file():
            path = DEFAULT_PATH
    if path is None:
        return Config(Settings(), None, Path.cwd())
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(str(p), None, f"cannot read the config file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(str(p), None, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        if m:
            line = int(m.group(1))
            msg = msg[: m.start()].strip()
        raise ConfigError(str(p), None, f"invalid TOML: {msg}", line) from None
    settings = parse(data, file=str(p), text=text)
    return Config(settings, p, p.resolve().parent)
