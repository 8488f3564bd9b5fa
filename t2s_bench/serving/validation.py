"""The SQL validation layer: what a served query must be before anything runs.

`validate_sql(sql, schema)` parses with sqlglot (dialect sqlite) and checks, in order:

1. the text is exactly one statement (``multiple_statements``, ``empty``, ``parse_error``);
2. the statement is a read-only query: ``SELECT``, a set operation of selects, or ``WITH … SELECT``.
   DDL, DML, ``PRAGMA``, ``ATTACH``/``DETACH``, transactions and unparsed commands are refused
   (``forbidden_statement``, with the statement kind in the message), also when nested in a query;
   file and extension functions (``load_extension``, ``readfile``, …) are refused too;
3. every table and column exists in the schema (``unknown_table`` / ``unknown_column``), resolved
   per query scope with sqlglot's scope analysis (aliases, CTEs, derived tables, correlated
   subqueries); each unknown name comes with the closest real names (difflib).

`refused` issues (1-2: the statement kind) make the service answer with a 4xx status; schema issues
(3) and parse errors mark a generated query as not valid. Spider-style double-quoted values
(``WHERE name = "Joe"``), which SQLite reads as strings when no column has that name, are a warning.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, TokenError
from sqlglot.optimizer.scope import Scope, traverse_scope

from t2s_bench.datasets.schema import Schema
from t2s_bench.sql.resolve import MISSING, Frame, Source, in_value_position, resolve_column, schema_index

DIALECT = "sqlite"
# issue codes that refuse the request outright (never executed, 4xx)
REFUSED_CODES = frozenset({"empty", "multiple_statements", "forbidden_statement", "not_a_query"})
# functions that touch files or load code; SQLite's authorizer also denies them at execution
FORBIDDEN_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"})
# node types that write, change the schema, or leave the query (any depth)
_FORBIDDEN_NODES: dict[type, str] = {
    exp.Insert: "INSERT", exp.Update: "UPDATE", exp.Delete: "DELETE", exp.Merge: "MERGE", exp.Drop: "DROP",
    exp.Create: "CREATE", exp.Alter: "ALTER", exp.Pragma: "PRAGMA", exp.Attach: "ATTACH", exp.Detach: "DETACH",
    exp.Transaction: "BEGIN", exp.Commit: "COMMIT", exp.Rollback: "ROLLBACK", exp.Command: "command",
    exp.Set: "SET", exp.Use: "USE", exp.Copy: "COPY", exp.LoadData: "LOAD DATA", exp.Analyze: "ANALYZE",
}
_QUERY_TYPES = (exp.Select, exp.SetOperation, exp.Subquery)
MAX_SUGGESTIONS = 3


@dataclass
class ValidationIssue:
    code: str  # empty | parse_error | multiple_statements | not_a_query | forbidden_statement | unknown_table | unknown_column
    message: str
    name: str | None = None  # the unknown or forbidden name
    suggestions: list[str] = field(default_factory=list)  # closest real names, best first


@dataclass
class ValidationResult:
    sql: str
    issues: list[ValidationIssue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    statement: str | None = None  # kind of the statement: SELECT, UNION, DROP, ...
    tables: list[str] = field(default_factory=list)  # schema tables the query reads

    @property
    def valid(self) -> bool:
        return not self.issues

    @property
    def refused(self) -> bool:
        """Not a single read-only query: refused with a 4xx status, never run."""
        return any(i.code in REFUSED_CODES for i in self.issues)

    @property
    def reason(self) -> str:
        return "; ".join(i.message for i in self.issues)

    def to_json(self) -> dict:
        return {"valid": self.valid, "refused": self.refused, "statement": self.statement, "tables": self.tables,
                "issues": [asdict(i) for i in self.issues], "warnings": list(self.warnings)}


def validate_sql(sql: str, schema: Schema | None) -> ValidationResult:
    """Check one query against the rules above; `schema=None` checks the statement only."""
    result = ValidationResult(sql=sql or "")
    if not (sql or "").strip().strip(";").strip():
        result.issues.append(ValidationIssue("empty", "empty query"))
        return result
    try:
        trees = [t for t in sqlglot.parse(sql, read=DIALECT) if t is not None]
    except (ParseError, TokenError) as e:
        result.issues.append(ValidationIssue("parse_error", f"cannot parse SQL: {_parse_message(e)}"))
        return result
    except (RecursionError, ValueError) as e:
        result.issues.append(ValidationIssue("parse_error", f"cannot parse SQL: {type(e).__name__}"))
        return result
    if not trees:
        result.issues.append(ValidationIssue("empty", "empty query"))
        return result
    if len(trees) > 1:
        kinds = ", ".join(statement_kind(t) for t in trees)
        result.issues.append(ValidationIssue(
            "multiple_statements", f"exactly one statement is allowed, got {len(trees)} ({kinds})"))
        return result
    tree = trees[0]
    result.statement = statement_kind(tree)
    forbidden = _forbidden(tree)
    if forbidden:
        result.issues.append(forbidden)
        return result
    if not isinstance(tree, _QUERY_TYPES):
        result.issues.append(ValidationIssue(
            "not_a_query", f"not a SQL query ({result.statement}): only SELECT and WITH … SELECT are allowed"))
        return result
    if schema is not None:
        _check_names(tree, schema, result)
    return result


def statement_kind(tree: exp.Expression) -> str:
    """SELECT, UNION, DROP, CREATE TABLE, PRAGMA, VACUUM (an unparsed command's keyword), ..."""
    if isinstance(tree, exp.Command):
        return str(tree.this).upper()
    if isinstance(tree, exp.Create):
        return f"CREATE {tree.args.get('kind') or ''}".strip()
    if isinstance(tree, exp.Drop):
        return f"DROP {tree.args.get('kind') or ''}".strip()
    for cls, name in _FORBIDDEN_NODES.items():
        if type(tree) is cls:
            return name
    return tree.key.upper()


def _forbidden(tree: exp.Expression) -> ValidationIssue | None:
    for node in tree.walk():
        for cls in _FORBIDDEN_NODES:
            if isinstance(node, cls):
                kind = statement_kind(node)
                where = "" if node is tree else " inside the query"
                return ValidationIssue("forbidden_statement",
                                       f"{kind} is not allowed{where}: only read-only SELECT queries run", name=kind)
        if isinstance(node, exp.Func):
            fname = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if fname in FORBIDDEN_FUNCTIONS:
                return ValidationIssue("forbidden_statement", f"function {fname}() is not allowed", name=fname)
    return None


# ------------------------------------------------------------------ schema names


def _check_names(tree: exp.Expression, schema: Schema, result: ValidationResult) -> None:
    table_names = [t.name for t in schema.tables]
    try:
        scopes = traverse_scope(tree)
    except (OptimizeError, RecursionError, ValueError) as e:
        result.warnings.append(f"schema names not checked: {_first_line(e)}")
        return
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    unknown_tables: set[str] = set()
    read: list[str] = []
    for scope in scopes:
        for source in scope.sources.values():
            if not isinstance(source, exp.Table) or not source.name:
                continue
            low = source.name.lower()
            table = schema.table(low)
            if table is not None:
                if table.name not in read:
                    read.append(table.name)
            elif low not in ctes and low not in unknown_tables:
                unknown_tables.add(low)
                result.issues.append(ValidationIssue(
                    "unknown_table", f"unknown table {source.name!r}" + _did_you_mean(source.name, table_names),
                    name=source.name, suggestions=_closest(source.name, table_names)))
    result.tables = read
    seen: set[str] = set()
    for scope in scopes:
        for column in scope.columns:
            if not column.name or isinstance(column.this, exp.Star):
                continue
            if column.find_ancestor(exp.Select, exp.SetOperation) is not scope.expression:
                continue  # a subquery's column, seen by its outer scope too: checked in its own scope
            verdict = _resolve(column, scope, schema, unknown_tables)
            if verdict is not None:
                continue
            if _string_in_double_quotes(column):
                result.warnings.append(
                    f'"{column.name}" is not a column: SQLite reads it as the string \'{column.name}\' (use single quotes)')
                continue
            label = f"{column.table}.{column.name}" if column.table else column.name
            if label.lower() in seen:
                continue
            seen.add(label.lower())
            candidates = _visible_columns(column, scope, schema)
            suggestions = _closest(column.name, candidates)
            elsewhere = [f"{t.name}.{c.name}" for t in schema.tables for c in t.columns
                         if c.name.lower() == column.name.lower()]
            message = f"unknown column {label!r}" + _did_you_mean(column.name, candidates)
            if elsewhere and not suggestions:
                message += f" ({', '.join(elsewhere[:MAX_SUGGESTIONS])} exists, in a table the query does not read)"
                suggestions = elsewhere[:MAX_SUGGESTIONS]
            result.issues.append(ValidationIssue("unknown_column", message, name=label, suggestions=suggestions))


def _resolve(column: exp.Column, scope: Scope, schema: Schema, unknown_tables: set[str]):
    """True when the column resolves (or cannot be checked: unknown table, `SELECT *` source); None if unknown."""
    frames = []
    current: Scope | None = scope
    while current is not None:  # this scope, then outer scopes (correlated subqueries)
        frames.append(_frame(current))
        current = current.parent
    found = resolve_column(column.table.lower(), column.name.lower(), frames, schema_index(schema))
    return None if found is MISSING else True


def _frame(scope: Scope) -> Frame:
    """A scope's sources for `resolve_column`: a derived table lists its output columns (none when
    it selects *); the output columns of a UNION count as aliases in its ORDER BY."""
    frame = Frame(select_aliases={e.alias.lower() for e in _select_expressions(scope) if isinstance(e, exp.Alias)})
    if isinstance(scope.expression, exp.SetOperation):
        frame.select_aliases |= {n.lower() for n in _named_selects(scope)}
    for alias, source in scope.sources.items():
        if isinstance(source, exp.Table):
            frame.add(alias, Source(source.name.lower()))
        elif isinstance(source, Scope) and not any(
                isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))
                for e in _select_expressions(source)):
            frame.add(alias, Source(None, frozenset(n.lower() for n in _named_selects(source))))
        else:  # SELECT * from a derived table, or another kind of source: its columns are not listed
            frame.add(alias, Source(None))
    return frame


def _named_selects(scope: Scope) -> list[str]:
    expression = scope.expression
    return list(getattr(expression, "named_selects", []) or [])


def _select_expressions(scope: Scope) -> list[exp.Expression]:
    expression = scope.expression
    while isinstance(expression, exp.SetOperation):
        expression = expression.this
    return list(getattr(expression, "expressions", []) or [])


def _visible_columns(column: exp.Column, scope: Scope, schema: Schema) -> list[str]:
    """Column names the query could have meant: those of the tables it reads in this scope (and outer ones)."""
    out: list[str] = []
    current: Scope | None = scope
    qualifier = column.table.lower()
    while current is not None:
        for alias, source in current.sources.items():
            if qualifier and alias.lower() != qualifier:
                continue
            if isinstance(source, exp.Table) and (table := schema.table(source.name)) is not None:
                out.extend(c.name for c in table.columns)
            elif isinstance(source, Scope):
                out.extend(_named_selects(source))
        current = current.parent
    return list(dict.fromkeys(out))


def _string_in_double_quotes(column: exp.Column) -> bool:
    ident = column.this
    if column.table or not isinstance(ident, exp.Identifier) or not ident.quoted:
        return False
    return in_value_position(column)


def _closest(name: str, candidates: list[str]) -> list[str]:
    by_low: dict[str, str] = {}
    for c in candidates:
        by_low.setdefault(c.lower(), c)
    matches = difflib.get_close_matches(name.lower(), list(by_low), n=MAX_SUGGESTIONS, cutoff=0.6)
    return [by_low[m] for m in matches]


def _did_you_mean(name: str, candidates: list[str]) -> str:
    close = _closest(name, candidates)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _parse_message(e: ParseError | TokenError) -> str:
    first = e.errors[0] if isinstance(e, ParseError) and e.errors else {}
    text = (first.get("description") or _first_line(e)).splitlines()[0]
    if "SENTINEL" in text:  # sqlglot ran out of tokens
        text = text.split(" but got")[0] + " but the query ended"
    where = f" (line {first['line']}, col {first['col']})" if first.get("line") else ""
    return text + where


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
