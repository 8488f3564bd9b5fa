"""The schema a prompt shows for one question: full or pruned by a linker, with or without the
stored values the question mentions. `schema_for` is the one entry point: the prompted systems and
training data preparation both call it, so a model is trained on the schema text it is tested with."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from t2s_bench.datasets.schema import Schema
from t2s_bench.linking import DEFAULT_LINKER, get_linker, prune_schema, value_index
from t2s_bench.linking.prune import DEFAULT_K, DEFAULT_MARGIN
from t2s_bench.linking.values import values_for_prompt
from t2s_bench.prompting.schema_text import serialize_schema

SCHEMA_MODES = ("full", "pruned")


@dataclass(frozen=True)
class SchemaOptions:
    schema: str = "full"  # full | pruned
    linker: str = DEFAULT_LINKER  # a LINKERS name (pruned only)
    k: int = DEFAULT_K  # tables retrieved before the join-path closure
    margin: float | None = DEFAULT_MARGIN  # also keep tables scoring within this of the best (None: off)
    columns: int | None = None  # best columns kept per table besides keys (None: all)
    values: bool = False  # show stored values the question mentions beside their column
    format: str = "ddl"  # ddl | compact
    sample_rows: int = 0

    def __post_init__(self):
        if self.schema not in SCHEMA_MODES:
            raise ValueError(f"unknown schema mode {self.schema!r}; choose from {SCHEMA_MODES}")

    @classmethod
    def of(cls, options: SchemaOptions | dict[str, Any] | None) -> SchemaOptions:
        if options is None or isinstance(options, SchemaOptions):
            return options or cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown schema option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**{k: v for k, v in options.items() if v is not None})

    @property
    def is_default(self) -> bool:
        """Full schema, no values: the prompt every earlier run used."""
        return self.schema == "full" and not self.values

    @property
    def tag(self) -> str:
        """A short name of the variant: full, pruned, pruned+values, full+values."""
        return self.schema + ("+values" if self.values else "")

    def system_options(self) -> dict:
        """The same choice as options of a prompted system (`-S schema=pruned -S values=true`): what a
        training run records as "schema_options", so the finetuned system is tested on the same text."""
        return {"schema": self.schema, "linker": self.linker, "link_k": self.k, "link_margin": self.margin,
                "values": self.values}

    def config(self) -> dict:
        out = {"mode": self.schema, "values": self.values, "tag": self.tag}
        if self.schema == "pruned":
            linker = get_linker(self.linker)
            out.update(linker=linker.config(), k=self.k, margin=self.margin, columns=self.columns)
        return out


@dataclass
class SchemaView:
    text: str
    tables: list[str]  # tables shown
    columns: dict[str, list[str]] | None  # table -> columns shown (None: all of each table)
    values: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    join_tables: list[str] = field(default_factory=list)

    def trace_entry(self) -> dict:
        """What the prompt showed, for the prediction's trace (scoring reads it for linking recall)."""
        return {"stage": "schema", "tables": self.tables, "columns": self.columns,
                "join_tables": self.join_tables, "values": {f"{t}.{c}": v for (t, c), v in self.values.items()}}

    def as_dict(self) -> dict:
        return asdict(self) | {"values": self.trace_entry()["values"]}


def _question(item) -> str:
    example = getattr(item, "example", item)
    return example if isinstance(example, str) else example.question


def schema_for(item, schema: Schema | None = None, options: SchemaOptions | dict | None = None, *,
               db_path: Path | str | None = None, fmt: str | None = None) -> SchemaView:
    """The schema text for one question.

    `item`: a Task (its schema and database are used when not given), an Example or a question.
    `options`: SchemaOptions or a dict of its fields, e.g. {"schema": "pruned", "values": True}.
    Value retrieval and the lexical linker's value matches need `db_path` (a Task carries it)."""
    opts = SchemaOptions.of(options)
    schema = schema if schema is not None else item.schema
    db_path = db_path if db_path is not None else getattr(item, "db_path", None)
    db_path = Path(db_path) if db_path is not None else None
    question = _question(item)
    tables, columns, join_tables = None, None, []
    if opts.schema == "pruned":
        scores = get_linker(opts.linker).link(question, schema, db_path)
        pruned = prune_schema(schema, scores, opts.k, margin=opts.margin, columns_per_table=opts.columns)
        tables, columns, join_tables = pruned.tables, pruned.columns, pruned.join_tables
    values: dict[tuple[str, str], list[str]] = {}
    if opts.values and db_path is not None:
        values = values_for_prompt(value_index(db_path, schema), question, tables)
        if columns is not None:  # a column with a retrieved value is shown even when pruned away
            for (t, c) in values:
                cols = columns.setdefault(t, [])
                if c not in cols:
                    cols.append(c)
    text = serialize_schema(schema, fmt or opts.format, db_path=db_path, sample_rows=opts.sample_rows,
                            tables=tables, columns=columns, values=values)
    return SchemaView(text, tables if tables is not None else [t.name for t in schema.tables], columns,
                      values, join_tables)


def prefetch(questions: list[str], options: SchemaOptions | dict | None) -> None:
    """Embed a batch of questions at once for an embedding-based linker (optional speed-up)."""
    opts = SchemaOptions.of(options)
    if opts.schema == "pruned":
        linker = get_linker(opts.linker)
        if hasattr(linker, "prefetch"):
            linker.prefetch(questions)
