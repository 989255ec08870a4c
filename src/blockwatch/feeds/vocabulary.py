"""The words that make an entry an incident, a status or a country, in English, Russian and
Kazakh. Entries are written as ordinary words and phrases; `phrases.PhraseSet` compiles them to
lemmas (Russian), stems (English) and Kazakh forms, so every inflection counts. See
`phrases` for the syntax (=surface, prefix~, *).

Word families, not examples: a verb comes with its noun and participle where the lemma differs
("задержать", "задержание"; "charge", "indict"). Ambiguous words are written as surface forms
or inside phrases: "fine" is also an adjective, "block" a block of flats, "задержка" a delay,
"устал" Russian for "tired", "суд" alone is any court hearing.
"""

from __future__ import annotations

# label -> language -> entries. A label "type:arrest+type:criminal_case" gives both types.
TYPES: dict[str, dict[str, list[str]]] = {
    "type:detention": {
        "en": ["detain", "detention", "detainee", "taken into custody", "taken into police custody",
               "apprehend", "=held by police", "=taken to a police station", "=taken to the police station",
               "=picked up by police", "=rounded up", "detain for questioning",
               "=detained for questioning", "=forced into a car", "=forced into a vehicle",
               "=held in custody", "=held overnight", "=held at a police station", "=held incommunicado",
               "=taken away by police", "=taken in for questioning", "=brought to the police station",
               "=brought to a police station",
               # taken in without the word "detained"
               "=taken to the * police department", "=taken to the police department",
               "=taken to a police department", "=taken to the * police station", "=taken to police",
               "=brought to the police", "=escorted to the police", "=forced into a police car",
               "=bundled into a", "=dragged into a police", "=hours at a police station",
               "=hours at the police station", "=hours in a police station", "=hours in police custody",
               "=night in a police station", "=night at a police station", "=night in police custody",
               "=held for hours", "=held for * hours", "=held for several hours"],
        "ru": ["задержать", "задержание", "задерживать", "задержанный", "доставить в отдел",
               "доставить в полицию", "доставить в ОП", "увезти в отдел", "увезти в полицию",
               "забрать в полицию", "забрать в отдел", "провести в полиции", "задержать для допроса",
               "доставить на допрос", "задержать и допросить", "увезти в неизвестном направлении",
               "=задержаны", "силой увезти", "доставить в УВД", "доставить в РОВД", "доставить в ОВД",
               "доставить в отделение", "доставить в участок", "удерживать в отделе", "удерживать в полиции",
               # taken in without the word "задержать"
               "отвезти в отдел", "отвезти в полицию", "отвезти в горотдел", "доставить в горотдел",
               "отвезти в ОВД", "отвезти в РОВД", "отвезти в УВД", "отвезти в отделение",
               "посадить в автозак",
               "автозак", "скрутить", "увезти в ОВД", "увезти в РОВД", "забрать в отделение",
               "сопроводить в отдел", "сопроводить в полицию", "провести в отделе", "провести в отделении",
               "провести ночь в", "доставить в департамент", "доставить в управление полиции",
               "доставить в ДП", "доставить в УП"],
        "kk": ["ұстады", "ұсталды", "ұсталған", "ұстап", "ұстап әкетті", "ұстау", "ұстаған",
               "полиция бөліміне жеткізілді", "полицияға алып кетті", "ұсталып",
               "полицияға апарды", "полиция бөліміне алып кетті", "ұстап алды", "қолға түсті",
               "полиция алып кетті", "құқық қорғау органдары ұстады",
               # the passive and participles of ұстау, and taken in without it
               "ұстал~", "ұстап ал~", "ұстап әкет~", "қолға алын~", "полиция~ жеткіз~", "полиция~ алып кет~",
               "бөлім~ алып кет~", "бөлім~ жеткіз~", "бөлімше~ алып кет~", "бөлімше~ жеткіз~",
               "көлік~ отырғыз~", "күштеп алып кет~", "полицияда~ ... сағат~", "полицияда~ ... түн~",
               "ІІБ~ алып бар~", "ІІБ~ жеткіз~", "ІІД~ жеткіз~", "полиция~ апар~", "әкімшілік ұстау",
               "ұсталғандар арасында"],
    },
    # a court found someone guilty: a criminal case (even of an administrative offence)
    "type:criminal_case+status:convicted": {
        "kk": ["сот ... деп таныды", "сот ... деп танылды"],
        "ru": ["суд признал виновным", "суд признал виновной"],
        "en": ["=found guilty", "=found him guilty", "=found her guilty"],
    },
    "type:arrest+admin:days": {
        "en": ["sentence to * day", "=days in jail", "=days of administrative arrest", "=days in detention",
               "=given * days", "=got * days", "=received * days", "=days of administrative detention",
               "=day jail", "=day administrative", "=day detention", "jail for * day",
               "=days' administrative detention", "=days’ administrative detention", "=days of detention",
               "=arrest for * days", "=arrested for * days", "=arrest for * day", "=arrested for * day"],
        "ru": ["суток ареста", "получить * сутки", "на * сутки ареста", "приговорить к * сутки",
               "сутки административного ареста", "арестовать на * сутки", "дать * сутки", "получить * суток",
               "сутки ареста"],
        "kk": ["тәулікке қамады", "тәулікке қамалды", "тәулік әкімшілік қамақ", "тәулікке", "тәулік~ қама~",
               "тәулік қамақ~", "тәулік әкімшілік қамау~"],
    },
    # English "arrest" is said of the police as often as of a court: `extract` reads it as a
    # detention unless a court is named beside it
    "type:custody": {
        "en": ["arrest"],
        "kk": ["қамауға алынды", "қамауға алды", "қамауда", "қамау", "қамады", "қамалды",
               "тұтқындалды", "тұтқынға", "тұтқындау", "қамауға алу~", "қамаққа алынды", "қамаққа алды",
               "тұтқында",
               # a temporary holding cell is police custody, days in it a court's
               "уақытша ұстау изоляторы"],
    },
    "type:arrest": {
        "en": ["administrative detention", "=jailed", "jail", "remanded in custody",
               "pretrial detention",
               "=imprisoned", "imprisonment", "=behind bars", "=house arrest", "remand", "=remanded",
               "=remains in custody", "=remains in detention", "=still in custody", "=kept in custody",
               "=held since", "=been held since",
               # a place of custody, not a detention: "released from the detention center"
               "=detention center", "=detention centre", "=detention facility", "=pretrial detention center"],
        "ru": ["арест", "арестовать", "арестованный", "взять под стражу", "заключить под стражу",
               "за решетку", "за решеткой",
               "административный арест",
               "поместить под стражу", "содержание под стражей", "мера пресечения", "сизо",
               "домашний арест", "ИВС", "изолятор временного содержания", "спецприемник",
               "отбывать арест", "отправить под арест", "водворить в ИВС", "поместить в спецприемник",
               "продлить арест", "продлить срок содержания"],
        "kk": ["қамақ", "түрме", "тәулікке қамады", "тәулікке қамалды",
               "үйқамақ", "тергеу изоляторы", "үй қамағ~", "қамағ~", "түрмеге қама~",
               "түрмеге жабыл~", "бұлтартпау шарасы", "күзетке алын~", "қамау мерзім~", "сотқа дейінгі қамау",
               "әкімшілік қамаққа", "қамау жазасы", "қамаққа"],
    },
    # a sentence to prison is a criminal case with a status ("sentenced to 5 years"); a sentence
    # to days in jail is an (administrative) arrest, above
    "type:criminal_case+status:sentenced": {
        "en": ["sentence to * year", "sentence to * month", "jail for * year", "jail for * month",
               "years in prison", "prison sentence", "years in jail", "sentence to prison",
               "year sentence", "suspended sentence", "prison term", "=prison colony",
               # a term served or being served
               "month sentence", "=serving a sentence", "=serving a * sentence", "=serving a * * sentence",
               "=served * years", "=serving * years", "=served a * sentence", "=served his sentence",
               "=served her sentence"],
        "ru": ["приговорить к * год", "приговорить к * месяц", "осудить на * год", "осудить на * лет",
               "приговорить к * лет", "осудить к * год", "осудить к * лет", "приговорить к * лишения",
               "приговорить к лишению свободы", "срок * год", "реальный срок", "лет колонии",
               "лет лишения свободы", "год лишения свободы", "лет тюрьмы", "условный срок",
               "ограничение свободы", "год ограничения свободы", "лет ограничения свободы",
               "за решетку на * год", "за решетку на * лет", "по приговору",
               # a term served or being served
               "отбывать наказание", "отбывать срок", "отсидеть * год", "отсидеть * лет", "отсидеть срок"],
        "kk": ["жылға сотталды", "жылға бас бостандығынан", "жыл түрме", "жылға кесілді",
               "бас бостандығын шектеу", "бас бостандығынан айыр~",
               # a term served or being served
               "жазасын өте~", "жаза өте~", "жазасын өтеп~"],
    },
    "type:blocking": {
        "en": ["=blocked", "=blocking", "=blocks access", "=block access", "unblock",
               "inaccessible", "restrict access", "access restrict", "access to * restricted",
               "=censored", "=geo-blocked", "=throttled", "throttling", "=unavailable in",
               "=not accessible", "=cannot be accessed", "=can't be accessed", "=banned website",
               "=access to * was blocked",
               "=blocked access", "=website was banned", "=site was banned",
               "=access was blocked", "=blocked in", "=disrupted access", "=vpn services",
               # "block" with what is blocked after it ("blocks RFE/RL website", "a block of the website")
               "block ... website", "block ... site", "block ... portal", "block ... outlet",
               "block ... telegram", "block ... youtube", "block ... app", "suspend access"],
        "ru": ["заблокировать", "блокировка", "блокировать", "разблокировать", "ограничить доступ",
               "ограничение доступа", "доступ ограничен", "недоступный", "недоступен",
               "заблокированный", "доступ * ограничен", "замедление", "замедлить",
               "запретить доступ", "открываться только через впн",
               "отключить соцсеть", "отключить социальные сети", "отключить мессенджер",
               "ограничить работу", "ограничение работы", "реестр запрещенных",
               "приостановить доступ", "ограничить доступ к сайту", "остаться без доступа к",
               "без доступа к соцсетям", "без доступа к социальным сетям",
               "блокироваться"],
        "kk": ["бұғат~", "блокта~", "қолжетімсіз", "қолжетімділігі шектел~", "қолжетімділік шектел~",
               "кіру шектел~", "баяулат~", "интернет баяулады",
               "шектеу қой~", "VPN арқылы ғана", "кіру мүмкін емес",
               "тосқауыл қой~", "қолжетімсіз~", "қолжетімділігі шектел~", "қойылған шектеу~"],
    },
    "type:raid": {
        "en": ["raid", "=searched", "search of", "searches of", "=searched the", "=searching their",
               "=searching the", "=searching his", "=searching her", "=seized equipment",
               "confiscate", "=ransacked", "=stormed", "=seized her", "=seized his", "=seized their",
               "=seized the", "=seized laptops", "=seized computers", "=seized phones"],
        "ru": ["обыск", "обыскать", "выемка", "изъять", "изъятие", "обыскивать", "ворваться в редакцию",
               "ворваться в офис", "ворваться в квартиру", "нагрянуть", "следственные действия в редакции",
               "конфисковать", "прийти с обыском", "осмотр помещения", "осмотр офиса", "изъять технику",
               "изъять телефон", "изъять ноутбук", "изъять компьютер", "провести обыск", "обыскать квартиру"],
        "kk": ["тінту", "тінтті", "тінтілді", "тінт~", "тәркіле~", "алып кетті техника", "тәркіленді",
               "басып кірді", "техника~ алып кет~", "телефон~ алып кет~", "ноутбу~ алып кет~",
               "компьютер~ алып кет~", "құрылғы~ алып кет~", "тінту жүргіз~", "тінту жаса~"],
    },
    "type:criminal_case": {
        "en": [ "criminal charge", "criminal proceedings", "criminal code", "criminal liability",
               "indict", "indictment", "prosecute", "prosecution", "convict", "conviction",
               "on trial", "stand trial", "trial of", "=trial against", "=tried for", "=tried in absentia",
               "found guilty",
               "defamation charge", "criminal defamation",
               "=libel charges", "extremism charges", "=suspect in", "named a suspect",
               "=on suspicion of", "=suspected of", "=criminal charges",
               "acquit", "acquittal", "=case against", "=court hearing", "=hearing in the case",
               "verdict", "appeal court", "=false denunciation", "=criminal code",
               "=faces up to", "=could face", "=probe against",
               "=investigation against", "=in absentia", "extradition", "=wanted list",
               "=international wanted list", "=became a suspect", "=as a suspect", "=status to suspect",
               "=changed to suspect"],
        "ru": [ "уголовное преследование",
               "уголовная ответственность", "уголовный кодекс", "обвиняемый",
               "предъявить обвинение", "подозреваемый", "подозревать в",
               "статья * УК", "ст * УК", "статья УК",
               "уголовная статья",
               "приговор", "приговорить", "осудить", "осужденный", "признать виновным",
               "судебный процесс", "суд над", "уголовный суд", "фигурант дела", "фигурант уголовного",
               "по подозрению в",
               "подозрение в", "оправдать", "оправдательный приговор", "уголовный процесс",
               "дело по статье", "по уголовной статье",
               "судить", "обвинительный", "прокурор запросил", "ук рк", "уголовного кодекса",
               "ложный донос",
               "грозить до * лет", "грозить * лет", "подследственный",
               "заочно осудить", "заочный приговор", "экстрадиция", "экстрадировать", "объявить в розыск",
               "международный розыск", "подозреваться", "разыскиваться", "судиться",
               "подсудимый", "обвинительный акт", "скамья подсудимых"],
        "kk": [ "қылмыстық қудалау",
               "қылмыстық жауапкершілік", "айыпталушы",
               "күдікті", "сотталды", "сотталған", "соттады", "үкім", "сот үкімі",
               "кінәлі деп танылды", "кінәлі деп таныды",
               "қылмыстық кодекс", "бап бойынша", "ақталды",
               "ақтау үкімі",
               "кінәлі деп", "сот процесі", "ҚК",
               "Қылмыстық кодекс~", "күдіктілер",
               # the article of the code: бап becomes баб- before a vowel ("бабы бойынша")
               "баб~ бойынша", "ҚК~ баб~", "қылмыстық жауапкершілікке тарт~", "айыпталушы~", "сотталушы~",
               "үкім шық~", "үкім шығар~", "айыптау актісі", "айыпкер~", "іздеу~ жариялан~",
               "халықаралық іздеу~", "экстрадиция~", "айыптау үкім~", "пробация~"],
    },
    "type:fine": {
        "en": ["=fined", "=fines", "=a fine", "=fine of", "=fine for", "=penalty", "=penalties",
               "administrative fine", "administrative penalty"],
        "ru": ["штраф", "оштрафовать", "штрафовать", "мрп", "административный штраф"],
        "kk": ["айыппұл", "айыппұл салынды", "айыппұл салды", "айып салынды",
               "айыппұл~", "айып салды", "айып сал~", "айыппұл төле~", "АЕК", "айлық есептік көрсеткіш",
               "айыппұл төлеуге"],
    },
    "type:assault": {
        "en": ["assault", "=attacked", "attack on", "attacks on", "=beaten", "=beat up", "=beaten up",
               "=punched", "violence against", "=physically attacked", "=stabbed",
               "=pepper spray", "torture", "=tortured", "=killed", "=murdered", "=shot dead", "=wounded",
               "=kicked", "=manhandled", "=roughed up", "physical attack", "=broke his camera",
               "=smashed his camera", "=damaged equipment", "=violently", "=vandalized", "=vandalised",
               "=smashed windows", "=set on fire", "=set fire to", "=arson", "=camera was smashed",
               "=smashed the camera", "=smashed her camera", "=smashed their camera", "=damaged his camera",
               "=damaged her camera", "=damage to the camera", "=pepper gas", "=hit him", "=hit her",
               "=grabbed his phone", "=grabbed her phone", "=snatched",
               # shot at, attacked by assailants, left in hospital
               "=shot at", "=opened fire", "=fired at", "=assailants", "=hospitalised", "=hospitalized",
               "=left him hospitalized", "=beat him", "=beat her", "=beat the journalist",
               "=beat the reporter",
               # taken by force: "kidnapped", "held captive in Syria"
               "=kidnapped", "=abducted", "=held captive", "=held hostage"],
        "ru": ["напасть", "нападение", "избить", "избиение", "побить", "ударить", "применить силу",
               "нападавший", "насилие в отношении", "покушение", "облить зеленкой", "поджог",
               "поджечь автомобиль", "поджечь машину", "побои", "нанести побои", "убить", "убийство",
               "ранить", "ранение", "толкнуть", "отобрать телефон", "вырвать телефон", "разбить камеру",
               "сломать камеру", "разбить окна", "разбить стекла", "повредить автомобиль", "поджечь",
               "облить краской", "разбить телефон", "сломать телефон", "выбить из рук", "выбить телефон",
               "вырвать из рук", "повредить камеру", "повредить штатив", "перцовый газ", "перцовый баллончик",
               "распылить газ", "газовый баллончик", "ударить кулаком", "порезать шины", "проколоть шины",
               # shot at, attacked
               "атака на", "атаковать", "стрелять в", "выстрелить в", "обстрелять", "госпитализировать"],
        "kk": ["шабуыл~", "соққыға жық~", "сабады", "сабалды", "ұрып-соқ~", "ұрып", "зорлық-зомбылық",
               "қол жұмса~", "соққы", "ұрды", "жарақат сал~", "өлтірілді", "өлтірді", "жараланды",
               "жарақат алды", "ұрып-соғ~", "соққыға жығылды", "сындыр~", "өртеп жіберді", "өртеді",
               # force, fire, kicks, snatching
               "күш қолдан~", "күш көрсет~", "өртел~", "өртеп", "от қой~", "тепкіле~", "тепті",
               "итеріп жібер~",
               "телефон~ тартып ал~", "камера~ тартып ал~", "газ шаш~", "газ сеп~", "бүрік~", "жұдырық~",
               "таяқ же~", "денсаулығына зиян", "оқ ат~", "атып жарала~", "пышақ сал~", "пышақта~",
               "ауруханаға түс~"],
    },
    "type:shutdown": {
        "en": ["=shut down", "=shutdown", "=shuts down", "internet blackout",
               "internet shutdown", "=internet cut", "=internet was cut", "=internet has been cut",
               "=internet switched off", "=internet disconnected", "=internet suspended",
               "taken off the air", "=taken off air", "forced to close", "=closed down", "liquidate",
               "liquidation", "=license revoked", "=licence revoked", "revoked license",
               "revoked licence", "suspended publication", "suspended broadcasting",
               "=closure of", "=its closure", "=ordered the closing", "=ordered closed",
               "=ordered to close", "=closing of the", "=registration certificate",
               "=invalidation of the registration", "=revoked its registration", "=stripped of registration",
               "=banned as extremist", "=declared extremist", "=forced to suspend", "=suspended operations",
               "=recognized as extremist", "=recognised as extremist", "=designated extremist",
               "=designated as extremist", "=deemed extremist", "declare ... extremist",
               "recognize ... as extremist", "recognise ... as extremist",
               # an outlet closed ("authorities close opposition publishing house")
               "close newspaper", "close * newspaper", "close publishing house", "close * publishing house",
               "close outlet", "close * outlet", "close broadcaster", "close * broadcaster",
               # broadcasting banned
               "=banned from broadcasting", "=broadcast ban", "=banned broadcasts", "=license was revoked",
               "=licence was revoked", "=revoked the license", "=revoked the licence",
               "=ceased publication", "=stopped publishing", "=went off the air", "=labelled extremist",
               "=labeled extremist", "=outlawed", "=deregistered", "=stripped of its license",
               "=stripped of its licence", "=cut off the internet", "=cut off internet",
               "=internet was down", "=mobile internet was",
               # the network gone or given back: "no access to the internet", "connectivity restored"
               "=information blackout", "=communications blackout", "=without internet",
               "=without access to the internet", "=no access to the internet",
               "=cut off from the internet", "=internet connectivity", "=internet access was cut",
               "=internet was restored", "=restored internet"],
        "ru": ["шатдаун", "отключение интернета", "отключить интернет", "отключение мобильного интернета",
               "отключить мобильный интернет", "интернет отключить", "интернет отключен",
               "приостановить выпуск", "приостановить деятельность", "приостановить вещание",
               "приостановление выпуска", "приостановление деятельности", "приостановить работу",
               "лишить свидетельства", "лишить лицензии", "отозвать лицензию", "ликвидировать",
               "ликвидация", "закрыть издание", "закрыть газету", "закрыть сайт", "закрыть телеканал",
               "закрыть редакцию", "прекратить выпуск", "прекратить выход", "прекращение выпуска",
               "закрытие издания",
               "закрытие газеты", "отсутствие интернета",
               "аннулировать регистрацию", "лишить регистрации", "аннулировать свидетельство",
               "признать экстремистским", "признать ... экстремистский", "признание ... экстремистский",
               "прекратить вещание", "прекращение вещания", "запретить вещание", "запрет на вещание",
               "запретить работу сайта", "запретить работу издания", "запрет на работу сайта",
               "отзыв лицензии", "отозвать ... лицензию", "лишить ... лицензии",
               "газета закрыться", "издание закрыться", "телеканал закрыться", "редакция закрыться",
               "закрыться газета", "закрыться издание", "закрыться телеканал", "закрыться редакция",
               "закрытие сайта", "закрытие телеканала", "прекратить работу",
               "перестать выходить", "запретить деятельность", "отключение связи", "отключить связь",
               "блэкаут",
               # the network gone or given back: "без доступа к интернету", "работу интернета возобновили"
               "без доступа к интернету", "без интернета", "остаться без интернета", "отсутствовать интернет",
               "интернет ... отключить", "возобновить работу интернета", "восстановить работу интернета",
               "восстановить интернет", "интернет восстановить", "связь ... отключить"],
        "kk": ["интернет ажыратыл~", "интернет өшірілді", "интернет өшір~", "интернет тоқтатыл~",
               "жұмысы тоқтатылды", "шығарылымы тоқтатылды", "жабылды", "жабылып", "жабылған", "жабу",
               "жапты", "жабуға ұласты",
               "мобильді интернет өшір~", "эфирден алын~", "эфирден түсір~", "шығарылуы тоқтатыл~",
               "шығарылымы тоқтатыл~", "қызметін тоқтат~", "жұмысын тоқтат~", "лицензия~ қайтарып ал~",
               "лицензиясынан айыр~", "тіркеуден шығар~",
               "қызметі тоқтатыл~", "байланыс үзілді", "интернетсіз қалды",
               "интернет жоқ", "интернетсіз", "интернет ... өшір~", "интернет ... ажыратыл~",
               "интернет қайта қосыл~", "экстремистік деп таны~", "экстремистік ... деп таны~",
               "хабар тарату~ тыйым сал~", "хабар тарату~ ... тыйым сал~",
               # the network lost or slowed where it is cut
               "интернет ... жоғал~", "интернет ... нашарла~"],
    },
    "type:harassment": {
        "en": ["harass", "harassment", "intimidate", "intimidation", "=threats", "=threatened",
               "=threatening", "=threaten", "=threatens", "pressure on", "pressure against",
               "=under pressure", "summon", "=called in",
               "=called to the police", "=called for questioning", "=called for a talk",
               "official warning", "=was warned by", "=were warned by", "=warning to", "=visited by police",
               "=police visited",
               "smear", "persecute", "persecution", "surveillance", "=followed by", "=spied on",
               "=hounded", "=bullied", "cyberbullying", "=sued", "lawsuit", "=accreditation revoked",
               "=stripped of accreditation", "denied accreditation", "travel ban", "=barred from",
               "=denied entry", "=deported", "=expelled",
               "=obstructed", "obstruction of", "=prevented from covering", "=prevented from reporting",
               "=hacked", "=doxxed", "=doxxing", "=blackmail", "ddos", "=ddos attacks on", "=ddos attack on",
               "cyberattack", "=foreign agent", "=foreign agents", "=moral damages", "=moral damage",
               "=honor and dignity", "=honour and dignity", "=libel suit", "=defamation suit",
               "=defamation lawsuit", "=revocation of * citizenship", "=stripped of * citizenship",
               "=silence critical", "=witness in a criminal case",
               "=summoned as a witness", "=summoned for questioning",
               "=pressure from the authorities", "=threatened with", "=pressured", "=prosecutor's warning",
               "=denied access to the", "=barred from covering", "=police came to", "=visited by",
               "spyware", "=pegasus", "=phone tapped", "=blacklisted", "=entry ban",
               "=barred from entering", "=undesirable organization", "=undesirable organisation",
               # sent out of the country or refused accreditation
               "expel", "expulsion", "deport", "deportation", "=leave the country",
               "=banned from re-entering",
               "withhold accreditation", "deny accreditation", "refuse accreditation", "revoke accreditation",
               "withdraw accreditation", "accreditation ... revok", "accreditation ... withdrawn",
               "accreditation ... denied", "accreditation ... refused",
               # money: accounts frozen or seized
               "=froze * bank accounts", "=freezing of bank accounts", "=freezing of * bank accounts",
               "=frozen bank accounts", "=bank accounts were frozen", "=froze its bank accounts",
               # kept from reporting
               "=not allowed to film", "=not allowed to cover", "=not allowed to enter",
               "=not allowed to report",
               "=not allowed into", "=banned from filming", "=barred from filming", "=prevented from filming",
               "=prevent them from filming", "=prevented them from filming", "=stopped from filming",
               "=ordered to delete", "=to delete the", "=forced to delete", "=made to delete",
               "=demanded that he delete", "=demanded that she delete", "=refused entry",
               "=denied access to", "=issued a warning to", "=received a warning", "=given a warning",
               "=monitoring devices", "=listening devices", "=suspicious vehicles", "=suspicious cars",
               "=being followed", "=under surveillance", "=bugged",
               # an editor dismissed by the officials a paper answers to
               "=fired the editor", "=dismissed the editor", "=sacked the editor", "=fired its editor",
               "=dismissed its editor"],
        "ru": ["давление", "давить на", "на * давить", "оказывать давление", "предостережение",
               # an editor dismissed by the officials a paper answers to
               "уволить редактора", "увольнение редактора",
               "вынести предупреждение",
               "предупреждение об уголовной ответственности", "письменное предупреждение",
               "официальное предупреждение", "получить предупреждение", "предупредить о недопустимости",
               "вынести предостережение", "разъяснить требования закона",
               "преследование", "преследовать", "угроза", "угрожать", "запугивание", "запугивать",
               "травля", "вызвать в полицию", "вызвать на допрос",
               "вызвать в прокуратуру", "вызвать в кнб", "вызвать в департамент полиции",
               "вызвать к следователю", "вызвать на беседу", "вызывать в полицию", "вызывать на допрос",
               "вызвать в качестве свидетеля", "вызвать в отдел", "вызывать на беседу",
               "вызывать в прокуратуру",
               "вызывать в кнб", "вызывать к следователю", "вызывать в отдел", "вызов в полицию",
               "вызов журналиста", "вызов корреспондента", "вызов на допрос", "в качестве свидетеля",
               "свидетель по уголовному делу", "в качестве свидетеля по уголовному делу",
               "прийти полицейский", "полицейский прийти", "приходить полицейский",
               "полицейский приходить", "прийти сотрудник полиции", "сотрудник полиции прийти",
               "прийти участковый", "участковый прийти", "прийти домой к", "визит полиции",
               "отказ в аккредитации", "подавать иск", "моральный вред",
               "компенсация морального вреда", "иностранный агент", "иноагент", "лишить гражданства",
               "ddos", "ddos-атака", "кибератака", "хакерская атака", "пригласить в полицию",
               "пригласить на беседу", "профилактическая беседа", "беседа в полиции",
               "прийти к журналистке", "прийти к журналисту", "визит полицейских",
               "наведаться", "слежка", "лишить аккредитации", "аккредитация отозвана",
               "отозвать аккредитацию", "отказать в аккредитации", "иск о защите чести",
               "защита чести и достоинства", "подать иск", "запрет на выезд", "запрет на въезд",
               "не пустить в страну", "депортировать", "выслать из страны",
               "помешать работе", "воспрепятствование", "препятствование", "препятствовать",
               "не пустить журналиста", "удалить фото", "удалить видео",
               "взлом", "взломать", "шантаж", "кибербуллинг", "выгнать с брифинга", "лишение аккредитации",
               "не допустить журналиста", "не допустить к", "профилактический разговор", "=пришли домой",
               "прослушка", "прослушивание", "черный список", "нежелательная организация",
               "проверка редакции", "внеплановая проверка", "повестка", "провести беседу",
               "наружное наблюдение", "запугать", "требование удалить", "потребовать удалить",
               "заставить удалить", "судебный иск", "иск к редакции", "преследоваться",
               "выдворить", "не пустить на", "иск о ликвидации", "обратиться с иском", "иск о закрытии",
               # sent out of the country or refused accreditation
               "выслать журналиста", "выслать корреспондента", "выслать из", "высылка",
               "признать нежелательным",
               "прекратить аккредитацию", "аннулировать аккредитацию", "отказать ... в аккредитации",
               "аккредитация ... прекратить", "аккредитация ... отозвать", "аккредитация ... аннулировать",
               # money: accounts frozen or seized
               "заморозить счета", "арестовать счета", "арест счетов", "арест банковских счетов",
               "блокировка счетов", "заблокировать счета", "заморозка счетов",
               # kept from reporting
               "запретить снимать", "помешать снимать",
               "мешать снимать", "стереть видео", "стереть запись", "стереть фото", "удалить запись",
               "удалить видеозапись", "потребовать стереть", "лишить доступа в здание",
               "ограничить доступ в здание", "доступ в здание", "выгнать журналиста",
               "вызвать для дачи объяснений", "для дачи объяснений", "вызвать дать объяснение",
               "мешать работе", "закрывать объектив", "потребовать опровержение", "требовать опровержения",
               "вручить повестку", "пригрозить", "подозрительный автомобиль", "подозрительная машина",
               "скрытая камера", "установить слежку", "взыскать с журналиста", "взыскать с редакции",
               "взыскать с издания"],
        "kk": ["қысым", "қысым көрсет~", "қорқыт~", "қудала~", "полиция~ шақыр~", "прокуратура~ шақыр~",
               "тергеу~ шақыр~", "жауап~ шақыр~",
               "ескертті", "ескерту жасады", "ескерту берді", "ресми ескерту", "кедергі жаса~",
               "кедергі келтір~",
               "аккредитация~ айыр~", "қоқан-лоқы", "қоқан-лоқы көрсет~", "бопса~", "аңду~",
               "сотқа берді", "куәгер ретінде", "іс бойынша куәгер", "қылмыстық іс бойынша куәгер",
               "жауап алуға шақыр~", "полицияға шақыр~", "ddos",
               "моральдық зиян", "ескерту жасал~", "профилактикалық әңгіме", "полиция келді", "үйіне келді",
               "аккредитациядан айыр~", "қауіп төндір~", "қорқытып-үркіт~", "шетелдік агент",
               "елге кіргізбе~", "шекарадан өткізбе~", "депортация~", "тексеріс жүргіз~", "аңд~",
               "шақырту~", "әңгімеге шақыр~", "шығуға тыйым", "кіруге тыйым", "жала жап~",
               # summoned, questioned, kept from reporting, made to delete
               "түсініктеме беру~ шақыр~", "түсініктеме ал~", "жауап алын~", "рұқсат берме~",
               "түсір~ тыйым", "түсір~ рұқсат етпе~", "түсір~ берме~", "кіргізбе~", "жолатпа~",
               "өшір~ талап", "өшір~ мәжбүрле~", "өшірт~", "ар-намыс~ қорға~",
               "кедергі~", "камера~ көлегейле~", "ҰҚК~ шақыр~", "КНБ~ шақыр~", "куә ретінде",
               "аккредитация~ берілме~", "аккредитация~ бас тарт~", "аккредитациясыз", "сотқа тарт~",
               "жасырын бақылау", "аңдып жүр~",
               # sent out of the country or refused accreditation
               "жағымсыз деп таны~", "аумағынан шығарыл~", "аумағынан шығар~", "елден шығарыл~",
               "аккредитация~ ... айыр~", "аккредитация~ ... тоқтат~"],
    },
}

# Names and terms that contain a type word but say nothing happened ("World Organisation Against
# Torture"): matched as "type:none", they hide the shorter type word inside them.
NOT_TYPES: dict[str, dict[str, list[str]]] = {
    "type:none": {
        "en": ["=organization against torture", "=organisation against torture", "=committee against torture",
               "=convention against torture", "=against torture", "=press release", "=arrest warrant for",
               "=about pressure", "=about harassment", "=about censorship"],
        "ru": ["комитет против пыток", "против пыток", "пресс-релиз", "ранее судимый", "судимость",
               "=о давлении", "=о преследовании", "=о травле", "=о цензуре",
               "дело закрыть", "закрыть дело", "закрыть уголовное дело",
               "повестка дня", "снять с повестки", "с повестки дня",
               # "(Meta признана экстремистской и запрещена в РФ)": a disclaimer Russian law requires
               "признать экстремистский и запретить", "экстремистский и запрещенный",
               "признать в россия экстремистский", "признать экстремистский в россия",
               "признать экстремистский и запрещенный"],
        "kk": ["азаптауға қарсы", "жала жабу", "іс~ жабыл~"],
    },
}

# Bomb and terror hoaxes and swatting: a false alarm punished is no press incident, whoever made it
HOAXES: dict[str, dict[str, list[str]]] = {
    "hoax:": {
        "en": ["bomb threat", "bomb hoax", "=false bomb", "=hoax call", "=hoax calls", "swatting",
               "=bomb scare", "=false alarm", "=false report of a bomb", "=fake bomb"],
        "ru": ["ложное минирование", "ложный вызов", "ложное сообщение о минировании", "минирование",
               "заминировать", "ложное сообщение об акте терроризма", "ложное сообщение о теракте",
               "сваттинг", "телефонный терроризм", "телефонный террорист", "псевдоминер", "лжеминирование"],
        "kk": ["жарылғыш зат", "жарылғыш құрылғы", "мина қойылды", "сваттинг", "теракт ... жалған",
               "жалған ... теракт", "шабуыл жасалады деген жалған", "жарылыс ... жалған хабар"],
    },
}

# A site, service or the network not working: a blocking (or a shutdown, for the network) only
# where the text names who restricts it or names a blocking besides; an outage nobody caused
# ("сбой в работе WhatsApp", "Telegram went offline") is no incident.
OUTAGES: dict[str, dict[str, list[str]]] = {
    "type:outage": {
        "en": ["=went offline", "outage of social", "internet outage", "=internet outages",
               "=internet was down",
               "=outage", "=outages"],
        "ru": ["не работать сайт", "сайт не работать", "сайты не открываться", "не открываться",
               "проблема с доступом", "перебой с доступом", "перебой в работе", "сбой в работе",
               "перестать открываться", "интернет не работать", "сбой", "перебой"],
        "kk": ["ашылмай", "ашылмайды", "жұмыс істемей", "ашылмай қалды", "кіре алмай", "ашылмай~"],
    },
}

# A type after one of these words is a possibility, not a fact ("may face a fine", "could be
# sentenced", "fears his detention", «может грозить арест»). Charges that someone faces are still a
# criminal case.
MODALS: dict[str, list[str]] = {
    "en": ["=may face", "=may be", "=may have", "=might", "=could", "=risk", "=risks", "=fear", "=fears",
           "=feared", "=would", "=wants to", "=want to", "=plans to", "=seeks to", "=sought to",
           # a power, a plan, a threat or a question: "can shut down", "threatens to block",
           # "the possibility of restricting access"
           "=can", "=will", "=may", "=possibility", "=possible", "=considering", "=consider",
           "=exploring", "=proposal", "=proposed", "=threaten to", "=threatens to", "=threatened to",
           "=planning to", "=plan to", "=planned to", "=intends to", "=intend to", "=draft"],
    "ru": ["мочь", "грозить", "рисковать", "опасаться", "=возможно", "=возможен", "=возможна", "хотеть",
           "намереваться", "планировать", "добиваться",
           "вопрос", "рассматривать", "предложение", "предлагать", "угрожать", "пригрозить",
           "=будет", "=будут"],
}
# Kazakh puts the modal after the verb: "бас бостандығынан айырылуы мүмкін" (may be jailed); a
# question particle makes a question of it ("бұғаттала ма": will it be blocked?), and so does the
# Russian "ли" ("заблокируют ли")
MODALS_AFTER: dict[str, list[str]] = {
    "kk": ["мүмкін", "ықтимал", "жоспар~", "ниет~", "қаупі бар", "=ма", "=ме", "=ба", "=бе", "=па",
           "=пе", "мәселе~", "ұсыныс~"],
    "ru": ["=ли"],
}

# Questioning: pressure on its own ("the editor was questioned for five hours"), part of the
# detention when the same sentence says someone was detained ("detained for questioning").
QUESTIONING: dict[str, dict[str, list[str]]] = {
    "question:": {
        "en": ["interrogate", "interrogation", "=questioned", "=questioning"],
        "ru": ["допрос", "допросить", "допрашивать", "допрашиваться"],
        "kk": ["жауап алды", "жауап алу", "=тергеді", "=тергелді", "сұраққа алды", "сұраққа алын~"],
    },
}

# A criminal case opened, with no word about who is charged: the journalist's case, unless the
# text is about an attack or threats, whose cases are against the attackers ("police opened a
# criminal case after the journalist was beaten" is an assault).
CASE_OPENED: dict[str, dict[str, list[str]]] = {
    "case:opened": {
        "en": ["criminal case", "criminal investigation", "criminal probe", "criminal complaint",
               "pretrial investigation", "pre-trial investigation", "=criminal investigation",
               "=opened an investigation", "=launched an investigation", "=case was opened",
               "=opened a case", "=case was sent to court", "=case went to court"],
        "ru": ["уголовное дело", "возбудить дело", "возбуждение дела", "досудебное расследование",
               "досудебное производство", "завести дело", "заведено дело", "следствие по делу",
               "судебное заседание", "заседание по делу", "дело передано в суд", "направить дело в суд"],
        "kk": ["қылмыстық іс", "қылмыстық істер", "іс қозғалды", "іс қозғады", "іс қозғал~", "іс қозға~",
               "қылмыстық тергеу", "қылмыстық істі", "сотқа дейінгі тергеп-тексеру",
               # the case goes to court
               "іс~ сотқа", "сот отырыс~", "сотқа дейінгі тергеу", "сотқа жолдан~", "апелляциялық сот~",
               "кассациялық сот~"],
    },
}

# Counts and rankings, not a case: "the number of detained rose to a hundred", press-freedom
# indexes. Such an entry is not an incident, even when an outlet reports it.
AGGREGATE: dict[str, dict[str, list[str]]] = {
    "aggregate:": {
        "en": ["=number of detained", "=number of those detained", "=number of people detained",
               "press freedom index", "=world press freedom index", "=thousand websites",
               "=thousands of websites", "=thousand sites", "=thousands of sites",
               "=provides an overview", "=gives an overview", "=contains a chronology",
               "=in the course of the study",
               # a report's or a series' title over the world or a year: "Killed in 2012: A
               # Worldwide Roundup", "Prison Census 2012" (and, in extract, "Attacks on the Press
               # in 2012: Belarus")
               "=worldwide roundup", "=prison census", "=year in review"],
        "ru": ["число задержанных", "количество задержанных", "индекс свободы", "рейтинг свободы",
               "тысяч сайт", "тысячи сайт", "тысяча сайт",
               "содержать обзор", "обзор основных событий", "содержать хронологию",
               "хронология основных событий", "=итоги года", "=ежегодный доклад", "=годовой доклад"],
        "kk": ["ұсталғандар саны", "сөз бостандығы индекс~", "мыңнан астам сайт~", "мыңнан аса сайт~",
               "мың сайт~", "мыңдаған сайт~",
               # a document that surveys a period: a report's overview or chronology
               "шолу жаса~", "шолу ұсын~"],
    },
}

# Charges and offences named without a court or a prison sentence ("charged with", "accused of",
# "экстремизм"): a criminal case, unless the same text is about days in jail, a fine or a blocked
# site, whose reason they are ("sentenced to 10 days on charges of violating rally rules" is an
# arrest, "сайт заблокирован за экстремизм" a blocking).
CHARGES: dict[str, dict[str, list[str]]] = {
    "charge:": {
        "en": ["charged with", "charges against", "=charges of", "face charges", "=charging him",
               "=charging her", "=charging them", "=on charges of", "=accused of", "=on a charge of",
               # offences named: the charge, or the reason a site was blocked or a fine given
               "knowingly false", "deliberately false", "inciting hatred", "incitement", "extortion"],
        "ru": ["обвинение", "обвинить", "обвинять", "обвиняться", "распространение заведомо ложной",
               "заведомо ложной информации", "разжигание розни", "разжигание социальной", "экстремизм",
               "вымогательство", "мошенничество"],
        "kk": ["айыпталды", "айыптау", "айыпта~", "айып тағылды", "айып тақты", "айып тағ~",
               "көрінеу жалған", "жаза тағайындалды", "айыппен", "айыбымен", "араздық~ қоздыр~",
               "алауыздық~ қоздыр~"],
    },
}

# The people a detention is of, in a story about an attack on the press: the attackers, not the
# press ("сындырған екі күдікті ұсталған", "suspects in the attack were detained").
SUSPECTS: dict[str, dict[str, list[str]]] = {
    "suspect:": {
        "en": ["suspect", "attacker", "assailant", "perpetrator", "=those who"],
        "ru": ["подозреваемый", "нападавший", "злоумышленник", "исполнитель", "заказчик"],
        "kk": ["күдікті", "күдіктілер", "шабуылдаушы~", "қылмыскер~", "тапсырыс беруші~"],
    },
}

# A call to stop pressure says the pressure goes on, not that a new incident happened:
# "calls on the authorities to stop harassing reporters".
STOPS: dict[str, dict[str, list[str]]] = {
    "stop:": {
        "en": ["=stop", "=cease", "=end"],
        "ru": ["прекратить", "перестать"],
        "kk": ["тоқтату~", "доғар~"],
    },
}

# Administrative liability without the penalty: a fine, which is what it nearly always is, unless
# the text says days in jail ("15 тәулікке әкімшілік жауапкершілікке тартылды" is an arrest).
LIABILITY: dict[str, dict[str, list[str]]] = {
    "liability:": {
        "en": ["=administrative liability", "=administrative responsibility"],
        "ru": ["административное взыскание", "административная ответственность",
               "административное наказание"],
        "kk": ["әкімшілік жауапкершілік", "әкімшілік жаза~", "әкімшілік жауапқа"],
    },
}

# Words that put a type in the past of someone the text is not about: "previously jailed",
# "ранее задержанный", "бұрын сотталған" (and, in extract, "a jailed journalist"). A text whose
# every type word is such a mention, and that has no status, is no incident.
BACKGROUND: dict[str, dict[str, list[str]]] = {
    "background:": {
        "en": ["=previously", "=formerly", "=once", "=often", "=frequently", "=routinely"],
        "ru": ["ранее", "прежде", "нередко", "зачастую", "часто"],
        "kk": ["бұрын", "бұған дейін", "бұрынғы", "жиі"],
    },
}

# Words that make a sentence about what usually happens, not about one case: "journalists are
# often prosecuted under article 274", "приговоры журналистам были всегда". Every type word,
# charge and case of such a sentence is a generality.
GENERIC: dict[str, dict[str, list[str]]] = {
    "generic:": {
        "en": ["=often", "=frequently", "=routinely", "=regularly", "=always", "=usually", "=systematically",
               "=increasingly"],
        "ru": ["часто", "нередко", "зачастую", "всегда", "регулярно", "обычно", "систематически"],
        "kk": ["жиі", "үнемі", "әрдайым", "әдетте", "жүйелі түрде"],
    },
}

# What the text says happened in the end (one status; the first of STATUSES that is found).
STATUSES = ("acquitted", "charges_dropped", "unblocked", "released", "sentenced", "convicted")
STATUS: dict[str, dict[str, list[str]]] = {
    "status:acquitted": {
        "en": ["acquit", "acquittal", "=found not guilty", "=cleared of"],
        "ru": ["оправдать", "оправдательный приговор", "оправдан", "признать невиновным"],
        "kk": ["ақталды", "ақтау үкімі", "ақтады", "ақтап шықты", "ақтап шығар~", "кінәсіз деп таны~",
               "кінәсіз деп тап~"],
    },
    "status:charges_dropped": {
        "en": ["=charges dropped", "=charges were dropped", "=charges have been dropped",
               "=dropped the charges",
               "=dropped charges", "=case closed", "=case was closed", "=closed the case",
               "=case dismissed", "=case was dismissed", "=dismissed the case", "=charges were withdrawn",
               "=withdrew the charges", "=dropped the case", "=case was dropped", "=charges ... dropped",
               "=close the criminal investigation", "=closed the criminal investigation",
               "=closed the investigation", "=investigation was closed", "=investigation was dropped",
               "=dropped the investigation", "=investigation ... closed", "=investigation ... dropped",
               "=decided to close the criminal", "=decided to close the case",
               "=decided to close the investigation",
               "=decided to drop the charges", "=agreed to drop the charges",
               "=case ... closed", "=case ... dismissed", "=charges ... withdrawn"],
        "ru": ["прекратить дело", "дело прекращено", "прекращение дела", "прекратить уголовное дело",
               "прекратить уголовное преследование", "прекращение уголовного преследования",
               "закрыть дело", "закрыть уголовное дело", "снять обвинение", "дело закрыто",
               "отсутствие состава преступления", "за отсутствием состава", "дело ... прекратить",
               "дело ... закрыть", "обвинение ... снять", "преследование ... прекратить"],
        "kk": ["іс тоқтатылды", "іс қысқартылды", "ісі тоқтатылды", "ісі қысқартылды", "іс тоқтатты",
               "іс ... тоқтатылды", "іс ... қысқартылды",
               "қылмыстық іс тоқтатылды", "қылмыс құрамы жоқ", "қылмыс құрамы болма~", "іс~ ... тоқтатыл~",
               "іс~ ... қысқартыл~", "іс~ ... тоқтат~", "қудалау ... тоқтатыл~", "іс~ жабыл~"],
    },
    "status:unblocked": {
        "en": ["unblock", "=access restored", "=access was restored", "=access has been restored",
               "=restored access", "=accessible again", "=available again", "=lifted the block",
               "=block was lifted", "=block lifted"],
        "ru": ["разблокировать", "разблокировка", "доступ восстановлен", "доступ ... восстановить",
               "доступ ... возобновить", "блокировка ... снять", "восстановить доступ",
               "восстановление доступа", "снять блокировку", "снятие блокировки", "вновь доступен",
               "снова доступен", "снова открываться"],
        "kk": ["бұғаттан шығар~", "бұғаттан алын~", "бұғат алын~", "қайта ашылды", "қолжетімді болды"],
    },
    "status:released": {
        "en": ["=was released", "=were released", "=been released", "=is released", "=are released",
               "=released from", "=released after", "=released on bail", "=released him", "=released her",
               "=released them", "=freed", "=set free", "=walked free", "=let go", "=and released",
               "=later released", "=subsequently released", "=eventually released", "=since released",
               "=been freed", "=released without charge", "=released the next day", "=after his release",
               "=after her release", "=after their release", "=since his release", "=since her release",
               "=upon his release", "=upon her release", "=walk free", "=were freed", "=was freed"],
        "ru": ["освободить", "отпустить", "выйти на свободу", "освободиться", "отпустить домой",
               "освободить из-под стражи", "после освобождения", "после своего освобождения"],
        "kk": ["босатылды", "босатты", "бостандыққа шықты", "босатып", "босатылған", "босады", "босатыл~",
               "бостандыққа шығар~", "үйіне қайтарыл~", "үйіне жіберіл~", "қамаудан шық~", "қамаудан босат~",
               "босатылғаннан кейін", "босатылған соң"],
    },
    "status:sentenced": {
        "en": ["=sentenced", "=jailed for", "=handed a * sentence", "=given a * sentence"],
        "ru": ["приговорить", "вынести приговор", "назначить наказание", "по приговору"],
        "kk": ["сотталды", "үкім шығарды", "жаза тағайынд~", "жылға кесілді", "жылға сотталды"],
    },
    "status:convicted": {
        "en": ["convict", "=found guilty", "=guilty verdict", "=guilty of"],
        "ru": ["осудить", "признать виновным", "обвинительный приговор", "осужденный"],
        "kk": ["кінәлі деп танылды", "кінәлі деп таныды", "кінәлі деп тап~", "кінәлі деп таны~",
               "сот ... деп таныды",
               "сот ... деп танылды"],
    },
}

# A status right after one of these words is a wish, not a fact: "призвал освободить",
# "calls to release", "талап етті".
CALLS: dict[str, list[str]] = {
    "en": ["call", "urge", "demand", "ask", "want", "=should", "=must", "=may", "=could", "=would",
           "=refused", "=declined",
           "=to", "=if", "=unless", "=not", "appeal", "petition", "=whether"],
    "ru": ["призвать", "призывать", "требовать", "потребовать", "просить", "попросить", "призыв",
           "требование", "=не", "должный", "мочь", "добиваться", "ходатайство", "=если", "=чтобы",
           "=ли", "хотеть", "отказаться", "отказать", "отказываться"],
}
# Kazakh puts the call after the verb: "журналисті босатуды талап етті" (demanded his release)
CALLS_AFTER: dict[str, list[str]] = {
    "kk": ["талап~", "шақырды", "өтінді", "үндеді", "сұрады", "қажет", "керек", "бас тарт~"],
}

# Countries: names, adjectives, capitals and big cities. ISO 3166 alpha-2 codes.
COUNTRIES: dict[str, dict[str, list[str]]] = {
    "KZ": {
        "en": ["kazakhstan", "kazakhstani", "almaty", "astana", "nur-sultan", "shymkent", "karaganda",
               "aktobe", "atyrau", "aktau", "zhanaozen", "uralsk", "pavlodar", "semey", "taraz",
               "kostanay", "kokshetau", "taldykorgan", "kyzylorda", "turkestan", "ust-kamenogorsk",
               "oskemen", "temirtau", "ekibastuz", "petropavlovsk", "mangystau", "zhezkazgan", "kazakh",
               "kazak", "tokayev", "nazarbayev", "mazhilis", "tenge", "akorda", "rudny", "konayev",
               "kulsary", "balkhash", "satpayev"],
        "ru": ["казахстан", "казахстанский", "рк", "алматы", "алма-ата", "астана", "нур-султан",
               "шымкент", "караганда", "актобе", "атырау", "актау", "жанаозен", "уральск", "павлодар",
               "тараз", "костанай", "кокшетау", "талдыкорган", "кызылорда", "туркестан",
               "усть-каменогорск", "темиртау", "экибастуз", "петропавловск", "мангистау",
               "мангыстау", "жезказган", "тенге", "мрп", "токаев", "назарбаев", "мажилис", "акорда",
               "алматинский", "астанинский", "карагандинский", "павлодарский", "актюбинский",
               "атырауский", "шымкентский", "костанайский", "мангистауский", "жанаозенский",
               "уральский", "рудный", "конаев", "кульсары", "балхаш", "сатпаев", "кентау",
               "жамбылский", "туркестанский", "кызылординский", "акмолинский", "абайский"],
        "kk": ["қазақстан", "қазақстандық", "алматы", "астана", "шымкент", "қарағанды", "ақтөбе",
               "атырау", "ақтау", "жаңаөзен", "павлодар", "семей", "тараз", "қостанай",
               "көкшетау", "талдықорған", "қызылорда", "түркістан", "өскемен", "маңғыстау", "ҚР",
               "теңге", "тоқаев", "назарбаев", "мәжіліс", "ақорда"],
    },
    "KG": {
        "en": ["kyrgyzstan", "kyrgyz", "bishkek", "osh", "jalal-abad", "karakol", "kyrgyz republic",
               "japarov", "tashiev", "gknb", "som", "talas", "issyk-kul"],
        "ru": ["кыргызстан", "киргизия", "кыргызский", "киргизский", "бишкек", "ош", "джалал-абад",
               "каракол", "кр", "жапаров", "ташиев", "гкнб", "сом", "талас", "иссык-куль",
               "бишкекский", "кыргызстанский", "жогорку кенеш"],
        "kk": ["қырғызстан", "қырғыз", "бішкек"],
    },
    "TJ": {
        "en": ["tajikistan", "tajik", "dushanbe", "khujand", "khorog", "gbao", "gorno-badakhshan",
               "rahmon", "somoni", "kulob", "bokhtar"],
        "ru": ["таджикистан", "таджикский", "душанбе", "худжанд", "хорог", "гбао", "горно-бадахшанский",
               "рахмон", "сомони", "куляб", "бохтар", "душанбинский"],
        "kk": ["тәжікстан", "тәжік", "душанбе"],
    },
    "UZ": {
        "en": ["uzbekistan", "uzbek", "tashkent", "karakalpakstan", "nukus", "samarkand", "bukhara",
               "andijan", "fergana valley", "mirziyoyev", "termez", "namangan", "kokand", "karshi"],
        "ru": ["узбекистан", "узбекский", "ташкент", "каракалпакстан", "нукус", "самарканд", "бухара",
               "андижан", "мирзиеев", "термез", "наманган", "коканд", "кокандский", "карши",
               "ташкентский", "сум"],
        "kk": ["өзбекстан", "өзбек", "ташкент"],
    },
    "TM": {
        "en": ["turkmenistan", "turkmen", "ashgabat", "berdymukhamedov", "turkmenabat", "dashoguz",
               "balkanabat", "akhal", "lebap"],
        "ru": ["туркменистан", "туркмения", "туркменский", "ашхабад", "бердымухамедов", "туркменабат",
               "дашогуз", "балканабат", "ахал", "лебап"],
        "kk": ["түрікменстан", "түрікмен"],
    },
    "RU": {
        "en": ["russia", "russian federation", "moscow", "st petersburg", "saint petersburg",
               "chechnya", "dagestan", "kremlin", "roskomnadzor", "putin", "novosibirsk", "yekaterinburg",
               "kazan", "krasnodar", "tver", "navalny", "=russian authorities", "=russian journalist",
               "=russian journalists", "=russian court", "=russian police", "=russian officials",
               "=russian government", "=russian blogger", "=russian reporter", "=russian security",
               "=russian media", "=russian prosecutors", "=russian investigators"],
        "ru": ["россия", "российский", "рф", "москва", "санкт-петербург", "петербург", "чечня",
               "дагестан", "дагестанский", "кремль", "роскомнадзор", "московский", "чеченский",
               "путин", "тверь", "тверской", "новосибирск", "екатеринбург", "казань", "краснодар",
               "ростов-на-дону", "нижний новгород", "самара", "омск", "челябинск", "уфа", "пермь",
               "воронеж", "волгоград", "красноярск", "саратов", "калининград", "владивосток",
               "иркутск", "томск", "махачкала", "грозный", "ингушетия", "башкортостан", "татарстан",
               "петербургский", "подмосковье", "навальный"],
        "kk": ["ресей", "мәскеу"],
    },
    "BY": {
        "en": ["belarus", "belarusian", "minsk", "lukashenko", "brest", "grodno", "gomel", "vitebsk",
               "mogilev"],
        "ru": ["беларусь", "белоруссия", "белорусский", "минск", "лукашенко", "брест", "брестский",
               "гродно", "гомель", "витебск", "могилев", "минский", "гродненский", "гомельский"],
        "kk": ["беларусь", "минск"],
    },
    "AZ": {"en": ["azerbaijan", "azerbaijani", "baku", "ganja", "sumgait", "nakhchivan"],
           "ru": ["азербайджан", "азербайджанский", "баку", "гянджа", "сумгаит", "нахичевань"],
           "kk": ["әзербайжан", "баку"]},
    "GE": {"en": ["georgia", "tbilisi", "batumi", "kutaisi", "=georgian dream"],
           "ru": ["грузия", "грузинский", "тбилиси", "батуми", "кутаиси"], "kk": ["грузия", "тбилиси"]},
    "AM": {"en": ["armenia", "armenian", "yerevan", "gyumri"],
           "ru": ["армения", "армянский", "ереван", "гюмри"],
           "kk": ["армения", "ереван"]},
    # Crimea is Ukraine (LABELLING.md)
    "UA": {"en": ["ukraine", "kyiv", "kiev", "crimea", "sevastopol", "simferopol", "kharkiv", "odesa",
                  "mariupol"],
           "ru": ["украина", "киев", "украинский", "крым", "севастополь", "симферополь", "харьков", "одесса",
                  "мариуполь"],
           "kk": ["украина", "қырым"]},
    "CN": {"en": ["china", "chinese", "xinjiang", "beijing"], "ru": ["китай", "китайский", "синьцзян",
                  "пекин"],
           "kk": ["қытай", "шыңжаң"]},
    # further afield: the region's feeds and the NGOs' report them too
    "TR": {"en": ["turkey", "türkiye", "turkish", "istanbul", "ankara", "diyarbakir", "erdogan"],
           "ru": ["турция", "турецкий", "стамбул", "анкара", "эрдоган"],
           "kk": ["түркия", "ыстамбұл", "анкара"]},
    "IR": {"en": ["iran", "iranian", "tehran"], "ru": ["иран", "иранский", "тегеран"],
           "kk": ["иран", "тегеран"]},
    "AF": {"en": ["afghanistan", "afghan", "kabul", "taliban", "kandahar", "herat"],
           "ru": ["афганистан", "афганский", "кабул", "талибан", "талиб"],
           "kk": ["ауғанстан", "кабул", "талибан"]},
    "PK": {"en": ["pakistan", "pakistani", "islamabad", "lahore", "karachi", "peshawar"],
           "ru": ["пакистан", "пакистанский"], "kk": ["пәкістан"]},
    "IN": {"en": ["india", "indian", "new delhi", "kashmir", "punjab", "mumbai"],
           "ru": ["индия", "индийский", "кашмир"], "kk": ["үндістан"]},
    "IL": {"en": ["israel", "israeli", "tel aviv", "jerusalem"], "ru": ["израиль", "израильский"],
           "kk": ["израиль"]},
    "PS": {"en": ["gaza", "palestine", "palestinian", "west bank"], "ru": ["газа", "сектор газа", "палестина",
                                                                          "палестинский"],
           "kk": ["газа", "палестина"]},
    "NG": {"en": ["nigeria", "nigerian", "lagos", "abuja"], "ru": ["нигерия"], "kk": ["нигерия"]},
    "MX": {"en": ["mexico", "mexican"], "ru": ["мексика", "мексиканский"], "kk": ["мексика"]},
    "HK": {"en": ["hong kong"], "ru": ["гонконг"], "kk": ["гонконг"]},
    "PH": {"en": ["philippines", "philippine", "manila"], "ru": ["филиппины"], "kk": ["филиппин"]},
    "MD": {"en": ["moldova", "moldovan", "chisinau", "transnistria"], "ru": ["молдавия", "молдова", "кишинев",
                                                                          "приднестровье"],
           "kk": ["молдова"]},
}

# Words that make a story about the press, the internet or speech (besides watched outlets and
# people): an incident needs one. Speech offences count: a detention for "false information" is
# a press-freedom incident even when no journalist is named.
PRESS: dict[str, list[str]] = {
    # (surface forms where the stem is an ordinary word: "reporter" stems to "report", "publication"
    # to "public", "publisher" to "publish")
    "en": ["journalist", "reporter", "editor", "newspaper", "media", "press",
           "outlet", "website",
           "blogger", "correspondent", "broadcaster", "radio", "television", "tv channel", "=rfe/rl",
           "internet", "social media", "social network", "telegram channel",
           "freedom of speech", "freedom of expression", "=false information", "defamation", "libel",
           "slander", "=facebook post", "=social media post", "news agency", "news site", "podcast",
           "cameraman", "photographer", "=publication", "=publications", "=covering", "=while covering",
           "=post", "=posts",
           "=posted", "=repost", "=reposted", "=video", "=online", "film crew", "camera crew", "news crew",
           "tv crew", "cameraman", "=footage", "publishing house", "=publisher", "=publishers", "newsroom",
           "editorial office",
           # offences of speech: what someone said or wrote is what is punished
           "inciting hatred", "incitement to hatred", "inciting discord", "inciting ethnic",
           "inciting social",
           "inciting religious", "insulting the president", "=insulting the", "discrediting the army",
           "=discrediting the armed forces", "=fake news about"],
    "ru": ["журналист", "журналистка", "репортер", "редактор", "главред", "редакция", "сми", "издание",
           "газета", "сайт", "портал", "блогер", "корреспондент", "телеканал", "радио", "интернет",
           "мессенджер", "социальная сеть", "соцсеть", "телеграм-канал", "правозащитник",
           "свобода слова", "ложная информация", "недостоверная информация", "заведомо ложная",
           "клевета", "публикация", "пост в", "медиаресурс", "информагентство", "оператор канала",
           "фотограф", "видеооператор", "ютубер", "инстаграм", "тикток", "ddos", "эфир", "освещать",
           "освещение", "пост", "репост", "видеоролик", "видео", "запись в", "комментарий в",
           "съемочная группа", "телепрограмма", "телепередача", "фоторепортаж", "стрим", "прямой эфир",
           "издательство", "издательский дом", "издатель",
           # offences of speech: what someone said or wrote is what is punished
           "разжигание розни", "разжигание * розни", "возбуждение * розни", "возбуждение розни",
           "разжигание ненависти", "оскорбление президента", "оскорбление главы государства",
           "дискредитация армии", "дискредитация вооруженных сил", "фейк об армии", "фейки об армии",
           "призыв к сепаратизму", "пропаганда сепаратизма", "оскорбительный высказывание",
           "высказывание о"],
    "kk": ["журналист", "тілші", "редактор", "басылым", "сайт", "блогер", "интернет",
           "әлеуметтік желі", "жалған ақпарат", "жалған мәлімет", "сөз бостандығы", "телеарна",
           "газет", "редакция", "БАҚ", "эфир", "арна", "радио", "портал", "ақпарат агенттігі",
           "хабар тарат~", "жариялаған", "жазба", "пост", "видео", "парақша", "Facebook", "Instagram",
           "желіде", "түсірілім тобы", "оператор~", "бейне~", "тікелей эфир", "баспасөз бостандығы",
           "баспа үйі", "мақала~", "сұхбат~",
           # offences of speech: what someone said or wrote is what is punished
           "араздық қоздыр~", "араздықты қоздыр~", "араздық тудыр~", "араздықты тудыр~", "араздық қоздыру",
           "сепаратизм~ насихат~", "сепаратистік ... насихат~", "сөздері үшін", "айтқан сөз~",
           "қорлаған", "қорлады", "бейәдеп сөз~"],
}
