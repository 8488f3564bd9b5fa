"""The lexical linker: table and column names (original and natural) found in the question, exactly
or word by word, plus the columns whose stored values the question mentions."""

from __future__ import annotations

from pathlib import Path

from t2s_bench.datasets.schema import Schema
from t2s_bench.linking.base import LinkScores
from t2s_bench.linking.text import STOPWORDS, singular, words


def _forms(*names: str) -> list[list[str]]:
    """Each name as singularised words ("Student_Course" -> ["student", "course"])."""
    out = []
    for name in names:
        ws = [singular(w) for w in words(name.replace("_", " "))]
        if ws and ws not in out:
            out.append(ws)
    return out


def name_score(forms: list[list[str]], question_words: list[str]) -> float:
    """1 when a form appears as a phrase in the question, else the share of its content words
    that the question contains (scaled to 0.8)."""
    text = " " + " ".join(question_words) + " "
    qset = set(question_words)
    best = 0.0
    for ws in forms:
        if " " + " ".join(ws) + " " in text:
            return 1.0
        content = [w for w in ws if w not in STOPWORDS] or ws
        best = max(best, 0.8 * sum(w in qset for w in content) / len(content))
    return best


class LexicalLinker:
    name = "lexical"

    def __init__(self, values: bool = True):
        self.values = values  # use value hits (needs the database file)

    def link(self, question: str, schema: Schema, db_path: Path | None = None) -> LinkScores:
        qwords = [singular(w) for w in words(question)]
        scores = LinkScores()
        value_cols: dict[str, float] = {}
        if self.values and db_path is not None:
            from t2s_bench.linking.values import value_index

            for hit in value_index(db_path, schema).search(question, fuzzy=False):
                key = f"{hit.table.lower()}.{hit.column.lower()}"
                value_cols[key] = max(value_cols.get(key, 0.0), hit.score)
        for t in schema.tables:
            table_score = name_score(_forms(t.name, t.natural_name), qwords)
            best_col = 0.0
            for c in t.columns:
                key = f"{t.name.lower()}.{c.name.lower()}"
                s = max(name_score(_forms(c.name, c.natural_name), qwords), 0.9 * value_cols.get(key, 0.0))
                scores.columns[key] = s
                best_col = max(best_col, s if key not in value_cols else max(s, 0.95))
            scores.tables[t.name.lower()] = max(table_score, 0.7 * best_col)
        return scores

    def config(self) -> dict:
        return {"linker": self.name, "values": self.values}
