"""A verdict's reason in words, rendered from the judgement's keys by a template per language.

Pure. `render(keys, lang)` takes the JSON-ready keys a `Judgement` carries (and that are stored
with the verdict), so the site and the digest can say the reason in Russian or Kazakh long after
the measurement. Keys without a `why` (OONI imports, older rows) render as None: show the stored
English text. Values (hosts, titles, issuers) are inserted as they are, but for the explicit bidi
controls, written out as `\\u202e` (textsafe.visible_bidi) so that a page title cannot turn the
sentence around; escaping for HTML is the caller's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from blockwatch import vocabulary as F
from blockwatch.textsafe import visible_bidi

LANGS = ("en", "ru", "kk")

TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "vantage_down": "every canary site failed from this vantage: its own connection is down",
        "no_control": "no usable control measurement: the control's own connection failed",
        "ok": "reachable",
        "ok_http": "reachable: HTTP {vstatus}{vtitle}",
        "resolver_failed": "the resolver failed its control queries ({resolver_problem}): "
                           "no evidence either way",
        "no_control_dns": "the control resolvers gave no answer to compare with",
        "dns_consistent": "DNS for {host} answered {vaddrs}, consistent with the control resolvers",
        "dns_down": "DNS for {host} gives {vsaid} from the vantage and {csaid} from the control "
                    "resolvers: the name does not work anywhere",
        "dns_failure": "DNS for {host} answered {vsaid} at the vantage; the control resolvers "
                       "answered {caddrs}",
        "dns_block_address": "DNS for {host} answered {vaddrs}, a known block address; the control "
                             "resolvers answered {caddrs}",
        "dns_ghost": "DNS for {host} answered {vaddrs_net} at the vantage, but the name has {csaid} "
                     "for the control resolvers",
        "dns_private": "DNS for {host} answered {vaddrs_net}; the control resolvers answered {caddrs}",
        "dns_injected": "DNS for {host} got two different replies to one query ({injected} and "
                        "{vaddrs}): an on-path injector",
        "dns_inconsistent": "DNS for {host} answered {vaddrs_net}; the control resolvers answered "
                            "{caddrs_net}, and the vantage's addresses did not prove to be {host}",
        "dns_inconsistent_injected": "DNS for {host} answered {vaddrs_net}; the control resolvers "
                                     "answered {caddrs_net}, and the vantage's addresses did not "
                                     "prove to be {host}; it got two different replies to one "
                                     "query ({vaddrs} and {injected}): an on-path injector",
        "tcp_no_control": "connecting to {host} failed from the vantage ({vfail}); the control had "
                          "no address to connect to, so nothing to compare with",
        "tcp_down": "connecting to {host} failed from the vantage ({vfail}) and from the control "
                    "({cfail}): the site is down",
        "tcp_blocked": "connecting to {host} at {address}:{port} failed ({vfail}); the control "
                       "connected",
        "tls_interception": "the certificate for {host} was issued by \u201c{issuer}\u201d, a known "
                            "state interception authority ({authority})",
        "tls_cert_down": "the certificate of {host} is invalid from the vantage and from the "
                         "control ({vfail}): a problem of the site",
        "tls_cert": "the certificate presented for {host} is not valid ({vfail}; issuer "
                    "\u201c{issuer}\u201d); the control received a valid certificate",
        "tls_no_control": "the TLS handshake with {host} failed from the vantage ({vfail}); the "
                          "control made no handshake to compare with",
        "tls_down": "the TLS handshake with {host} failed from the vantage ({vfail}) and from the "
                    "control ({cfail}): the site is down",
        "tls_blocked": "the TLS handshake with {host} ({address}) {how}; TCP connected and the "
                       "control completed the handshake",
        "http_down": "the site does not answer from the vantage ({vfail}) or from the control "
                     "({cfail}): the site is down",
        "http_redirect_unmatched": "the redirect to {hop_host} failed at the vantage ({vfail}); "
                                   "the control was not redirected there and got HTTP {cstatus}",
        "http_failure": "the HTTP request to {host} failed ({vfail}) although the connection "
                        "worked; the control got HTTP {cstatus}",
        "http_blockpage": "the response for {host} is a known blockpage ({fingerprints})",
        "http_broke_off": "the response from {host} broke off after {vbytes} ({vfail}); the "
                          "control got the whole page ({cbytes})",
        "http_server_side": "server-side, not state blocking: the site or its CDN answered the "
                            "vantage with {what} (HTTP {vstatus}); the control got {cdesc}",
        "http_server_errors": "the site answers with server errors everywhere (HTTP {vstatus} at "
                              "the vantage, {cstatus} at the control)",
        "http_redirect_diff": "{host} redirected the vantage to {vfinal}; the control ended at "
                              "{cfinal}",
        "http_diff": "the vantage got {vdesc}; the control got {cdesc}",
        "hop_blocked": "the redirect to {hop_host}: {said}, works from the control",
        "hop_down": "the redirect to {hop_host}: {said} and from the control ({cfail}): "
                    "{hop_host} is down",
        "throttled_transfer": "the page of {host} downloaded at {vrate} from the vantage "
                              "({vbytes} in {vsecs}, then the timeout ended it) against {crate} "
                              "from the control",
        "throttled_handshake": "the TLS handshake with {host} took {vsecs} from the vantage "
                               "against {csecs} from the control",
        "throttled_page": "the page of {host} downloaded at {vrate} from the vantage against "
                          "{crate} from the control",
    },
    "ru": {
        "vantage_down": "все проверочные сайты недоступны из этой точки измерения: не работает её "
                        "собственное подключение",
        "no_control": "нет пригодного контрольного измерения: не работает подключение контрольной "
                      "точки",
        "ok": "доступен",
        "ok_http": "доступен: HTTP {vstatus}{vtitle}",
        "resolver_failed": "резолвер не прошёл контрольные запросы ({resolver_problem}): данных "
                           "ни за, ни против нет",
        "no_control_dns": "контрольные резолверы не дали ответа для сравнения",
        "dns_consistent": "DNS для {host} ответил {vaddrs}, как и контрольные резолверы",
        "dns_down": "DNS для {host} даёт {vsaid} в точке измерения и {csaid} у контрольных "
                    "резолверов: имя не работает нигде",
        "dns_failure": "DNS для {host} вернул {vsaid} в точке измерения; контрольные резолверы "
                       "ответили {caddrs}",
        "dns_block_address": "DNS для {host} ответил {vaddrs} — известный адрес блокировки; "
                             "контрольные резолверы ответили {caddrs}",
        "dns_ghost": "DNS для {host} ответил {vaddrs_net} в точке измерения, а у контрольных "
                     "резолверов для этого имени {csaid}",
        "dns_private": "DNS для {host} ответил {vaddrs_net}; контрольные резолверы ответили "
                       "{caddrs}",
        "dns_injected": "DNS для {host} получил два разных ответа на один запрос ({injected} и "
                        "{vaddrs}): ответ подделывает устройство на пути",
        "dns_inconsistent": "DNS для {host} ответил {vaddrs_net}; контрольные резолверы ответили "
                            "{caddrs_net}, и адреса из точки измерения не подтвердили, что это "
                            "{host}",
        "dns_inconsistent_injected": "DNS для {host} ответил {vaddrs_net}; контрольные резолверы "
                                     "ответили {caddrs_net}, и адреса из точки измерения не "
                                     "подтвердили, что это {host}; на один запрос пришли два "
                                     "разных ответа ({vaddrs} и {injected}): ответ подделывает "
                                     "устройство на пути",
        "tcp_no_control": "подключение к {host} из точки измерения не удалось ({vfail}); у "
                          "контрольной точки не было адреса для подключения, сравнивать не с чем",
        "tcp_down": "подключение к {host} не удалось ни из точки измерения ({vfail}), ни из "
                    "контрольной точки ({cfail}): сайт не работает",
        "tcp_blocked": "подключение к {host} по адресу {address}:{port} не удалось ({vfail}); "
                       "контрольная точка подключилась",
        "tls_interception": "сертификат для {host} выдан «{issuer}» — известным государственным "
                            "центром перехвата трафика ({authority})",
        "tls_cert_down": "сертификат {host} недействителен и в точке измерения, и в контрольной "
                         "точке ({vfail}): проблема самого сайта",
        "tls_cert": "сертификат, предъявленный для {host}, недействителен ({vfail}; издатель "
                    "«{issuer}»); контрольная точка получила действительный сертификат",
        "tls_no_control": "TLS-рукопожатие с {host} из точки измерения не удалось ({vfail}); "
                          "контрольная точка не выполняла рукопожатия, сравнивать не с чем",
        "tls_down": "TLS-рукопожатие с {host} не удалось ни из точки измерения ({vfail}), ни из "
                    "контрольной точки ({cfail}): сайт не работает",
        "tls_blocked": "TLS-рукопожатие с {host} ({address}) {how}; TCP-соединение установлено, "
                       "а контрольная точка завершила рукопожатие",
        "http_down": "сайт не отвечает ни в точке измерения ({vfail}), ни в контрольной точке "
                     "({cfail}): сайт не работает",
        "http_redirect_unmatched": "перенаправление на {hop_host} не удалось в точке измерения "
                                   "({vfail}); контрольную точку туда не перенаправили, она "
                                   "получила HTTP {cstatus}",
        "http_failure": "HTTP-запрос к {host} не удался ({vfail}), хотя соединение работало; "
                        "контрольная точка получила HTTP {cstatus}",
        "http_blockpage": "ответ для {host} — известная страница блокировки ({fingerprints})",
        "http_broke_off": "ответ от {host} оборвался после {vbytes} ({vfail}); контрольная точка "
                          "получила страницу целиком ({cbytes})",
        "http_server_side": "ограничение на стороне сервера, а не государственная блокировка: "
                            "сайт или его CDN ответил точке измерения: {what} (HTTP {vstatus}); "
                            "контрольная точка получила {cdesc}",
        "http_server_errors": "сайт везде отвечает ошибками сервера (HTTP {vstatus} в точке "
                              "измерения, {cstatus} в контрольной точке)",
        "http_redirect_diff": "{host} перенаправил точку измерения на {vfinal}; контрольная точка "
                              "оказалась на {cfinal}",
        "http_diff": "точка измерения получила {vdesc}; контрольная точка получила {cdesc}",
        "hop_blocked": "перенаправление на {hop_host}: {said}, из контрольной точки работает",
        "hop_down": "перенаправление на {hop_host}: {said}, и из контрольной точки тоже "
                    "({cfail}): {hop_host} не работает",
        "throttled_transfer": "страница {host} загружалась со скоростью {vrate} в точке измерения "
                              "({vbytes} за {vsecs}, затем загрузку прервал тайм-аут) против "
                              "{crate} в контрольной точке",
        "throttled_handshake": "TLS-рукопожатие с {host} заняло {vsecs} в точке измерения против "
                               "{csecs} в контрольной точке",
        "throttled_page": "страница {host} загружалась со скоростью {vrate} в точке измерения "
                          "против {crate} в контрольной точке",
    },
    "kk": {
        "vantage_down": "осы өлшеу нүктесінен барлық тексеру сайттары ашылмады: оның өз қосылымы "
                        "істемейді",
        "no_control": "жарамды бақылау өлшемі жоқ: бақылау нүктесінің өз қосылымы істемеді",
        "ok": "қолжетімді",
        "ok_http": "қолжетімді: HTTP {vstatus}{vtitle}",
        "resolver_failed": "резолвер бақылау сұрауларынан өтпеді ({resolver_problem}): ешқандай "
                           "дәлел жоқ",
        "no_control_dns": "бақылау резолверлері салыстыруға жауап бермеді",
        "dns_consistent": "{host} үшін DNS {vaddrs} деп жауап берді, бақылау резолверлерімен "
                          "сәйкес",
        "dns_down": "{host} үшін DNS өлшеу нүктесінде {vsaid}, бақылау резолверлерінде {csaid} "
                    "береді: атау еш жерде жұмыс істемейді",
        "dns_failure": "{host} үшін DNS өлшеу нүктесінде {vsaid} қайтарды; бақылау "
                       "резолверлері {caddrs} деп жауап берді",
        "dns_block_address": "{host} үшін DNS {vaddrs} деп жауап берді — белгілі бұғаттау "
                             "мекенжайы; бақылау резолверлері {caddrs} деп жауап берді",
        "dns_ghost": "{host} үшін DNS өлшеу нүктесінде {vaddrs_net} деп жауап берді, ал бақылау "
                     "резолверлерінде бұл атау үшін {csaid}",
        "dns_private": "{host} үшін DNS {vaddrs_net} деп жауап берді; бақылау резолверлері "
                       "{caddrs} деп жауап берді",
        "dns_injected": "{host} үшін DNS бір сұрауға екі түрлі жауап алды ({injected} және "
                        "{vaddrs}): жолдағы құрылғы жалған жауап жібереді",
        "dns_inconsistent": "{host} үшін DNS {vaddrs_net} деп жауап берді; бақылау резолверлері "
                            "{caddrs_net} деп жауап берді, ал өлшеу нүктесіндегі мекенжайлар "
                            "{host} екенін растамады",
        "dns_inconsistent_injected": "{host} үшін DNS {vaddrs_net} деп жауап берді; бақылау "
                                     "резолверлері {caddrs_net} деп жауап берді, ал өлшеу "
                                     "нүктесіндегі мекенжайлар {host} екенін растамады; бір "
                                     "сұрауға екі түрлі жауап келді ({vaddrs} және {injected}): "
                                     "жолдағы құрылғы жалған жауап жібереді",
        "tcp_no_control": "өлшеу нүктесінен {host} сайтына қосылу сәтсіз болды ({vfail}); бақылау "
                          "нүктесінде қосылатын мекенжай болмады, салыстыратын ештеңе жоқ",
        "tcp_down": "{host} сайтына қосылу өлшеу нүктесінен де ({vfail}), бақылау нүктесінен де "
                    "({cfail}) сәтсіз болды: сайт істемейді",
        "tcp_blocked": "{host} сайтына {address}:{port} мекенжайы бойынша қосылу сәтсіз болды "
                       "({vfail}); бақылау нүктесі қосылды",
        "tls_interception": "{host} сертификатын «{issuer}» берген — трафикті ұстап қалатын "
                            "белгілі мемлекеттік орталық ({authority})",
        "tls_cert_down": "{host} сертификаты өлшеу нүктесінде де, бақылау нүктесінде де жарамсыз "
                         "({vfail}): сайттың өз ақауы",
        "tls_cert": "{host} үшін ұсынылған сертификат жарамсыз ({vfail}; берген «{issuer}»); "
                    "бақылау нүктесі жарамды сертификат алды",
        "tls_no_control": "өлшеу нүктесінен {host} сайтымен TLS қол алысуы сәтсіз болды "
                          "({vfail}); бақылау нүктесі қол алыспады, салыстыратын ештеңе жоқ",
        "tls_down": "{host} сайтымен TLS қол алысуы өлшеу нүктесінен де ({vfail}), бақылау "
                    "нүктесінен де ({cfail}) сәтсіз болды: сайт істемейді",
        "tls_blocked": "{host} ({address}) сайтымен TLS қол алысуы {how}; TCP қосылды, ал бақылау "
                       "нүктесі қол алысуды аяқтады",
        "http_down": "сайт өлшеу нүктесінде де ({vfail}), бақылау нүктесінде де ({cfail}) жауап "
                     "бермейді: сайт істемейді",
        "http_redirect_unmatched": "{hop_host} мекенжайына бағыттау өлшеу нүктесінде сәтсіз "
                                   "болды ({vfail}); бақылау нүктесі ол жаққа бағытталмады және "
                                   "HTTP {cstatus} алды",
        "http_failure": "қосылым жұмыс істесе де, {host} сайтына HTTP сұрауы сәтсіз болды "
                        "({vfail}); бақылау нүктесі HTTP {cstatus} алды",
        "http_blockpage": "{host} үшін жауап — белгілі бұғаттау беті ({fingerprints})",
        "http_broke_off": "{host} жауабы {vbytes} келгеннен кейін үзілді ({vfail}); бақылау "
                          "нүктесі бетті толық алды ({cbytes})",
        "http_server_side": "сервер жағындағы шектеу, мемлекеттік бұғаттау емес: сайт не оның "
                            "CDN-і өлшеу нүктесіне былай жауап берді: {what} (HTTP {vstatus}); "
                            "бақылау нүктесі {cdesc} алды",
        "http_server_errors": "сайт барлық жерде сервер қателерімен жауап береді (өлшеу "
                              "нүктесінде HTTP {vstatus}, бақылау нүктесінде {cstatus})",
        "http_redirect_diff": "{host} өлшеу нүктесін {vfinal} мекенжайына бағыттады; бақылау "
                              "нүктесі {cfinal} мекенжайына жетті",
        "http_diff": "өлшеу нүктесі {vdesc} алды; бақылау нүктесі {cdesc} алды",
        "hop_blocked": "{hop_host} мекенжайына бағыттау: {said}, бақылау нүктесінен жұмыс "
                       "істейді",
        "hop_down": "{hop_host} мекенжайына бағыттау: {said}, бақылау нүктесінен де ({cfail}): "
                    "{hop_host} істемейді",
        "throttled_transfer": "{host} беті өлшеу нүктесінде {vrate} жылдамдықпен жүктелді "
                              "({vsecs} ішінде {vbytes}, содан кейін күту уақыты бітіп, жүктеу "
                              "тоқтады), бақылау нүктесінде {crate}",
        "throttled_handshake": "{host} сайтымен TLS қол алысуы өлшеу нүктесінде {vsecs}, "
                               "бақылау нүктесінде {csecs} созылды",
        "throttled_page": "{host} беті өлшеу нүктесінде {vrate}, бақылау нүктесінде {crate} "
                          "жылдамдықпен жүктелді",
    },
}

# The words inside a reason: what a DNS failure means, how a handshake failed, which step of a
# redirect failed, and the small words of address lists and numbers.
DNS_WORDS: dict[str, dict[str, str]] = {
    "en": {F.DNS_NXDOMAIN: "NXDOMAIN (the name does not exist)",
           F.DNS_SERVFAIL: "SERVFAIL (the resolver failed)", F.DNS_REFUSED: "REFUSED",
           F.DNS_NO_ANSWER: "no address", F.DNS_TIMEOUT: "nothing (the query timed out)",
           F.DNS_BOGUS: "a malformed reply"},
    "ru": {F.DNS_NXDOMAIN: "NXDOMAIN (такого имени нет)",
           F.DNS_SERVFAIL: "SERVFAIL (сбой резолвера)", F.DNS_REFUSED: "REFUSED (отказ)",
           F.DNS_NO_ANSWER: "ответ без адреса", F.DNS_TIMEOUT: "ничего (истёк тайм-аут)",
           F.DNS_BOGUS: "искажённый ответ"},
    "kk": {F.DNS_NXDOMAIN: "NXDOMAIN (мұндай атау жоқ)",
           F.DNS_SERVFAIL: "SERVFAIL (резолвер ақауы)", F.DNS_REFUSED: "REFUSED (бас тарту)",
           F.DNS_NO_ANSWER: "мекенжайсыз жауап", F.DNS_TIMEOUT: "ештеңе (күту уақыты бітті)",
           F.DNS_BOGUS: "бұзылған жауап"},
}
# Every failure string (vocabulary.FAILURES) in words, where a reason gives the failure in
# brackets: "(connection refused, connection_refused)" in every language, the words for the
# reader and OONI's code after them for experts (it is what they search for). A code not listed
# (an agent's newer one) reads as the code itself. The Kazakh wants a native speaker's review.
FAILURE_WORDS: dict[str, dict[str, str]] = {
    "en": {F.DNS_NXDOMAIN: "the name does not exist", F.DNS_SERVFAIL: "the resolver failed",
           F.DNS_REFUSED: "the resolver refused the query", F.DNS_NO_ANSWER: "no address",
           F.DNS_TIMEOUT: "the DNS query timed out", F.DNS_BOGUS: "a malformed DNS reply",
           F.CONNECTION_REFUSED: "connection refused", F.CONNECTION_RESET: "connection reset",
           F.GENERIC_TIMEOUT: "timed out", F.EOF_ERROR: "connection closed unexpectedly",
           F.HOST_UNREACHABLE: "host unreachable", F.NETWORK_UNREACHABLE: "network unreachable",
           F.SSL_INVALID_CERTIFICATE: "invalid certificate",
           F.SSL_UNKNOWN_AUTHORITY: "certificate from an unknown authority",
           F.SSL_INVALID_HOSTNAME: "certificate for another name",
           F.SSL_FAILED_HANDSHAKE: "TLS handshake failed",
           F.HTTP_BODY_TOO_LARGE: "page too large",
           F.HTTP_TOO_MANY_REDIRECTS: "too many redirects",
           F.HTTP_PROTOCOL_ERROR: "malformed HTTP response", F.UNKNOWN: "unknown failure"},
    "ru": {F.DNS_NXDOMAIN: "такого имени нет", F.DNS_SERVFAIL: "сбой резолвера",
           F.DNS_REFUSED: "резолвер отказал в ответе", F.DNS_NO_ANSWER: "ответ без адреса",
           F.DNS_TIMEOUT: "истёк тайм-аут DNS-запроса", F.DNS_BOGUS: "искажённый ответ DNS",
           F.CONNECTION_REFUSED: "соединение отклонено",
           F.CONNECTION_RESET: "соединение сброшено", F.GENERIC_TIMEOUT: "истёк тайм-аут",
           F.EOF_ERROR: "соединение неожиданно закрыто", F.HOST_UNREACHABLE: "узел недоступен",
           F.NETWORK_UNREACHABLE: "сеть недоступна",
           F.SSL_INVALID_CERTIFICATE: "недействительный сертификат",
           F.SSL_UNKNOWN_AUTHORITY: "сертификат выдан неизвестным центром",
           F.SSL_INVALID_HOSTNAME: "сертификат выдан на другое имя",
           F.SSL_FAILED_HANDSHAKE: "сбой TLS-рукопожатия",
           F.HTTP_BODY_TOO_LARGE: "страница слишком большая",
           F.HTTP_TOO_MANY_REDIRECTS: "слишком много перенаправлений",
           F.HTTP_PROTOCOL_ERROR: "искажённый HTTP-ответ", F.UNKNOWN: "неизвестный сбой"},
    "kk": {F.DNS_NXDOMAIN: "мұндай атау жоқ", F.DNS_SERVFAIL: "резолвер ақауы",
           F.DNS_REFUSED: "резолвер жауап беруден бас тартты",
           F.DNS_NO_ANSWER: "мекенжайсыз жауап",
           F.DNS_TIMEOUT: "DNS сұрауының күту уақыты бітті",
           F.DNS_BOGUS: "бұзылған DNS жауабы", F.CONNECTION_REFUSED: "қосылымнан бас тартылды",
           F.CONNECTION_RESET: "қосылым үзілді", F.GENERIC_TIMEOUT: "күту уақыты бітті",
           F.EOF_ERROR: "қосылым күтпеген жерден жабылды", F.HOST_UNREACHABLE: "түйін қолжетімсіз",
           F.NETWORK_UNREACHABLE: "желі қолжетімсіз",
           F.SSL_INVALID_CERTIFICATE: "жарамсыз сертификат",
           F.SSL_UNKNOWN_AUTHORITY: "сертификатты белгісіз орталық берген",
           F.SSL_INVALID_HOSTNAME: "сертификат басқа атауға берілген",
           F.SSL_FAILED_HANDSHAKE: "TLS қол алысуы сәтсіз",
           F.HTTP_BODY_TOO_LARGE: "бет тым үлкен", F.HTTP_TOO_MANY_REDIRECTS: "бағыттау тым көп",
           F.HTTP_PROTOCOL_ERROR: "бұзылған HTTP жауабы", F.UNKNOWN: "белгісіз ақау"},
}
HOW: dict[str, dict[str, str]] = {
    "en": {F.CONNECTION_RESET: "was reset after the ClientHello",
           F.GENERIC_TIMEOUT: "stalled after the ClientHello",
           F.EOF_ERROR: "was closed after the ClientHello", "": "failed ({vfail})"},
    "ru": {F.CONNECTION_RESET: "сброшено после ClientHello",
           F.GENERIC_TIMEOUT: "зависло после ClientHello",
           F.EOF_ERROR: "закрыто после ClientHello", "": "не удалось ({vfail})"},
    "kk": {F.CONNECTION_RESET: "ClientHello-дан кейін үзілді",
           F.GENERIC_TIMEOUT: "ClientHello-дан кейін тоқтап қалды",
           F.EOF_ERROR: "ClientHello-дан кейін жабылды", "": "сәтсіз болды ({vfail})"},
}
STEP_SAID: dict[str, dict[str, str]] = {
    "en": {"dns": "DNS for {hop_host} failed at the vantage ({vsaid})",
           "tcp": "connecting to {hop_host} failed at the vantage ({vfail})",
           "tls": "the TLS handshake with {hop_host} failed at the vantage ({vfail})",
           "http": "the HTTP request to {hop_host} failed at the vantage ({vfail})"},
    "ru": {"dns": "DNS для {hop_host} не сработал в точке измерения ({vsaid})",
           "tcp": "подключение к {hop_host} не удалось в точке измерения ({vfail})",
           "tls": "TLS-рукопожатие с {hop_host} не удалось в точке измерения ({vfail})",
           "http": "HTTP-запрос к {hop_host} не удался в точке измерения ({vfail})"},
    "kk": {"dns": "өлшеу нүктесінде {hop_host} үшін DNS сәтсіз болды ({vsaid})",
           "tcp": "өлшеу нүктесінде {hop_host} мекенжайына қосылу сәтсіз болды ({vfail})",
           "tls": "өлшеу нүктесінде {hop_host} мекенжайымен TLS қол алысуы сәтсіз болды ({vfail})",
           "http": "өлшеу нүктесінде {hop_host} мекенжайына HTTP сұрауы сәтсіз болды ({vfail})"},
}
WORDS: dict[str, dict[str, str]] = {
    "en": {"nothing": "nothing", "more": " and {n} more", "private": " (a private address)",
           "unknown": "unknown", "not_measured": "not measured", "bytes": "{n} bytes",
           "kb": "{n} KB", "secs": "{n} s", "rate": "{n} KB/s", "open": "\u201c",
           "close": "\u201d", "point": "."},
    "ru": {"nothing": "ничего", "more": " и ещё {n}", "private": " (частный адрес)",
           "unknown": "неизвестен", "not_measured": "не измерялось", "bytes": "{n} байт",
           "kb": "{n} КБ", "secs": "{n} с", "rate": "{n} КБ/с", "open": "«", "close": "»",
           "point": ","},
    "kk": {"nothing": "ештеңе", "more": " және тағы {n}", "private": " (жеке мекенжай)",
           "unknown": "белгісіз", "not_measured": "өлшенбеді", "bytes": "{n} байт",
           "kb": "{n} КБ", "secs": "{n} с", "rate": "{n} КБ/с", "open": "«", "close": "»",
           "point": ","},
}
# What a site's or its CDN's own page is (data/fingerprints.json "server_side", blockwatch's own
# entries, by id) and which interception authority a certificate belongs to (the `note` of
# data/interception.json, which the keys store): the data is English, a reader's words are not.
# An entry not listed here reads as the data says (a test lists every shipped one).
SERVER_SIDE: dict[str, dict[str, str]] = {
    "en": {},  # the data's own `what`
    "ru": {"bw_cloudflare_challenge": "проверка браузера Cloudflare (защита от ботов)",
           "bw_cloudflare_header_challenge": "проверка Cloudflare (по заголовку ответа)",
           "bw_cloudflare_blocked": "правило межсетевого экрана Cloudflare заблокировало "
                                    "посетителя",
           "bw_cloudflare_country_ban": "владелец сайта закрыл доступ из страны посетителя "
                                        "(ошибка Cloudflare 1009)",
           "bw_cloudflare_1020": "правило доступа Cloudflare не пустило посетителя (ошибка 1020)",
           "bw_ddos_guard": "проверка DDoS-Guard (защита от ботов)",
           "bw_captcha": "CAPTCHA",
           "bw_akamai_denied": "Akamai отказал в доступе (часто это ограничение по региону)",
           "bw_geo_block_text": "сайт сообщает, что недоступен в стране посетителя",
           "bw_qrator": "проверка Qrator (защита от ботов)",
           "bw_sucuri": "межсетевой экран Sucuri не пустил посетителя"},
    "kk": {"bw_cloudflare_challenge": "Cloudflare браузер тексеруі (боттардан қорғау)",
           "bw_cloudflare_header_challenge": "Cloudflare тексеруі (жауап тақырыбы бойынша)",
           "bw_cloudflare_blocked": "Cloudflare желіаралық экранының ережесі келушіні бұғаттады",
           "bw_cloudflare_country_ban": "сайт иесі келушінің елінен кіруге тыйым салған "
                                        "(Cloudflare 1009 қатесі)",
           "bw_cloudflare_1020": "Cloudflare кіру ережесі келушіні өткізбеді (1020 қатесі)",
           "bw_ddos_guard": "DDoS-Guard тексеруі (боттардан қорғау)",
           "bw_captcha": "CAPTCHA",
           "bw_akamai_denied": "Akamai кіруге рұқсат бермеді (көбіне аймақ бойынша шектеу)",
           "bw_geo_block_text": "сайт келушінің елінде қолжетімсіз екенін хабарлайды",
           "bw_qrator": "Qrator тексеруі (боттардан қорғау)",
           "bw_sucuri": "Sucuri желіаралық экраны келушіні өткізбеді"},
}
AUTHORITY: dict[str, dict[str, str]] = {
    "en": {},
    "ru": {"Kazakhstan's 2019 interception certificate":
           "казахстанский сертификат перехвата 2019 года",
           "Information Security Certification Authority (2020-24, intermediates rotating about "
           "every 75 days)": "Information Security Certification Authority (2020–2024, "
                             "промежуточные сертификаты менялись примерно каждые 75 дней)",
           "the same, by common name": "тот же центр, по общему имени (CN)"},
    "kk": {"Kazakhstan's 2019 interception certificate":
           "Қазақстанның 2019 жылғы трафикті ұстап қалу сертификаты",
           "Information Security Certification Authority (2020-24, intermediates rotating about "
           "every 75 days)": "Information Security Certification Authority (2020–2024, аралық "
                             "сертификаттар шамамен 75 күн сайын ауысып отырды)",
           "the same, by common name": "сол орталық, жалпы атауы (CN) бойынша"},
}
# a resolver's failed control query, "<name>: <failure>" (resolver_round.py); no failure string:
RESOLVER_NO_ANSWER = "no answer"

# every table above, for the test that no language lacks an entry
TABLES = {"TEMPLATES": TEMPLATES, "DNS_WORDS": DNS_WORDS, "FAILURE_WORDS": FAILURE_WORDS,
          "HOW": HOW, "STEP_SAID": STEP_SAID, "WORDS": WORDS}


def _num(lang: str, x: float, fmt: str) -> str:
    return format(x, fmt).replace(".", WORDS[lang]["point"])


def _kb(lang: str, n: int | None) -> str:
    n = n or 0
    w = WORDS[lang]
    return w["kb"].format(n=f"{n / 1024:.0f}") if n >= 1024 else w["bytes"].format(n=n)


def _secs(lang: str, ms: float | None) -> str:
    return WORDS[lang]["secs"].format(n=_num(lang, (ms or 0.0) / 1000, ".1f"))


def _rate(lang: str, bytes_per_s: float | None) -> str:
    kbs = (bytes_per_s or 0.0) / 1024
    return WORDS[lang]["rate"].format(n=_num(lang, kbs, ".1f" if kbs < 10 else ".0f"))


def _addrs(lang: str, addrs: Sequence[str], n: int = 3) -> str:
    if not addrs:
        return WORDS[lang]["nothing"]
    s = ", ".join(addrs[:n])
    return s + (WORDS[lang]["more"].format(n=len(addrs) - n) if len(addrs) > n else "")


def _with_net(lang: str, addrs: Sequence[str], networks: Mapping[str, str],
              private: Sequence[str]) -> str:
    """Addresses with their network, or a note that one is private (a network means nothing)."""
    out = []
    for a in addrs[:3]:
        note = WORDS[lang]["private"] if a in private else ""
        network = networks.get(a) if not note else None
        out.append(f"{a}{note}{f' ({network})' if network else ''}")
    return _addrs(lang, out + list(addrs[3:])) if len(addrs) > 3 else ", ".join(out)


def _title(lang: str, title: str | None, n: int) -> str:
    w = WORDS[lang]
    return f" {w['open']}{title[:n]}{w['close']}" if title else ""


def _desc(lang: str, status: Any, title: str | None, n: int | None) -> str:
    return f"HTTP {status}{_title(lang, title, 50)} ({_kb(lang, n)})"


def _what(lang: str, fingerprints: Sequence[str], note: str | None) -> str:
    """A server-side page in the reader's words (by its fingerprint id), else the data's note."""
    for fp in fingerprints[:1]:
        if fp in SERVER_SIDE[lang]:
            return SERVER_SIDE[lang][fp]
    return note or ", ".join(fingerprints[:1])


def _failure(lang: str, code: str | None) -> str:
    """A failure string in brackets' words: "connection refused, connection_refused"."""
    if not code:
        return WORDS[lang]["unknown"]
    words = FAILURE_WORDS[lang].get(code)
    return f"{words}, {code}" if words else code


def _dns_said(lang: str, code: str | None) -> str:
    """A DNS failure said inline ("NXDOMAIN (the name does not exist)"); any other failure a
    resolver met in the words of `_failure`."""
    return DNS_WORDS[lang].get(code or "") or _failure(lang, code)


def _resolver_problem(lang: str, problem: str) -> str:
    """"kz.example: dns_servfail_error" with the failure in the reader's words."""
    name, sep, failure = problem.rpartition(": ")
    if not sep:
        return problem
    failure = F.DNS_NO_ANSWER if failure == RESOLVER_NO_ANSWER else failure
    return f"{name}: {_dns_said(lang, failure)}"


def _n(k: Any, name: str) -> list[Any]:
    return list(k(name) or ())


# Each placeholder from the keys, computed only when the template names it (a page renders
# thousands of reasons; most placeholders are not in any one template).
_FIELDS: dict[str, Callable[[Any, str, Mapping[str, Any]], Any]] = {
    "host": lambda k, lang, c: k("host") or "",
    "hop_host": lambda k, lang, c: k("hop_host") or "",
    "port": lambda k, lang, c: k("port"),
    "address": lambda k, lang, c: (_n(k, "vantage_addresses") or [""])[0],
    "vaddrs": lambda k, lang, c: _addrs(lang, _n(k, "vantage_addresses")),
    "caddrs": lambda k, lang, c: _addrs(lang, _n(k, "control_addresses")),
    "vaddrs_net": lambda k, lang, c: _with_net(lang, _n(k, "vantage_addresses"),
                                               k("networks") or {}, _n(k, "private_addresses")),
    "caddrs_net": lambda k, lang, c: _with_net(lang, _n(k, "control_addresses"),
                                               k("networks") or {}, ()),
    "injected": lambda k, lang, c: _addrs(lang, _n(k, "injected_addresses")),
    "vfail": lambda k, lang, c: _failure(lang, k("vantage_failure")),
    "cfail": lambda k, lang, c: (_failure(lang, k("control_failure")) if k("control_failure")
                                 else WORDS[lang]["not_measured"]),
    "vsaid": lambda k, lang, c: _dns_said(lang, k("vantage_failure")),
    "csaid": lambda k, lang, c: _dns_said(lang, k("control_failure")),
    "issuer": lambda k, lang, c: k("issuer") or WORDS[lang]["unknown"],
    "authority": lambda k, lang, c: AUTHORITY[lang].get(k("authority") or "",
                                                        k("authority") or ""),
    "resolver_problem": lambda k, lang, c: _resolver_problem(lang, k("resolver_problem") or ""),
    "fingerprints": lambda k, lang, c: ", ".join(_n(k, "fingerprints")[:2]),
    "what": lambda k, lang, c: _what(lang, _n(k, "fingerprints"), k("fingerprint_note")),
    "vstatus": lambda k, lang, c: k("vantage_status"),
    "cstatus": lambda k, lang, c: k("control_status"),
    "vtitle": lambda k, lang, c: _title(lang, k("vantage_title"), 60),
    "vdesc": lambda k, lang, c: _desc(lang, k("vantage_status"), k("vantage_title"),
                                      k("vantage_bytes")),
    "cdesc": lambda k, lang, c: _desc(lang, k("control_status"), k("control_title"),
                                      k("control_bytes")),
    "vbytes": lambda k, lang, c: _kb(lang, k("vantage_bytes")),
    "cbytes": lambda k, lang, c: _kb(lang, k("control_bytes")),
    "vsecs": lambda k, lang, c: _secs(lang, k("vantage_ms")),
    "csecs": lambda k, lang, c: _secs(lang, k("control_ms")),
    "vrate": lambda k, lang, c: _rate(lang, k("vantage_rate")),
    "crate": lambda k, lang, c: _rate(lang, k("control_rate")),
    "vfinal": lambda k, lang, c: k("vantage_final_host") or "",
    "cfinal": lambda k, lang, c: k("control_final_host") or "",
    "how": lambda k, lang, c: HOW[lang].get(k("vantage_failure") or "",
                                            HOW[lang][""]).format_map(c),
    "said": lambda k, lang, c: STEP_SAID[lang].get(str(k("step") or ""),
                                                   STEP_SAID[lang]["http"]).format_map(c),
}


class _Context(dict[str, Any]):
    """The placeholders of one reason, each computed on first use."""

    def __init__(self, keys: Mapping[str, Any], lang: str) -> None:
        super().__init__()
        self.get_key, self.lang = keys.get, lang

    def __missing__(self, name: str) -> Any:
        value = self[name] = _FIELDS[name](self.get_key, self.lang, self)
        return value


def render(keys: Mapping[str, Any], lang: str = "en") -> str | None:
    """The reason in `lang` (en, ru or kk; anything else reads English), or None when the keys
    name no known explanation: the caller shows the stored English text then."""
    lang = lang if lang in TEMPLATES else "en"
    template = TEMPLATES[lang].get(str(keys.get("why") or ""))
    if template is None:
        return None
    # our templates have no bidi controls: any in the result came with a value from outside
    return visible_bidi(template.format_map(_Context(keys, lang)))


# --- OONI imports: OONI's judgement as text, in the fixed form ooni/mapping.py writes ----------
# ("OONI's verdict from AS9198: <what>[ (confirmed: ...)][; <link>]"), read back so that it too
# reads in every language. A test writes every form through ooni/mapping.py and reads it here.

OONI_EN = {
    "failed": "the measurement failed (the probe or OONI's control could not complete it), so it "
              "says nothing about blocking",
    "unreliable": "OONI marks this measurement as unreliable (accuracy 0)",
    "ok": "no anomaly, the site was reachable",
    "dns": "DNS anomaly: the probe's resolver answered differently from OONI's control",
    "tcp_ip": "TCP/IP anomaly: connecting to the site's addresses failed while OONI's control "
              "connected",
    "http_failure": "HTTP failure: the request (TLS handshake included) failed while OONI's "
                    "control succeeded",
    "http_diff": "HTTP difference: the page differs from the one OONI's control received",
    "http_blockpage": "confirmed blocking: OONI matched a known blockpage",
}
OONI: dict[str, dict[str, str]] = {
    "ru": {"who": "вердикт OONI из сети {asn}",
           "failed": "измерение не удалось (зонд или контрольная точка OONI не смогли его "
                     "завершить), о блокировке оно ничего не говорит",
           "unreliable": "OONI отмечает это измерение как ненадёжное (точность 0)",
           "ok": "аномалии нет, сайт был доступен",
           "dns": "аномалия DNS: резолвер зонда ответил иначе, чем контрольная точка OONI",
           "tcp_ip": "аномалия TCP/IP: подключение к адресам сайта не удалось, а контрольная "
                     "точка OONI подключилась",
           "http_failure": "сбой HTTP: запрос (включая TLS-рукопожатие) не удался, а у "
                           "контрольной точки OONI прошёл",
           "http_diff": "различие HTTP: страница отличается от полученной контрольной точкой "
                        "OONI",
           "http_blockpage": "подтверждённая блокировка: OONI распознал известную страницу "
                             "блокировки",
           "confirmed": " (подтверждено: совпал известный адрес блокировки или страница "
                        "блокировки)",
           "unknown_type": "аномалия неизвестного типа «{type}», которую blockwatch не может "
                           "истолковать",
           "no_type": "аномалия без типа, которую blockwatch не может истолковать"},
    "kk": {"who": "OONI шешімі ({asn} желісі)",
           "failed": "өлшеу сәтсіз аяқталды (зонд немесе OONI бақылау нүктесі оны аяқтай "
                     "алмады), бұғаттау туралы ештеңе айтпайды",
           "unreliable": "OONI бұл өлшеуді сенімсіз деп белгілеген (дәлдігі 0)",
           "ok": "ауытқу жоқ, сайт қолжетімді болды",
           "dns": "DNS ауытқуы: зондтың резолвері OONI бақылау нүктесінен өзгеше жауап берді",
           "tcp_ip": "TCP/IP ауытқуы: сайт мекенжайларына қосылу сәтсіз болды, ал OONI бақылау "
                     "нүктесі қосылды",
           "http_failure": "HTTP қатесі: сұрау (TLS қол алысуын қоса) сәтсіз болды, ал OONI "
                           "бақылау нүктесінде сәтті өтті",
           "http_diff": "HTTP айырмашылығы: бет OONI бақылау нүктесі алған беттен өзгеше",
           "http_blockpage": "расталған бұғаттау: OONI белгілі бұғаттау бетін таныды",
           "confirmed": " (расталды: белгілі бұғаттау мекенжайы немесе бұғаттау беті сәйкес "
                        "келді)",
           "unknown_type": "blockwatch түсіндіре алмайтын, түрі белгісіз («{type}») ауытқу",
           "no_type": "blockwatch түсіндіре алмайтын, түрі көрсетілмеген ауытқу"},
}
OONI_CONFIRMED_EN = " (confirmed: a known block address or blockpage matched)"
_OONI = re.compile(r"OONI's verdict from (?P<asn>\S+): (?P<body>.*?)(?P<link>; \S+)?", re.S)
_OONI_UNKNOWN = re.compile(r"an anomaly (?:of unknown type (?P<type>'.*')|without a type), "
                           r"which blockwatch cannot interpret", re.S)
_OONI_BODY = {v: k for k, v in OONI_EN.items()}


def ooni_text(stored: str, lang: str) -> str | None:
    """An OONI import's stored English reason in `lang`, or None when it is not in the form
    ooni/mapping.py writes."""
    words = OONI.get(lang)
    m = _OONI.fullmatch(stored) if words else None
    if words is None or m is None:
        return None
    body, extra = m["body"], ""
    if body.endswith(OONI_CONFIRMED_EN):
        body, extra = body[: -len(OONI_CONFIRMED_EN)], words["confirmed"]
    if body in _OONI_BODY:
        what = words[_OONI_BODY[body]]
    elif (u := _OONI_UNKNOWN.fullmatch(body)) is not None:
        what = (words["unknown_type"].format(type=u["type"][1:-1]) if u["type"]
                else words["no_type"])
    else:
        return None
    return f"{words['who'].format(asn=m['asn'])}: {what}{extra}{m['link'] or ''}"


def said(keys: Mapping[str, Any] | None, stored: str, lang: str) -> tuple[str, str]:
    """The reason a reader of `lang` sees and the language it is in: rendered from the keys in
    `lang`; an OONI import's text read back in `lang`; else the stored text, which is English
    (rows stored before keys existed). Pages mark that one with lang="en" and a note rather than
    pass it off as translated."""
    lang = lang if lang in TEMPLATES else "en"
    text = render(keys, lang) if keys else None
    if text is None and lang != "en" and stored.startswith("OONI"):
        text = ooni_text(stored, lang)
    if text is None:
        return visible_bidi(stored), "en"
    return visible_bidi(text), lang
