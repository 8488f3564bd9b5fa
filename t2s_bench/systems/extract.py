"""SQL-only output: pull the final SQL out of a model's raw text."""

from __future__ import annotations

import re

from sqlglot import exp
from sqlglot.tokens import TokenType

from t2s_bench.sql.parse import SQLParseError, parse_sql, tokenize

# Markdown code fences are text layout, not SQL structure: a regex is the right tool here.
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\n?(.*?)(?:```|$)", re.S)
_SQL_START = ("SELECT", "WITH")


def _first_statement(text: str) -> str:
    """The first complete statement, cut with sqlglot's tokenizer (semicolons inside strings are kept)."""
    try:
        tokens = tokenize(text)
    except SQLParseError:
        return text.split(";")[0]
    for tok in tokens:
        if tok.token_type == TokenType.SEMICOLON:
            return text[: tok.start]
    return text


def _is_sql(text: str) -> bool:
    try:
        tree = parse_sql(text)
    except SQLParseError:
        return False
    return isinstance(tree, (exp.Query,))


def extract_sql(raw: str) -> str:
    """Code fence > text from the first SELECT/WITH > whole text; first statement only, one line."""
    text = (raw or "").strip()
    if not text:
        return ""
    fences = _FENCE.findall(text)
    if fences:
        sql_fences = [body for lang, body in fences if lang.lower() in ("sql", "sqlite", "")]
        text = (sql_fences or [fences[0][1]])[0].strip()
    upper = text.upper()
    starts = [i for kw in _SQL_START for i in [upper.find(kw)] if i >= 0]
    if starts:
        text = text[min(starts):]
    stmt = _first_statement(text).strip()
    # trailing explanation on later lines: keep the longest prefix of lines that parses as a query
    lines = stmt.splitlines()
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end]).strip()
        if _is_sql(candidate):
            stmt = candidate
            break
    return " ".join(stmt.split())
