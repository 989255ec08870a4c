"""The site's words in English, Russian and Kazakh, and how dates and durations read in each.

Kazakh is partial and wants a native speaker's review: a key missing in `kk` falls back to
Russian (which every reader in Kazakhstan also reads), never to an empty string.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

LANG_NAMES = {"en": "English", "ru": "Русский", "kk": "Қазақша"}

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "tagline": "Can these news sites be reached from inside the country? Measured from "
                   "several networks; updated every few minutes.",
        "skip": "Skip to the list",
        "languages": "Language",
        "outlet": "Outlet",
        "status": "Status",
        "history": "Last 90 days",
        "history_of": "Last 90 days of {name}",
        "since": "since {when}",
        "for": "for {duration}",
        "summary_some": "{n} of {total} outlets are blocked or interfered with on at least one "
                        "network:",
        "summary_none": "All {total} outlets are reachable from every network right now.",
        "legend": "How to read this",
        "legend_text": "Each column is a network the sites are tested from. A state is confirmed "
                       "only after it holds for several checks in a row. \u201cSite down\u201d "
                       "means it fails from abroad too, so it is not censorship.",
        "bar_text": "Each bar shows the last 90 days, oldest on the left; hover or open the outlet "
                    "for the minutes affected each day.",
        "updated": "Updated",
        "all_incidents": "Incidents",
        "incidents_title": "Incidents",
        "incidents_intro": "Reports about outlets and journalists, collected from news and NGO "
                           "feeds, and which blocking they may be linked with.",
        "no_incidents": "No incidents recorded.",
        "source": "Source",
        "people": "People",
        "outlets": "Outlets",
        "types": "Type",
        "linked_events": "Linked with",
        "home": "All outlets",
        "now": "Now",
        "network": "Network",
        "checked": "last checked {when}",
        "latest_check": "latest check: {word} (not yet confirmed)",
        "stale": "no recent data",
        "urls": "Addresses tested",
        "timeline": "Timeline",
        "no_events": "No changes recorded yet.",
        "ongoing": "ongoing",
        "until": "until {when}",
        "started": "Started",
        "evidence": "Evidence",
        "confirmed_yes": "confirmed: matched a known block page, block address or interception "
                         "certificate",
        "confirmed_no": "inferred: compared with a measurement from abroad at the same time",
        "measured": "measured {when}",
        "evidence_hash": "evidence SHA-256 {hash}",
        "incidents_linked": "Related incidents",
        "no_linked": "No related incidents.",
        "per_vantage": "History per network",
        "affected_days": "Days with problems",
        "no_affected_days": "No problems in the last 90 days.",
        "day": "Day",
        "minutes": "Minutes affected",
        "state": "State",
        "badge": "Badge",
        "badge_text": "Embed this image to show the current state:",
        "feed": "Atom feed",
        "json": "status.json",
        "footer": "Made with blockwatch, open-source. No cookies, no trackers, no scripts.",
        "volunteer": "volunteer",
        "network_unknown": "network not known",
        "days": "{n} days",
        "bar_label": "Last 90 days: {parts}",
        "seg": "{range}: {word}, {minutes} affected",
        "seg_ok": "{range}: {word}",
        "mentioned": "mentions this outlet",
        "event_entry": "{name}: {word} at {vantage}",
        "event_ended": "{name}: {word} at {vantage} (ended {when})",
        "case_entry": "{name}: incident linked with {word} at {vantage}",
        "feed_title": "{title}: changes and incidents",
        "from": "from {previous}",
        "no_data_yet": "No measurements yet.",
        "page_of": "{name} \u2014 status",
    },
    "ru": {
        "tagline": "Открываются ли эти новостные сайты изнутри страны? Проверки из нескольких "
                   "сетей; обновляется каждые несколько минут.",
        "skip": "Перейти к списку",
        "languages": "Язык",
        "outlet": "Издание",
        "status": "Состояние",
        "history": "90 дней",
        "history_of": "Последние 90 дней: {name}",
        "since": "с {when}",
        "for": "уже {duration}",
        "summary_some": "{n} из {total} изданий заблокированы или работают с помехами хотя бы в "
                        "одной сети:",
        "summary_none": "Все {total} изданий сейчас доступны из всех сетей.",
        "legend": "Как читать",
        "legend_text": "Каждый столбец — сеть, из которой проверяются сайты. Состояние "
                       "подтверждается, только если держится несколько проверок подряд. "
                       "«Сайт не работает» значит, что он не открывается и из-за рубежа, то есть "
                       "это не цензура.",
        "bar_text": "Полоса — последние 90 дней, слева самые ранние; минуты сбоев по дням — при "
                    "наведении или на странице издания.",
        "updated": "Обновлено",
        "all_incidents": "Инциденты",
        "incidents_title": "Инциденты",
        "incidents_intro": "Сообщения об изданиях и журналистах из новостей и лент "
                           "правозащитных организаций и блокировки, с которыми они могут быть "
                           "связаны.",
        "no_incidents": "Инцидентов нет.",
        "source": "Источник",
        "people": "Люди",
        "outlets": "Издания",
        "types": "Тип",
        "linked_events": "Связано с",
        "home": "Все издания",
        "now": "Сейчас",
        "network": "Сеть",
        "checked": "последняя проверка {when}",
        "latest_check": "последняя проверка: {word} (ещё не подтверждено)",
        "stale": "нет свежих данных",
        "urls": "Проверяемые адреса",
        "timeline": "Хронология",
        "no_events": "Изменений пока не было.",
        "ongoing": "продолжается",
        "until": "до {when}",
        "started": "Начало",
        "evidence": "Доказательства",
        "confirmed_yes": "подтверждено: совпала известная страница блокировки, адрес блокировки "
                         "или сертификат перехвата",
        "confirmed_no": "вывод: сравнение с одновременной проверкой из-за рубежа",
        "measured": "проверка {when}",
        "evidence_hash": "SHA-256 доказательств {hash}",
        "incidents_linked": "Связанные инциденты",
        "no_linked": "Связанных инцидентов нет.",
        "per_vantage": "История по сетям",
        "affected_days": "Дни с проблемами",
        "no_affected_days": "За последние 90 дней проблем не было.",
        "day": "День",
        "minutes": "Минут с проблемами",
        "state": "Состояние",
        "badge": "Значок",
        "badge_text": "Вставьте эту картинку, чтобы показать текущее состояние:",
        "feed": "Лента Atom",
        "json": "status.json",
        "footer": "Сделано с помощью blockwatch (открытый код). Без cookies, трекеров и скриптов.",
        "volunteer": "волонтёр",
        "network_unknown": "сеть неизвестна",
        "days": "{n} дн.",
        "bar_label": "Последние 90 дней: {parts}",
        "seg": "{range}: {word}, {minutes} с проблемами",
        "seg_ok": "{range}: {word}",
        "mentioned": "упоминает издание",
        "event_entry": "{name}: {word} — {vantage}",
        "event_ended": "{name}: {word} — {vantage} (закончилось {when})",
        "case_entry": "{name}: инцидент, связанный с состоянием «{word}» — {vantage}",
        "feed_title": "{title}: изменения и инциденты",
        "from": "было: {previous}",
        "no_data_yet": "Проверок пока не было.",
        "page_of": "{name} — состояние",
    },
    "kk": {
        "tagline": "Бұл жаңалық сайттары ел ішінен ашыла ма? Бірнеше желіден тексеріледі.",
        "skip": "Тізімге өту",
        "languages": "Тіл",
        "outlet": "Басылым",
        "status": "Күйі",
        "history": "90 күн",
        "since": "{when} бастап",
        "updated": "Жаңартылды",
        "all_incidents": "Оқиғалар",
        "incidents_title": "Оқиғалар",
        "home": "Барлық басылымдар",
        "now": "Қазір",
        "network": "Желі",
        "timeline": "Хронология",
        "ongoing": "жалғасуда",
        "volunteer": "ерікті",
        "day": "Күн",
        "state": "Күйі",
        "source": "Дереккөз",
    },
}

# State words: the category (colour, symbol) and a short "how" per verdict.
CATEGORY = {
    "ok": "ok",
    "dns": "blocked", "tcp_ip": "blocked", "tls": "blocked", "http_blockpage": "blocked",
    "http_diff": "interfered", "http_failure": "interfered", "throttled": "throttled",
    "down": "down", "inconclusive": "unknown", None: "nodata",
}
SYMBOL = {"ok": "\u2713", "blocked": "\u2715", "interfered": "!", "throttled": "\u25d4",
          "down": "\u2193", "unknown": "?", "nodata": "\u2013"}

CATEGORY_WORDS = {
    "en": {"ok": "reachable", "blocked": "blocked", "interfered": "interfered",
           "throttled": "slowed down", "down": "site down", "unknown": "inconclusive",
           "nodata": "no data"},
    "ru": {"ok": "доступен", "blocked": "заблокирован", "interfered": "помехи",
           "throttled": "замедлен", "down": "сайт не работает", "unknown": "неясно",
           "nodata": "нет данных"},
    "kk": {"ok": "қолжетімді", "blocked": "бұғатталған", "interfered": "кедергі бар",
           "throttled": "баяулатылған", "down": "сайт істемейді", "unknown": "белгісіз",
           "nodata": "дерек жоқ"},
}

HOW = {
    "en": {"ok": "reachable", "dns": "DNS tampering", "tcp_ip": "IP or connection blocked",
           "tls": "TLS (SNI) interference", "http_blockpage": "block page",
           "http_diff": "different content than abroad", "http_failure": "HTTP request broken",
           "throttled": "much slower than abroad", "down": "fails abroad too",
           "inconclusive": "the test network itself failed"},
    "ru": {"ok": "доступен", "dns": "подмена DNS", "tcp_ip": "блокировка IP или соединения",
           "tls": "вмешательство в TLS (SNI)", "http_blockpage": "страница блокировки",
           "http_diff": "содержимое отличается от зарубежного",
           "http_failure": "HTTP-запрос обрывается",
           "throttled": "намного медленнее, чем из-за рубежа",
           "down": "не открывается и из-за рубежа",
           "inconclusive": "сбой самой сети проверки"},
    "kk": {"ok": "қолжетімді", "dns": "DNS бұрмалау", "tcp_ip": "IP немесе қосылым бұғатталған",
           "tls": "TLS (SNI) кедергісі", "http_blockpage": "бұғаттау беті",
           "down": "шетелден де ашылмайды"},
}

MONTHS = {
    "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    "ru": ["янв", "фев", "мар", "апр", "мая", "июн", "июл", "авг", "сен", "окт", "ноя", "дек"],
    "kk": ["қаң", "ақп", "нау", "сәу", "мам", "мау", "шіл", "там", "қыр", "қаз", "қар", "жел"],
}
UNITS = {"en": ("d", "h", "min"), "ru": ("дн", "ч", "мин"), "kk": ("күн", "сағ", "мин")}


def _fallbacks(lang: str) -> list[str]:
    return [lang, "ru", "en"] if lang == "kk" else [lang, "en"]


@lru_cache(maxsize=4096)
def t(lang: str, key: str, **kw: object) -> str:
    for code in _fallbacks(lang):
        s = STRINGS.get(code, {}).get(key)
        if s is not None:
            return s.format(**kw) if kw else s
    raise KeyError(key)


def category(state: str | None) -> str:
    return CATEGORY.get(state, "unknown")


@lru_cache(maxsize=4096)
def word(lang: str, state: str | None) -> str:
    return cat_word(lang, category(state))


def cat_word(lang: str, cat: str) -> str:
    for code in _fallbacks(lang):
        w = CATEGORY_WORDS.get(code, {}).get(cat)
        if w:
            return w
    return cat


@lru_cache(maxsize=4096)
def how(lang: str, state: str | None) -> str:
    if state is None:
        return word(lang, None)
    for code in _fallbacks(lang):
        w = HOW.get(code, {}).get(state)
        if w:
            return w
    return state


@lru_cache(maxsize=4096)
def fmt_day(lang: str, d: date, *, year: bool = True) -> str:
    m = MONTHS.get(lang, MONTHS["en"])[d.month - 1]
    return f"{d.day} {m} {d.year}" if year else f"{d.day} {m}"


@lru_cache(maxsize=4096)
def fmt_short(lang: str, d: date, today: date) -> str:
    """5 Mar (this year), 5 Mar 2025 (another year): short enough for a phone's table cell."""
    return fmt_day(lang, d, year=d.year != today.year)


def fmt_time(lang: str, dt: datetime) -> str:
    return f"{fmt_day(lang, dt.date())} {dt:%H:%M} UTC"


@lru_cache(maxsize=4096)
def fmt_duration(lang: str, delta: timedelta) -> str:
    d_u, h_u, m_u = UNITS.get(lang, UNITS["en"])
    mins = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(mins, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} {d_u} {hours} {h_u}" if hours and days < 7 else f"{days} {d_u}"
    if hours:
        return f"{hours} {h_u} {mins} {m_u}" if mins else f"{hours} {h_u}"
    return f"{mins} {m_u}"


def fmt_minutes(lang: str, minutes: int) -> str:
    return fmt_duration(lang, timedelta(minutes=minutes))
