"""Request and response bodies of the SQL service (pydantic): what the API accepts and returns."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_QUESTION_CHARS = 2_000
MAX_SQL_CHARS = 20_000


class Issue(BaseModel):
    code: str
    message: str
    name: str | None = None
    suggestions: list[str] = Field(default_factory=list)


class GenerateRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", str_strip_whitespace=True)

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="the question in English")
    db_id: str | None = Field(None, description="a database the server serves (GET /databases)")
    schema_: str | dict[str, Any] | None = Field(
        None, alias="schema",
        description='CREATE TABLE text, a tables.json entry, or {"tables": {"table": ["column", ...]}}')
    system: str | None = Field(None, description="a system this server has loaded (GET /systems); default: the first")
    execute: bool = Field(False, description="run the SQL read-only on db_id when it is valid")
    max_rows: int | None = Field(None, ge=1, description="rows returned when executing (capped by the server)")

    @model_validator(mode="after")
    def _one_schema_source(self) -> GenerateRequest:
        if (self.db_id is None) == (self.schema_ is None):
            raise ValueError("give exactly one of db_id or schema")
        return self


class GenerateResponse(BaseModel):
    sql: str
    confidence: float | None = Field(
        description="exp(mean log-probability of the generated tokens); null when the backend gives none")
    valid: bool
    validation_errors: list[Issue]
    warnings: list[str]
    statement: str | None = None
    generation_ms: float
    execution_time_ms: float | None = None
    prompt_tokens: int
    completion_tokens: int
    system: str
    db_id: str | None = None
    generation_error: str | None = None
    columns: list[str] | None = None
    rows: list[list[Any]] | None = None
    truncated: bool | None = None
    execution_error: str | None = None
    error_class: str | None = None
    error_reason: str | None = None


class ExecuteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    db_id: str = Field(min_length=1)
    sql: str = Field(min_length=1, max_length=MAX_SQL_CHARS)
    max_rows: int | None = Field(None, ge=1)


class ExecuteResponse(BaseModel):
    ok: bool
    columns: list[str]
    rows: list[list[Any]]
    n_rows: int
    truncated: bool
    timed_out: bool
    execution_time_ms: float
    error: str | None = None
    error_class: str | None = None
    error_reason: str | None = None
    warnings: list[str] = Field(default_factory=list)


class ValidateRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    sql: str = Field(min_length=1, max_length=MAX_SQL_CHARS)
    db_id: str | None = None
    schema_: str | dict[str, Any] | None = Field(None, alias="schema")

    @model_validator(mode="after")
    def _one_schema_source(self) -> ValidateRequest:
        if (self.db_id is None) == (self.schema_ is None):
            raise ValueError("give exactly one of db_id or schema")
        return self


class ValidateResponse(BaseModel):
    valid: bool
    refused: bool
    statement: str | None
    tables: list[str]
    issues: list[Issue]
    warnings: list[str]
