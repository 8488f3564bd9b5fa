"""Schema pruning: the top-k tables of a linker, the tables on foreign-key paths joining them, their
primary keys and the foreign keys among them; optionally only the best columns of each table."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from t2s_bench.datasets.schema import Schema
from t2s_bench.linking.base import LinkScores

# chosen on the held-out databases of Spider train (results/linking-spider-train-heldout-*.md):
# the 2 best tables, and any other within 0.3 of the best score, before the join-path closure
DEFAULT_K = 2
DEFAULT_MARGIN = 0.3
LOOKUP_COLUMNS = 3  # a referenced table this narrow is kept with the table referencing it


@dataclass
class PrunedSchema:
    tables: list[str]  # original names, in schema order
    columns: dict[str, list[str]] | None = None  # table -> kept columns (original names); None: all
    join_tables: list[str] = field(default_factory=list)  # added only to connect retrieved tables

    def keeps_table(self, table: str) -> bool:
        return table.lower() in {t.lower() for t in self.tables}

    def keeps_column(self, table: str, column: str) -> bool:
        if not self.keeps_table(table):
            return False
        if self.columns is None:
            return True
        kept = next((cols for t, cols in self.columns.items() if t.lower() == table.lower()), [])
        return column.lower() in {c.lower() for c in kept}


def fk_graph(schema: Schema) -> dict[str, set[str]]:
    """Undirected foreign-key graph over lower-case table names."""
    graph: dict[str, set[str]] = {t.name.lower(): set() for t in schema.tables}
    for fk in schema.foreign_keys:
        a, b = fk.table.lower(), fk.ref_table.lower()
        if a in graph and b in graph and a != b:
            graph[a].add(b)
            graph[b].add(a)
    return graph


def _path(graph: dict[str, set[str]], sources: set[str], target: str) -> list[str] | None:
    """Shortest path (breadth first) from any of `sources` to `target`, ends included."""
    parent: dict[str, str | None] = {s: None for s in sources}
    queue = deque(sources)
    while queue:
        node = queue.popleft()
        if node == target:
            out = [node]
            while parent[out[-1]] is not None:
                out.append(parent[out[-1]])  # type: ignore[arg-type]
            return out[::-1]
        for nxt in sorted(graph[node]):
            if nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    return None


def connect(schema: Schema, chosen: list[str]) -> list[str]:
    """The chosen tables plus the tables on shortest FK paths joining each to the ones before it
    (a greedy Steiner tree); tables with no FK path stay unconnected."""
    graph = fk_graph(schema)
    kept = [t.lower() for t in chosen if t.lower() in graph]
    if not kept:
        return []
    tree = {kept[0]}
    for t in kept[1:]:
        if t in tree:
            continue
        path = _path(graph, tree, t)
        tree.update(path if path else [t])
    return [t for t in graph if t in tree]


def lookup_tables(schema: Schema, kept: set[str], max_columns: int = LOOKUP_COLUMNS) -> set[str]:
    """Small tables (a code and its description) that kept tables reference by a foreign key:
    questions name what they describe ("organisations described as Sponsors"), not the table."""
    small = {t.name.lower() for t in schema.tables if len(t.columns) <= max_columns}
    return {fk.ref_table.lower() for fk in schema.foreign_keys
            if fk.table.lower() in kept and fk.ref_table.lower() in small} - kept


def prune_schema(schema: Schema, scores: LinkScores, k: int = DEFAULT_K, *, margin: float | None = DEFAULT_MARGIN,
                 columns_per_table: int | None = None, lookups: bool = True) -> PrunedSchema:
    """Keep the k best tables (and, with `margin`, any table scoring within `margin` of the best),
    the tables joining them, with `lookups` the small code tables they reference, and with
    `columns_per_table` only that many best columns per table besides primary and foreign keys."""
    ranked = scores.ranked_tables()
    chosen = ranked[:max(1, k)]
    if margin is not None and ranked:
        best = scores.tables[ranked[0]]
        chosen += [t for t in ranked[len(chosen):] if scores.tables[t] >= best - margin]
    kept = set(connect(schema, chosen))
    if lookups:
        kept |= lookup_tables(schema, kept)
    names = [t.name for t in schema.tables if t.name.lower() in kept]
    join_only = [t for t in names if t.lower() not in {c.lower() for c in chosen}]
    columns = None
    if columns_per_table is not None:
        columns = {}
        keys = {(fk.table.lower(), fk.column.lower()) for fk in schema.foreign_keys
                if fk.table.lower() in kept and fk.ref_table.lower() in kept}
        keys |= {(fk.ref_table.lower(), fk.ref_column.lower()) for fk in schema.foreign_keys
                 if fk.table.lower() in kept and fk.ref_table.lower() in kept}
        for t in schema.tables:
            if t.name.lower() not in kept:
                continue
            best = set(scores.ranked_columns(t.name)[:columns_per_table])
            pks = {p.lower() for p in t.primary_keys}
            columns[t.name] = [c.name for c in t.columns
                               if c.name.lower() in best | pks or (t.name.lower(), c.name.lower()) in keys]
    return PrunedSchema(tables=names, columns=columns, join_tables=join_only)
