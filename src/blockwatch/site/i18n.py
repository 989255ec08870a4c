"""The site's words in English, Russian and Kazakh, and how dates and durations read in each.

Every table has every key in every language (tests/test_i18n_complete.py): Kazakh never falls
back to Russian; a key that still went missing would read in English, never as an empty string.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

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
        "data_as_of": "Data as of",
        "all_incidents": "Incidents",
        "incidents_title": "Incidents",
        "incidents_intro": "Reports about outlets and journalists, collected from news and NGO "
                           "feeds, and which blocking they may be linked with.",
        "incidents_auto": "They are found automatically, by word rules, and may be wrong: check "
                          "the source. Those marked “checked” were read and confirmed by a person.",
        "incidents_reviewed_only": "Only reports read and confirmed by a person are shown.",
        "reviewed": "checked",
        "unchecked": "found automatically",
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
        "data_as_of": "Последние данные",
        "all_incidents": "Инциденты",
        "incidents_title": "Инциденты",
        "incidents_intro": "Сообщения об изданиях и журналистах из новостей и лент "
                           "правозащитных организаций и блокировки, с которыми они могут быть "
                           "связаны.",
        "incidents_auto": "Они найдены автоматически, по правилам для слов, и могут быть "
                          "ошибочны: сверяйтесь с источником. Отмеченные «проверено» прочитаны и "
                          "подтверждены человеком.",
        "incidents_reviewed_only": "Показаны только сообщения, прочитанные и подтверждённые "
                                   "человеком.",
        "reviewed": "проверено",
        "unchecked": "найдено автоматически",
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
        # Kazakh puts a case ending on the date itself ("желтоқсаннан бастап"), which a date
        # filled in cannot take: "басталуы: {when}", "соңғы өлшеу: {when}, содан бері ..."
        "since": "басталуы: {when}",
        "updated": "Жаңартылды",
        "data_as_of": "Соңғы деректер",
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
        "stale_page": "Соңғы өлшеу: {when}, содан бері жаңа өлшеу жоқ: көрсетілгені ескірген.",
        "stale_page_never": "Жаңа өлшеу жоқ: көрсетілгені ескірген.",
        "not_measured_page": "Қазір blockwatch өлшей алмайды: оның желілері немесе шетелден "
                             "салыстыру істемейді. Соңғы жарамды өлшеу: {when}.",
        "not_measured_since": "соңғы өлшеу: {when}, содан бері өлшенбеді",
        "not_measured_never": "жарамды өлшеу әлі болған жоқ",
        "stale_since": "соңғы өлшеу: {when}, содан бері өлшеу жоқ",
        "last_measured": "соңғы жарамды өлшеу: {when}",
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
    "en": {"blocked": "blocked", "interfered": "interfered with or slowed down",
           "down": "down everywhere", "reachable": "reachable",
           "reachable_abroad": "reachable from abroad only", "not_measured": "not measured",
           "stale": "no recent data", "no_data": "no data yet"},
    "ru": {"blocked": "заблокированы", "interfered": "работают с помехами или замедлены",
           "down": "не работают отовсюду", "reachable": "доступны",
           "reachable_abroad": "доступны (проверено только из-за рубежа)",
           "not_measured": "не измерены", "stale": "нет свежих данных", "no_data": "нет данных"},
    "kk": {"blocked": "бұғатталған", "interfered": "кедергі бар немесе баяулатылған",
           "down": "барлық жерден істемейді", "reachable": "қолжетімді",
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

# --- cases and agreement between networks (site.cases): every key in en, ru and kk -----------

_CASE_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "agree_one": "{verb} on {n} of {m} network", "agree_many": "{verb} on {n} of {m} networks",
        "agree_blocked": "blocked", "agree_interfered": "interfered with",
        "agree_measured_one": "{verb} on {n} of {m} network that measured",
        "agree_measured_many": "{verb} on {n} of {m} networks that measured",
        "agree_total": "{text} ({total} {where})", "agree_total_all": "{text} ({total} in all)",
        "agree_where": "{text} {where}", "cin_other": "in {code}",
        "cin_KZ": "in Kazakhstan", "cin_KG": "in Kyrgyzstan", "cin_UZ": "in Uzbekistan",
        "cin_TJ": "in Tajikistan", "cin_RU": "in Russia", "cin_BY": "in Belarus",
        "dissent": "not enough networks agree to call it blocked ({needed} needed)",
        "dissent_interfered": "not enough networks agree to call it interference ({needed} "
                              "needed)",
        "case": "Report", "what_happened": "what happened",
        "incident_unspecified": "incident",
        "itype_detention": "detention", "itype_arrest": "arrest", "itype_blocking": "blocking",
        "itype_raid": "search or raid", "itype_criminal_case": "criminal case",
        "itype_fine": "fine", "itype_assault": "assault", "itype_shutdown": "closure",
        "itype_harassment": "pressure",
        "istatus_acquitted": "acquitted", "istatus_charges_dropped": "charges dropped",
        "istatus_unblocked": "unblocked", "istatus_released": "released",
        "istatus_sentenced": "sentenced", "istatus_convicted": "convicted",
    },
    "ru": {
        "agree_one": "{verb} в {n} из {m} сети",
        "agree_many": "{verb} в {n} из {m} сетей",
        "agree_blocked": "заблокирован", "agree_interfered": "работает с помехами",
        "agree_measured_one": "{verb} в {n} из {m} сети, где удалось измерить",
        "agree_measured_many": "{verb} в {n} из {m} сетей, где удалось измерить",
        "agree_total": "{text} ({where} всего {total})",
        "agree_total_all": "{text} (всего {total})",
        "agree_where": "{text} {where}", "cin_other": "в стране {code}",
        "cin_KZ": "в Казахстане", "cin_KG": "в Кыргызстане", "cin_UZ": "в Узбекистане",
        "cin_TJ": "в Таджикистане", "cin_RU": "в России", "cin_BY": "в Беларуси",
        "dissent": "недостаточно сетей согласны, что это блокировка (нужно {needed})",
        "dissent_interfered": "недостаточно сетей согласны, что это помехи (нужно {needed})",
        "case": "Сообщение", "what_happened": "что произошло",
        "incident_unspecified": "инцидент",
        "itype_detention": "задержание", "itype_arrest": "арест",
        "itype_blocking": "блокировка", "itype_raid": "обыск",
        "itype_criminal_case": "уголовное дело", "itype_fine": "штраф",
        "itype_assault": "нападение", "itype_shutdown": "закрытие",
        "itype_harassment": "давление",
        "istatus_acquitted": "оправдан", "istatus_charges_dropped": "обвинения сняты",
        "istatus_unblocked": "разблокирован", "istatus_released": "освобождён",
        "istatus_sentenced": "вынесен приговор", "istatus_convicted": "осуждён",
    },
    "kk": {
        "agree_one": "{verb} желілер: {n} / {m}",
        "agree_many": "{verb} желілер: {n} / {m}",
        "agree_blocked": "бұғатталған", "agree_interfered": "кедергі бар",
        "agree_measured_one": "{verb} желілер: {n} / {m}, өлшей алған желілер арасында",
        "agree_measured_many": "{verb} желілер: {n} / {m}, өлшей алған желілер арасында",
        "agree_total": "{text} ({where} барлығы {total})",
        "agree_total_all": "{text} (барлығы {total})",
        "agree_where": "{where} {text}", "cin_other": "{code} елінде",
        "cin_KZ": "Қазақстанда", "cin_KG": "Қырғызстанда", "cin_UZ": "Өзбекстанда",
        "cin_TJ": "Тәжікстанда", "cin_RU": "Ресейде", "cin_BY": "Беларусьте",
        "dissent": "бұғаттау деуге желілердің келісімі жеткіліксіз ({needed} қажет)",
        "dissent_interfered": "кедергі деуге желілердің келісімі жеткіліксіз ({needed} қажет)",
        "case": "Хабар", "what_happened": "не болды",
        "incident_unspecified": "оқиға",
        "itype_detention": "ұстау", "itype_arrest": "қамауға алу",
        "itype_blocking": "бұғаттау", "itype_raid": "тінту",
        "itype_criminal_case": "қылмыстық іс", "itype_fine": "айыппұл",
        "itype_assault": "шабуыл", "itype_shutdown": "жабу", "itype_harassment": "қысым",
        "istatus_acquitted": "ақталды", "istatus_charges_dropped": "айып алынып тасталды",
        "istatus_unblocked": "бұғаттан шығарылды", "istatus_released": "босатылды",
        "istatus_sentenced": "үкім шығарылды", "istatus_convicted": "сотталды",
    },
}
for _lang, _words in _CASE_WORDS.items():
    STRINGS[_lang].update(_words)

# --- what cannot be said: no check ran versus checks that could not look ---------------------
_UNKNOWN_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "held_until": "at least until {when}",
        "mixed_page": "Right now blockwatch is not measuring: some of its networks have run no "
                      "check since {since}, the others checked but could not look (their own "
                      "network or the comparison from abroad failed). Last usable measurement: "
                      "{when}.",
    },
    "ru": {
        "held_until": "как минимум до {when}",
        "mixed_page": "Сейчас blockwatch не измеряет: часть сетей не проводила проверок с "
                      "{since}, остальные проверяли, но не смогли измерить (отказала их "
                      "собственная сеть или сравнение из-за рубежа). Последнее пригодное "
                      "измерение: {when}.",
    },
    "kk": {
        "held_until": "кемінде осы уақытқа дейін жалғасты: {when}",
        "mixed_page": "Қазір blockwatch өлшемей тұр: кейбір желілер тексеру жүргізбей тұр "
                      "(соңғы тексеру: {since}), қалғандары тексерді, бірақ өлшей алмады (өз желісі немесе "
                      "шетелден салыстыру істемеді). Соңғы жарамды өлшеу: {when}.",
    },
}
for _lang, _words in _UNKNOWN_WORDS.items():
    STRINGS[_lang].update(_words)


def _maybe(lang: str, key: str) -> str | None:
    for code in _fallbacks(lang):
        s = STRINGS.get(code, {}).get(key)
        if s is not None:
            return s
    return None


def incident_words(lang: str, types: tuple[str, ...] | list[str], status: str | None) -> str:
    """"detention — released": what a report says happened."""
    words = ", ".join(_maybe(lang, f"itype_{ty}") or ty for ty in types) or \
        t(lang, "incident_unspecified")
    if status:
        words += " \u2014 " + (_maybe(lang, f"istatus_{status}") or status)
    return words


def agreement_text(lang: str, n: int, m: int, country: str, *, total: int | None = None,
                   interfered: bool = False) -> str:
    """"blocked on 2 of 3 networks in Kazakhstan" (m: the networks that could measure). When
    fewer measured than the country has (`total`), it says so: "blocked on 1 of 1 network that
    measured (2 in Kazakhstan)". `interfered`: every network reporting it saw interference or
    slowing (http_diff, http_failure, throttled), not a block: "interfered with on ..."."""
    one = m % 10 == 1 and m % 100 != 11 if lang == "ru" else m == 1
    verb = t(lang, "agree_interfered" if interfered else "agree_blocked")
    where = (_maybe(lang, f"cin_{country}") or t(lang, "cin_other", code=country)
             if country else "")
    if total is not None and total > m:
        text = t(lang, "agree_measured_one" if one else "agree_measured_many", verb=verb, n=n,
                 m=m)
        if not where:
            return t(lang, "agree_total_all", text=text, total=total)
        return t(lang, "agree_total", text=text, total=total, where=where)
    text = t(lang, "agree_one" if one else "agree_many", verb=verb, n=n, m=m)
    if not where:
        return text
    return t(lang, "agree_where", text=text, where=where)


def agreement_of(lang: str, a: Any) -> str:
    """A quorum.Agreement in words: how many networks that measured report it, of how many the
    country has, and whether what they report is a block or interference."""
    return agreement_text(lang, a.blocked, a.measured, a.country, total=a.vantages,
                          interfered=a.interfered)


MONTHS = {
    "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    "ru": ["янв", "фев", "мар", "апр", "мая", "июн", "июл", "авг", "сен", "окт", "ноя", "дек"],
    "kk": ["қаң", "ақп", "нау", "сәу", "мам", "мау", "шіл", "там", "қыр", "қаз", "қар", "жел"],
}
UNITS = {"en": ("d", "h", "min"), "ru": ("дн", "ч", "мин"), "kk": ("күн", "сағ", "мин")}


def _fallbacks(lang: str) -> list[str]:
    # never Russian on a Kazakh page: every table is complete in every language (a test), and
    # a key that still slipped through reads in English, which that test names
    return [lang, "en"]


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
    if lang in MONTHS_FULL:
        m = MONTHS_FULL[lang][d.month - 1]
        if lang == "kk":
            return f"{d.year} жылғы {d.day} {m}" if year else f"{d.day} {m}"
        return f"{d.day} {m} {d.year}" if year else f"{d.day} {m}"
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


# --- Kazakh for every key (Cyrillic, as current publications write it), the journalist's page:
# filters, network labels, "how we know" ---------------------------------------------------------

STRINGS["kk"].update({
    "affected_days": "Проблемалы күндер",
    "badge": "Белгі",
    "badge_text": "Ағымдағы күйді көрсету үшін осы суретті қойыңыз:",
    "bar_label": "Соңғы 90 күн: {parts}",
    "bar_text": "Жолақ соңғы 90 күнді көрсетеді, ең ертесі сол жақта; күн сайынғы ақау "
                "минуттары меңзер апарғанда немесе басылым бетінде.",
    "case_entry": "{name}: «{word}» күйімен байланысты оқиға — {vantage}",
    "checked": "соңғы тексеру: {when}",
    "confirmed_no": "қорытынды: шетелден бір мезгілде жасалған тексерумен салыстыру",
    "confirmed_yes": "расталған: белгілі бұғаттау беті, бұғаттау мекенжайы немесе ұстап алу "
                     "сертификаты сәйкес келді",
    "days": "{n} күн",
    "event_ended": "{name}: {word} — {vantage} (аяқталуы: {when})",
    "event_entry": "{name}: {word} — {vantage}",
    "evidence": "Дәлел",
    "evidence_hash": "дәлелдің SHA-256 хэші {hash}",
    "feed": "Atom арнасы",
    "feed_title": "{title}: өзгерістер мен оқиғалар",
    "footer": "blockwatch (ашық код) көмегімен жасалған. Cookie, трекер және скрипт жоқ.",
    "for": "{duration} бойы",
    "from": "бұрын: {previous}",
    "history_of": "Соңғы 90 күн: {name}",
    "incidents_intro": "Жаңалықтар мен құқық қорғау ұйымдарының арналарынан жиналған "
                       "басылымдар мен журналистер туралы хабарлар және олар байланысты болуы "
                       "мүмкін бұғаттаулар.",
    "incidents_auto": "Олар сөз ережелері бойынша автоматты түрде табылады және қате болуы "
                      "мүмкін: дереккөзді тексеріңіз. «Тексерілген» деп белгіленгендерін адам "
                      "оқып, растаған.",
    "incidents_reviewed_only": "Тек адам оқып, растаған хабарлар көрсетіледі.",
    "reviewed": "тексерілген",
    "unchecked": "автоматты түрде табылған",
    "incidents_linked": "Байланысты оқиғалар",
    "json": "status.json",
    "latest_check": "соңғы тексеру: {word} (әлі расталмаған)",
    "legend": "Қалай оқу керек",
    "legend_text": "Әр баған — сайттар тексерілетін желі. Күй бірнеше тексеру қатарынан "
                   "сақталғанда ғана расталады. «Сайт істемейді» — ол шетелден де ашылмайды, "
                   "яғни бұл цензура емес.",
    "linked_events": "Байланысты",
    "measured": "тексерілген уақыты: {when}",
    "mentioned": "басылымды атайды",
    "minutes": "Ақау минуттары",
    "network_unknown": "желі белгісіз",
    "no_affected_days": "Соңғы 90 күнде проблема болған жоқ.",
    "no_data_yet": "Әзірге тексеру болған жоқ.",
    "no_events": "Әзірге өзгеріс болған жоқ.",
    "no_incidents": "Оқиғалар жоқ.",
    "no_linked": "Байланысты оқиғалар жоқ.",
    "outlets": "Басылымдар",
    "page_of": "{name} — күйі",
    "people": "Адамдар",
    "per_vantage": "Желілер бойынша тарих",
    "seg": "{range}: {word}, {minutes} ақау",
    "seg_ok": "{range}: {word}",
    "stale": "жаңа дерек жоқ",
    "started": "Басталуы",
    "summary_none": "Барлық {total} басылым қазір барлық желіден қолжетімді.",
    "summary_some": "{total} басылымның {n} кем дегенде бір желіде бұғатталған немесе "
                    "кедергімен жұмыс істейді:",
    "types": "Түрі",
    "until": "(аяқталуы: {when})",
    "urls": "Тексерілетін мекенжайлар",
})
HOW["kk"].update({
    "http_diff": "мазмұны шетелдегіден өзгеше", "http_failure": "HTTP сұрауы үзіледі",
    "throttled": "шетелге қарағанда әлдеқайда баяу",
    "inconclusive": "тексеру желісінің өзі істемеді",
})

_JOURNALIST = {
    "en": {
        "filter_state": "Show outlets that are",
        "filter_network": "Show one network",
        "filter_all": "all",
        "state_page": "Outlets that are {word} now",
        "network_page": "Outlets as seen from {network}",
        "none_in_state": "No outlet is in this state now.",
        "group_blocked": "blocked", "group_interfered": "interfered with or slowed down",
        "group_down": "down everywhere", "group_unknown": "not measured or no recent data",
        "group_reachable": "reachable",
        "v_resolver": "{country}, ISP resolver", "v_resolver_asn": "{country}, ISP resolver {asn}",
        "v_agent": "{country}, {asn} (agent)", "v_agent_n": "{country}, {asn} (agent {n})",
        "v_ooni": "{country}, OONI volunteers {asn}", "v_local": "{country}, {asn} (our probe)",
        "v_abroad": "Abroad", "v_abroad_in": "Abroad ({country})",
        "country_unknown": "country not known",
        "what_we_see": "What we see",
        "f_since": "Since", "f_how": "How", "f_where": "Where",
        "f_evidence": "Evidence (SHA-256 of the measurement)",
        "how_we_know": "How we know",
        "know_dns": "Our probe in the country asked the network's DNS for the site's address and "
                    "got a wrong one (or none), while a resolver abroad gave the real address at "
                    "the same time.",
        "know_tcp_ip": "Our probe in the country could not even open a connection to the site's "
                       "server; from abroad the same connection opened at the same time.",
        "know_tls": "Our probe in the country opened a connection to the site, but the secure "
                    "handshake was cut after it named the site; from abroad the same handshake "
                    "completed.",
        "know_http_blockpage": "Instead of the site, the network served a page we recognise as "
                               "a block page (a known text, address or certificate).",
        "know_http_diff": "The page our probe in the country received is clearly different from "
                          "the page fetched from abroad at the same time.",
        "know_http_failure": "The connection opened, but the request for the page was broken "
                             "off inside the country; from abroad the page loaded.",
        "know_throttled": "The page loaded inside the country, but many times slower than from "
                          "abroad at the same time.",
        "know_down": "The site fails from abroad too, so this is the site itself being down, "
                     "not censorship.",
    },
    "ru": {
        "filter_state": "Показать издания, которые",
        "filter_network": "Показать одну сеть",
        "filter_all": "все",
        "state_page": "Издания: {word}",
        "network_page": "Издания глазами сети: {network}",
        "none_in_state": "Сейчас ни одного издания в этом состоянии.",
        "group_blocked": "заблокированы", "group_interfered": "работают с помехами или замедлены",
        "group_down": "не работают отовсюду", "group_unknown": "не измерены или нет свежих данных",
        "group_reachable": "доступны",
        "v_resolver": "{country}, DNS провайдера", "v_resolver_asn": "{country}, DNS провайдера {asn}",
        "v_agent": "{country}, {asn} (агент)", "v_agent_n": "{country}, {asn} (агент {n})",
        "v_ooni": "{country}, волонтёры OONI {asn}", "v_local": "{country}, {asn} (наш зонд)",
        "v_abroad": "Из-за рубежа", "v_abroad_in": "Из-за рубежа ({country})",
        "country_unknown": "страна неизвестна",
        "what_we_see": "Что мы видим",
        "f_since": "С какого времени", "f_how": "Как", "f_where": "Где",
        "f_evidence": "Доказательство (SHA-256 измерения)",
        "how_we_know": "Откуда мы это знаем",
        "know_dns": "Наш зонд в стране спросил у DNS сети адрес сайта и получил неверный (или "
                    "никакого), а резолвер за рубежом в то же время дал настоящий адрес.",
        "know_tcp_ip": "Наш зонд в стране не смог даже открыть соединение с сервером сайта; из-за "
                       "рубежа то же соединение в то же время открылось.",
        "know_tls": "Наш зонд в стране открыл соединение с сайтом, но защищённое рукопожатие "
                    "оборвалось после того, как было названо имя сайта; из-за рубежа то же "
                    "рукопожатие завершилось.",
        "know_http_blockpage": "Вместо сайта сеть показала страницу, которую мы узнаём как "
                               "страницу блокировки (известный текст, адрес или сертификат).",
        "know_http_diff": "Страница, которую получил наш зонд в стране, явно отличается от "
                          "страницы, загруженной в то же время из-за рубежа.",
        "know_http_failure": "Соединение открылось, но запрос страницы внутри страны "
                             "обрывался; из-за рубежа страница загрузилась.",
        "know_throttled": "Страница внутри страны загружалась, но во много раз медленнее, чем "
                          "в то же время из-за рубежа.",
        "know_down": "Сайт не открывается и из-за рубежа: не работает сам сайт, это не цензура.",
    },
    "kk": {
        "filter_state": "Басылымдарды көрсету:",
        "filter_network": "Бір желіні көрсету",
        "filter_all": "барлығы",
        "state_page": "Басылымдар: {word}",
        "network_page": "Желіден көрінісі: {network}",
        "none_in_state": "Қазір бұл күйде бірде-бір басылым жоқ.",
        "group_blocked": "бұғатталған", "group_interfered": "кедергі бар немесе баяулатылған",
        "group_down": "барлық жерден істемейді", "group_unknown": "өлшенбеген немесе жаңа дерек жоқ",
        "group_reachable": "қолжетімді",
        "v_resolver": "{country}, провайдер DNS-і", "v_resolver_asn": "{country}, провайдер DNS-і {asn}",
        "v_agent": "{country}, {asn} (агент)", "v_agent_n": "{country}, {asn} (агент {n})",
        "v_ooni": "{country}, OONI еріктілері {asn}", "v_local": "{country}, {asn} (біздің зонд)",
        "v_abroad": "Шетелден", "v_abroad_in": "Шетелден ({country})",
        "country_unknown": "елі белгісіз",
        "what_we_see": "Не көреміз",
        "f_since": "Қашаннан бері", "f_how": "Қалай", "f_where": "Қайда",
        "f_evidence": "Дәлел (өлшеудің SHA-256 хэші)",
        "how_we_know": "Қайдан білеміз",
        "know_dns": "Елдегі зондымыз желінің DNS-інен сайттың мекенжайын сұрап, қате мекенжай "
                    "алды (немесе ешнәрсе алмады), ал шетелдегі резолвер сол уақытта нақты "
                    "мекенжайды берді.",
        "know_tcp_ip": "Елдегі зондымыз сайт серверімен қосылым аша алмады; шетелден дәл сол "
                       "қосылым сол уақытта ашылды.",
        "know_tls": "Елдегі зондымыз сайтпен қосылым ашты, бірақ қорғалған қол алысу сайттың "
                    "аты аталғаннан кейін үзілді; шетелден дәл сол қол алысу аяқталды.",
        "know_http_blockpage": "Сайттың орнына желі бұғаттау беті ретінде танитын бетті "
                               "көрсетті (белгілі мәтін, мекенжай немесе сертификат).",
        "know_http_diff": "Елдегі зондымыз алған бет сол уақытта шетелден жүктелген беттен "
                          "анық өзгеше.",
        "know_http_failure": "Қосылым ашылды, бірақ ел ішінде бетті сұрау үзілді; шетелден бет "
                             "жүктелді.",
        "know_throttled": "Бет ел ішінде жүктелді, бірақ сол уақытта шетелден жүктегенге "
                          "қарағанда бірнеше есе баяу.",
        "know_down": "Сайт шетелден де ашылмайды: сайттың өзі істемейді, бұл цензура емес.",
    },
}
for _lang, _words in _JOURNALIST.items():
    STRINGS[_lang].update(_words)

# beside a reason stored before reasons were kept as keys: it exists in English only
STRINGS["en"]["in_english"] = "(in English)"
STRINGS["ru"]["in_english"] = "(на английском)"
STRINGS["kk"]["in_english"] = "(ағылшынша)"

# country names for the network labels; an unlisted code is shown as it is ("DE")
COUNTRIES = {
    "en": {"KZ": "Kazakhstan", "KG": "Kyrgyzstan", "UZ": "Uzbekistan", "TJ": "Tajikistan",
           "TM": "Turkmenistan", "RU": "Russia", "BY": "Belarus", "AZ": "Azerbaijan",
           "DE": "Germany", "NL": "Netherlands", "FI": "Finland", "US": "United States",
           "GB": "United Kingdom", "FR": "France"},
    "ru": {"KZ": "Казахстан", "KG": "Кыргызстан", "UZ": "Узбекистан", "TJ": "Таджикистан",
           "TM": "Туркменистан", "RU": "Россия", "BY": "Беларусь", "AZ": "Азербайджан",
           "DE": "Германия", "NL": "Нидерланды", "FI": "Финляндия", "US": "США",
           "GB": "Великобритания", "FR": "Франция"},
    "kk": {"KZ": "Қазақстан", "KG": "Қырғызстан", "UZ": "Өзбекстан", "TJ": "Тәжікстан",
           "TM": "Түрікменстан", "RU": "Ресей", "BY": "Беларусь", "AZ": "Әзірбайжан",
           "DE": "Германия", "NL": "Нидерланды", "FI": "Финляндия", "US": "АҚШ",
           "GB": "Ұлыбритания", "FR": "Франция"},
}


def country_name(lang: str, code: str) -> str:
    if not code:
        return t(lang, "country_unknown")
    return COUNTRIES.get(lang, COUNTRIES["en"]).get(code.upper(), code.upper())


# full month names as each language's publications date: "4 декабря 2026", "2026 жылғы 4
# желтоқсан" (Kazakh: year first, the month in the nominative)
MONTHS_FULL = {
    "ru": ["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
           "сентября", "октября", "ноября", "декабря"],
    "kk": ["қаңтар", "ақпан", "наурыз", "сәуір", "мамыр", "маусым", "шілде", "тамыз",
           "қыркүйек", "қазан", "қараша", "желтоқсан"],
}


def fmt_num(lang: str, n: int) -> str:
    """1,234 in English; 1 234 (a no-break space) in Russian and Kazakh."""
    s = f"{n:,}"
    return s if lang == "en" else s.replace(",", "\u00a0")


@lru_cache(maxsize=4096)
def fmt_compact(lang: str, d: date, today: date) -> str:
    """The index's hover text, where bytes count (hundreds of dates a page): 4 Dec in English;
    04.12 (04.12.2025 in another year) in Russian and Kazakh, as both write dates in figures."""
    if lang not in MONTHS_FULL:
        return fmt_short(lang, d, today)
    return f"{d:%d.%m}" if d.year == today.year else f"{d:%d.%m.%Y}"
