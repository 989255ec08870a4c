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
        "counts_line": "{total} outlets now: {parts}.",
        "count_item": "{n} {word}",
        "blocked_list": "Blocked or interfered with on at least one network:",
        "abroad_note": "No network inside the country measures {n} of these outlets: for them "
                       "\u201creachable\u201d means reachable from abroad only, which says "
                       "nothing about censorship inside the country.",
        "no_usable": "No usable measurements yet: nothing on this page is a measured state.",
        "stale_page": "No fresh measurements since {when}: what is shown is out of date.",
        "stale_page_never": "No fresh measurements: what is shown is out of date.",
        "not_measured_page": "Right now blockwatch cannot measure: its networks or the "
                             "comparison from abroad fail. Last usable measurement: {when}.",
        "not_measured_since": "not measured since {when}",
        "not_measured_never": "no usable measurement yet",
        "stale_since": "no measurement since {when}",
        "last_measured": "last usable measurement {when}",
        "abroad_only": "measured from abroad only",
        "no_affected_partial": "No problems seen on the {n} days with usable measurements; {m} "
                               "of the last 90 days were not measured.",
        "no_usable_days": "No usable measurements in the last 90 days.",
        "legend_unknown": "\u201cNot measured\u201d: blockwatch tried but could not look (its own "
                          "network or the comparison from abroad failed). \u201cNo recent "
                          "data\u201d: no check ran for more than two rounds. Neither means the "
                          "site is reachable.",
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
        "counts_line": "Изданий: {total}. Сейчас: {parts}.",
        "count_item": "{word}: {n}",
        "blocked_list": "Заблокированы или работают с помехами хотя бы в одной сети:",
        "abroad_note": "Ни одна сеть внутри страны не проверяет изданий: {n}. Для них "
                       "«доступен» значит доступен из-за рубежа, и это ничего не говорит о "
                       "цензуре внутри страны.",
        "no_usable": "Пригодных измерений пока нет: ни одно состояние на этой странице не "
                     "измерено.",
        "stale_page": "Свежих измерений нет с {when}: показанное устарело.",
        "stale_page_never": "Свежих измерений нет: показанное устарело.",
        "not_measured_page": "Сейчас blockwatch не может проводить измерения: не работают его "
                             "сети или сравнение из-за рубежа. Последнее пригодное измерение: "
                             "{when}.",
        "not_measured_since": "не измерено с {when}",
        "not_measured_never": "пригодных измерений ещё не было",
        "stale_since": "нет измерений с {when}",
        "last_measured": "последнее пригодное измерение {when}",
        "abroad_only": "проверено только из-за рубежа",
        "no_affected_partial": "За {n} дн. с пригодными измерениями проблем не было; из "
                               "последних 90 дней не измерено: {m} дн.",
        "no_usable_days": "За последние 90 дней пригодных измерений не было.",
        "legend_unknown": "«Не измерено»: blockwatch пытался, но не смог проверить (сбой его "
                          "собственной сети или сравнения из-за рубежа). «Нет свежих данных»: "
                          "проверок не было дольше двух раундов. Ни то, ни другое не значит, "
                          "что сайт доступен.",
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
        "counts_line": "Басылымдар: {total}. Қазір: {parts}.",
        "count_item": "{word}: {n}",
        "blocked_list": "Кем дегенде бір желіде бұғатталған немесе кедергі бар:",
        "abroad_note": "Ел ішіндегі бірде-бір желі тексермейтін басылымдар: {n}. Олар үшін "
                       "«қолжетімді» тек шетелден қолжетімді дегенді білдіреді, бұл ел "
                       "ішіндегі цензура туралы ештеңе айтпайды.",
        "no_usable": "Жарамды өлшеулер әлі жоқ: бұл беттегі бірде-бір күй өлшенбеген.",
        "stale_page": "{when} бері жаңа өлшеу жоқ: көрсетілгені ескірген.",
        "stale_page_never": "Жаңа өлшеу жоқ: көрсетілгені ескірген.",
        "not_measured_page": "Қазір blockwatch өлшей алмайды: оның желілері немесе шетелден "
                             "салыстыру істемейді. Соңғы жарамды өлшеу: {when}.",
        "not_measured_since": "{when} бері өлшенбеді",
        "not_measured_never": "жарамды өлшеу әлі болған жоқ",
        "stale_since": "{when} бері өлшеу жоқ",
        "last_measured": "соңғы жарамды өлшеу {when}",
        "abroad_only": "тек шетелден тексерілген",
        "no_affected_partial": "Жарамды өлшеулер болған {n} күнде проблема болған жоқ; соңғы "
                               "90 күннің {m} күні өлшенбеді.",
        "no_usable_days": "Соңғы 90 күнде жарамды өлшеу болған жоқ.",
        "legend_unknown": "«Өлшенбеді»: blockwatch тексеруге тырысты, бірақ мүмкін болмады "
                          "(өз желісі немесе шетелден салыстыру істемеді). «Жаңа дерек жоқ»: "
                          "екі раундтан астам тексеру болмады. Екеуі де сайт қолжетімді "
                          "дегенді білдірмейді.",
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
           "throttled": "slowed down", "down": "site down", "unknown": "not measured",
           "nodata": "no data"},
    "ru": {"ok": "доступен", "blocked": "заблокирован", "interfered": "помехи",
           "throttled": "замедлен", "down": "сайт не работает", "unknown": "не измерено",
           "nodata": "нет данных"},
    "kk": {"ok": "қолжетімді", "blocked": "бұғатталған", "interfered": "кедергі бар",
           "throttled": "баяулатылған", "down": "сайт істемейді", "unknown": "өлшенбеді",
           "nodata": "дерек жоқ"},
}

# What may be said of a vantage or an outlet now (analysis/display.py): measured or not known.
DISPLAY_WORDS = {
    "en": {"reachable": "reachable", "reachable_abroad": "reachable from abroad",
           "blocked": "blocked", "down": "site down", "not_measured": "not measured",
           "stale": "no recent data", "no_data": "no data"},
    "ru": {"reachable": "доступен", "reachable_abroad": "доступен из-за рубежа",
           "blocked": "заблокирован", "down": "сайт не работает", "not_measured": "не измерено",
           "stale": "нет свежих данных", "no_data": "нет данных"},
    "kk": {"reachable": "қолжетімді", "reachable_abroad": "шетелден қолжетімді",
           "blocked": "бұғатталған", "down": "сайт істемейді", "not_measured": "өлшенбеді",
           "stale": "жаңа дерек жоқ", "no_data": "дерек жоқ"},
}
# the headline's counts of outlets
COUNT_WORDS = {
    "en": {"blocked": "blocked", "down": "down everywhere", "reachable": "reachable",
           "reachable_abroad": "reachable from abroad only", "not_measured": "not measured",
           "stale": "no recent data", "no_data": "no data yet"},
    "ru": {"blocked": "заблокированы", "down": "не работают отовсюду", "reachable": "доступны",
           "reachable_abroad": "доступны (проверено только из-за рубежа)",
           "not_measured": "не измерены", "stale": "нет свежих данных", "no_data": "нет данных"},
    "kk": {"blocked": "бұғатталған", "down": "барлық жерден істемейді", "reachable": "қолжетімді",
           "reachable_abroad": "тек шетелден тексерілген", "not_measured": "өлшенбеген",
           "stale": "жаңа дерек жоқ", "no_data": "дерек жоқ"},
}
DISPLAY_CODE = {"reachable": "o", "reachable_abroad": "o", "down": "d", "not_measured": "u",
                "stale": "s", "no_data": "n"}
DISPLAY_SYMBOL = {"reachable": "\u2713", "reachable_abroad": "\u2713", "down": "\u2193",
                  "not_measured": "?", "stale": "\u2026", "no_data": "\u2013"}

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


def display_word(lang: str, display: str, kind: str | None = None) -> str:
    """A display state's word; "blocked" says its category (interfered, slowed down)."""
    if display == "blocked":
        return word(lang, kind)
    for code in _fallbacks(lang):
        w = DISPLAY_WORDS.get(code, {}).get(display)
        if w:
            return w
    return display


def display_code(display: str, kind: str | None = None) -> str:
    if display == "blocked":
        return {"blocked": "b", "interfered": "i", "throttled": "t"}.get(category(kind), "b")
    return DISPLAY_CODE.get(display, "n")


def display_symbol(display: str, kind: str | None = None) -> str:
    if display == "blocked":
        return SYMBOL[category(kind)]
    return DISPLAY_SYMBOL.get(display, SYMBOL["nodata"])


def count_word(lang: str, display: str) -> str:
    for code in _fallbacks(lang):
        w = COUNT_WORDS.get(code, {}).get(display)
        if w:
            return w
    return display


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
