"""Schema model: tables, columns, keys; built from a tables.json entry or a live SQLite file."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Column:
    table: str  # original table name
    name: str  # original column name, as in the database
    natural_name: str  # Spider's readable name ("people id")
    type: str  # Spider's type vocabulary: text, number, time, boolean, others
    index: int  # Spider column index (0 is "*")


@dataclass(frozen=True)
class ForeignKey:
    table: str
    column: str
    ref_table: str
    ref_column: str


@dataclass
class Table:
    name: str  # original name
    natural_name: str
    columns: list[Column] = field(default_factory=list)
    primary_keys: list[str] = field(default_factory=list)

    def column(self, name: str) -> Column | None:
        low = name.lower()
        return next((c for c in self.columns if c.name.lower() == low), None)


@dataclass
class Schema:
    db_id: str
    tables: list[Table]
    foreign_keys: list[ForeignKey] = field(default_factory=list)

    def table(self, name: str) -> Table | None:
        low = name.lower()
        return next((t for t in self.tables if t.name.lower() == low), None)

    @property
    def n_columns(self) -> int:
        return sum(len(t.columns) for t in self.tables)

    def column_index_map(self) -> dict[str, int]:
        """'table.column' (lower case) -> Spider column index; '*' -> 0."""
        out = {"*": 0}
        for t in self.tables:
            for c in t.columns:
                out[f"{t.name.lower()}.{c.name.lower()}"] = c.index
        return out

    @classmethod
    def from_tables_json(cls, entry: dict) -> Schema:
        """Build from one entry of Spider's tables.json."""
        names = entry["table_names_original"]
        naturals = entry.get("table_names", names)
        tables = [Table(name=n, natural_name=nat) for n, nat in zip(names, naturals)]
        by_index: dict[int, Column] = {}
        originals = entry["column_names_original"]
        naturals_c = entry.get("column_names", originals)
        types = entry.get("column_types", ["text"] * len(originals))
        for i, ((t_idx, cname), (_, nat), ctype) in enumerate(zip(originals, naturals_c, types)):
            if t_idx < 0:
                continue
            col = Column(table=names[t_idx], name=cname, natural_name=nat, type=ctype, index=i)
            tables[t_idx].columns.append(col)
            by_index[i] = col
        for pk in entry.get("primary_keys", []):
            # Spider lists composite keys as nested lists in some releases
            for idx in pk if isinstance(pk, list) else [pk]:
                col = by_index.get(idx)
                if col is not None:
                    tables[names.index(col.table)].primary_keys.append(col.name)
        fks = []
        for src, dst in entry.get("foreign_keys", []):
            a, b = by_index.get(src), by_index.get(dst)
            if a and b:
                fks.append(ForeignKey(a.table, a.name, b.table, b.name))
        return cls(db_id=entry["db_id"], tables=tables, foreign_keys=fks)

    @classmethod
    def from_sqlite(cls, path: str | Path, db_id: str | None = None) -> Schema:
        """Introspect a SQLite file (read-only): users bring their own databases."""
        path = Path(path)
        uri = f"file:{path.resolve()}?mode=ro"
        con = sqlite3.connect(uri, uri=True)
        try:
            rows = con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
            ).fetchall()
            tables, fks, index = [], [], 1
            for (tname,) in rows:
                info = con.execute(f'PRAGMA table_info("{tname}")').fetchall()
                table = Table(name=tname, natural_name=_naturalise(tname))
                pk_cols = sorted((r for r in info if r[5]), key=lambda r: r[5])
                for _, cname, ctype, *_rest in info:
                    table.columns.append(
                        Column(tname, cname, _naturalise(cname), _spider_type(ctype), index)
                    )
                    index += 1
                table.primary_keys = [r[1] for r in pk_cols]
                tables.append(table)
                for r in con.execute(f'PRAGMA foreign_key_list("{tname}")').fetchall():
                    ref_table, src, dst = r[2], r[3], r[4]
                    if dst is None:  # FK to the referenced table's primary key
                        ref_pk = [x[1] for x in con.execute(f'PRAGMA table_info("{ref_table}")') if x[5]]
                        dst = ref_pk[0] if ref_pk else src
                    fks.append(ForeignKey(tname, src, ref_table, dst))
        finally:
            con.close()
        # resolve case of referenced tables/columns to their declared spelling
        by_low = {t.name.lower(): t for t in tables}
        fixed = []
        for fk in fks:
            rt = by_low.get(fk.ref_table.lower())
            if rt is None:
                continue
            rc = rt.column(fk.ref_column)
            fixed.append(ForeignKey(fk.table, fk.column, rt.name, rc.name if rc else fk.ref_column))
        return cls(db_id=db_id or path.stem, tables=tables, foreign_keys=fixed)

    def to_tables_json(self) -> dict:
        """Inverse of from_tables_json (column indices renumbered in table order)."""
        col_orig, col_nat, types, index = [[-1, "*"]], [[-1, "*"]], ["text"], {}
        for ti, t in enumerate(self.tables):
            for c in t.columns:
                index[(t.name.lower(), c.name.lower())] = len(col_orig)
                col_orig.append([ti, c.name])
                col_nat.append([ti, c.natural_name])
                types.append(c.type)
        pks = [index[(t.name.lower(), k.lower())] for t in self.tables for k in t.primary_keys]
        fks = [
            [index[(f.table.lower(), f.column.lower())], index[(f.ref_table.lower(), f.ref_column.lower())]]
            for f in self.foreign_keys
            if (f.table.lower(), f.column.lower()) in index and (f.ref_table.lower(), f.ref_column.lower()) in index
        ]
        return {
            "db_id": self.db_id,
            "table_names_original": [t.name for t in self.tables],
            "table_names": [t.natural_name for t in self.tables],
            "column_names_original": col_orig,
            "column_names": col_nat,
            "column_types": types,
            "primary_keys": pks,
            "foreign_keys": fks,
        }


def _naturalise(name: str) -> str:
    return name.replace("_", " ").strip().lower()


def _spider_type(sql_type: str) -> str:
    t = (sql_type or "").upper()
    if any(k in t for k in ("INT", "REAL", "FLOA", "DOUB", "NUM", "DEC")):
        return "number"
    if any(k in t for k in ("DATE", "TIME", "YEAR")):
        return "time"
    if "BOOL" in t:
        return "boolean"
    return "text"
