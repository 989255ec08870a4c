"""Vocabulary classes of the extractor, one row per inflection or phrasing of a class: Kazakh
legal, police and court words with their endings, Russian and English phrasings that tell an
incident without its type word ("taken to the police station", "получил 10 суток"),
administrative penalties (days in jail are an arrest, not a prison sentence), and background
mentions that make no incident. The sentences are written for these tests; the quality
measurement on real text is tests/test_extract_devset.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from blockwatch.feeds.extract import Matcher
from blockwatch.targets import load_targets


@pytest.fixture(scope="module")
def shipped() -> Matcher:
    return Matcher(load_targets([Path(__file__).parent.parent / "probes" / "kz.toml"]), [])


# (text, types, status); every text names the press, so a type makes an incident
CLASSES: list[tuple[str, set[str], str | None]] = [
    # --- Kazakh: detention (ұстау) in its voices, tenses and participles
    ("Полиция журналисті ұстап алды", {"detention"}, None),
    ("Тілшіні полиция бөлімшесіне алып кетті", {"detention"}, None),
    ("Журналистер ұсталғаннан кейін бес сағат өтті", {"detention"}, None),
    ("Блогер полицияға жеткізілді", {"detention"}, None),
    ("Тілшіні полицейлер күштеп көлікке отырғызды", {"detention"}, None),
    ("Журналист полиция бөлімінде үш сағат ұсталды", {"detention"}, None),
    ("Тілшілер полицияда бес сағат болды, кешке босатылды", {"detention"}, "released"),
    # --- Kazakh: arrest (қамау) and days in jail
    ("Блогер 10 тәулікке қамалды", {"arrest"}, None),
    ("Журналистке 15 тәулік әкімшілік қамақ берілді", {"arrest"}, None),
    ("Сот журналисті екі айға қамауға алу туралы шешім шығарды", {"arrest"}, None),
    # a temporary holding cell is police custody (LABELLING.md, detention); days in it an arrest
    ("Тілші уақытша ұстау изоляторына қамалды", {"detention"}, None),
    ("Тілші уақытша ұстау изоляторына 10 тәулікке қамалды", {"arrest"}, None),
    ("Блогер тергеу изоляторында отыр", {"arrest"}, None),
    ("Журналист үй қамағына шығарылды", {"arrest"}, None),
    # --- Kazakh: criminal case, court and sentence
    ("Журналистке қатысты қылмыстық іс қозғалды", {"criminal_case"}, None),
    ("Блогерге жалған ақпарат тарату бабымен айып тағылды", {"criminal_case"}, None),
    ("Журналист ҚК-нің 274-бабы бойынша күдікті деп танылды", {"criminal_case"}, None),
    ("Сот блогерді бес жылға бас бостандығынан айырды", {"criminal_case"}, "sentenced"),
    ("Журналист үш жылға сотталды", {"criminal_case"}, "sentenced"),
    ("Тілшінің ісі сотқа жолданды", {"criminal_case"}, None),
    ("Блогердің ісі бойынша сот отырысы өтті", {"criminal_case"}, None),
    ("Сот журналисті кінәлі деп тапты", {"criminal_case"}, "convicted"),
    ("Сот журналисті ақтап шығарды", {"criminal_case"}, "acquitted"),
    ("Журналист кінәсіз деп танылды", {"criminal_case"}, "acquitted"),
    ("Журналистке қатысты қылмыстық іс қылмыс құрамы болмағандықтан тоқтатылды", {"criminal_case"},
     "charges_dropped"),
    # --- Kazakh: fine, and administrative liability (a fine unless days in jail are said)
    ("Блогерге 50 АЕК көлемінде айыппұл салынды", {"fine"}, None),
    ("Журналист айыппұл төлеуге міндеттелді", {"fine"}, None),
    ("Блогер әкімшілік жауапкершілікке тартылды", {"fine"}, None),
    ("Блогер 15 тәулікке әкімшілік жауапкершілікке тартылды", {"arrest"}, None),
    # --- Kazakh: raid
    ("Журналистің үйінде тінту жүргізілді", {"raid"}, None),
    ("Редакцияда тінту жасалып, компьютерлер тәркіленді", {"raid"}, None),
    ("Тілшінің телефоны мен ноутбугын алып кетті", {"raid"}, None),
    # --- Kazakh: assault
    ("Белгісіз біреулер журналиске шабуыл жасады", {"assault"}, None),
    ("Тілшіге күш қолданылды", {"assault"}, None),
    ("Журналистің көлігі өртелді", {"assault"}, None),
    ("Тілшінің камерасын сындырып, өзін итеріп жіберді", {"assault"}, None),
    ("Журналисті ұрып-соғып кетті", {"assault"}, None),
    ("Блогерді тепкілеп, телефонын тартып алды", {"assault"}, None),
    # --- Kazakh: harassment
    ("Журналист полицияға шақыртылды", {"harassment"}, None),
    ("Тілші прокуратураға түсініктеме беруге шақырылды", {"harassment"}, None),
    ("Журналистен полицияда жауап алынды", {"harassment"}, None),
    ("Редакторға прокуратура ескерту жасады", {"harassment"}, None),
    ("Тілшілерге түсірілім жүргізуге рұқсат бермеді", {"harassment"}, None),
    ("Журналиске бейнені өшіруді талап етті", {"harassment"}, None),
    ("Шенеунік газетті сотқа берді", {"harassment"}, None),
    ("Журналиске қоқан-лоқы жасалды", {"harassment"}, None),
    ("Тілшілердің жұмысына кедергі келтірілді", {"harassment"}, None),
    # --- Kazakh: blocking and shutdown
    ("Сайтқа кіру мүмкін емес, ол бұғатталған", {"blocking"}, None),
    ("Басылымның сайты ашылмай тұр", set(), None),  # an outage nobody caused
    ("Министрліктің талабымен басылымның сайты ашылмай тұр", {"blocking"}, None),
    ("Сайт бұғаттан шығарылды", {"blocking"}, "unblocked"),
    ("Облыста мобильді интернет өшірілді", {"shutdown"}, None),
    ("Газеттің шығарылымы тоқтатылды", {"shutdown"}, None),
    ("Телеарна эфирден алынды", {"shutdown"}, None),
    # --- Russian: incidents told without a type word
    ("Журналиста силой отвезли в горотдел", {"detention"}, None),
    ("Корреспондента посадили в автозак", {"detention"}, None),
    ("Журналистку доставили в отдел полиции", {"detention"}, None),
    ("Блогеру дали 10 суток", {"arrest"}, None),
    ("Журналист отбывает арест в спецприемнике", {"arrest"}, None),
    ("Суд приговорил журналиста к пяти годам колонии", {"criminal_case"}, "sentenced"),
    ("Подсудимый блогер выступил с последним словом", {"criminal_case"}, None),
    ("В суде прошло заседание по делу журналиста", {"criminal_case"}, None),
    ("У журналиста провели обыск и изъяли технику", {"raid"}, None),
    ("Неизвестный разбил телефон журналистки, выбив его из рук", {"assault"}, None),
    ("В сторону оператора распылили перцовый газ", {"assault"}, None),
    ("Журналистам запретили снимать и потребовали стереть видео", {"harassment"}, None),
    ("Корреспондента не пустили на заседание акимата", {"harassment"}, None),
    ("Журналиста лишили доступа в здание правительства", {"harassment"}, None),
    ("Блогер привлечен к административной ответственности", {"fine"}, None),
    ("Блогер привлечен к административной ответственности в виде 15 суток ареста", {"arrest"}, None),
    ("Блогера вызвали для дачи объяснений", {"harassment"}, None),
    # --- English: incidents told without a type word
    ("The reporter was taken to the Saryarka Police Department", {"detention"}, None),
    ("The journalist spent five hours at a police station", {"detention"}, None),
    ("The editor was forced into a police car", {"detention"}, None),
    ("The blogger was given 10 days", {"arrest"}, None),
    ("The journalist was sentenced to 15 days of administrative detention", {"arrest"}, None),
    ("Police searched the reporter's apartment and seized her laptop", {"raid"}, None),
    ("The journalist was not allowed to film the meeting", {"harassment"}, None),
    ("Police ordered the reporter to delete the footage", {"harassment"}, None),
    ("The cameraman was hit and his camera was smashed", {"assault"}, None),
    ("The court decided to close the criminal investigation against the editor", {"criminal_case"},
     "charges_dropped"),
    # days in jail are an arrest: no prison sentence, no criminal case from the charge words
    ("The journalist was sentenced to 10 days in jail on charges of violating rally rules",
     {"arrest"}, None),
    ("Журналиста приговорили к 10 суткам ареста", {"arrest"}, None),
]


@pytest.mark.parametrize(("text", "types", "status"), CLASSES, ids=[row[0][:48] for row in CLASSES])
def test_class(shipped: Matcher, text: str, types: set[str], status: str | None) -> None:
    x = shipped.extract(text)
    assert (set(x.types), x.status) == (types, status), x.evidence


# Background: a type word about the past or about someone else, in a text about something else
BACKGROUND: list[str] = [
    "Kazakh group to award a democracy prize to a jailed journalist",
    "The previously jailed editor presented his new book on press freedom",
    "Ранее судимый блогер открыл кофейню",
    "Бұрын сотталған журналист жаңа кітабын таныстырды",
]


@pytest.mark.parametrize("text", BACKGROUND)
def test_background_is_no_incident(shipped: Matcher, text: str) -> None:
    assert not shipped.extract(text).is_incident


# More phrasings of the Kazakh classes, and closed cases that are no closed outlets
MORE: list[tuple[str, set[str], str | None]] = [
    ("Журналист ІІБ-ге алып барылды", {"detention"}, None),
    ("Блогер екі айға күзетке алынды", {"arrest"}, None),
    ("Журналистің қамау мерзімі тағы бір айға ұзартылды", {"arrest"}, None),
    ("Блогер халықаралық іздеуге жарияланды", {"criminal_case"}, None),
    ("Апелляциялық сот журналистің шағымын қанағаттандырмады", {"criminal_case"}, None),
    ("Тілші таяқ жеді", {"assault"}, None),
    ("Журналист ҰҚК-ға шақырылды", {"harassment"}, None),
    ("Тілшілерге аккредитация берілмеді", {"harassment"}, None),
    ("Журналист қамаудан шықты", {"detention"}, "released"),
    ("Журналистке қатысты қылмыстық іс жабылды", {"criminal_case"}, "charges_dropped"),
    ("Уголовное дело против блогера закрыли", {"criminal_case"}, "charges_dropped"),
    ("Журналиста водворили в ИВС", {"arrest"}, None),
    ("Редакции вручили повестку в суд", {"harassment"}, None),
    # a wish or a possibility after the Kazakh verb is no fact (charges one faces are a case)
    ("Журналистер тілшіні босатуды талап етті", set(), None),
    ("Блогер бес жылға бас бостандығынан айырылуы мүмкін", {"criminal_case"}, None),
    ("Журналиске айыппұл салынуы мүмкін", set(), None),
]


@pytest.mark.parametrize(("text", "types", "status"), MORE, ids=[row[0][:48] for row in MORE])
def test_more(shipped: Matcher, text: str, types: set[str], status: str | None) -> None:
    x = shipped.extract(text)
    assert (set(x.types), x.status) == (types, status), x.evidence


# Whose detention, which charge, which pressure
CONTEXT: list[tuple[str, set[str], str | None]] = [
    # in a story about an attack on the press, detained suspects are the attackers
    ("Журналиске шабуыл жасалды. Шабуыл жасаған екі күдікті ұсталды", {"assault"}, None),
    ("The reporter was beaten; two suspects were detained", {"assault"}, None),
    ("Нападение на журналиста: задержан подозреваемый", {"assault"}, None),
    # with no attack, the suspect may be the journalist
    ("Журналист күдікті ретінде ұсталды", {"detention", "criminal_case"}, None),
    # an offence named as the reason for a blocking or a fine is no criminal case
    ("Сайт заблокирован за экстремизм", {"blocking"}, None),
    ("Блогера оштрафовали за распространение заведомо ложной информации", {"fine"}, None),
    ("Блогера обвинили в распространении заведомо ложной информации", {"criminal_case"}, None),
    # a call to stop pressure, beside another incident, is no new incident; alone, it is the story
    ("Reporter arrested; RSF calls on the authorities to stop harassing reporters", {"detention"}, None),
    ("Kazakhstan must stop harassing journalists, says RSF", {"harassment"}, None),
    # a topic is not an event
    ("Во время подготовки материала о давлении на журналистов сайт издания заблокировали", {"blocking"},
     None),
]


@pytest.mark.parametrize(("text", "types", "status"), CONTEXT, ids=[row[0][:48] for row in CONTEXT])
def test_context(shipped: Matcher, text: str, types: set[str], status: str | None) -> None:
    x = shipped.extract(text)
    assert (set(x.types), x.status) == (types, status), x.evidence


@pytest.mark.parametrize("text", [
    "Қазақстанда 8 мыңнан астам сайт бұғатталды",
    "За год в Казахстане заблокировали тысячи сайтов",
    "Журналистов в стране нередко преследуют",
])
def test_counts_and_habits_are_no_incident(shipped: Matcher, text: str) -> None:
    assert not shipped.extract(text).is_incident


def test_kazakh_text_lets_loanwords_start_phrases() -> None:
    """"сот" (court) and "телефоны" (his phone) are Russian words too; in a Kazakh text they may
    start a Kazakh phrase, in a Russian text that names a Kazakh outlet they may not."""
    from blockwatch.feeds import phrases
    from blockwatch.feeds.extract import normalise

    def kinds(text: str) -> list[bool]:
        return [any(k.startswith("k:") for k in t.keys) for t in phrases.tokenize(text, normalise(text))]

    assert kinds("Блогердің ісі бойынша сот отырысы өтті")[3]  # "сот"
    assert not kinds("Суд над журналистом «Азаттық» начался в Алматы")[1]  # "над"


KAZAKH_MORE: list[tuple[str, set[str], str | None]] = [
    # days in jail with "жаза тағайындалды" (a penalty was set) are an arrest, not a criminal case
    ("Тілшіге 10 тәулік әкімшілік қамақ жазасы тағайындалды", {"arrest"}, None),
    ("Блогер ұлтаралық араздықты қоздырды деген айыппен тергеу изоляторына қамалды",
     {"arrest", "criminal_case"}, None),
    ("Журналисті үш сағат бойы тергеді", {"harassment"}, None),
    ("Әкім журналисті сотқа тартты", {"harassment"}, None),
    # "мерзімінен бұрын": before the end of the term, not "previously"
    ("Журналист мерзімінен бұрын босатылды", set(), "released"),
    ("The reporter was handed a 10-day jail term", {"arrest"}, None),
    ("Редакции пригрозили расправой", {"harassment"}, None),
]


@pytest.mark.parametrize(("text", "types", "status"), KAZAKH_MORE, ids=[row[0][:48] for row in KAZAKH_MORE])
def test_kazakh_more(shipped: Matcher, text: str, types: set[str], status: str | None) -> None:
    x = shipped.extract(text)
    assert (set(x.types), x.status) == (types, status), x.evidence


@pytest.mark.parametrize(("text", "incident"), [
    # the correspondent in a byline reports the story; a detention at a rally stays no incident
    ("Алматыда митингіге шыққан 20 адам ұсталды, деп хабарлайды BAQ.KZ тілшісі.", False),
    ("На митинге в Алматы задержаны 20 человек, сообщает корреспондент Stan.kz.", False),
    ("Журналист митингіде ұсталды, деп хабарлайды BAQ.KZ тілшісі.", True),
    ("Корреспондента задержали на митинге, сообщает корреспондент Stan.kz.", True),
])
def test_bylines_are_not_the_press(shipped: Matcher, text: str, incident: bool) -> None:
    assert shipped.extract(text).is_incident is incident


@pytest.mark.parametrize(("text", "status"), [
    # a refusal to release is no release
    ("Суд отказался освободить журналиста из-под стражи", None),
    ("The court refused to release the journalist", None),
    ("Сот журналисті босатудан бас тартты", None),
    ("Журналиста освободили из-под стражи", "released"),
])
def test_refusals_are_no_status(shipped: Matcher, text: str, status: str | None) -> None:
    assert shipped.extract(text).status == status


@pytest.mark.parametrize(("text", "types"), [
    ("Former owner of a publishing house gets a 6-year suspended sentence", {"criminal_case"}),
    ("Suspicious vehicles parked outside the newsroom for weeks", {"harassment"}),
    ("У редакции неделями стоял подозрительный автомобиль", {"harassment"}),
])
def test_publishers_and_surveillance(shipped: Matcher, text: str, types: set[str]) -> None:
    x = shipped.extract(text)
    assert x.is_incident and set(x.types) == types, x.evidence


@pytest.mark.parametrize(("text", "types", "status"), [
    ("The blogger was jailed for 15 days", {"arrest"}, None),  # days: no prison sentence
    ("Журналиста доставили в департамент полиции", {"detention"}, None),
    ("The editor has been held since March", {"arrest"}, None),
    ("Газета прекратила выход", {"shutdown"}, None),
])
def test_last_phrasings(shipped: Matcher, text: str, types: set[str], status: str | None) -> None:
    x = shipped.extract(text)
    assert (set(x.types), x.status) == (types, status), x.evidence


# English "arrest": a police taking is a detention, custody a court orders an arrest
CUSTODY = [
    ("Police arrested the editor in Almaty on Friday", {"detention"}),
    ("Editor arrested in Kazakhstan", {"detention"}),
    ("Security officers arrested two bloggers at their homes", {"detention"}),
    ("A court in Almaty ordered the arrest of the editor", {"arrest"}),
    ("The judge extended the arrest of the journalist by two months", {"arrest"}),
    ("The reporter was placed under house arrest", {"arrest"}),
    ("The blogger was placed under arrest for 10 days for a post", {"arrest"}),
    ("Police arrested the reporter; two days later a court remanded him in custody", {"detention", "arrest"}),
    # Kazakh custody words: police custody unless a court, months or days are named
    ("Қызылордада журналист қамауға алынды", {"detention"}),
    ("Ресейде журналист тұтқындалды", {"detention"}),
    ("Сот журналисті екі айға қамауға алды", {"arrest"}),
    ("Блогер 15 тәулікке әкімшілік қамауға алынды", {"arrest"}),
]


@pytest.mark.parametrize(("text", "types"), CUSTODY, ids=[row[0][:48] for row in CUSTODY])
def test_custody(shipped: Matcher, text: str, types: set[str]) -> None:
    x = shipped.extract(text)
    assert set(x.types) == types, x.evidence


# Latin letters with diacritics are their bare letters: Kazakh Latin spellings of names
@pytest.mark.parametrize(("text", "outlet"), [
    ("Azattyq Rýhy journalist detained in Aktobe", "Azattyq Ruhy"),
    ("Azattyq Ryhy journalist detained in Aktobe", "Azattyq Ruhy"),
    ("Azattyq Ruhy journalist detained in Aktobe", "Azattyq Ruhy"),
])
def test_diacritics(shipped: Matcher, text: str, outlet: str) -> None:
    assert outlet in shipped.extract(text).outlets


def test_normalise_keeps_length_and_cyrillic() -> None:
    from blockwatch.feeds.extract import normalise
    text = "Şymkent Rýhy Qazaqstan ıslam Йошкар-Ола ёж"
    out = normalise(text)
    assert len(out) == len(text)
    assert out == "symkent ryhy kazakstan islam йошкар-ола еж"


# Incident or not, and which types: an outage is a restriction only where someone restricted it;
# a hoax is no press incident
@pytest.mark.parametrize(("text", "incident", "types"), [
    ("Глобальный сбой в работе WhatsApp наблюдается по всему миру", False, set()),
    ("Telegram went offline for two hours on Monday", False, set()),
    ("Роскомнадзор подтвердил: сбой в работе Telegram вызван ограничениями", True, {"blocking"}),
    ("Authorities blamed for an internet outage during the protests in Almaty", True, {"shutdown"}),
    ("26yo detained in Aktobe after false bomb threat, the press service said", False, set()),
    ("В Мариуполе задержали мужчину, сообщившего о ложном минировании школы", False, set()),
    ("Мектепке шабуыл жасалады деген жалған ақпарат таратқан жасөспірім ұсталды", False, set()),
    # the press service of the police is not the press; an AFP correspondent at a rally is its reporter
    ("Police detained a man for drunk driving, the city police press service said", False, {"detention"}),
    ("An AFP correspondent saw police detain around 30 activists", False, {"detention"}),
    ("Police detained an AFP correspondent covering the rally", True, {"detention"}),
    # the Russian disclaimer after Meta is no designation; an agenda is no summons
    ("Сбой в работе Instagram (принадлежит Meta, признана экстремистской и запрещена в РФ)", False, set()),
    ("Депутаты сняли законопроект о СМИ с повестки дня", False, set()),
    ("Суд запретил рекламу в соцсети Instagram (признана в России экстремистской)", False, set()),
    # plans
    ("Kazakhstan is planning to block access to online platforms", False, set()),
    # outlets closed, editors dismissed by officials, people left without social networks;
    # censorship named as a topic is no blocking
    ("Tajik authorities close opposition publishing house", True, {"shutdown"}),
    ("Суд запретил работу сайта издания на три месяца", True, {"shutdown"}),
    ("Мэр уволил главного редактора местной газеты за поддержку оппозиции", True, {"harassment"}),
    ("Жители Таджикистана остались без доступа к ряду социальных сетей", True, {"blocking"}),
    ("Journalism and censorship in Kazakhstan: between freedom of speech and state control", False, set()),
    ("The article was censored by the newspaper's owner on the governor's demand", True, {"blocking"}),
])
def test_incident_or_not(shipped: Matcher, text: str, incident: bool, types: set[str]) -> None:
    x = shipped.extract(text)
    assert (x.is_incident, set(x.types)) == (incident, types), x.evidence


# An offence of speech says that what someone said or wrote is punished: a private person's
# case for it is an incident without a word for the press (LABELLING.md: people punished for
# what they said or posted)
@pytest.mark.parametrize("text", [
    "21 жастағы алматылық қазақ тілі туралы айтқан бейәдеп сөздері үшін екі жылға сотталды",
    "Жансұлуға ұлтаралық араздықты қоздырды деген айыппен екі жылға бас бостандығынан айыру "
    "жазасы тағайындалды",
    "Жителя Петропавловска осудили на три года за разжигание межнациональной розни",
    "A Kazakh man was sentenced to two years for inciting ethnic hatred",
])
def test_speech_offences_are_about_speech(shipped: Matcher, text: str) -> None:
    x = shipped.extract(text)
    assert x.is_incident and "criminal_case" in x.types, x.evidence


def test_a_sentence_for_something_else_needs_the_press() -> None:
    from blockwatch.feeds.extract import Matcher as M
    x = M().extract("Жителя Петропавловска осудили на три года за кражу")
    assert x.types and not x.is_incident, x.evidence


# Countries beyond the region: an incident anywhere is an incident, and its country a field
@pytest.mark.parametrize(("text", "country"), [
    ("Iran arrests journalists, bans newspaper ahead of elections", "IR"),
    ("Two Afghan journalists released after Taliban detention", "AF"),
    ("Occupation court in Crimea fines a social media user", "UA"),
    ("A Pakistani journalist was shot dead in Peshawar", "PK"),
    ("Турецкий суд арестовал журналиста в Стамбуле", "TR"),
    ("Газа: погибли ещё два журналиста", "PS"),
])
def test_countries_further_afield(shipped: Matcher, text: str, country: str) -> None:
    assert shipped.extract(text).country == country

