"""The SQL service without HTTP: resolve a schema, generate (through `Generator`), validate, execute.

Used by the FastAPI app (`app.py`) and in-process by the Streamlit demo. Every query is checked by
`validation.validate_sql` before it runs; execution goes through `t2s_bench.execution.execute`, the
scorer's read-only, time- and size-bounded executor, with a row cap. Failures of valid queries get an
error class from `t2s_bench.scoring.errors.classify_error`. Client errors raise `ServiceError`
with the HTTP status to answer with.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from t2s_bench.datasets.schema import Schema
from t2s_bench.datasets.spider import Example
from t2s_bench.records import Task
from t2s_bench.serving.databases import Database, DatabaseCatalog
from t2s_bench.serving.generation import Answer, Generator
from t2s_bench.serving.models import (
    ExecuteRequest,
    ExecuteResponse,
    GenerateRequest,
    GenerateResponse,
    Issue,
    ValidateRequest,
    ValidateResponse,
)
from t2s_bench.serving.schemas import SchemaInputError, schema_from_ddl, schema_from_object
from t2s_bench.serving.validation import ValidationResult, validate_sql

DEFAULT_ROW_CAP = 1_000
DEFAULT_EXEC_TIMEOUT_S = 10.0


class ServiceError(Exception):
    """A request the service refuses: `status` is the HTTP status, `detail` says why."""

    def __init__(self, status: int, detail: str, **extra) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra


@dataclass
class _Pending:
    request: GenerateRequest
    system: str
    schema: Schema
    database: Database | None
    started: float
    future: Future = field(repr=False, default=None)  # type: ignore[assignment]


class SQLService:
    def __init__(self, systems: dict[str, object], catalog: DatabaseCatalog, *, row_cap: int = DEFAULT_ROW_CAP,
                 exec_timeout_s: float = DEFAULT_EXEC_TIMEOUT_S, max_batch: int = 8) -> None:
        if not systems:
            raise ValueError("the service needs at least one system")
        self.generators = {name: Generator(system, max_batch=max_batch) for name, system in systems.items()}
        self.default_system = next(iter(systems))
        self.catalog = catalog
        self.row_cap = row_cap
        self.exec_timeout_s = exec_timeout_s
        self._ids = itertools.count()

    # ------------------------------------------------------------ schemas

    def resolve(self, db_id: str | None, schema: str | dict | None) -> tuple[Schema, Database | None]:
        if db_id is not None:
            if db_id not in self.catalog:
                raise ServiceError(404, f"unknown db_id {db_id!r}; GET /databases lists the {len(self.catalog)} served")
            db = self.catalog.get(db_id)
            return db.schema, db
        try:
            parsed = schema_from_ddl(schema) if isinstance(schema, str) else schema_from_object(schema or {})
        except SchemaInputError as e:
            raise ServiceError(422, str(e)) from None
        return parsed, None

    # ------------------------------------------------------------ generation

    def start(self, request: GenerateRequest) -> _Pending:
        """Check the request and queue its generation; `finish` completes it."""
        name = request.system or self.default_system
        if name not in self.generators:
            raise ServiceError(400, f"system {name!r} is not loaded by this server; loaded: {sorted(self.generators)}")
        schema, db = self.resolve(request.db_id, request.schema_)
        if request.execute and db is None:
            raise ServiceError(422, "execute needs a db_id: a schema given as text has no data to run on")
        index = next(self._ids)
        example = Example(index=index, db_id=schema.db_id, question=request.question, query="")
        pending = _Pending(request, name, schema, db, time.perf_counter())
        pending.future = self.generators[name].submit(Task(example, schema, db.path if db else None))
        return pending

    def finish(self, pending: _Pending, answer: Answer) -> GenerateResponse:
        pred, request = answer.prediction, pending.request
        generation_ms = (time.perf_counter() - pending.started) * 1000
        check = validate_sql(pred.sql, pending.schema)
        if check.refused and not pred.error:
            raise ServiceError(422, f"generated SQL refused: {check.reason}", sql=pred.sql,
                               validation_errors=[i.model_dump() for i in _issues(check)])
        response = GenerateResponse(
            sql=pred.sql, confidence=answer.confidence, valid=check.valid and not pred.error,
            validation_errors=_issues(check), warnings=list(check.warnings), statement=check.statement,
            generation_ms=round(generation_ms, 2), prompt_tokens=pred.prompt_tokens,
            completion_tokens=pred.completion_tokens, system=pending.system,
            db_id=request.db_id, generation_error=pred.error,
        )
        if request.execute and pending.database is not None:
            if response.valid:
                result = self._run(pending.database, pred.sql, request.max_rows, check)
                response.columns, response.rows, response.truncated = result.columns, result.rows, result.truncated
                response.execution_time_ms = result.execution_time_ms
                response.execution_error, response.error_class = result.error, result.error_class
                response.error_reason = result.error_reason
                response.warnings += result.warnings
            else:
                response.warnings.append("not executed: the SQL did not pass validation")
        return response

    def generate_sql(self, request: GenerateRequest, timeout: float | None = None) -> GenerateResponse:
        """Blocking form (the in-process demo)."""
        pending = self.start(request)
        return self.finish(pending, pending.future.result(timeout))

    # ------------------------------------------------------------ validation and execution

    def validate(self, request: ValidateRequest) -> ValidateResponse:
        schema, _ = self.resolve(request.db_id, request.schema_)
        check = validate_sql(request.sql, schema)
        return ValidateResponse(valid=check.valid, refused=check.refused, statement=check.statement,
                                tables=check.tables, issues=_issues(check), warnings=list(check.warnings))

    def execute(self, request: ExecuteRequest) -> ExecuteResponse:
        if request.db_id not in self.catalog:
            raise ServiceError(404, f"unknown db_id {request.db_id!r}; GET /databases lists the {len(self.catalog)} served")
        db = self.catalog.get(request.db_id)
        check = validate_sql(request.sql, db.schema)
        if not check.valid:
            raise ServiceError(400, f"query refused: {check.reason}", validation_errors=[
                i.model_dump() for i in _issues(check)])
        return self._run(db, request.sql, request.max_rows, check)

    def _run(self, db: Database, sql: str, max_rows: int | None, check: ValidationResult) -> ExecuteResponse:
        from t2s_bench.execution import execute
        from t2s_bench.scoring.errors import classify_error

        cap = min(max_rows or self.row_cap, self.row_cap)
        result = execute(db.path, sql, timeout=self.exec_timeout_s, max_rows=cap)
        warnings = list(check.warnings)
        if result.truncated:
            warnings.append(f"result truncated to {cap} rows")
        preview = result.to_json(max_rows=cap)
        error_class = reason = None
        if not result.ok:
            record = {"pred": sql, "pred_error": result.error or "", "timed_out": result.timed_out, "exec_match": False}
            error_class, reason = classify_error(record, db.schema)
        return ExecuteResponse(
            ok=result.ok, columns=list(result.columns), rows=preview["rows"] if preview else [],
            n_rows=preview["n_rows"] if preview else 0, truncated=result.truncated, timed_out=result.timed_out,
            execution_time_ms=round(result.elapsed * 1000, 3), error=result.error, error_class=error_class,
            error_reason=reason, warnings=warnings,
        )

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        for generator in self.generators.values():
            generator.close()


def _issues(check: ValidationResult) -> list[Issue]:
    return [Issue(code=i.code, message=i.message, name=i.name, suggestions=i.suggestions) for i in check.issues]


def build_systems(system: str | object, options: dict | None = None) -> dict[str, object]:
    """{name: system}: a registered system built with its options (the model loads here), or a System object."""
    if not isinstance(system, str):
        return {getattr(system, "name", "custom"): system}
    from t2s_bench.systems import get_system

    return {system: get_system(system, **(options or {}))}
