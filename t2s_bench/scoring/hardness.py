"""Spider's hardness levels (easy / medium / hard / extra), by the official criteria.

Reimplemented on `SpiderSQL` components (see t2s_bench.sql.components). Three counts decide:

- component1: one each for WHERE, GROUP BY, ORDER BY, LIMIT; one per joined table beyond the
  first; one per OR and per LIKE among the ON/WHERE/HAVING conditions;
- component2: nested queries used as condition values, plus INTERSECT/UNION/EXCEPT (top level only);
- others: one each for "more than one aggregate", "more than one selected expression",
  "more than one WHERE condition", "more than one GROUP BY column".

The "aggregate" count is the official one, quirks included: it adds selected aggregates, GROUP BY
and ORDER BY aggregates, but for WHERE conditions it counts *negated* conditions (the official
code reads the first field of a condition, which is its NOT flag), and for HAVING it counts
negated conditions plus every AND/OR connector. Reproducing this is what makes the level of
every Spider dev query equal to the official one.
"""

from __future__ import annotations

from t2s_bench.datasets.schema import Schema
from t2s_bench.sql.components import SpiderSQL, extract

LEVELS = ("easy", "medium", "hard", "extra")


def hardness(sql: str, schema: Schema | None = None) -> str:
    """easy | medium | hard | extra. Raises SQLParseError when sqlglot cannot parse the query.

    The schema is optional: hardness counts clauses, not columns.
    """
    return hardness_of(extract(sql, schema, strict=False))


def hardness_of(sql: SpiderSQL) -> str:
    c1, c2, others = count_component1(sql), count_component2(sql), count_others(sql)
    if c1 <= 1 and others == 0 and c2 == 0:
        return "easy"
    if (others <= 2 and c1 <= 1 and c2 == 0) or (c1 <= 2 and others < 2 and c2 == 0):
        return "medium"
    if (
        (others > 2 and c1 <= 2 and c2 == 0)
        or (2 < c1 <= 3 and others <= 2 and c2 == 0)
        or (c1 <= 1 and others == 0 and c2 <= 1)
    ):
        return "hard"
    return "extra"


def count_component1(sql: SpiderSQL) -> int:
    count = sum(bool(x) for x in (sql.where, sql.group_by, sql.order_by, sql.has_limit))
    count += max(len(sql.table_units) - 1, 0)
    count += sql.connectors().count("or")
    count += sum(1 for cond in sql.conditions() if cond[1] == "like")
    return count


def count_component2(sql: SpiderSQL) -> int:
    nested = sum(isinstance(v, SpiderSQL) for cond in sql.conditions() for v in (cond[3], cond[4]))
    return nested + sum(v is not None for v in sql.set_ops().values())


def count_others(sql: SpiderSQL) -> int:
    aggs = sum(agg != "none" for agg, _ in sql.select[1])
    aggs += sum(bool(cond[0]) for cond in sql.where[::2])  # official quirk: the NOT flag
    aggs += sum(unit[0] != "none" for unit in sql.group_by)
    if sql.order_by:
        for _, cu1, cu2 in sql.order_by[1]:
            aggs += sum(cu is not None and cu[0] != "none" for cu in (cu1, cu2))
    # official quirk: HAVING items are read the same way, connectors included (always "truthy")
    aggs += sum(1 if isinstance(item, str) else bool(item[0]) for item in sql.having)
    count = int(aggs > 1)
    count += int(len(sql.select[1]) > 1)
    count += int(len(sql.where) > 1)
    count += int(len(sql.group_by) > 1)
    return count
