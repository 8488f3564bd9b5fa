"""Order ties: is a query's result on a database decided by how SQLite happens to order tied rows?

`SELECT city ... ORDER BY count(*) DESC LIMIT 1` on a database where two cities tie returns
whichever SQLite meets first; an equivalent prediction written another way may meet the other one
first. On a small random database such ties are common, and the official suites keep such
databases (a source of false negatives). Here a variant where the gold's result depends on ties
does not count for that gold query: the distillation does not use it to kill that query's mutants,
and the scorer does not use it to judge that query's predictions.

The probe: the query twice, with every output column appended to each ORDER BY as a tie-breaker,
ascending then descending; different results mean the ties decide.
"""

from __future__ import annotations

from functools import lru_cache

from sqlglot import exp

from t2s_bench.sql.parse import DIALECT, SQLParseError, parse_sql


@lru_cache(maxsize=8192)
def tie_probes(sql: str) -> tuple[str, str] | None:
    """The two probe queries; None when the query has no ORDER BY (or selects `*`, which cannot be
    appended by position)."""
    try:
        tree = parse_sql(sql)
    except SQLParseError:
        return None
    probes = []
    for desc in (False, True):
        copy = tree.copy()
        changed = False
        for node in copy.find_all(exp.Select, exp.Union, exp.Intersect, exp.Except):
            order = node.args.get("order")
            if order is None:
                continue
            first = node if isinstance(node, exp.Select) else next(node.find_all(exp.Select), None)
            if first is None or any(isinstance(e, exp.Star) or isinstance(e, exp.Column) and e.is_star
                                    for e in first.expressions):
                return None
            for i in range(1, len(first.expressions) + 1):  # by position: SQLite's ORDER BY 1, 2, ...
                order.append("expressions", exp.Ordered(this=exp.Literal.number(i), desc=desc, nulls_first=not desc))
            changed = True
        if not changed:
            return None
        probes.append(copy.sql(dialect=DIALECT))
    return probes[0], probes[1]


def ties_decide(first, second) -> bool:
    """Whether the two probes' results (ExecResults) differ; False when a probe failed (it could not tell)."""
    return bool(first.ok and second.ok and first.rows != second.rows)
