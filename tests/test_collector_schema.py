"""The collector reads an upload into plain data (schema.UPLOAD, a TypedDict mirror of the
models): it must accept exactly what MeasurementBatch accepts and give exactly its model_dump(),
or refuse, leaving the models to name what is wrong."""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from blockwatch.collector.schema import UPLOAD, MeasurementBatch
from blockwatch.probe.records import (
    CertInfo,
    DnsQuery,
    HttpHop,
    HttpResult,
    TcpConnect,
    TlsHandshake,
    WebMeasurement,
)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _measurement() -> dict[str, Any]:
    host = "news.example"
    chain = [CertInfo(subject=f"CN={host}", issuer="CN=R11, O=Let's Encrypt, C=US",
                      not_before="2025-01-01T00:00:00Z", not_after="2026-04-01T00:00:00Z",
                      sha256="ab" * 32, san=[host])]
    m = WebMeasurement(
        url=f"https://{host}/", vantage="agent", role="vantage", measured_at=_iso(datetime.now(UTC)),
        uid="a1b2c3d4e5f6", resolvers=["system"],
        dns=[DnsQuery(resolver="system", transport="udp", qname=host, qtype="A", rcode="NOERROR",
                      answers=["192.0.2.1"], ttls=[300], t_ms=12.0)],
        tcp=[TcpConnect(address="192.0.2.1", port=443, status="ok", t_ms=18.3)],
        tls=[TlsHandshake(address="192.0.2.1", port=443, sni=host, version="TLSv1.3",
                          cipher="TLS_AES_256_GCM_SHA384", chain=chain, t_ms=35.2)],
        http=HttpResult(hops=[HttpHop(url=f"https://{host}/", address="192.0.2.1", status=200,
                                      headers=[["server", "nginx"]], t_ms=80.0)],
                        final_url=f"https://{host}/", status=200, headers={"server": "nginx"},
                        title="News", body_length=1000, body_sha256="cd" * 32, t_ms=120.5),
        t_ms=210.0)
    d = m.to_json()
    d["round_id"] = "r-1"
    return d


def _same(raw: bytes) -> None:
    try:
        want = MeasurementBatch.model_validate_json(raw).model_dump()
    except ValidationError:
        with pytest.raises(ValidationError):
            UPLOAD.validate_json(raw)
        return
    got = UPLOAD.validate_json(raw)
    assert got == want
    # the same types too (an int where the model gives a float would hash differently)
    assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)


def test_a_valid_upload_reads_as_its_model_dump() -> None:
    m = _measurement()
    m["extra_field_of_a_newer_agent"] = {"x": 1}
    m["tls"][0]["chain"][0]["unknown"] = "ignored"
    raw = json.dumps({"measurements": [m, _measurement()], "asn": "AS9198",
                      "agent_version": "1.2"}).encode()
    _same(raw)
    assert "extra_field_of_a_newer_agent" not in UPLOAD.validate_json(raw)["measurements"][0]
    # defaults filled in where the agent left a field out, as the models fill them
    bare = {"url": "https://news.example/", "uid": "a1b2c3d4e5f6",
            "measured_at": _iso(datetime.now(UTC))}
    _same(json.dumps({"measurements": [bare]}).encode())


@pytest.mark.parametrize("path, value", [
    (("url",), "ftp://news.example/"),  # a field validator
    (("url",), "https://"),
    (("uid",), "short"),  # a pattern
    (("measured_at",), "2020-01-01T00:00:00Z"),  # too old
    (("measured_at",), _iso(datetime.now(UTC) + timedelta(days=1))),  # in the future
    (("measured_at",), "2025-01-01T00:00:00"),  # no offset
    (("tcp", 0, "port"), 70000),  # a bound
    (("tcp", 0, "port"), "443"),  # lax: a numeric string is a number
    (("http", "body_length"), -1),
    (("http", "title"), "x" * 9000),  # a length
    (("dns", 0, "answers"), ["192.0.2.1"] * 300),  # a list's length
    (("tls", 0, "chain", 0, "subject"), None),  # a required string
    (("tls", 0, "t_ms"), math.inf),  # not finite
    (("tls", 0, "t_ms"), 5),  # an int where a float is
    (("http",), None),
    (("http",), "page"),
    (("round_id",), "r" * 65),
    (("vantage_ok",), "false"),
    (("ipv6",), 1),
])
def test_each_refusal_is_the_models(path: tuple[Any, ...], value: Any) -> None:
    m = _measurement()
    at: Any = m
    for k in path[:-1]:
        at = at[k]
    at[path[-1]] = value
    _same(json.dumps({"measurements": [m]}).encode())


def test_an_upload_refused_as_a_whole() -> None:
    for body in (b"", b"not json", b"[]", b'{"measurements": []}', b'{"measurements": [1]}',
                 b'{"measurements": [{}], "asn": "9198"}', b'{"measurements": [{"url": NaN}]}'):
        _same(body)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)


def _paths(v: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here] if here else []
    if isinstance(v, dict):
        for k, x in v.items():
            out += _paths(x, (*here, k))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out += _paths(x, (*here, i))
    return out


_BASE = _measurement()
_PATHS = _paths(_BASE)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_PATHS), _json), min_size=1, max_size=3),
       st.booleans())
def test_any_change_reads_the_same(changes: list[tuple[tuple[Any, ...], Any]],
                                   drop: bool) -> None:
    m = copy.deepcopy(_BASE)
    for path, value in changes:
        at: Any = m
        try:
            for k in path[:-1]:
                at = at[k]
            if drop and isinstance(at, dict):
                del at[path[-1]]
            else:
                at[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change took the path away
    _same(json.dumps({"measurements": [m]}).encode())


@pytest.mark.parametrize("field", [
    {"alias": "b"}, {"validation_alias": "b"}, {"serialization_alias": "b"}, {"exclude": True},
    {"validate_default": True},
])
def test_field_options_the_mirror_would_not_honour_are_refused(field: dict[str, Any]) -> None:
    """A model changed later (a field renamed by alias, or excluded from what is stored, as an
    address might be) must not be read differently by the mirror: building it fails instead."""
    from pydantic import BaseModel, Field

    from blockwatch.collector.schema import _as_dict

    class Changed(BaseModel):
        a: int = Field(0, **field)

    with pytest.raises(TypeError, match="cannot be mirrored"):
        _as_dict(Changed)
