"""Tolerant sqlglot parsing (dialect sqlite) and token-level helpers used by scoring."""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

DIALECT = "sqlite"


class SQLParseError(ValueError):
    """The text is not one SQL statement that sqlglot can parse."""


def parse_sql(sql: str) -> exp.Expression:
    """Parse one SQL statement; trailing semicolons are fine, several statements are not."""
    if sql is None or not str(sql).strip().strip(";").strip():
        raise SQLParseError("empty SQL")
    try:
        trees = [t for t in sqlglot.parse(sql, read=DIALECT) if t is not None]
    except (ParseError, TokenError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SQLParseError(f"cannot parse SQL: {first}") from e
    except (RecursionError, ValueError) as e:  # pathological input
        raise SQLParseError(f"cannot parse SQL: {type(e).__name__}: {e}") from e
    if not trees:
        raise SQLParseError("empty SQL")
    if len(trees) > 1:
        raise SQLParseError(f"expected one statement, got {len(trees)}")
    return trees[0]


@lru_cache(maxsize=4096)
def parse_shared(sql: str) -> exp.Expression:
    """`parse_sql`, memoised by text: the tree is shared, so callers must not modify it."""
    return parse_sql(sql)


def tokenize(sql: str) -> list[Token]:
    """sqlglot tokens (sqlite dialect); raises SQLParseError on untokenizable text."""
    return list(_tokens(sql))


@lru_cache(maxsize=4096)
def _tokens(sql: str) -> tuple[Token, ...]:
    try:
        return tuple(sqlglot.tokenize(sql, read=DIALECT))
    except (TokenError, ParseError) as e:
        raise SQLParseError(f"cannot tokenize SQL: {e}") from e


def has_order_by(sql: str) -> bool:
    """Whether ORDER BY appears anywhere in the query (subqueries included).

    The test-suite evaluator decides "row order matters" with `'order by' in gold.lower()`;
    this is the same rule on tokens, so string literals and odd spacing do not fool it.
    """
    try:
        return any(t.token_type == TokenType.ORDER_BY for t in tokenize(sql))
    except SQLParseError:
        low = " ".join(sql.lower().split())
        return "order by" in low


def remove_distinct(sql: str) -> str:
    """Cut every DISTINCT keyword out of the query text, as the test-suite evaluator does
    before execution when `keep_distinct` is off (`SELECT DISTINCT`, `COUNT(DISTINCT x)` alike).

    Token positions come from sqlglot's tokenizer, so the rest of the text is untouched (no
    re-generation that could change semantics). `IS [NOT] DISTINCT FROM` is left alone: it is
    an operator, not a set quantifier. Untokenizable text is returned unchanged.
    """
    try:
        tokens = tokenize(sql)
    except SQLParseError:
        return sql
    cuts = []
    for i, tok in enumerate(tokens):
        if tok.token_type != TokenType.DISTINCT:
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if nxt is not None and nxt.token_type == TokenType.FROM and i > 0 and tokens[i - 1].token_type in (
            TokenType.IS,
            TokenType.NOT,
        ):
            continue
        cuts.append((tok.start, tok.end + 1))
    if not cuts:
        return sql
    out, pos = [], 0
    for start, end in cuts:
        out.append(sql[pos:start])
        pos = end
    out.append(sql[pos:])
    return "".join(out)


def join_split_operators(sql: str) -> str:
    """`> =`, `< =`, `! =` -> `>=`, `<=`, `!=` (the test-suite evaluator's `postprocess` for
    model outputs), done on tokens so string literals are untouched."""
    try:
        tokens = tokenize(sql)
    except SQLParseError:
        return sql
    cuts = []
    for a, b in zip(tokens, tokens[1:]):
        if a.text in (">", "<", "!") and b.text == "=" and b.start > a.end + 1 and not sql[a.end + 1 : b.start].strip():
            cuts.append((a.end + 1, b.start))
    out, pos = [], 0
    for start, end in cuts:
        out.append(sql[pos:start])
        pos = end
    out.append(sql[pos:])
    return "".join(out)


def clear_caches() -> None:
    """Forget memoised parses and tokens (for benchmarks and long-lived processes)."""
    parse_shared.cache_clear()
    _tokens.cache_clear()


def tables_used(sql: str) -> list[str]:
    """Table names a query reads, in order of appearance; [] when it does not parse."""
    try:
        tree = parse_shared(sql)
    except SQLParseError:
        return []
    return list(dict.fromkeys(t.name for t in tree.find_all(exp.Table)))
