"""Error taxonomy: why a prediction failed, from its score record and the database schema.

`classify_error(record, schema) -> (error_class, reason)`. The first rule that fires wins:

 1. ``skipped``             the example was not scored (reason from the record)
 -  ``None``                exec_match is True: not an error
 2. ``runtime_error``       a statement that is not a query (DROP, DELETE, INSERT, UPDATE, CREATE,
                            PRAGMA, ATTACH, VACUUM, ...): read-only execution refuses it; the reason
                            names the statement kind
 3. ``syntax_error``        text with no SELECT whose first word is a misspelled SELECT
                            (``SELEC avg(age) ...``)
 4. ``empty_output``        empty output, or text with no SELECT in it (an answer in prose)
 5. ``timeout``             the predicted query hit the time limit
 6. ``syntax_error``        sqlglot cannot parse it, or SQLite reports a syntax error
 7. ``hallucinated_schema`` unknown table or column: SQLite's "no such table/column", or a reference
                            sqlglot finds that the schema lacks (catches SQLite reading an unknown
                            "double-quoted" column as a string literal)
 8. ``runtime_error``       any other execution error
 9. ``wrong_tables``        the sets of tables used differ (aliases resolved to table names)
10. ``wrong_aggregation``   aggregate functions or GROUP BY differ ("COUNT vs SUM")
11. ``wrong_projection``    selected expressions (or DISTINCT) differ
12. ``wrong_filter``        WHERE/HAVING conditions differ, values ignored
13. ``wrong_ordering``      ORDER BY or LIMIT differ
14. ``wrong_value``         same structure, different literals
15. ``other``               results differ, cause not identified (also when the gold SQL does not parse)

All SQL structure comes from sqlglot ASTs (dialect sqlite); the only string matching is on SQLite's
error messages and on a prediction's first word (statement kind, misspelled SELECT).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

from t2s_bench.datasets.schema import Schema
from t2s_bench.execution.executor import NON_QUERY_STATEMENTS, statement_kind
from t2s_bench.sql.resolve import MISSING, Frame, Source, in_value_position, resolve_column, schema_index

ERROR_CLASSES = [
    "skipped",
    "empty_output",
    "timeout",
    "syntax_error",
    "hallucinated_schema",
    "runtime_error",
    "wrong_tables",
    "wrong_aggregation",
    "wrong_projection",
    "wrong_filter",
    "wrong_ordering",
    "wrong_value",
    "other",
]

_DIALECT = "sqlite"


def classify_error(record: dict, schema: Schema | None = None) -> tuple[str | None, str]:
    """(error_class, reason) for one score record; (None, "") when the prediction is correct."""
    if record.get("skipped"):
        return "skipped", str(record["skipped"])
    if record.get("exec_match") is True:
        return None, ""
    pred = _text(record.get("pred")).strip()
    pred_error = _text(record.get("pred_error"))
    low_error = pred_error.lower()

    if not pred:
        return "empty_output", "empty prediction"
    kind = statement_kind(pred)
    if kind is not None and kind.split()[0] in NON_QUERY_STATEMENTS:
        return "runtime_error", f"{kind} statement: only queries are run (read-only execution)"
    if not _has_select(pred):
        misspelled = _misspelled_select(pred)
        if misspelled:
            sqlite_says = "syntax error" in low_error or "unrecognized token" in low_error
            return "syntax_error", f"SQLite: {pred_error}" if sqlite_says else f"{misspelled!r} is not a SQL keyword (misspelled SELECT)"
        return "empty_output", f"output is not a SQL query: {_short(pred)!r}"
    if record.get("timed_out"):
        return "timeout", "predicted query exceeded the time limit"

    pred_ast, parse_msg = _parse(pred, schema)
    if pred_ast is None:
        return "syntax_error", f"sqlglot: {parse_msg}"
    if "syntax error" in low_error or "incomplete input" in low_error or "unrecognized token" in low_error:
        return "syntax_error", f"SQLite: {pred_error}"

    if "no such table" in low_error or "no such column" in low_error:
        return "hallucinated_schema", f"SQLite: {pred_error}"
    if schema is not None:
        unknown = unknown_references(pred_ast, schema)
        if unknown:
            return "hallucinated_schema", unknown[0]
    if pred_error:
        return "runtime_error", f"SQLite: {pred_error}"

    gold_ast, _ = _parse(_text(record.get("gold")), schema)
    if gold_ast is None:
        return "other", "gold SQL does not parse; structure not compared"
    return compare_structure(gold_ast, pred_ast, schema)


def compare_structure(gold: exp.Expression, pred: exp.Expression, schema: Schema | None = None) -> tuple[str, str]:
    """The first structural difference between two parsed queries, as (error_class, reason)."""
    g, p = _Features(gold, schema), _Features(pred, schema)

    if g.tables != p.tables:
        missing, extra = sorted(g.tables - p.tables), sorted(p.tables - g.tables)
        parts = []
        if missing:
            parts.append("pred misses " + ", ".join(repr(t) for t in missing))
        if extra:
            parts.append("pred adds " + ", ".join(repr(t) for t in extra))
        return "wrong_tables", "; ".join(parts)

    if g.aggregates != p.aggregates:
        return "wrong_aggregation", f"{_fmt_multiset(g.aggregates)} vs {_fmt_multiset(p.aggregates)} (gold vs pred)"
    if g.group_by != p.group_by:
        return "wrong_aggregation", f"GROUP BY {_fmt_list(g.group_by)} vs {_fmt_list(p.group_by)}"

    if g.projection != p.projection:
        return "wrong_projection", f"gold selects {_fmt_list(g.projection)}, pred {_fmt_list(p.projection)}"
    if g.distinct != p.distinct:
        return "wrong_projection", "DISTINCT " + ("missing in pred" if g.distinct > p.distinct else "added by pred")

    if g.conditions != p.conditions:
        missing, extra = sorted((g.conditions - p.conditions).elements()), sorted((p.conditions - g.conditions).elements())
        parts = []
        if missing:
            parts.append("pred lacks " + "; ".join(missing))
        if extra:
            parts.append("pred adds " + "; ".join(extra))
        return "wrong_filter", _short(" / ".join(parts), 160)
    if g.set_ops != p.set_ops:
        return "wrong_filter", f"set operations {_fmt_list(g.set_ops)} vs {_fmt_list(p.set_ops)}"

    if g.ordering != p.ordering:
        return "wrong_ordering", f"ORDER BY {_fmt_list(g.ordering) or '-'} vs {_fmt_list(p.ordering) or '-'}"
    if g.limits != p.limits:
        return "wrong_ordering", f"LIMIT {_fmt_list(g.limits) or '-'} vs {_fmt_list(p.limits) or '-'}"

    if g.values != p.values:
        missing, extra = g.values - p.values, p.values - g.values
        return "wrong_value", f"gold {_fmt_multiset(missing) or '-'} vs pred {_fmt_multiset(extra) or '-'}"

    return "other", "same structure and values; results differ"


def unknown_references(query: exp.Expression, schema: Schema) -> list[str]:
    """Human-readable descriptions of tables/columns the query uses that the schema lacks."""
    ctes = {c.alias_or_name.lower() for c in query.find_all(exp.CTE)}
    problems: list[str] = []
    for table in query.find_all(exp.Table):
        name = table.name.lower()
        if name and name not in ctes and schema.table(name) is None:
            problems.append(f"pred uses table {table.name!r} not in schema")
    if problems:
        return problems
    for column in query.find_all(exp.Column):
        if not column.name or isinstance(column.this, exp.Star):
            continue
        resolved = _resolve_column_table(column, schema)
        if resolved is _UNCHECKABLE:
            continue
        if resolved is None:
            where = f"{column.table}." if column.table else ""
            problems.append(f"pred uses column {where}{column.name!r} not in the tables it reads")
    return problems


# ---------------------------------------------------------------- internals

_UNCHECKABLE = object()


def _text(value) -> str:
    return value if isinstance(value, str) else ""  # None / NaN from a DataFrame row -> ""


_FIRST_WORD = re.compile(r"[\s(]*([A-Za-z_]+)")


def _misspelled_select(text: str) -> str | None:
    """The first word when it is a near miss of SELECT ("SELEC", "SLECT", "SELCET"), else None."""
    match = _FIRST_WORD.match(text)
    if match is None:
        return None
    word = match.group(1).upper()
    if word.startswith("SELECT"):  # "Selected", "Selection": English, not SQL
        return None
    return match.group(1) if difflib.get_close_matches(word, ["SELECT"], n=1, cutoff=0.8) else None


def _has_select(text: str) -> bool:
    try:
        tokens = sqlglot.tokenize(text, read=_DIALECT)
    except (TokenError, ValueError):
        return "select" in text.lower()  # let the parser report the real problem
    return any(t.token_type == TokenType.SELECT for t in tokens)


def _parse(sql: str, schema: Schema | None = None) -> tuple[exp.Expression | None, str]:
    try:
        statements = [s for s in sqlglot.parse(sql, read=_DIALECT) if s is not None]
    except ParseError as e:
        return None, _parse_error_message(e)
    except TokenError as e:
        return None, str(e).splitlines()[0]
    if not statements:
        return None, "no statement"
    return _double_quoted_values_as_strings(statements[0], schema), ""


def _parse_error_message(e: ParseError) -> str:
    first = e.errors[0] if getattr(e, "errors", None) else {}
    desc = (first.get("description") or str(e)).splitlines()[0]
    if "SENTINEL" in desc:  # sqlglot ran out of tokens
        desc = desc.split(" but got")[0] + " but the query ended"
    elif desc.startswith("Required keyword") and "<class '" in desc:  # "...missing for <class 'x.y.Where'>"
        node = desc.split("<class '")[1].rstrip("'>").rsplit(".", 1)[-1]
        desc = f"incomplete {node.upper()} expression"
    where = f" (line {first['line']}, col {first['col']})" if first.get("line") else ""
    return _short(desc, 100) + where


def _double_quoted_values_as_strings(query: exp.Expression, schema: Schema | None) -> exp.Expression:
    """Spider writes values in double quotes (WHERE name = "Joe"); sqlglot reads them as identifiers,
    SQLite as strings when no column has that name. In value positions (right of a comparison, in an
    IN list, BETWEEN bounds) an unresolvable double-quoted name becomes a string literal."""
    for column in list(query.find_all(exp.Column)):
        ident = column.this
        if column.table or not isinstance(ident, exp.Identifier) or not ident.quoted:
            continue
        if not in_value_position(column):
            continue
        if schema is not None and isinstance(_resolve_column_table(column, schema), str):
            continue  # a real column that happens to be quoted
        column.replace(exp.Literal.string(ident.name))
    return query


def _enclosing_selects(node: exp.Expression):
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.Select):
            yield parent
        parent = parent.parent


def _frame(select: exp.Select) -> Frame:
    """The FROM/JOIN sources of one SELECT (not those of nested selects) and its SELECT aliases;
    a derived table's columns are not looked into."""
    frame = Frame(select_aliases={a.alias.lower() for a in select.expressions if isinstance(a, exp.Alias)})
    from_ = select.args.get("from_") or select.args.get("from")
    items = ([from_.this] if from_ is not None else []) + [j.this for j in select.args.get("joins") or []]
    for src in items:
        name = src.alias_or_name.lower()
        if name not in frame.sources:  # the first source of that name, as SQL reads it
            frame.add(name, Source(src.name.lower()) if isinstance(src, exp.Table) else Source(None))
    return frame


def _resolve_column_table(column: exp.Column, schema: Schema | None):
    """Table name (lower case) a column belongs to; None if unknown; _UNCHECKABLE if undecidable."""
    qualifier, name = column.table.lower(), column.name.lower()
    found = resolve_column(qualifier, name, map(_frame, _enclosing_selects(column)), schema_index(schema))
    if found.is_found:
        return found.table
    return None if found is MISSING and (qualifier or name) else _UNCHECKABLE


class _Features:
    """Comparable parts of a query: table set, aggregates, projection, conditions, ordering, values."""

    def __init__(self, query: exp.Expression, schema: Schema | None):
        self.schema = schema
        ctes = {c.alias_or_name.lower() for c in query.find_all(exp.CTE)}
        self.tables = {t.name.lower() for t in query.find_all(exp.Table) if t.name and t.name.lower() not in ctes}
        self.aggregates = Counter(_agg_key(a) for a in query.find_all(exp.AggFunc))
        selects = list(query.find_all(exp.Select))
        self.group_by = sorted(
            self._canon(g) for s in selects for g in (s.args.get("group").expressions if s.args.get("group") else [])
        )
        first = _top_selects(query)[:1]  # set operations: the first branch names the output columns
        self.projection = [self._canon(e.unalias() if isinstance(e, exp.Alias) else e) for s in first for e in s.expressions]
        self.distinct = sum(1 for s in selects if s.args.get("distinct"))
        self.conditions: Counter = Counter()
        for s in selects:
            for key in ("where", "having"):
                clause = s.args.get(key)
                if clause is not None:
                    for conj in clause.this.flatten() if isinstance(clause.this, exp.And) else [clause.this]:
                        self.conditions[f"{key.upper()} {self._canon(conj, mask_values=True)}"] += 1
        self.set_ops = sorted(type(u).__name__.upper() for u in query.find_all(exp.SetOperation))
        self.ordering = [
            self._canon(o.this) + (" DESC" if o.args.get("desc") else " ASC")
            for q in query.find_all(exp.Order)
            for o in q.expressions
        ]
        self.limits = [lim.expression.sql() for lim in query.find_all(exp.Limit) if lim.expression is not None]
        self.values = Counter(
            _literal_key(lit) for lit in query.find_all(exp.Literal) if not isinstance(lit.parent, exp.Limit)
        )

    def _canon(self, node: exp.Expression, *, mask_values: bool = False) -> str:
        """SQL text of a node with columns as table.column and (optionally) literals as '?'."""
        copy = node.copy()
        originals = list(node.find_all(exp.Column))
        copies = list(copy.find_all(exp.Column))
        for orig, col in zip(originals, copies):
            table = _resolve_column_table(orig, self.schema)
            if isinstance(table, str):
                col.set("table", exp.to_identifier(table))
            elif col.table:
                col.set("table", None)  # derived-table alias: keep the bare column
            col.set("this", exp.to_identifier(col.name.lower()))
        for sub in list(copy.find_all(exp.Subquery)):
            sub.set("alias", None)
        for table in list(copy.find_all(exp.Table)):
            table.set("alias", None)
        if mask_values:
            for lit in list(copy.find_all(exp.Literal)):
                lit.replace(exp.Placeholder())
        return copy.sql(dialect=_DIALECT)


def _top_selects(query: exp.Expression) -> list[exp.Select]:
    if isinstance(query, exp.Select):
        return [query]
    if isinstance(query, exp.SetOperation):
        return _top_selects(query.this) + _top_selects(query.expression)
    if isinstance(query, exp.Subquery):
        return _top_selects(query.this)
    return [s for s in [query.find(exp.Select)] if s is not None]


def _agg_key(agg: exp.AggFunc) -> str:
    name = agg.sql_name() if hasattr(agg, "sql_name") else type(agg).__name__.upper()
    return f"{name}(DISTINCT)" if isinstance(agg.this, exp.Distinct) else name


def _literal_key(lit: exp.Literal) -> str:
    text = lit.this
    if lit.is_string:
        return repr(text)
    try:
        return repr(float(text))
    except ValueError:
        return repr(text)


def _fmt_multiset(counter: Counter) -> str:
    return ", ".join(k if n == 1 else f"{k}×{n}" for k, n in sorted(counter.items())) or "none"


def _fmt_list(items) -> str:
    return ", ".join(items)


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
