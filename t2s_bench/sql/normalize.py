"""Canonical SQL text with sqlglot: one spelling per query, same results on SQLite.

`normalize_sql` upper-cases keywords, puts single spaces between tokens, quotes identifiers only where
SQLite needs it, renames table aliases to T1, T2, ... in order of appearance (Spider's style) and drops
the trailing semicolon. With a schema, double-quoted words that name no column are turned into string
literals (SQLite reads `name = "Bob"` as a string when no column `Bob` exists).
"""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from t2s_bench.datasets.schema import Schema
from t2s_bench.sql.parse import SQLParseError, parse_sql  # noqa: F401  (re-exported)

DIALECT = "sqlite"


def normalize_sql(sql: str, schema: Schema | None = None) -> str:
    """Canonical one-line form of `sql`; raises SQLParseError when sqlglot cannot parse it."""
    return _canonical(sql, schema).sql(dialect=DIALECT)


def pretty_sql(sql: str, schema: Schema | None = None) -> str:
    """Multi-line canonical form for display; falls back to the input when it does not parse."""
    try:
        return _canonical(sql, schema).sql(dialect=DIALECT, pretty=True)
    except SQLParseError:
        return sql.strip()


def _canonical(sql: str, schema: Schema | None) -> exp.Expression:
    tree = parse_sql(sql)
    if schema is not None:
        _quoted_words_to_strings(tree, schema)
    _unquote_identifiers(tree, keep_column_quotes=schema is None)
    if not _has_t_named_table(tree):
        _visit(tree, {}, 0)
    return tree


# --- alias normalisation -------------------------------------------------------------------------


def _visit(node: exp.Expression, visible: dict[str, str], start: int) -> None:
    """Rename aliases scope by scope; `visible` maps names seen from enclosing scopes to new aliases."""
    if isinstance(node, exp.Select):
        _rename_scope(node, visible, start)
        return
    if isinstance(node, exp.Column):
        _requalify(node, visible)
    for child in list(node.iter_expressions()):
        _visit(child, visible, start)


def _rename_scope(select: exp.Select, visible: dict[str, str], start: int) -> None:
    items = []
    if select.args.get("from_") is not None:
        items.append(select.args["from_"].this)
    items += [j.this for j in select.args.get("joins") or []]
    several = len(items) > 1
    local: dict[str, str] = {}
    n = start
    for item in items:
        if not isinstance(item, (exp.Table, exp.Subquery)):
            continue
        alias = item.alias
        key = alias or (item.name if isinstance(item, exp.Table) else "")
        if not key:
            continue
        if alias or several:
            n += 1
            new = f"T{n}"
            alias_node = item.args.get("alias")
            if alias_node is not None:
                alias_node.set("this", exp.to_identifier(new))
            else:
                item.set("alias", exp.TableAlias(this=exp.to_identifier(new)))
            local[key.lower()] = new
        else:
            local[key.lower()] = key  # shadows a same-named table of an enclosing scope
    inner = {**visible, **local}
    derived = {id(i) for i in items if isinstance(i, exp.Subquery)}
    for child in list(select.iter_expressions()):
        _visit_clause(child, inner, visible, n, derived)


def _visit_clause(node, inner, outer, start, derived) -> None:
    # a derived table's body cannot see its sibling tables: visit it with the enclosing names only
    if id(node) in derived:
        _visit(node.this, outer, start)
        return
    if isinstance(node, exp.Select):
        _visit(node, inner, start)
        return
    if isinstance(node, exp.Column):
        _requalify(node, inner)
    for child in list(node.iter_expressions()):
        _visit_clause(child, inner, outer, start, derived)


def _requalify(column: exp.Column, names: dict[str, str]) -> None:
    qualifier = column.table
    if qualifier and qualifier.lower() in names:
        column.set("table", exp.to_identifier(names[qualifier.lower()]))


def _has_t_named_table(tree: exp.Expression) -> bool:
    """A real table called T1, T2, ... would clash with the new aliases: leave aliases alone then."""
    return any(t.name[:1].lower() == "t" and t.name[1:].isdigit() for t in tree.find_all(exp.Table))


# --- quoting ----------------------------------------------------------------------------------------


def _unquote_identifiers(tree: exp.Expression, *, keep_column_quotes: bool) -> None:
    """Drop quotes everywhere; sqlglot re-quotes names that need it (spaces, keywords).

    Without a schema a quoted column name may be SQLite's double-quoted string, so it keeps its quotes.
    """
    for ident in tree.find_all(exp.Identifier):
        if not ident.quoted:
            continue
        parent = ident.parent
        if keep_column_quotes and isinstance(parent, exp.Column) and parent.this is ident and not parent.table:
            continue
        if _plain_name_ok(ident.name):
            ident.set("quoted", False)


@lru_cache(maxsize=4096)
def _plain_name_ok(name: str) -> bool:
    """True when `name` reads back as the same identifier without quotes (not a keyword, no spaces)."""
    if not exp.SAFE_IDENTIFIER_RE.match(name):
        return False
    try:
        tree = sqlglot.parse_one(f"SELECT {name} FROM {name} AS {name}", read=DIALECT)
    except ParseError:
        return False
    column, table = tree.expressions[0], tree.args["from_"].this
    return (
        isinstance(column, exp.Column) and column.name == name
        and isinstance(table, exp.Table) and table.name == name and table.alias == name
    )


def _quoted_words_to_strings(tree: exp.Expression, schema: Schema) -> None:
    columns = {c.name.lower() for t in schema.tables for c in t.columns}
    output_aliases = {a.alias.lower() for a in tree.find_all(exp.Alias)}
    for col in list(tree.find_all(exp.Column)):
        ident = col.this
        if (
            isinstance(ident, exp.Identifier)
            and ident.quoted
            and not col.table
            and ident.name.lower() not in columns
            and ident.name.lower() not in output_aliases
        ):
            col.replace(exp.Literal.string(ident.name))
