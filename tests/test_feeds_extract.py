"""Extraction: a labelled table of headlines in English, Russian and Kazakh, positives and
negatives, against a fixed target list and two (fictional) journalists."""

from __future__ import annotations

from pathlib import Path

import pytest

from blockwatch.config import Person
from blockwatch.feeds.extract import Matcher, normalise
from blockwatch.targets import load_targets

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
PEOPLE = [
    Person(name="Aigul Saparova", aliases=["Айгуль Сапарова", "Сапарова", "Айгүл Сапарова"]),
    Person(name="Yerlan Kassymov", aliases=["Ерлан Касымов", "Kassymov"]),
]
AZ = {"Azattyq", "Azattyq (Russian)"}


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(load_targets([FIXTURES / "targets.toml"]), PEOPLE)


# (headline, outlets, people, types, is an incident)
TABLE: list[tuple[str, set[str], set[str], set[str], bool]] = [
    # --- English
    ("Kazakhstan: Ratel.kz journalist detained in Almaty", {"Ratel.kz"}, set(), {"detention"}, True),
    ("Vlast.kz website blocked across Kazakhstan, users report", {"Vlast.kz"}, set(), {"blocking"}, True),
    ("Police raid the newsroom of KazTAG", {"KazTAG"}, set(), {"raid"}, True),
    ("Criminal case opened against Orda.kz editor", {"Orda.kz"}, set(), {"criminal_case"}, True),
    ("Azattyq correspondent fined for covering rally", {"Azattyq"}, set(), {"fine"}, True),
    ("Azattyq Ruhy editor beaten by unknown attackers", {"Azattyq Ruhy"}, set(), {"assault"}, True),
    ("Mobile internet shut down in Zhanaozen amid protests", set(), set(), {"shutdown"}, True),
    ("ARTICLE 19 condemns harassment of Kursiv reporters", {"ARTICLE 19", "Kursiv"}, set(),
     {"harassment"}, True),
    ("Article 19 of the Constitution guarantees freedom of speech", set(), set(), set(), False),
    ("The ratel, or honey badger, is famously fearless", set(), set(), set(), False),
    ("Aigul Saparova arrested after Facebook post", set(), {"Aigul Saparova"}, {"detention"}, True),
    ("Court fines journalist Yerlan Kassymov over 'false information'", set(), {"Yerlan Kassymov"},
     {"fine"}, True),
    ("Current Time reporter questioned by police in Astana", {"Current Time"}, set(),
     {"harassment"}, True),
    ("What is the current time in Almaty?", set(), set(), set(), False),
    ("Human Rights Watch: Kazakhstan must stop persecuting journalists", {"Human Rights Watch"},
     set(), {"harassment"}, True),
    ("Lada.kz launches a new mobile app", {"Lada.kz"}, set(), set(), False),
    ("Block of flats collapses in Almaty", set(), set(), set(), False),
    ("Everything is fine, says the minister", set(), set(), set(), False),
    ("Flight to Astana delayed by four hours", set(), set(), set(), False),
    ("Man detained for stealing a car in Shymkent", set(), set(), {"detention"}, False),
    ("Uralskaya Nedelya website inaccessible for a week", {"Uralskaya Nedelya"}, set(),
     {"blocking"}, True),
    ("Vlast reporter harassed online after investigation", {"Vlast.kz"}, set(), {"harassment"}, True),
    ("Power cuts hit Almaty", set(), set(), set(), False),
    ("The authorities blocked dozens of Telegram channels", set(), set(), {"blocking"}, True),
    ("Journalists threatened after reporting on Qantar events", set(), set(), {"harassment"}, True),
    ("Kassymov's home searched by police", set(), {"Yerlan Kassymov"}, {"raid"}, True),
    # --- Russian
    ("Журналиста Рателя задержали в Алматы", {"Ratel.kz"}, set(), {"detention"}, True),
    ("Ратель сообщил о блокировке сайта", {"Ratel.kz"}, set(), {"blocking"}, True),
    ("Власти заблокировали доступ к YouTube", set(), set(), {"blocking"}, True),
    ("Власти Казахстана ограничили доступ к мессенджерам", set(), set(), {"blocking"}, True),
    ("Сайт издания «Власть» недоступен в Казахстане", {"Vlast.kz"}, set(), {"blocking"}, True),
    ("Журналистка Власти вызвана на допрос", {"Vlast.kz"}, set(), {"harassment"}, True),
    ("Главный редактор Vlast.kz оштрафован на 100 МРП", {"Vlast.kz"}, set(), {"fine"}, True),
    ("У местной власти новые планы по благоустройству", set(), set(), set(), False),
    ("В отношении редакции КазТАГ возбуждено уголовное дело", {"KazTAG"}, set(),
     {"criminal_case"}, True),
    ("В офисе Orda.kz прошёл обыск", {"Orda.kz"}, set(), {"raid"}, True),
    ("Корреспондента Радио Азаттык избили в Жанаозене", AZ, set(), {"assault"}, True),
    ("В стране отключили мобильный интернет", set(), set(), {"shutdown"}, True),
    ("Рейс в Астану задерживается: задержка составила три часа", set(), set(), set(), False),
    ("Журналист устал от бесконечных проверок", set(), set(), set(), False),
    ("Айгуль Сапаровой назначили штраф", set(), {"Aigul Saparova"}, {"fine"}, True),
    ("Суд арестовал Ерлана Касымова на 10 суток", set(), {"Yerlan Kassymov"}, {"arrest"}, True),
    ("Сапарова: на меня давят из-за публикаций", set(), {"Aigul Saparova"}, {"harassment"}, True),
    ("Журналистов «Курсива» преследуют за расследование", {"Kursiv"}, set(), {"harassment"}, True),
    ("Курсив и полужирный: как оформлять текст", set(), set(), set(), False),
    ("Прокуратура вынесла предостережение редакции Уральской недели", {"Uralskaya Nedelya"}, set(),
     {"harassment"}, True),
    ("Сайт Lada.kz заблокирован по решению суда", {"Lada.kz"}, set(), {"blocking"}, True),
    ("В Алматы задержаны активисты, освещавшие митинг", set(), set(), {"detention"}, True),
    ("Полиция провела рейд по ночным клубам", set(), set(), set(), False),
    ("Human Rights Watch призвала освободить журналиста", {"Human Rights Watch"}, set(), set(), False),
    ("Хьюман Райтс Вотч: в Казахстане преследуют блогеров", {"Human Rights Watch"}, set(),
     {"harassment"}, True),
    ("Сотрудники КНБ изъяли технику у журналистов Орда.kz", {"Orda.kz"}, set(), {"raid"}, True),
    # a prison sentence is a criminal case (with status "sentenced"); days in jail are an arrest
    ("Блогер приговорён к 5 годам за пост в Facebook", set(), set(), {"criminal_case"}, True),
    ("Медоед, или ратель, — бесстрашный зверь", set(), set(), set(), False),
    ("ЖУРНАЛИСТ РАТЕЛЯ ЗАДЕРЖАН", {"Ratel.kz"}, set(), {"detention"}, True),
    ("ВЛАСТИ ЗАБЛОКИРОВАЛИ САЙТ", set(), set(), {"blocking"}, True),
    ("Власть сменила министра информации", set(), set(), set(), False),
    # --- Kazakh
    # spelled in Kazakh: the Kazakh service (the Russian one is named "Азаттык", Russian spelling)
    ("Азаттық тілшісі Алматыда ұсталды", {"Azattyq"}, set(), {"detention"}, True),
    ("Сөз азаттығы күні атап өтілді", set(), set(), set(), False),
    ("Ел азаттығы үшін күрескен батырлар еске алынды", set(), set(), set(), False),
    ("Ratel.kz сайты бұғатталды", {"Ratel.kz"}, set(), {"blocking"}, True),
    ("Vlast.kz редакциясында тінту жүргізілді", {"Vlast.kz"}, set(), {"raid"}, True),
    ("Журналиске қатысты қылмыстық іс қозғалды", set(), set(), {"criminal_case"}, True),
    ("Блогерге 200 мың теңге айыппұл салынды", set(), set(), {"fine"}, True),
    ("Рательдің тілшісі сотқа шақырылды", {"Ratel.kz"}, set(), set(), False),
    ("Қазақстанда мобильді интернет өшірілді", set(), set(), {"shutdown"}, True),
    ("Айгүл Сапарова қамауға алынды", set(), {"Aigul Saparova"}, {"detention"}, True),
    ("Азаттық радиосының журналисіне шабуыл жасалды", {"Azattyq"}, set(), {"assault"}, True),
    ("Тілшінің үйінде тінту жүрді", set(), set(), {"raid"}, True),
    ("Azattyq Ruhy басылымының редакторына қысым көрсетілді", {"Azattyq Ruhy"}, set(),
     {"harassment"}, True),
    ("Азаттық рухы газетінің тілшісі ұсталды", {"Azattyq Ruhy"}, set(), {"detention"}, True),
    ("Мемлекеттік билік жаңа заң қабылдады", set(), set(), set(), False),
    ("Күн ашық, жаңбыр жаумайды", set(), set(), set(), False),
    ("Ұсталған журналист босатылды", set(), set(), {"detention"}, True),
    ("Лада көлігі жол апатына ұшырады", set(), set(), set(), False),
    ("Азаттык тилшиси усталды", AZ, set(), {"detention"}, True),  # typed without Kazakh letters
]


def test_table_is_big_and_balanced() -> None:
    assert len(TABLE) >= 60
    positives = sum(1 for row in TABLE if row[4])
    assert 20 <= positives <= len(TABLE) - 20


@pytest.mark.parametrize(("headline", "outlets", "people", "types", "incident"), TABLE,
                         ids=[row[0][:40] for row in TABLE])
def test_headline(matcher: Matcher, headline: str, outlets: set[str], people: set[str],
                  types: set[str], incident: bool) -> None:
    x = matcher.extract(headline)
    assert set(x.outlets) == outlets
    assert set(x.people) == people
    assert set(x.types) == types
    assert x.is_incident is incident


def test_vlast_trap_in_a_summary(matcher: Matcher) -> None:
    # the common-word rule also holds when the word sits in the body, next to a domain form of
    # another outlet
    x = matcher.extract("Сайт Ratel.kz недоступен", "Власти пока не прокомментировали блокировку.")
    assert x.outlets == ("Ratel.kz",)


def test_summary_counts(matcher: Matcher) -> None:
    x = matcher.extract("Новости недели", "Редактора издания «Власть» задержали утром.")
    assert x.outlets == ("Vlast.kz",) and x.types == ("detention",) and x.is_incident


def test_domain_inside_url_and_www(matcher: Matcher) -> None:
    x = matcher.extract("Доступ ограничен к https://www.ratel.kz/news/2026/11/10/123")
    assert x.outlets == ("Ratel.kz",)
    assert matcher.extract("notratel.kz is another site").outlets == ()
    # domains are compared as spelled (q and k are one letter only in names)
    shipped = Matcher(load_targets([Path(__file__).parent.parent / "probes" / "kz.toml"]))
    assert shipped.extract("Читайте на rus.azattyq.org").outlets == ("Azattyq (Russian)",)
    assert shipped.extract("Читайте на rus.azattyk.org").outlets == ()
    assert shipped.extract("Сайт Камшы.kz заблокирован").outlets == ("Qamshy.kz",)
    assert shipped.extract("Сайт ҚАМШЫ.KZ заблокирован").outlets == ("Qamshy.kz",)


def test_normalise_keeps_offsets() -> None:
    for s in ("İstanbul Ёлка Қазақ «Власть»", "ǅ ß ﬁ"):
        assert len(normalise(s)) == len(s)
    assert normalise("Қамшы «Ёж»") == 'камшы "еж"'


def test_no_targets_no_people() -> None:
    x = Matcher().extract("Журналиста задержали")
    assert x.outlets == () and x.people == () and x.types == ("detention",) and x.is_incident


# --- words, not surface forms: the shipped target list, statuses, countries, evidence ---------

@pytest.fixture(scope="module")
def shipped() -> Matcher:
    return Matcher(load_targets([Path(__file__).parent.parent / "probes" / "kz.toml"]), PEOPLE)


# (text, outlets that must be found, types, status, country)
WORDS: list[tuple[str, set[str], set[str], str | None, str | None]] = [
    # inflections of one word are that word
    ("Суд отправил задержанного журналиста под домашний арест", set(), {"detention", "arrest"}, None,
     None),
    ("Задержание корреспондента в Шымкенте", set(), {"detention"}, None, "KZ"),
    ("Editors charged, indicted and tried for a blog post", set(), {"criminal_case"}, None, None),
    # (a text in Kazakh that names no place is taken to be about Kazakhstan)
    ("Журналистерді полиция ұстап әкетті", set(), {"detention"}, None, "KZ"),
    ("Тілшінің үйі тінтілді", set(), {"raid"}, None, "KZ"),
    # prosecution and courts
    ("Редактора обвиняют в распространении заведомо ложной информации", set(), {"criminal_case"},
     None, None),
    ("Блогер приговорён к трём годам ограничения свободы", set(), {"criminal_case"}, "sentenced", None),
    ("Reporter convicted of extremism, jailed for 7 years", set(), {"criminal_case"}, "sentenced",
     None),
    ("Журналист арестован на 10 суток", set(), {"arrest"}, None, None),
    # a case opened after an attack or threats is against the attackers
    ("Журналиста избили, возбуждено уголовное дело", set(), {"assault"}, None, None),
    ("Против редактора возбуждено уголовное дело", set(), {"criminal_case"}, None, None),
    # pressure not called harassment
    ("Журналистку вызвали в полицию для дачи показаний", set(), {"harassment"}, None, None),
    ("Прокуратура вынесла официальное предостережение редактору", set(), {"harassment"}, None, None),
    ("Reporter summoned by prosecutors for questioning", set(), {"harassment"}, None, None),
    ("Editor questioned by police for five hours", set(), {"harassment"}, None, None),
    ("Police detained the editor and took her in for questioning", set(), {"detention"}, None, None),
    # statuses: facts, not wishes; not negated
    ("Журналист освобождён из-под стражи", set(), {"detention"} - {"detention"}, "released", None),
    # (the country is the named outlet's: the target list's)
    ("HRW призвала освободить задержанного журналиста", {"Human Rights Watch"}, {"detention"}, None,
     "KZ"),
    ("Уголовное дело против журналиста было прекращено", set(), {"criminal_case"}, "charges_dropped",
     None),
    ("Court acquits journalist of defamation", set(), {"criminal_case"}, "acquitted", None),
    ("Доступ к сайту Vlast.kz восстановлен после блокировки", {"Vlast.kz"}, {"blocking"}, "unblocked",
     "KZ"),
    ("Журналиста не задержали, но допросили", set(), {"harassment"}, None, None),
    ("The reporter was not detained", set(), set(), None, None),
    # activists detained at a protest: detention, but not a press-freedom incident (below)
    ("Activists detained at a rally in Almaty", set(), {"detention"}, None, "KZ"),
    # possibilities and names are not facts; charges someone faces are a criminal case
    ("Journalists may face charges and a fine", set(), {"criminal_case"}, None, None),
    ("Редактору может грозить арест", set(), set(), None, None),
    ("On May 13 a court fined journalist Ivanova", set(), {"fine"}, None, None),
    ("World Organisation Against Torture condemns detention of reporter", set(), {"detention"}, None,
     None),
    # a Kazakh word family by prefix ("аңд-", to stalk) takes no Russian name ("Андрей")
    ("Журналиста Андрея задержали в Андижане", set(), {"detention"}, None, "UZ"),
    # outlets in other forms
    ("Kazakh police detain RFE/RL journalist in Almaty", {"Azattyq"}, {"detention"}, None, "KZ"),
    ("RFE/RL's Kazakh Service reporter fined", {"Azattyq"}, {"fine"}, None, "KZ"),
    ("Сотрудники полиции задержали корреспондента «Ратель»", {"Ratel.kz"}, {"detention"}, None, "KZ"),
    ("Прокуратура предупредила главного редактора СМИ Orda", {"Orda.kz"}, set(), None, "KZ"),
    ("Журналисты Азаттыка задержаны в Жанаозене", {"Azattyq"}, {"detention"}, None, "KZ"),
    ("Әділ сөздің мәліметінше, журналист ұсталды", {"Adil Soz"}, {"detention"}, None, "KZ"),
    ("Журналиста задержали в Бишкеке, сообщает «Власть»", {"Vlast.kz"}, {"detention"}, None, "KG"),
    ("Police searched the office of Orda, an independent news site", {"Orda.kz"}, {"raid"}, None, "KZ"),
    ("Офис Orda — независимого издания — обыскали", {"Orda.kz"}, {"raid"}, None, "KZ"),
    # a court's own custody is an arrest; people counted are not incidents counted; taken by force
    ("A Tashkent court detains a blogger over his posts", set(), {"arrest"}, None, "UZ"),
    ("Reporter in hospital after an assault by 3 attackers in Almaty", set(), {"assault"}, None, "KZ"),
    ("Two journalists kidnapped in Syria have been held captive for months", set(), {"assault"},
     None, None),
    # a case announced is pressure, not (yet) a case
    ("The ministry said it planned to indict the editor of the news site", set(), {"harassment"},
     None, None),
]


NO_CASE = [
    # a report's or a series' title over a year or the world
    "Attacks on the Press in 2023: Tajikistan. Two reporters were jailed and a site was blocked",
    "Journalists killed in 2023: a worldwide roundup",
    # pressure as a state of things; access to the internet asked for, not cut
    "Bloggers under pressure in Turkmenistan",
    "Rights groups urge the authorities to guarantee access to the internet during the vote",
    "Attacks on the Press 2011: Uzbekistan. Two bloggers were detained and sites blocked",
    # what a law or a bill is about is no act; hearsay is not the press
    "Parliament debates a 'foreign agents' bill that would brand media outlets",
    "Shops reportedly attacked after a football match in Osh",
    "Our annual report analyzes every internet shutdown and blocked website of 2023",
]
STILL_A_CASE = [
    # near misses of the no-case rules above: these are cases
    "Vlast.kz reporter detained, law enforcement sources said",
    "Police detained law student and blogger Askar Ospanov in Almaty",
    "CPJ condemns attacks on the press in Kazakhstan after police detained a Vlast.kz reporter",
    "Reporter detained in Almaty, CPJ said in its annual report",
    "Vlast.kz journalists came under pressure from police after the story",
]


@pytest.mark.parametrize(("text", "incident"),
                         [(t, False) for t in NO_CASE] + [(t, True) for t in STILL_A_CASE])
def test_case_or_no_case(shipped: Matcher, text: str, incident: bool) -> None:
    x = shipped.extract(text)
    assert x.is_incident == incident, (x.types, x.evidence)


def test_people_counted_are_not_incidents_counted(shipped: Matcher) -> None:
    x = shipped.extract("Reporter in hospital after an assault by 3 attackers in Almaty")
    assert x.is_incident and "aggregate" not in x.evidence
    assert not shipped.extract("3 attacks on reporters were recorded in Almaty this year").is_incident


@pytest.mark.parametrize(("text", "outlets", "types", "status", "country"), WORDS,
                         ids=[row[0][:40] for row in WORDS])
def test_words(shipped: Matcher, text: str, outlets: set[str], types: set[str], status: str | None,
               country: str | None) -> None:
    x = shipped.extract(text)
    assert outlets <= set(x.outlets)
    assert set(x.types) == types
    assert x.status == status
    assert x.country == country


@pytest.mark.parametrize("text", [
    "Историки обсудили Золотую Орду",  # the Golden Horde, not Orda.kz
    "Лада көлігі жол апатына ұшырады",
    "Власти Казахстана ограничили доступ к мессенджерам",
    "RFE/RL journalist detained in Minsk",  # RFE/RL's service for Belarus is not Azattyq
    "Article 19 of the Constitution guarantees freedom of speech",
    "ASTANA (KAZINFORM) - NUR OTAN party congress held in Astana",  # NUR is not Nur.kz
    "Прокуратура разъяснила требования Закона Республики Казахстан «О масс-медиа»",
    "Қазақстан Республикасының заңы бойынша журналист ұсталды",
    "RFE/RL condemns the new media law in Kazakhstan",  # the organisation, not its Kazakh service
    "Журналиста Азаттык Медиа задержали в Бишкеке",  # RFE/RL's Kyrgyz service (`excludes`)
])
def test_outlet_traps(shipped: Matcher, text: str) -> None:
    x = shipped.extract(text)
    assert not {"Orda.kz", "Lada.kz", "Vlast.kz", "Azattyq", "ARTICLE 19", "Nur.kz", "Respublika"} & set(
        x.outlets)


def test_activists_alone_are_not_the_press(shipped: Matcher) -> None:
    assert not shipped.extract("Activists detained at a rally in Almaty").is_incident
    assert shipped.extract("Activist detained over a Facebook post").is_incident
    assert shipped.extract("Активистов, освещавших митинг, задержали").is_incident


def test_counts_are_not_incidents(shipped: Matcher) -> None:
    x = shipped.extract("Алматыда ұсталғандар саны жүзге жуықтады", "деп хабарлады Азаттық тілшісі.")
    assert x.types == ("detention",) and x.aggregate and not x.is_incident
    assert shipped.extract("Алматыда журналист ұсталды").is_incident


def test_country_fallbacks(shipped: Matcher) -> None:
    assert shipped.extract("Журналиста задержали").country is None
    assert shipped.extract("Журналиста задержали", country="KG").country == "KG"
    # the text wins over the caller's fallback; an outlet's country is the last resort
    assert shipped.extract("Журналиста задержали в Ташкенте", country="KZ").country == "UZ"
    assert shipped.extract("Журналиста Рателя задержали").country == "KZ"
    assert shipped.extract("Сайт 24.kg недоступен").country == "KG"
    # Kazakh text: Kazakhstan unless a place or the caller says otherwise
    assert shipped.extract("Журналист ұсталды").country == "KZ"
    assert shipped.extract("Журналист ұсталды", country="UZ").country == "UZ"
    assert shipped.extract("Бішкекте журналист ұсталды").country == "KG"


def test_evidence_says_why(shipped: Matcher) -> None:
    x = shipped.extract("Корреспондента «Ратель» задержали в Алматы", "Его освободили вечером.")
    assert x.evidence["detention"] == ("задержали",)
    assert x.evidence["outlet:Ratel.kz"] == ("«Ратель»",)
    assert x.evidence["status:released"] == ("освободили",)
    assert x.evidence["country:KZ"] == ("Алматы",)
    assert "Корреспондента" in x.evidence["press"]
    assert x.is_incident and x.status == "released"
    # one name once: "Vlast" inside "Vlast.kz" is not more evidence
    x = shipped.extract("Редактора издания Vlast.kz задержали")
    assert x.evidence["outlet:Vlast.kz"] == ("Vlast.kz",)


def test_kazakh_forms_meet() -> None:
    from blockwatch.feeds.kazakh import forms

    def same(a: str, b: str) -> bool:
        return bool(set(forms(normalise(a))) & set(forms(normalise(b))))

    for a, b in [("Қазақстан", "Қазақстандағы"), ("Астана", "Астанада"), ("тілші", "тілшілерінің"),
                 ("ұсталды", "ұсталған"), ("айыппұл", "айыппұлы"), ("іс", "іске")]:
        assert same(a, b), (a, b)
    # a minimum stem keeps short words whole; unrelated words stay apart
    assert forms("ел") == ("ел",)
    assert not same("тілші", "тінту")


def test_phrase_syntax() -> None:
    from blockwatch.feeds import phrases

    ps = phrases.PhraseSet([
        ("a:lemma", "ru", "уголовное дело"),
        ("a:surface", "en", "=was released"),
        ("a:prefix", "kk", "бұғат~"),
        ("a:any", "en", "sentence to * year"),
        ("a:far", "ru", "дело ... прекратить"),
    ], normalise)

    def labels(text: str) -> set[str]:
        return {h.label for h in ps.find(phrases.tokenize(text, normalise(text)))}

    assert labels("возбуждено уголовное дело") == {"a:lemma"}
    assert labels("уголовного дела") == {"a:lemma"}
    assert labels("he was released") == {"a:surface"}
    assert labels("calls to release him") == set()  # surface forms: not the stem
    assert labels("сайт бұғатталды") == labels("сайтты бұғаттады") == {"a:prefix"}
    assert labels("sentenced to five years") == {"a:any"}
    assert labels("дело против журналиста было прекращено") == {"a:far"}
    # "..." stays inside one sentence
    assert labels("Дело шло. Суд прекратил заседание") == set()
