"""The collector's HTTP API (FastAPI) and the status site.

Authentication and the body limit live in a plain ASGI guard in front of FastAPI, because
FastAPI reads (and parses) the whole body before any dependency runs: a stranger's upload must
be refused before one byte of it is read, and a huge one before it is held in memory."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import func, select, text
from starlette.staticfiles import StaticFiles

from blockwatch import __version__
from blockwatch.analysis.verdict import worst
from blockwatch.collector.ingest import Ingestor
from blockwatch.collector.schema import (
    UPLOAD,
    IngestResult,
    MeasurementBatch,
    Rejected,
    TargetsOut,
    parse_per_item,
)
from blockwatch.collector.state import CollectorState
from blockwatch.config import AgentVantage
from blockwatch.storage import repo
from blockwatch.storage.models import Target, UrlState, Vantage, Verdict

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API = "/api/v1"
DEFAULT_MAX_BODY = 2 * 2**20  # ServerConfig's default, for `run` without a [server] table
DRAIN_FACTOR = 4  # a refused body up to 4x the limit is read to the end so the 413 arrives
AUTHENTICATED = {f"{API}/measurements", f"{API}/targets"}


async def _reply(send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        # the unread rest of the request is still on the wire: this connection cannot be reused
        (b"connection", b"close"), *extra]})
    await send({"type": "http.response.body", "body": body})


async def _discard(receive: Receive, budget: int) -> None:
    """Read and drop the rest of a refused body, up to `budget` bytes. A client still writing
    when the server closes gets a reset instead of the 413 (and would retry the same batch
    forever); past the budget, protecting the server wins."""
    while budget > 0:
        msg = await receive()
        if msg["type"] != "http.request":
            return
        budget -= len(msg.get("body", b""))
        if not msg.get("more_body", False):
            return


class Guard:
    """Bearer token before the body; `max_body` while reading it (Content-Length or chunked)."""

    def __init__(self, app: ASGIApp, state: CollectorState):
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in AUTHENTICATED:
            await self.app(scope, receive, send)
            return
        snap = self.state.snapshot
        auth = None
        length = None
        for k, v in scope["headers"]:
            if k == b"authorization":
                auth = v.decode("latin-1")
            elif k == b"content-length":
                length = v
        agent = snap.authenticate(auth)
        if agent is None:
            await _reply(send, 401, "missing or invalid bearer token",
                         [(b"www-authenticate", b'Bearer realm="blockwatch"')])
            return
        scope.setdefault("state", {})["agent"] = agent
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        limit = snap.cfg.settings.server.max_body if snap.cfg.settings.server else DEFAULT_MAX_BODY
        too_big = f"request body larger than {limit} bytes; send smaller batches"
        if length is not None and (not length.isdigit() or int(length) > limit):
            if length.isdigit() and int(length) <= DRAIN_FACTOR * limit:
                await _discard(receive, DRAIN_FACTOR * limit)
            await _reply(send, 413, too_big)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                if msg.get("more_body", False):
                    await _discard(receive, DRAIN_FACTOR * limit - size)
                await _reply(send, 413, too_big)
                return
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class OptionalStatic:
    """The status site folder, when it exists: another job builds it and may do so after the
    server started (StaticFiles would answer 500 for a missing folder)."""

    def __init__(self, directory: str):
        self.directory = directory
        self._files: StaticFiles | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._files is None:
            # one stat until the folder exists (then it is assumed to stay)
            if scope["type"] == "http" and not os.path.isdir(self.directory):  # noqa: ASYNC240
                await _reply(send, 404, "no status site has been built yet")
                return
            self._files = StaticFiles(directory=self.directory, html=True)
        await self._files(scope, receive, send)


def _validation_errors(request: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's default echoes every bad input back (a whole measurement each): keep where and why
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in exc.errors()[:20]]
    if errors and errors[0]["type"] == "json_invalid":
        return JSONResponse({"detail": errors, "fields": f"body (not JSON: {errors[0]['msg']})"},
                            status_code=422)
    fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or "body" for e in errors[:5])
    return JSONResponse({"detail": errors, "fields": fields}, status_code=422)


def create_app(state: CollectorState) -> Any:
    ingestor = Ingestor(state)
    app = FastAPI(title="blockwatch collector", version=__version__,
                  openapi_url=f"{API}/openapi.json", docs_url=None, redoc_url=None,
                  description="In-country agents report measurements; the collector judges them "
                              "against its own control measurement.")
    app.state.collector = state
    app.state.ingestor = ingestor
    app.add_exception_handler(RequestValidationError, _validation_errors)  # type: ignore[arg-type]

    @app.post(f"{API}/measurements", response_model=IngestResult,
              responses={401: {"description": "missing or invalid bearer token"},
                         413: {"description": "body larger than server.max_body"},
                         422: {"description": "invalid upload as a whole (not JSON, no "
                                               "measurements); `fields` names them. An invalid "
                                               "measurement is listed in `rejected` instead"}})
    async def post_measurements(request: Request) -> Any:
        # The raw bytes go to pydantic-core in one pass (JSON parse + validation in Rust), into
        # plain data (schema.UPLOAD): FastAPI's json.loads + validate_python, then building and
        # dumping the models, were the biggest cost of ingesting.
        raw = await request.body()
        refused: list[Rejected] = []
        try:
            batch = UPLOAD.validate_json(raw)
        except ValidationError as whole:
            # One bad measurement must not sink the others (the agent would resend the same
            # upload forever): read them one by one with the models (which name what is
            # wrong), store the valid ones, name the others.
            try:
                parsed, refused = parse_per_item(raw)
            except ValidationError as exc:
                return _validation_errors(request, RequestValidationError(
                    [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]))
            except (ValueError, RecursionError):  # not JSON (or nested past any measurement)
                return _validation_errors(request, RequestValidationError(
                    [{**e, "loc": ("body", *e.get("loc", ()))} for e in whole.errors()]))
            log.warning("upload from %s: %d of %d measurements rejected (first: %s)",
                        request.state.agent.name, len(refused),
                        len(refused) + len(parsed.measurements), refused[0].error if refused else "")
            return await _ingest(request, parsed.model_dump(), refused)
        return await _ingest(request, batch, refused)

    async def _ingest(request: Request, batch: dict[str, Any], refused: list[Rejected]) -> Any:
        agent: AgentVantage = request.state.agent
        try:
            out = await ingestor.ingest(agent, batch)
        except PermissionError:
            return JSONResponse({"detail": "this agent's token was revoked"}, status_code=401)
        if refused:
            out["rejected"] = [r.model_dump() for r in refused] + out["rejected"]
        return out

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description,
                             routes=app.routes)
        body = MeasurementBatch.model_json_schema(ref_template="#/components/schemas/{model}")
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        comps.update(body.pop("$defs", {}))
        comps["MeasurementBatch"] = body
        schema["paths"][f"{API}/measurements"]["post"]["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MeasurementBatch"}}}}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get(f"{API}/targets", response_model=TargetsOut)
    async def get_targets() -> Any:
        snap = state.snapshot
        p = snap.cfg.settings.probe
        srv = snap.cfg.settings.server
        return {"targets": [{"name": t.name, "urls": list(t.urls)} for t in snap.targets],
                "max_body": srv.max_body if srv else DEFAULT_MAX_BODY,
                "canaries": list(p.canaries),
                "probe": {"timeout_seconds": p.timeout.total_seconds(), "body_limit": p.body_limit,
                          "interval_seconds": p.interval.total_seconds(), "user_agent": p.user_agent}}

    @app.get(f"{API}/status")
    def get_status() -> Any:
        return public_status(state)

    @app.get(f"{API}/health")
    def get_health() -> Any:
        try:
            with state.db.read() as s:
                s.execute(text("SELECT 1"))
        except Exception as exc:
            log.error("health: database unreachable: %s", exc)
            return JSONResponse({"status": "unhealthy", "database": "unreachable"}, status_code=503)
        return {"status": "ok", "database": "ok", "agents": len(state.snapshot.agents)}

    site = state.snapshot.cfg.resolve(state.snapshot.cfg.settings.site.out)
    app.mount("/", OptionalStatic(str(site)), name="site")  # type: ignore[arg-type]
    return Guard(app, state)


def public_status(state: CollectorState) -> dict[str, Any]:
    """The current state per target and vantage. Agents appear only as their network (country
    and ASN), merged per network with the worst state: a volunteer's name, address or the
    count of volunteers on one small network is nobody's business."""
    q = (select(Target.name, Verdict.url, Verdict.verdict, Verdict.confirmed, Verdict.reason,
                func.coalesce(Verdict.repeated_until, Verdict.measured_at).label("measured_at"),
                UrlState.state, UrlState.since, Vantage.name.label("vname"),
                Vantage.kind, Vantage.country, Vantage.asn)
         .select_from(UrlState)
         .join(Verdict, Verdict.id == UrlState.last_verdict_id)
         .join(Vantage, Vantage.id == UrlState.vantage_id)
         .join(Target, Target.id == UrlState.target_id)
         .where(Vantage.kind != "control", Target.active.is_(True)))
    with state.db.read() as s:
        rows = s.execute(q).all()
    targets: dict[str, dict[tuple[str, ...], list[Any]]] = {}
    for r in rows:
        if r.kind == "agent":
            key: tuple[str, ...] = ("agent", r.country or "", r.asn or "")
        else:
            key = (r.kind, r.vname, r.country or "")
        targets.setdefault(r.name, {}).setdefault(key, []).append(r)
    out = []
    for name in sorted(targets):
        vantages = []
        for key, rs in sorted(targets[name].items()):
            w = worst([r.verdict for r in rs])
            top = max((r for r in rs if r.verdict == w), key=lambda r: r.measured_at)
            v: dict[str, Any] = {"kind": key[0], "verdict": w, "confirmed": top.confirmed,
                                 "measured_at": repo.iso(max(r.measured_at for r in rs))}
            if key[0] == "agent":
                v.update(country=key[1], asn=key[2], network=" ".join(x for x in key[1:] if x) or "agent")
            else:
                v.update(vantage=key[1], country=key[2], reason=top.reason,
                         state=top.state, since=repo.iso(top.since))
            vantages.append(v)
        out.append({"target": name, "vantages": vantages})
    return {"generated_at": repo.iso(repo.utcnow()), "targets": out}
