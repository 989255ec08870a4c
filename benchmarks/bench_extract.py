"""Extraction throughput: entries per second over 10,000 synthetic but realistic entries
(headline + a two-sentence summary, English, Russian and Kazakh, against the shipped target list
probes/kz.toml and a few people), then over the real headlines of the labelled set
(tests/fixtures/incidents/, texts only), cycled to 10,000 entries, and once cold: every distinct
real text once with the per-word caches emptied. Not a test: prints numbers.

    .venv/bin/python benchmarks/bench_extract.py          # the rules (as shipped)
    .venv/bin/python benchmarks/bench_extract.py --model  # with the learned model (off by default)
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from blockwatch.config import Person  # noqa: E402
from blockwatch.feeds import kazakh, lemmas, model  # noqa: E402
from blockwatch.feeds.extract import Matcher  # noqa: E402
from blockwatch.targets import load_targets  # noqa: E402

N = 10_000
OUTLETS = ["Ratel.kz", "Рателя", "«Власть»", "Vlast.kz", "Азаттық тілшісі", "Радио Азаттык", "KazTAG",
           "Orda.kz", "Курсива", "Informburo", "Human Rights Watch", "Adil Soz", "Әділ сөз", "Kursiv"]
PEOPLE = ["Айгуль Сапарова", "Сапаровой", "Yerlan Kassymov", "Ерлана Касымова"]
TEMPLATES = [
    "Журналиста {o} задержали в Алматы после публикации о {x}",
    "Сайт {o} заблокирован на территории Казахстана",
    "Суд оштрафовал {p} за публикацию в Facebook",
    "Власти объявили о новых правилах для СМИ: {x}",
    "В офисе {o} прошёл обыск, изъята техника",
    "{o} тілшісі Астанада ұсталды",
    "{o} сайты бұғатталды",
    "{p} қатысты қылмыстық іс қозғалды",
    "Police detained a reporter for {o} in Shymkent",
    "{o} website inaccessible for a week, users report",
    "Court fines {p} over 'false information'",
    "Kazakhstan: government announces new budget for {x}",
    "Погода в Астане: снег и гололёд, {x}",
    "Ел азаттығы үшін күрескен батырлар еске алынды",
    "Рейс в Астану задерживается: задержка составила три часа",
]
TOPICS = ["закупках", "строительстве дорог", "акимате", "пенсионной реформе", "budget", "water",
          "мемлекеттік бағдарлама", "выборах"]
SUMMARY = [
    "По данным издания, сотрудники полиции не представились и не объяснили причин.",
    "Редакция заявила, что продолжит работу, несмотря на давление.",
    "The outlet said it would appeal the decision in court.",
    "Полиция бұл туралы ресми мәлімдеме жасаған жоқ.",
    "Представители акимата от комментариев отказались.",
    "Доступ к ресурсу восстановлен спустя несколько часов.",
]


def entries(rng: random.Random) -> list[tuple[str, str]]:
    out = []
    for _ in range(N):
        t = rng.choice(TEMPLATES).format(o=rng.choice(OUTLETS), p=rng.choice(PEOPLE), x=rng.choice(TOPICS))
        out.append((t, " ".join(rng.sample(SUMMARY, 2))))
    return out


def real_entries() -> list[tuple[str, str]]:
    import json

    out = []
    for path in sorted((ROOT / "tests" / "fixtures" / "incidents").glob("devset_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                out.append((item["title"], item.get("summary") or ""))
    return out


def rate(m: Matcher, data: list[tuple[str, str]], runs: int = 5) -> list[float]:
    """Entries per second of this process's CPU time (the machine may be busy with others)."""
    rates = []
    for _ in range(runs):
        t0 = time.process_time()
        for title, summary in data:
            m.extract(title, summary)
        rates.append(len(data) / (time.process_time() - t0))
    return rates


def main() -> None:
    if "--model" in sys.argv[1:]:
        model.ENABLED = True
    rng = random.Random(5)
    targets = load_targets([ROOT / "probes" / "kz.toml"])
    people = [Person(name="Aigul Saparova", aliases=["Айгуль Сапарова", "Сапарова"]),
              Person(name="Yerlan Kassymov", aliases=["Ерлан Касымов", "Kassymov"])]
    t0 = time.perf_counter()
    m = Matcher(targets, people)
    build = time.perf_counter() - t0
    data = entries(rng)
    chars = sum(len(a) + len(b) for a, b in data)
    incidents = sum(m.extract(title, summary).is_incident for title, summary in data)
    rates = rate(m, data)
    print(f"targets: {len(targets)}, people: {len(people)}; matcher built in {build * 1000:.1f} ms")
    print(f"entries: {N}, mean length {chars / N:.0f} characters; incidents found: {incidents}")
    print(f"throughput over 5 runs (CPU time): median {statistics.median(rates):,.0f} entries/s "
          f"(min {min(rates):,.0f}, max {max(rates):,.0f}); "
          f"{1e6 / statistics.median(rates):.0f} µs per entry")
    real = real_entries()
    if not real:
        print("real headlines: none (tests/fixtures/incidents/ is empty)")
        return
    lemmas.keys.cache_clear()
    kazakh.forms.cache_clear()
    model.word_features.cache_clear()
    learned = model.active()
    if learned is not None:
        learned.clear()
    cold = rate(m, real, runs=1)[0]
    cycled = [real[i % len(real)] for i in range(N)]
    rates = rate(m, cycled)
    chars = sum(len(a) + len(b) for a, b in real) / len(real)
    print(f"real headlines: {len(real)} distinct, mean length {chars:.0f} characters; cold (empty word "
          f"caches) {cold:,.0f} entries/s; cycled to {N}: median {statistics.median(rates):,.0f} "
          f"entries/s (min {min(rates):,.0f}, max {max(rates):,.0f})")


if __name__ == "__main__":
    main()
