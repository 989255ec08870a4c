"""Extraction throughput: entries per second over 10,000 synthetic but realistic entries
(headline + a two-sentence summary, English, Russian and Kazakh, against the shipped target list
probes/kz.toml and a few people). Not a test: prints numbers.

    .venv/bin/python benchmarks/bench_extract.py
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


def main() -> None:
    rng = random.Random(5)
    targets = load_targets([ROOT / "probes" / "kz.toml"])
    people = [Person(name="Aigul Saparova", aliases=["Айгуль Сапарова", "Сапарова"]),
              Person(name="Yerlan Kassymov", aliases=["Ерлан Касымов", "Kassymov"])]
    t0 = time.perf_counter()
    m = Matcher(targets, people)
    build = time.perf_counter() - t0
    data = entries(rng)
    chars = sum(len(a) + len(b) for a, b in data)
    rates, incidents = [], 0
    for _ in range(5):
        t0 = time.perf_counter()
        results = [m.extract(title, summary) for title, summary in data]
        rates.append(N / (time.perf_counter() - t0))
        incidents = sum(r.is_incident for r in results)
    print(f"targets: {len(targets)}, people: {len(people)}; matcher built in {build * 1000:.1f} ms")
    print(f"entries: {N}, mean length {chars / N:.0f} characters; incidents found: {incidents}")
    print(f"throughput over 5 runs: median {statistics.median(rates):,.0f} entries/s "
          f"(min {min(rates):,.0f}, max {max(rates):,.0f}); "
          f"{1e6 / statistics.median(rates):.0f} µs per entry")


if __name__ == "__main__":
    main()
