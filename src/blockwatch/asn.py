"""IP address -> network (ASN), from the public-domain iptoasn.com table.

DNS consistency compares networks, not single addresses (a CDN answers with different addresses
in different places, but from the same network). No package ships a current table, so a
deployment downloads `ip2asn-combined.tsv.gz` (IPv4 and IPv6), keeps it next to the database and
refreshes it weekly; until the file exists every lookup is None and the analysis falls back to
address overlap and the TLS check.

Format: one range per line, tab-separated, inclusive:
    range_start  range_end  AS_number  country_code  AS_description
    1.0.0.0      1.0.0.255  13335      US            CLOUDFLARENET
AS number 0 marks ranges that are not routed ("None", "Not routed"): those look up as None.

In memory: starts, ends and AS numbers in flat arrays sorted by start, searched with bisect.
IPv4 uses array('I'); IPv6 keeps 16-byte big-endian values in one bytes object (a Python int per
address would cost ~3x the memory). Adjacent ranges of the same AS are merged.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import email.utils
import gzip
import io
import json
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from blockwatch import __version__
from blockwatch.durations import format_duration

if TYPE_CHECKING:
    from blockwatch.config import Config

log = logging.getLogger(__name__)

# The lead will turn this into a config key; a module constant until then.
IP2ASN_URL = "https://iptoasn.com/data/ip2asn-combined.tsv.gz"
FILENAME = "ip2asn-combined.tsv.gz"
MAX_AGE = timedelta(days=7)
MAX_DOWNLOAD_BYTES = 64 * 2**20  # the real file is ~7-8 MB compressed
MAX_TABLE_CHARS = 512 * 2**20  # decompressed; a decompression bomb stops here
MIN_ROWS = 1000  # a download with fewer routed rows is an error page, not the table
USER_AGENT = f"blockwatch/{__version__} (ip2asn table refresh)"
_RECHECK_SECONDS = 60.0  # how often a missing table file is looked for again


class TableError(Exception):
    pass


class _U128Seq:
    """A read-only sequence of 128-bit ints over packed big-endian bytes, for bisect."""

    __slots__ = ("_buf",)

    def __init__(self, buf: bytes):
        self._buf = buf

    def __len__(self) -> int:
        return len(self._buf) // 16

    def __getitem__(self, i: int) -> int:
        if i < 0:
            i += len(self)
        return int.from_bytes(self._buf[16 * i:16 * i + 16], "big")


@dataclass(frozen=True)
class LoadStats:
    lines: int  # data lines read
    ranges: int  # ranges kept (routed, after merging)
    skipped: int  # malformed lines
    seconds: float


class AsnTable:
    """An immutable lookup table; build it with `parse_lines` or `load_table`."""

    def __init__(self, v4: tuple[array[int], array[int], array[int]],
                 v6: tuple[bytes, bytes, array[int]], names: dict[int, str],
                 stats: LoadStats):
        self._v4s, self._v4e, self._v4a = v4
        self._v6s, self._v6e, self._v6a = _U128Seq(v6[0]), _U128Seq(v6[1]), v6[2]
        self._names = names
        self.stats = stats

    def __len__(self) -> int:
        return len(self._v4a) + len(self._v6a)

    def lookup(self, ip: str) -> str | None:
        """"AS9198" for an address in a routed range; None when unrouted, unknown or not an IP."""
        n = _v4(ip)
        if n is not None:
            i = bisect.bisect_right(self._v4s, n) - 1
            return f"AS{self._v4a[i]}" if i >= 0 and n <= self._v4e[i] else None
        n6 = _v6(ip)
        if n6 is None:
            return None
        if n6 >> 32 == 0xFFFF:  # ::ffff:a.b.c.d is an IPv4 address
            return self.lookup(socket.inet_ntop(socket.AF_INET, (n6 & 0xFFFFFFFF).to_bytes(4, "big")))
        i = bisect.bisect_right(self._v6s, n6) - 1
        return f"AS{self._v6a[i]}" if i >= 0 and n6 <= self._v6e[i] else None

    def name(self, asn: str) -> str | None:
        """The AS description from the table ("KAZTELECOM-AS"), for human-readable reasons."""
        try:
            return self._names.get(int(asn.removeprefix("AS"))) or None
        except ValueError:
            return None


def _v4(ip: str) -> int | None:
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
    except (OSError, ValueError):
        return None


def _v6(ip: str) -> int | None:
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET6, ip.split("%", 1)[0]), "big")
    except (OSError, ValueError):
        return None


class _Builder:
    """Ranges of one family, appended in file order; adjacent ranges of one AS are merged on the
    fly. The file is sorted, so the common path never sorts; unsorted input is sorted at the end."""

    def __init__(self, width: int):
        self.width = width  # 4 or 16 bytes per address
        self.starts: Any = array("I") if width == 4 else bytearray()
        self.ends: Any = array("I") if width == 4 else bytearray()
        self.asns: array[int] = array("I")
        self.last_start = -1
        self.last_end = -2
        self.last_asn = -1
        self.ordered = True

    def add(self, a: int, b: int, asn: int) -> None:
        if a < self.last_start:
            self.ordered = False
        if asn == self.last_asn and a == self.last_end + 1:
            self._set_end(b)
        else:
            if self.width == 4:
                self.starts.append(a)
                self.ends.append(b)
            else:
                self.starts += a.to_bytes(16, "big")
                self.ends += b.to_bytes(16, "big")
            self.asns.append(asn)
            self.last_start, self.last_asn = a, asn
        self.last_end = b

    def _set_end(self, b: int) -> None:
        if self.width == 4:
            self.ends[-1] = b
        else:
            self.ends[-16:] = b.to_bytes(16, "big")

    def _get(self, seq: Any, i: int) -> int:
        return seq[i] if self.width == 4 else int.from_bytes(seq[16 * i:16 * i + 16], "big")

    def finish(self) -> tuple[Any, Any, array[int]]:
        if not self.ordered:
            rows = sorted((self._get(self.starts, i), self._get(self.ends, i), self.asns[i])
                          for i in range(len(self.asns)))
            again = _Builder(self.width)
            for r in rows:
                again.add(*r)
            return again.finish()
        if self.width == 16:
            return bytes(self.starts), bytes(self.ends), self.asns
        return self.starts, self.ends, self.asns


def parse_lines(lines: Iterable[str]) -> AsnTable:
    """Build a table; a malformed line is skipped and counted, never fatal."""
    t0 = time.perf_counter()
    b4, b6 = _Builder(4), _Builder(16)
    names: dict[int, str] = {}
    count = skipped = 0
    # Locals: this loop runs half a million times on a real table.
    pton, af4, af6, from_bytes = socket.inet_pton, socket.AF_INET, socket.AF_INET6, int.from_bytes
    for line in lines:
        if len(line) < 3 or line[0] == "#":
            continue
        count += 1
        f = line.rstrip("\r\n").split("\t")
        try:
            asn = int(f[2])
            if asn == 0:
                continue  # not routed
            if not 0 < asn < 2**32:
                raise ValueError("AS number out of range")
            try:
                a, b, dest = from_bytes(pton(af4, f[0]), "big"), from_bytes(pton(af4, f[1]), "big"), b4
            except OSError:
                try:
                    a, b, dest = from_bytes(pton(af6, f[0]), "big"), from_bytes(pton(af6, f[1]), "big"), b6
                except OSError:
                    raise ValueError("not two addresses of the same family") from None
            if a > b:
                raise ValueError("range start after its end")
        except (ValueError, IndexError) as exc:
            skipped += 1
            if skipped <= 5:
                log.debug("ip2asn: skipped line %d (%s): %r", count, exc, line[:120])
            continue
        dest.add(a, b, asn)
        if asn not in names and len(f) > 4:
            names[asn] = f[4].strip()
    if skipped:
        log.warning("ip2asn: skipped %d malformed lines of %d", skipped, count)
    s4, e4, a4 = b4.finish()
    s6, e6, a6 = b6.finish()
    stats = LoadStats(count, len(a4) + len(a6), skipped, time.perf_counter() - t0)
    return AsnTable((s4, e4, a4), (s6, e6, a6), names, stats)


def _text_lines(path: Path) -> Iterator[str]:
    with path.open("rb") as raw:
        magic = raw.read(2)
    opener: Any = gzip.open if magic == b"\x1f\x8b" else open
    total = 0
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
        for line in fh:
            total += len(line)
            if total > MAX_TABLE_CHARS:
                raise TableError(f"{path}: more than {MAX_TABLE_CHARS} characters decompressed")
            yield line


def load_table(path: str | os.PathLike[str], *, cache: bool = False) -> AsnTable:
    """Read a table file (gzip or plain TSV). Raises TableError when it cannot be read.

    With `cache`, a binary index beside the file (`<file>.idx`, rebuilt whenever the file
    changes) makes later loads take milliseconds instead of seconds: `blockwatch check` starts
    a fresh process each time and should not parse half a million lines to judge one round.
    """
    p = Path(path)
    if cache:
        hit = _load_index(p)
        if hit is not None:
            return hit
    try:
        table = parse_lines(_text_lines(p))
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise TableError(f"{p}: cannot read the ip2asn table: {exc}") from None
    if cache:
        _save_index(p, table)
    return table


_INDEX_VERSION = 1


def _index_path(p: Path) -> Path:
    return p.with_name(p.name + ".idx")


def _source_id(p: Path) -> dict[str, Any]:
    st = p.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _save_index(p: Path, t: AsnTable) -> None:
    """Header line (JSON) + the raw arrays + the names (JSON). Native byte order, recorded."""
    try:
        names = json.dumps(t._names, separators=(",", ":")).encode()
        parts = [t._v4s.tobytes(), t._v4e.tobytes(), t._v4a.tobytes(), t._v6s._buf,
                 t._v6e._buf, t._v6a.tobytes(), names]
        header = {"v": _INDEX_VERSION, "source": _source_id(p), "order": sys.byteorder,
                  "itemsize": array("I").itemsize, "lens": [len(x) for x in parts],
                  "stats": [t.stats.lines, t.stats.ranges, t.stats.skipped]}
        _write_atomic(_index_path(p), json.dumps(header).encode() + b"\n" + b"".join(parts))
    except OSError as exc:
        log.info("ip2asn: cannot write the index beside %s (%s); loads will parse the file", p, exc)


def _load_index(p: Path) -> AsnTable | None:
    t0 = time.perf_counter()
    try:
        data = _index_path(p).read_bytes()
        nl = data.index(b"\n")
        h = json.loads(data[:nl])
        if (h.get("v") != _INDEX_VERSION or h.get("source") != _source_id(p)
                or h.get("order") != sys.byteorder or h.get("itemsize") != array("I").itemsize):
            return None
        parts, pos = [], nl + 1
        for n in h["lens"]:
            parts.append(data[pos:pos + n])
            pos += n
        if pos != len(data):
            return None

        def arr(b: bytes) -> array[int]:
            a = array("I")
            a.frombytes(b)
            return a

        names = {int(k): v for k, v in json.loads(parts[6]).items()}
        lines, ranges, skipped = h["stats"]
        return AsnTable((arr(parts[0]), arr(parts[1]), arr(parts[2])),
                        (parts[3], parts[4], arr(parts[5])), names,
                        LoadStats(lines, ranges, skipped, time.perf_counter() - t0))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None  # missing or unreadable: parse the source instead


def table_path(cfg: Config) -> Path:
    """Where the table lives: `[asn] file`, else next to an SQLite database, else in `data/`
    beside the config."""
    if cfg.settings.asn.file:
        return cfg.resolve(cfg.settings.asn.file)
    url = cfg.database_url
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        return Path(url[len("sqlite:///"):]).parent / FILENAME
    return cfg.base_dir / "data" / FILENAME


class AsnLookup:
    """The table of one file, loaded lazily and reloaded when the file changes. `lookup` is
    None everywhere until the file exists; it is safe to call from several threads."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._table: AsnTable | None = None
        self._mtime: float | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()

    @property
    def table(self) -> AsnTable | None:
        return self._table

    def reload(self) -> bool:
        """Load the file if it changed since the last load; True when a new table is in use.
        A broken file keeps the previous table."""
        with self._lock:
            self._checked = time.monotonic()
            try:
                mtime = self.path.stat().st_mtime
            except OSError:
                return False
            if mtime == self._mtime and self._table is not None:
                return False
            try:
                table = load_table(self.path, cache=True)
            except TableError as exc:
                log.error("%s; keeping the previous table", exc)
                self._mtime = mtime  # do not re-read the same broken file on every lookup
                return False
            self._table, self._mtime = table, mtime
            log.info("ip2asn: loaded %d ranges from %s in %s (%d malformed lines skipped)",
                     table.stats.ranges, self.path, format_duration(table.stats.seconds),
                     table.stats.skipped)
            return True

    def lookup(self, ip: str) -> str | None:
        if self._table is None and time.monotonic() - self._checked >= _RECHECK_SECONDS:
            self.reload()
        return self._table.lookup(ip) if self._table is not None else None

    def name(self, asn: str) -> str | None:
        return self._table.name(asn) if self._table is not None else None


# --- download -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RefreshResult:
    status: str  # fresh | not_modified | downloaded | failed
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_meta_path(path).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _last_checked(path: Path, meta: dict[str, Any]) -> datetime | None:
    v = meta.get("checked_at")
    if isinstance(v, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(v)
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None


def _plan(p: Path, max_age: timedelta, now: datetime
          ) -> tuple[RefreshResult | None, dict[str, str], dict[str, Any]]:
    """Local file checks before any request: fresh enough? which validators to send?"""
    meta = _read_meta(p)
    headers: dict[str, str] = {}
    p.parent.mkdir(parents=True, exist_ok=True)
    if not p.is_file():
        return None, headers, meta
    checked = _last_checked(p, meta)
    if checked is not None and now - checked < max_age:
        return RefreshResult("fresh", f"checked {checked.isoformat(timespec='seconds')}"), {}, meta
    if isinstance(meta.get("last_modified"), str):
        headers["If-Modified-Since"] = meta["last_modified"]
    else:
        headers["If-Modified-Since"] = email.utils.format_datetime(
            datetime.fromtimestamp(p.stat().st_mtime, UTC), usegmt=True)
    if isinstance(meta.get("etag"), str):
        headers["If-None-Match"] = meta["etag"]
    return None, headers, meta


async def refresh_if_stale(path: str | os.PathLike[str], max_age: timedelta = MAX_AGE,
                           client: httpx.AsyncClient | None = None, *, url: str = IP2ASN_URL,
                           max_bytes: int = MAX_DOWNLOAD_BYTES, min_rows: int = MIN_ROWS,
                           now: datetime | None = None) -> RefreshResult:
    """Download the table when it is missing or was last checked more than `max_age` ago.

    A conditional GET (If-Modified-Since / If-None-Match from the previous download) makes an
    unchanged table cost one small request. The new file is written to a temporary file in the
    same folder, checked (gzip intact, at least `min_rows` ranges) and moved into place
    atomically, so a reader never sees half a file and a bad download never replaces a good one.
    Failures are returned, not raised: the next scheduled refresh tries again.
    """
    p = Path(path)
    now = now or datetime.now(UTC)
    fresh, headers, meta = await asyncio.to_thread(_plan, p, max_age, now)
    if fresh is not None:
        return fresh
    own = client is None
    http = client or httpx.AsyncClient(trust_env=False, follow_redirects=True,
                                       headers={"User-Agent": USER_AGENT},
                                       timeout=httpx.Timeout(60.0, connect=10.0))
    tmp: str | None = None
    try:
        async with http.stream("GET", url, headers=headers) as r:
            if r.status_code == 304:
                meta.update(checked_at=now.isoformat(), url=url)
                _write_atomic(_meta_path(p), json.dumps(meta).encode())
                return RefreshResult("not_modified", "the table has not changed")
            if r.status_code != 200:
                return _failed(url, f"HTTP {r.status_code}")
            declared = r.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                return _failed(url, f"the file is {declared} bytes, over the {max_bytes} cap")
            fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".part")
            size = 0
            with os.fdopen(fd, "wb") as fh:
                async for chunk in r.aiter_bytes():  # decoded: the file's own bytes
                    size += len(chunk)
                    if size > max_bytes:
                        return _failed(url, f"the download passed the {max_bytes}-byte cap")
                    fh.write(chunk)
            last_modified, etag = r.headers.get("last-modified"), r.headers.get("etag")
        table = await _check(Path(tmp))
        if table.stats.ranges < min_rows:
            return _failed(url, f"the download holds {table.stats.ranges} ranges, fewer than "
                                f"{min_rows}: not an ip2asn table")
        os.replace(tmp, p)  # a rename keeps the temp file's mtime: the index matches it
        tmp = None
        await asyncio.to_thread(_save_index, p, table)
        meta = {"url": url, "checked_at": now.isoformat(), "downloaded_at": now.isoformat(),
                "last_modified": last_modified, "etag": etag, "bytes": size,
                "ranges": table.stats.ranges, "skipped": table.stats.skipped}
        _write_atomic(_meta_path(p), json.dumps(meta).encode())
        log.info("ip2asn: downloaded %s (%d bytes, %d ranges)", url, size, table.stats.ranges)
        return RefreshResult("downloaded", f"{size} bytes, {table.stats.ranges} ranges")
    except httpx.HTTPError as exc:
        return _failed(url, f"{type(exc).__name__}: {exc}")
    except TableError as exc:
        return _failed(url, f"the download is not a readable table ({exc})")
    except OSError as exc:  # disk full, folder not writable: report, keep the old table
        return _failed(url, f"cannot write next to {p}: {exc}")
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if own:
            await http.aclose()


async def _check(path: Path) -> AsnTable:
    # Parsing the real table takes about a second: keep it off the event loop.
    return await asyncio.to_thread(load_table, path)


def _failed(url: str, problem: str) -> RefreshResult:
    log.warning("ip2asn: refreshing from %s failed: %s; keeping the current table", url, problem)
    return RefreshResult("failed", problem)


def write_tsv(rows: Iterable[tuple[str, str, int, str, str]]) -> str:
    """Rows as the iptoasn TSV text (tests and benchmarks build tables with it)."""
    out = io.StringIO()
    for r in rows:
        out.write("\t".join(str(x) for x in r) + "\n")
    return out.getvalue()
