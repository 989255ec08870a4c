"""Load time and memory of the IP-to-ASN table at real size. Not a test; prints numbers.

    .venv/bin/python benchmarks/bench_asn.py [lines]

Builds a synthetic iptoasn-format table (default 500,000 lines: ~85% IPv4, ~15% IPv6, ~10% not
routed, like the real ip2asn-combined.tsv), gzips it, then measures loading it from disk,
the memory the loaded table keeps (tracemalloc) and the peak while loading, and lookups/s.
"""

from __future__ import annotations

import gc
import gzip
import random
import socket
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from blockwatch.asn import load_table


def rss_mib() -> float:
    """Current resident set size (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthetic(n: int, seed: int = 1) -> list[str]:
    """The real table has ~80k distinct ASNs with descriptions of ~30 characters."""
    rnd = random.Random(seed)
    pool = [rnd.randrange(1, 400_000) for _ in range(80_000)]
    n6 = n * 15 // 100
    n4 = n - n6
    lines = []
    ip = 1 << 24
    step4 = (223 << 24) // n4  # spread over the unicast space
    for _ in range(n4):
        size = rnd.choice((256, 512, 1024, 4096, 65536))
        start, end = ip, min(ip + size - 1, ip + step4 - 1)
        asn = 0 if rnd.random() < 0.1 else rnd.choice(pool)
        lines.append(f"{socket.inet_ntoa(start.to_bytes(4, 'big'))}\t"
                     f"{socket.inet_ntoa(end.to_bytes(4, 'big'))}\t{asn}\tKZ\tAS{asn} NETWORK LLP\n")
        ip += step4
    base6 = 0x2001 << 112
    step6 = (1 << 112) // n6
    for i in range(n6):
        start = base6 + i * step6
        end = start + (1 << 80) - 1
        asn = 0 if rnd.random() < 0.1 else rnd.choice(pool)
        lines.append(f"{socket.inet_ntop(socket.AF_INET6, start.to_bytes(16, 'big'))}\t"
                     f"{socket.inet_ntop(socket.AF_INET6, end.to_bytes(16, 'big'))}\t{asn}\t"
                     f"KZ\tAS{asn} NETWORK LLP\n")
    return lines


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
    lines = synthetic(n)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "ip2asn-combined.tsv.gz"
        p.write_bytes(gzip.compress("".join(lines).encode(), compresslevel=6))
        samples4 = [ln.split("\t")[0] for ln in lines[: n * 85 // 100 : 97]]
        samples6 = [ln.split("\t")[0] for ln in lines[n * 85 // 100 :: 97]]
        size = p.stat().st_size
        del lines
        gc.collect()

        rss0 = rss_mib()
        t0 = time.perf_counter()
        table = load_table(p)
        load_s = time.perf_counter() - t0
        gc.collect()
        rss1 = rss_mib()

        del table
        gc.collect()
        tracemalloc.start()
        table = load_table(p)
        kept, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        load_table(p, cache=True)  # writes the index
        t0 = time.perf_counter()
        load_table(p, cache=True)
        cached_s = time.perf_counter() - t0

        per = {}
        for fam, qs in (("IPv4", samples4 * 20), ("IPv6", samples6 * 20)):
            t0 = time.perf_counter()
            hits = sum(table.lookup(q) is not None for q in qs)
            per[fam] = ((time.perf_counter() - t0) / len(qs), len(qs), hits)

    print(f"lines:                 {n:,} ({size / 2**20:.1f} MiB gzipped)")
    print(f"ranges kept:           {table.stats.ranges:,} (skipped {table.stats.skipped})")
    print(f"load time:             {load_s:.2f} s (untraced)")
    print(f"load with the index:   {cached_s * 1000:.0f} ms (binary .idx beside the file)")
    print(f"memory kept by table:  {kept / 2**20:.1f} MiB (tracemalloc)")
    print(f"peak while loading:    {peak / 2**20:.1f} MiB (tracemalloc)")
    print(f"RSS growth:            {rss1 - rss0:.1f} MiB (VmRSS after the first load)")
    for fam, (t, nq, hits) in per.items():
        print(f"lookup {fam}:           {t * 1e6:.2f} µs each ({nq:,} lookups, {hits:,} hits)")


if __name__ == "__main__":
    main()
