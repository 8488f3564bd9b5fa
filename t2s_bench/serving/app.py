"""The FastAPI app of `t2s-bench serve`: text-to-SQL over HTTP with a validation layer in front of execution.

    POST /generate_sql   question + (db_id | schema) -> SQL, confidence, validation, optional rows
    POST /execute        db_id + SQL -> rows (read-only, time-bounded, row-capped)
    POST /validate       db_id | schema + SQL -> validation result
    GET  /health, /systems, /databases, /databases/{db_id}/schema; OpenAPI docs at /docs

Safe by default: the CLI binds 127.0.0.1; with a token every endpoint but /health needs
`Authorization: Bearer <token>`; request bodies over `max_body_bytes` get 413; at most
`max_concurrent` generations are in flight (the rest wait up to `queue_timeout_s`, then 503); the
model is loaded once, in `create_app`, and shared by all requests.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from t2s_bench.serving.databases import DatabaseCatalog
from t2s_bench.serving.models import (
    ExecuteRequest,
    ExecuteResponse,
    GenerateRequest,
    GenerateResponse,
    ValidateRequest,
    ValidateResponse,
)
from t2s_bench.serving.service import DEFAULT_EXEC_TIMEOUT_S, DEFAULT_ROW_CAP, ServiceError, SQLService, build_systems

log = logging.getLogger(__name__)

TOKEN_ENV = "T2S_SERVE_TOKEN"
DEFAULT_MAX_BODY_BYTES = 256 * 1024
DEFAULT_MAX_CONCURRENT = 8
DEFAULT_QUEUE_TIMEOUT_S = 120.0
_BEARER = HTTPBearer(auto_error=False)


class BodySizeLimit:
    """ASGI middleware: 413 for a request body over `limit` bytes (declared or streamed)."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._too_large(send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await self._too_large(send)

    async def _too_large(self, send):
        response = JSONResponse({"detail": f"request body larger than {self.limit} bytes"}, status_code=413)
        await response({"type": "http"}, None, send)


class _BodyTooLarge(Exception):
    pass


def create_app(system: str | object = "zero-shot", *, system_options: dict | None = None,
               datasets: tuple[str, ...] | list[str] = ("demo", "spider-dev"), db_files: tuple = (),
               token: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               max_concurrent: int = DEFAULT_MAX_CONCURRENT, queue_timeout_s: float = DEFAULT_QUEUE_TIMEOUT_S,
               row_cap: int = DEFAULT_ROW_CAP, exec_timeout_s: float = DEFAULT_EXEC_TIMEOUT_S,
               service: SQLService | None = None) -> FastAPI:
    """The app, with its system built (model loaded) now. `system` is a registered name (built with
    `system_options`, e.g. model=, backend=, n_ctx=) or a System object; `token` defaults to $T2S_SERVE_TOKEN.
    Spider dev is served when present (T2S_SPIDER_DIR), skipped otherwise."""
    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    started = time.time()
    if service is None:
        catalog = DatabaseCatalog.from_sources(list(datasets), list(db_files), optional=("spider-dev",))
        service = SQLService(build_systems(system, system_options), catalog, row_cap=row_cap,
                             exec_timeout_s=exec_timeout_s, max_batch=max_concurrent)
    slots = asyncio.Semaphore(max_concurrent)
    counters = {"requests": 0, "generations": 0, "busy": 0}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await asyncio.to_thread(service.close)

    app = FastAPI(title="t2s-bench SQL service", version="1", lifespan=lifespan,
                  description="Text-to-SQL with a SQL validation layer; execution is read-only and bounded.")
    app.state.service = service
    app.state.counters = counters
    app.add_middleware(BodySizeLimit, limit=max_body_bytes)
    def require_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> None:
        if token is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise ServiceError(401, "missing or wrong bearer token" if given else "this server needs a bearer token")

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": exc.detail, **exc.extra}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        parts = []
        for e in errors:
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return JSONResponse({"detail": "invalid request: " + "; ".join(parts),
                             "errors": [{"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")} for e in errors]},
                            status_code=422)

    @app.get("/health", tags=["service"])
    def health() -> dict:
        return {"status": "ok", "systems": sorted(service.generators), "databases": len(service.catalog),
                "uptime_s": round(time.time() - started, 1), "auth": token is not None}

    api = APIRouter(dependencies=[Depends(require_token)])

    @api.get("/systems", tags=["service"])
    def systems() -> dict:
        from t2s_bench.systems import SYSTEMS

        loaded = {}
        for name, gen in service.generators.items():
            try:
                config = gen.system.config()
            except Exception as e:  # a config that cannot be computed is reported, not fatal
                config = {"error": str(e)}
            loaded[name] = config
        return {"default": service.default_system, "loaded": loaded, "registered": SYSTEMS.names()}

    @api.get("/databases", tags=["databases"])
    def databases() -> list[dict]:
        return [db.summary() for db in service.catalog.all()]

    @api.get("/databases/{db_id}/schema", tags=["databases"])
    def database_schema(db_id: str) -> dict:
        schema, db = service.resolve(db_id, None)
        return {**db.summary(), "schema": schema.to_tables_json()}

    @api.post("/generate_sql", response_model=GenerateResponse, tags=["sql"])
    async def generate_sql(body: GenerateRequest) -> GenerateResponse:
        counters["requests"] += 1
        try:
            await asyncio.wait_for(slots.acquire(), timeout=queue_timeout_s)
        except TimeoutError:
            counters["busy"] += 1
            raise ServiceError(503, f"server busy: {max_concurrent} generations in flight for over {queue_timeout_s:g}s") from None
        try:
            pending = await asyncio.to_thread(service.start, body)
            answer = await asyncio.wrap_future(pending.future)
            counters["generations"] += 1
            return await asyncio.to_thread(service.finish, pending, answer)
        finally:
            slots.release()

    @api.post("/execute", response_model=ExecuteResponse, tags=["sql"])
    def execute(body: ExecuteRequest) -> ExecuteResponse:
        return service.execute(body)

    @api.post("/validate", response_model=ValidateResponse, tags=["sql"])
    def validate(body: ValidateRequest) -> ValidateResponse:
        return service.validate(body)

    app.include_router(api)
    return app
