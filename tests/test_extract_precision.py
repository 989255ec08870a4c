"""Extraction precision rules, each on small made-up sentences: what a text says happened, as
against what it says could happen, what a phrase across two sentences would read, and so on."""

from __future__ import annotations

import pytest

from blockwatch.feeds.extract import Matcher, read_text


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher()


def _types(text: str) -> set[str]:
    return set(read_text(text).types)


# --- a phrase is one sentence's words ---------------------------------------------------------

def test_a_phrase_does_not_run_across_a_sentence_end() -> None:
    # "=called in" (summoned) must not join "called" and "In" of the next sentence
    assert "harassment" not in _types("The editor said the charges were called unfounded. In May he left.")
    assert "harassment" in _types("The editor was called in by the police.")


# --- a power, a plan, a threat or a question is not the thing itself ---------------------------

@pytest.mark.parametrize("text", [
    "The new law means the government can shut down newspapers",
    "Officials are considering blocking TikTok",
    "The ministry is exploring the possibility of restricting access to Telegram",
    "The ministry may restrict access to the website",
    "В министерстве ответили на вопрос о блокировке TikTok",
    "Депутаты обсудили предложение о блокировке мессенджеров",
    "Заблокируют ли Telegram в Казахстане",
    "Қазақстанда TikTok бұғаттала ма",
    "Министр TikTok желісін бұғаттау мәселесі қаралатынын айтты",
])
def test_a_possibility_is_no_incident(text: str) -> None:
    assert not _types(text) & {"blocking", "shutdown"}, text


@pytest.mark.parametrize("text", [
    "The website was blocked in May",
    "On 3 May the website was blocked",
    "Сайт газеты заблокирован",
    "Газеттің сайты бұғатталды",
])
def test_the_fact_stays(text: str) -> None:
    assert "blocking" in _types(text), text


def test_may_next_to_a_number_is_the_month() -> None:
    assert "fine" in _types("A court on May 13 fined the journalist for an article")
    assert "fine" not in _types("The journalist may be fined for the article")


def test_a_threat_to_block_is_harassment(matcher: Matcher) -> None:
    x = matcher.extract("Authorities threaten to block the news website")
    assert x.types == ("harassment",)
    assert x.is_incident


# --- incidents counted are a statistic ---------------------------------------------------------

@pytest.mark.parametrize("text", [
    "347 attacks and threats against journalists were recorded in 2024",
    "Фонд зафиксировал 32 случая нападения на журналистов",
    "За год выявлено 12 фактов давления на редакции",
])
def test_a_count_of_incidents_is_no_incident(matcher: Matcher, text: str) -> None:
    x = matcher.extract(text)
    assert x.aggregate and not x.is_incident, text


@pytest.mark.parametrize("text", [
    "In 2024 two journalists were detained in Almaty",
    "Журналиста оштрафовали на 50 МРП",
    "The reporter was attacked on 1 March",
])
def test_a_number_that_counts_no_incidents_changes_nothing(matcher: Matcher, text: str) -> None:
    assert matcher.extract(text).is_incident, text


# --- a document that surveys a period is no case -------------------------------------------------

@pytest.mark.parametrize("text", [
    "This paper provides an overview of the persecution of journalists in the region",
    "Бюллетень содержит обзор основных событий: преследование блогеров и журналистов",
    "Материал содержит хронологию преследования журналистов",
])
def test_an_overview_is_no_incident(matcher: Matcher, text: str) -> None:
    x = matcher.extract(text)
    assert x.aggregate and not x.is_incident, text


# --- a prison term named beside its sentence is that sentence, not an arrest --------------------

@pytest.mark.parametrize("text", [
    "CPJ condemned the imprisonment of the journalist, who was sentenced to 7 years in prison",
    "The blogger was sentenced to 3 years in prison, and his jailing drew protests",
])
def test_imprisonment_with_a_sentence_is_the_criminal_case(text: str) -> None:
    assert _types(text) == {"criminal_case"}, text


@pytest.mark.parametrize(("text", "types"), [
    ("The journalist was jailed pending trial", {"arrest"}),
    ("The blogger was sentenced to 10 days in jail", {"arrest"}),
    ("The editor, sentenced to 5 years in prison, was first held in pretrial detention",
     {"arrest", "criminal_case"}),
])
def test_custody_before_a_sentence_stays_an_arrest(text: str, types: set[str]) -> None:
    assert _types(text) == types, text


# --- a word for pressure beside a concrete act says what the act is ------------------------------

@pytest.mark.parametrize(("text", "types"), [
    ("Eleven journalists were detained in a move aimed at intimidating the press", {"detention"}),
    ("The court ordered the closure of the newspaper, part of a campaign of harassment", {"shutdown"}),
    ("Журналиста задержали; коллеги называют это преследованием", {"detention"}),
])
def test_pressure_beside_a_concrete_act_is_that_act(text: str, types: set[str]) -> None:
    assert _types(text) == types, text


@pytest.mark.parametrize(("text", "types"), [
    ("Journalists are being harassed", {"harassment"}),
    ("The reporter was threatened and later detained", {"harassment", "detention"}),
    ("Журналиста вызвали на допрос и задержали на сутки", {"harassment", "detention"}),
])
def test_pressure_alone_or_named_acts_stay(text: str, types: set[str]) -> None:
    assert _types(text) == types, text


def test_a_detention_center_is_custody_by_a_court() -> None:
    assert _types("The editor was released from the security service's detention center") == {"arrest"}
    assert _types("The editor was detained by the security service") == {"detention"}


# --- the internet cut or slowed is a shutdown; a site or a service a blocking ---------------------

@pytest.mark.parametrize(("text", "types"), [
    ("Доступ в интернет был полностью заблокирован на два дня", {"shutdown"}),
    ("Интернет недоступен в Каракалпакстане третий день", {"shutdown"}),
    ("Доступ к интернет-ресурсам издания заблокирован", {"blocking"}),
    ("Сайт издания заблокирован", {"blocking"}),
    ("The government is throttling the internet every evening", {"shutdown"}),
    ("Власти замедлили интернет в Алматы", {"shutdown"}),
    ("Власти замедлили Telegram в Алматы", {"blocking"}),
    # a site named by a compound with "internet" is on it; internet traffic is the network
    ("Роскомнадзор заблокировал доступ к интернет-изданию «Полит.ру»", {"blocking"}),
    ("Власти ведут блокировку и контроль интернет трафика", {"shutdown"}),
    # an outlet or its materials declared extremist is a closure; broadcasting banned too
    ("A court declared the outlet's materials extremist", {"shutdown"}),
    ("Суд признал материалы сайта издания экстремистскими", {"shutdown"}),
    ("Министрлік «Радио Свобода» интернет-ресурсын экстремистік деп таныды", {"shutdown"}),
    ("Регулятор объявил об отзыве лицензии телеканала", {"shutdown"}),
    ("В Гонконге закрылась газета Apple Daily", {"shutdown"}),
])
def test_the_network_or_a_site(text: str, types: set[str]) -> None:
    assert _types(text) == types, text


@pytest.mark.parametrize("text", [
    "Residents of the region have been without access to the internet for a week",
    "The town was plunged into an information blackout",
    "Жители области остались без доступа к интернету",
    "В столице возобновили работу отсутствовавшего сутки интернета",
    "Мобильный интернет, который был отключен в понедельник, заработал",
])
def test_the_network_gone_is_a_shutdown(text: str) -> None:
    assert "shutdown" in _types(text), text


# --- sent out of the country, or refused accreditation: pressure ---------------------------------

@pytest.mark.parametrize("text", [
    "A court ordered the reporter to leave the country and banned her from re-entering",
    "The ministry decided to withhold accreditation from 16 journalists",
    "Власти выслали российского журналиста",
    "МИД прекратил аккредитацию журналистов",
    "Министерство отказало агентству в аккредитации",
    "Телеарнаның қызметкері жағымсыз деп танылып, ел аумағынан шығарылды",
])
def test_expulsion_and_accreditation_are_harassment(text: str) -> None:
    assert "harassment" in _types(text), text


# --- pressure named as a topic, with nothing done to anyone, is no incident ----------------------

@pytest.mark.parametrize("text", [
    "Rights groups warn of increasing pressure on independent journalists",
    "Депутат выступил на фоне давления на журналистов",
    "Эксперты говорят о преследовании журналистов",
])
def test_pressure_as_a_topic_is_no_incident(matcher: Matcher, text: str) -> None:
    assert not matcher.extract(text).is_incident, text


@pytest.mark.parametrize("text", [
    "The editor said she was pressured by officials",
    "На редакцию оказывают давление",
    "Редакторға қысым көрсетілді",
    "Journalists were harassed at the rally",
])
def test_pressure_done_to_someone_stays(matcher: Matcher, text: str) -> None:
    assert matcher.extract(text).types == ("harassment",), text


def test_pressure_on_someone_named_stays(matcher: Matcher) -> None:
    assert matcher.extract("Watchdog condemns harassment of Kursiv reporters").types == ("harassment",)


# --- shot at, attacked, left in hospital: an assault ----------------------------------------------

@pytest.mark.parametrize("text", [
    "Unknown assailants left the journalist hospitalised with severe injuries",
    "Gunmen shot at the reporter's car",
    "В Киеве стреляли в журналиста",
    "Женщины попросили прощения за атаку на репортеров",
    "Журналисті пышақпен жаралап, ол ауруханаға түсті",
])
def test_attacks_are_assaults(text: str) -> None:
    assert "assault" in _types(text), text


def test_a_cyberattack_stays_harassment() -> None:
    assert _types("На сайт издания совершена хакерская атака") == {"harassment"}


@pytest.mark.parametrize(("text", "types"), [
    ("Ministry blocks RFE/RL website over border report", {"blocking"}),
    ("The ministry announced a two-month block of the website of the radio", {"blocking"}),
    ("Telegram жұмысына қойылған шектеулер сақталады", {"blocking"}),
    ("A block of flats collapsed near the newspaper's office", set()),
])
def test_block_with_what_is_blocked(text: str, types: set[str]) -> None:
    assert _types(text) == types, text


# --- what usually happens is no case ---------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "Journalists are often prosecuted under article 274 of the criminal code",
    "Журналистов нередко преследуют по статье 274 УК, обвинения часто оказываются необоснованными",
    "Приговоры в отношении журналистов были всегда",
])
def test_a_generality_is_no_incident(matcher: Matcher, text: str) -> None:
    assert not matcher.extract(text).is_incident, text


def test_a_case_beside_a_generality_stays(matcher: Matcher) -> None:
    x = matcher.extract("Журналиста задержали в Алматы. Такое случается часто.")
    assert x.types == ("detention",) and x.is_incident


# --- a prison term served or being served is a criminal case -------------------------------------

@pytest.mark.parametrize("text", [
    "The court suspended her 18-month sentence",
    "The editor, serving a seven-year sentence, was moved to another prison",
    "Главный редактор вышел на свободу, отсидевший три года",
    "Журналист отбывает наказание в колонии",
])
def test_a_term_served_is_a_criminal_case(text: str) -> None:
    assert "criminal_case" in _types(text), text


def test_years_of_a_newspaper_are_no_term() -> None:
    assert _types("Газет 105 жыл бойы оқырманымен бірге отыр") == set()


@pytest.mark.parametrize("text", [
    "The outlet asked for explanations about the blocking of its bank accounts",
    "У издания заблокировали банковские счета",
    "Authorities froze the outlet's bank accounts",
])
def test_blocked_bank_accounts_are_harassment(text: str) -> None:
    assert _types(text) == {"harassment"}, text
