"""Value retrieval: the stored values of text columns that a question mentions.

Each database's distinct text values are read once and cached on disk, keyed by the SQLite file's
content hash. A question's word n-grams are matched exactly (normalised), by word containment
(a rare question word inside a short value) and, with rapidfuzz installed, fuzzily (typos, plural).
Hand-written rather than BM25: the values are short names, so exact and fuzzy n-gram matches
beat bag-of-words ranking, and the lookup is a dictionary hit.
"""

from __future__ import annotations

import gzip
import json
import logging
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from t2s_bench import paths
from t2s_bench.datasets.schema import Schema
from t2s_bench.files import file_sha256
from t2s_bench.linking.text import STOPWORDS, ngrams, normalize, quoted

log = logging.getLogger(__name__)

MAX_VALUES_PER_COLUMN = 20000  # distinct values read per column
MAX_VALUE_CHARS = 80  # longer texts are prose, not values a question names
FUZZY_CUTOFF = 88  # rapidfuzz ratio (0-100) for a fuzzy hit
CONTAINMENT_LIMIT = 8  # a word inside more values than this is too common to retrieve by
CATEGORICAL_VALUES = 4  # a column with at most this many distinct short values shows them all ('T', 'F')
CATEGORICAL_CHARS = 12


@dataclass(frozen=True)
class ValueHit:
    table: str
    column: str
    value: str  # as stored
    score: float  # 1 exact, lower for containment and fuzzy hits


class ValueIndex:
    """The distinct short text values of one database, by normalised form."""

    def __init__(self, entries: list[tuple[str, str, str]], name_words: frozenset[str] = frozenset()):
        # entries: (table, column, stored value)
        self.by_norm: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        per_column: dict[tuple[str, str], list[str]] = defaultdict(list)
        for table, column, value in entries:
            per_column[(table, column)].append(value)
            norm = normalize(value)
            if norm:
                self.by_norm[norm].append((table, column, value))
        self.keys = list(self.by_norm)
        # codes and flags ('T'/'F', 'yes'/'no', 'cat'/'dog'): questions imply them without naming them
        self.categorical = {col: sorted(vals) for col, vals in per_column.items()
                            if len(vals) <= CATEGORICAL_VALUES and all(len(v) <= CATEGORICAL_CHARS for v in vals)}
        self.name_words = name_words  # words of table and column names: not retrieved by containment
        self.by_word: dict[str, list[str]] = defaultdict(list)
        for key in self.keys:
            for w in set(key.split()):
                if w not in STOPWORDS:
                    self.by_word[w].append(key)

    @classmethod
    def build(cls, db_path: Path, schema: Schema) -> ValueIndex:
        from t2s_bench.linking.text import singular, words

        names = [n for t in schema.tables for n in (t.name, t.natural_name, *(x for c in t.columns
                                                                            for x in (c.name, c.natural_name)))]
        name_words = frozenset(w for n in names for x in words(n.replace("_", " ")) for w in (x, singular(x)))
        return cls(read_values(db_path, schema), name_words)

    def search(self, question: str, *, fuzzy: bool = True) -> list[ValueHit]:
        """Values the question mentions, best first (one hit per stored value and column)."""
        grams = ngrams(question, 6) + quoted(question)
        scores: dict[str, float] = {}
        for gram in grams:
            if gram in self.by_norm:
                scores[gram] = 1.0
        for gram in grams:  # "cats" -> 'cat', "Kyle's" -> 'Kyle', "European" -> 'Europe'
            ws = gram.split()
            if len(ws) > 3:
                continue
            for variant in _variants(ws):
                if variant in self.by_norm and variant not in scores:
                    scores[variant] = 0.9
        for gram in grams:  # a rare question word (or two) inside a short value: "Stanford" -> "Stanford University"
            ws = gram.split()
            if len(ws) > 2 or any(w in STOPWORDS or len(w) < 3 for w in ws) or all(w in self.name_words for w in ws):
                continue
            holders = set(self.by_word.get(ws[0], []))
            for w in ws[1:]:
                holders &= set(self.by_word.get(w, []))
            if 0 < len(holders) <= CONTAINMENT_LIMIT:
                for key in holders:
                    if len(key.split()) <= 4:
                        scores[key] = max(scores.get(key, 0.0), 0.7 + 0.1 * len(ws))
        if fuzzy:
            for key, score in self._fuzzy(grams):
                scores[key] = max(scores.get(key, 0.0), score)
        hits = [ValueHit(t, c, v, s) for key, s in scores.items() for t, c, v in self.by_norm[key]]
        return sorted(hits, key=lambda h: -h.score)

    def _fuzzy(self, grams: list[str]) -> list[tuple[str, float]]:
        try:
            from rapidfuzz import fuzz, process
        except ImportError:  # exact and containment matches only
            return []
        queries = [g for g in grams if len(g) >= 5 and len(g.split()) <= 3]
        if not queries or not self.keys:
            return []
        out = []
        for q, key, score in _best_matches(process, fuzz, queries, self.keys):
            if q != key:
                out.append((key, 0.6 * score / 100))
        return out


def _best_matches(process, fuzz, queries: list[str], keys: list[str]):
    matrix = process.cdist(queries, keys, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF, workers=1)
    rows, cols = matrix.nonzero()
    for r, c in zip(rows, cols):
        yield queries[r], keys[c], float(matrix[r, c])


def _variants(ws: list[str]) -> list[str]:
    """Other spellings of a question n-gram that a stored value may have: the last word singular,
    without a possessive 's, or cut by up to three letters ("engineering" -> "engineer")."""
    from t2s_bench.linking.text import singular

    head, last = ws[:-1], ws[-1]
    forms = {singular(last), last.removesuffix("'s")}
    if len(last) >= 6:
        forms |= {last[:-n] for n in (1, 2, 3) if len(last) - n >= 4}
    return [" ".join([*head, f]) for f in forms if f and f != last]


def values_for_prompt(index: ValueIndex, question: str, tables: list[str] | None = None) -> dict[tuple[str, str], list[str]]:
    """{(table, column): values} to show: the values the question mentions, then every value of the
    categorical columns; only for `tables` (all when None)."""
    shown = {t.lower() for t in tables} if tables is not None else None
    hits = [h for h in index.search(question) if shown is None or h.table.lower() in shown]
    out = values_by_column(hits)
    for (table, column), vals in index.categorical.items():
        if (shown is None or table.lower() in shown) and (table, column) not in out:
            out[(table, column)] = vals
    return out


def values_by_column(hits: list[ValueHit], per_column: int = 3, max_columns: int = 8) -> dict[tuple[str, str], list[str]]:
    """{(table, column): [values]} for the prompt: the best few values of the best columns."""
    out: dict[tuple[str, str], list[str]] = {}
    for h in hits:
        key = (h.table, h.column)
        if key not in out and len(out) >= max_columns:
            continue
        vals = out.setdefault(key, [])
        if len(vals) < per_column and h.value not in vals:
            vals.append(h.value)
    return out


def read_values(db_path: Path, schema: Schema) -> list[tuple[str, str, str]]:
    """(table, column, value) for every distinct short value of every text column (cached on disk)."""
    key = file_sha256(db_path)[:24]
    cache = paths.cache_dir() / "linking" / "values" / f"{key}.json.gz"
    if cache.is_file():
        return [tuple(e) for e in json.loads(gzip.decompress(cache.read_bytes()))]  # type: ignore[misc]
    entries: list[tuple[str, str, str]] = []
    con = sqlite3.connect(f"file:{Path(db_path).resolve()}?mode=ro", uri=True)
    con.text_factory = lambda b: b.decode("utf-8", errors="replace")
    try:
        for t in schema.tables:
            for c in t.columns:
                if c.type != "text":
                    continue
                try:
                    rows = con.execute(
                        f'SELECT DISTINCT "{c.name}" FROM "{t.name}" WHERE "{c.name}" IS NOT NULL LIMIT ?',
                        (MAX_VALUES_PER_COLUMN,),
                    ).fetchall()
                except sqlite3.Error as e:
                    log.debug("values of %s.%s: %s", t.name, c.name, e)
                    continue
                for (v,) in rows:
                    if isinstance(v, str) and 0 < len(v.strip()) <= MAX_VALUE_CHARS:
                        entries.append((t.name, c.name, v))
    finally:
        con.close()
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_bytes(gzip.compress(json.dumps(entries).encode()))
    tmp.replace(cache)
    return entries


_INDEXES: dict[tuple, ValueIndex] = {}


def value_index(db_path: Path, schema: Schema) -> ValueIndex:
    """The value index of a database, built once per process (and once per file content on disk)."""
    from t2s_bench.linking.base import schema_hash

    st = Path(db_path).stat()
    key = (str(Path(db_path).resolve()), st.st_size, st.st_mtime_ns, schema_hash(schema))
    if key not in _INDEXES:
        if len(_INDEXES) >= 64:
            _INDEXES.pop(next(iter(_INDEXES)))
        _INDEXES[key] = ValueIndex.build(Path(db_path), schema)
    return _INDEXES[key]
