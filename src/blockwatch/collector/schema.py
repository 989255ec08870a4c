"""The wire format of the agent API: pydantic models mirroring probe/records.py, so a bad
upload gets a 422 naming the field instead of a 500 from a dataclass constructor.

Unknown keys are ignored (not rejected): volunteers upgrade their agents at their own pace, and a
newer agent with an extra evidence field must not have its queue refused forever."""

from __future__ import annotations

import json
import types
import typing
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Union
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from typing_extensions import TypedDict

from blockwatch.agent.queue import MAX_AGE
from blockwatch.textsafe import printable
from blockwatch.vocabulary import ASN_PATTERN

# Bounds keep one upload from making the collector build huge objects; the byte limit
# (`server.max_body`) is the outer bound.
Short = Annotated[str, Field(max_length=512)]
Text = Annotated[str, Field(max_length=8192)]
Failure = Annotated[str | None, Field(max_length=256)]
FUTURE_SLACK = timedelta(minutes=10)  # agents' clocks drift; a day ahead is a bug
MAX_BATCH = 2000


class _In(BaseModel):
    # NaN and Infinity are not JSON (Python writes them anyway): refused per field
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class DnsQueryIn(_In):
    resolver: Short
    transport: Short
    qname: Short
    qtype: Short
    rcode: Short | None = None
    answers: list[Short] = Field(default_factory=list, max_length=256)
    ttls: list[int] = Field(default_factory=list, max_length=256)
    cnames: list[Short] = Field(default_factory=list, max_length=64)
    bogons: list[Short] = Field(default_factory=list, max_length=256)
    extra_replies: list[list[Short]] = Field(default_factory=list, max_length=16)
    failure: Failure = None
    t_ms: float = 0.0


class TcpConnectIn(_In):
    address: Short
    port: int = Field(ge=0, le=65535)
    status: Short
    failure: Failure = None
    t_ms: float = 0.0


class CertInfoIn(_In):
    subject: Text
    issuer: Text
    not_before: Short
    not_after: Short
    sha256: Short
    san: list[Short] = Field(default_factory=list, max_length=1024)


class TlsHandshakeIn(_In):
    address: Short
    port: int = Field(ge=0, le=65535)
    sni: Short
    failure: Failure = None
    verify_error: Text | None = None
    version: Short | None = None
    cipher: Short | None = None
    chain: list[CertInfoIn] = Field(default_factory=list, max_length=16)
    t_ms: float = 0.0


class HttpHopIn(_In):
    url: Text
    address: Short | None = None
    status: int | None = None
    headers: list[list[Text]] = Field(default_factory=list, max_length=256)
    location: Text | None = None
    failure: Failure = None
    step: Short | None = None
    t_ms: float = 0.0


class HttpResultIn(_In):
    hops: list[HttpHopIn] = Field(default_factory=list, max_length=32)
    final_url: Text | None = None
    status: int | None = None
    headers: dict[str, Text] = Field(default_factory=dict)
    title: Text = ""
    body_length: int = Field(0, ge=0)
    body_sha256: Short | None = None
    body_truncated: bool = False
    body_excerpt: Annotated[str, Field(max_length=65536)] | None = None
    fingerprints: list[Short] = Field(default_factory=list, max_length=64)
    failure: Failure = None
    t_ms: float = 0.0
    ttfb_ms: float = 0.0
    transfer_ms: float = 0.0
    received_bytes: int | None = Field(None, ge=0)
    deadline_exceeded: bool = False


class MeasurementIn(_In):
    """One `WebMeasurement.to_json()` plus what only the agent knows about its round."""

    url: Annotated[str, Field(max_length=2048)]
    uid: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,63}$")]
    measured_at: Short
    vantage: Short = ""  # ignored: the token says who the agent is
    role: Short = "vantage"  # ignored: an agent's measurement is always a vantage's
    resolvers: list[Short] = Field(default_factory=list, max_length=16)
    dns: list[DnsQueryIn] = Field(default_factory=list, max_length=64)
    tcp: list[TcpConnectIn] = Field(default_factory=list, max_length=64)
    tls: list[TlsHandshakeIn] = Field(default_factory=list, max_length=64)
    http: HttpResultIn | None = None
    ipv6: bool = False
    source_address: Short | None = None  # dropped on arrival: it is the volunteer's address
    t_ms: float = 0.0
    round_id: Annotated[str, Field(max_length=64)] | None = None
    vantage_ok: bool = Field(True, description="false when every canary failed in the agent's round")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http:// or https:// URL")
        return v

    @field_validator("measured_at")
    @classmethod
    def _time(cls, v: str) -> str:
        """Within [now - the agent queue's maximum age, now + FUTURE_SLACK]: an older one would
        be dropped from the agent's queue anyway, and a back-dated one must not be judged as if
        it were news."""
        try:
            t = datetime.fromisoformat(v.replace("Z", "+00:00"))
            if t.tzinfo is None:
                raise ValueError("the time needs a UTC offset (\"Z\")")
            t = t.astimezone(UTC)  # year 1 at +01:00 is before datetime.min: OverflowError
        except OverflowError:
            raise ValueError("the time is out of range") from None
        except ValueError as exc:
            if "UTC offset" in str(exc):
                raise
            raise ValueError("not an ISO 8601 time like 2025-01-31T12:00:00.000Z") from None
        now = datetime.now(UTC)
        if t - now > FUTURE_SLACK:
            raise ValueError("the time is in the future: check the agent's clock")
        if now - t > MAX_AGE:
            raise ValueError(f"the time is more than {MAX_AGE.days} days ago: too old to judge")
        return v


class MeasurementBatch(_In):
    measurements: list[MeasurementIn] = Field(min_length=1, max_length=MAX_BATCH)
    asn: Annotated[str, Field(pattern=ASN_PATTERN)] | None = Field(
        None, description="the agent's network, when its operator set it (e.g. AS9198)")
    agent_version: Short | None = None


def _mirror(tp: Any) -> Any:
    """`tp` with every model in it replaced by its TypedDict mirror (`_as_dict`)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _as_dict(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        return Annotated[(_mirror(args[0]), *tp.__metadata__)]
    if origin in (Union, types.UnionType):
        return Union[tuple(_mirror(a) for a in args)]  # noqa: UP007 (built at run time)
    if origin in (list, dict):
        return origin[tuple(_mirror(a) for a in args)]
    return tp


_MIRRORS: dict[type, Any] = {}


def _as_dict(model: type[BaseModel]) -> Any:
    """A TypedDict with the model's fields, bounds, defaults, after-validators and config:
    validating into it gives the dict `model.model_validate_json(raw).model_dump()` would, in
    one pass and without building (then dumping) the models: about 40% of the cost of reading
    an upload. Built from the model, so the two cannot drift apart."""
    if model in _MIRRORS:
        return _MIRRORS[model]
    decs = model.__pydantic_decorators__
    if decs.model_validators or decs.field_serializers or decs.model_serializers \
            or decs.computed_fields:  # what the mirror would not do as the model does
        raise TypeError(f"{model.__name__}: only fields and after-validators can be mirrored")
    after: dict[str, list[Any]] = {}
    for dec in decs.field_validators.values():
        if dec.info.mode != "after":  # only "after" ones are used here
            raise TypeError(f"{model.__name__}: a {dec.info.mode} field validator")
        for f in dec.info.fields:
            after.setdefault(f, []).append(AfterValidator(dec.func))
    fields: dict[str, Any] = {}
    for name, fi in model.model_fields.items():
        if fi.alias or fi.validation_alias or fi.serialization_alias or fi.exclude \
                or fi.validate_default:  # the mirror would read or dump it differently
            raise TypeError(f"{model.__name__}.{name}: aliases, exclude and validate_default "
                            "cannot be mirrored")
        kw: dict[str, Any] = {}
        if fi.default_factory is not None:
            kw["default_factory"] = fi.default_factory
        elif not fi.is_required():
            kw["default"] = fi.default
        extra = (*fi.metadata, *after.get(name, ()), *([Field(**kw)] if kw else []))
        tp = _mirror(fi.annotation)
        fields[name] = Annotated[(tp, *extra)] if extra else tp
    td = TypedDict(f"{model.__name__}Dict", fields)  # type: ignore[operator]
    td.__pydantic_config__ = model.model_config  # type: ignore[attr-defined]
    _MIRRORS[model] = td
    return td


# An upload as plain data: what MeasurementBatch accepts, as its model_dump()
UPLOAD: TypeAdapter[dict[str, Any]] = TypeAdapter(_as_dict(MeasurementBatch))


class Rejected(BaseModel):
    """One measurement refused for what it is (re-sending it will not help), the rest of its
    upload stored: the agent sets it aside."""

    uid: str
    error: str
    index: int | None = Field(None, description="its position in the upload (from 0)")
    status: int = Field(422, description="the HTTP status this item alone would have had")


class IngestResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[Rejected] = Field(default_factory=list)


class _Envelope(_In):
    """An upload whose measurements are read one by one (parse_per_item)."""

    measurements: list[Any] = Field(min_length=1, max_length=MAX_BATCH)
    asn: Annotated[str, Field(pattern=ASN_PATTERN)] | None = None
    agent_version: Short | None = None


def item_error(exc: ValidationError) -> str:
    """'http.t_ms: Input should be a finite number; ...' (at most 3 fields)."""
    parts = []
    for e in exc.errors()[:3]:
        where = ".".join(str(p) for p in e.get("loc", ())) or "measurement"
        parts.append(f"{where}: {e.get('msg', '').removeprefix('Value error, ')}")
    return "; ".join(parts)[:500]


def parse_per_item(raw: bytes) -> tuple[MeasurementBatch, list[Rejected]]:
    """The upload's valid measurements and the rejected ones, when validating it as a whole
    failed. Raises ValidationError (or ValueError: not JSON) for what is wrong with the upload
    as such: those stay a 422 for all of it."""
    data = json.loads(raw)  # Python's parser: reads lone surrogates and NaN, refused per item below
    env = _Envelope.model_validate(data)
    good: list[MeasurementIn] = []
    rejected: list[Rejected] = []
    for i, item in enumerate(env.measurements):
        try:
            good.append(MeasurementIn.model_validate(item))
        except ValidationError as exc:
            uid = item.get("uid") if isinstance(item, dict) else None
            rejected.append(Rejected(uid=printable(uid)[:128] if isinstance(uid, str) else "",
                                     error=item_error(exc), index=i))
    # model_construct: every measurement may have been rejected (min_length is the envelope's)
    return MeasurementBatch.model_construct(measurements=good, asn=env.asn,
                                            agent_version=env.agent_version), rejected


class TargetOut(BaseModel):
    name: str
    urls: list[str]


class ProbeOut(BaseModel):
    timeout_seconds: float
    body_limit: int
    interval_seconds: float
    user_agent: str


class TargetsOut(BaseModel):
    targets: list[TargetOut]
    max_body: int = Field(description="largest upload accepted, in bytes: batch below it")
    canaries: list[str]
    probe: ProbeOut
