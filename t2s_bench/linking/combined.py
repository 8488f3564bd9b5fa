"""The combined linker: the embedding linker's similarity with the lexical linker's name and value
matches as a feature, a weighted sum of the two scores."""

from __future__ import annotations

from pathlib import Path

from t2s_bench.datasets.schema import Schema
from t2s_bench.linking.base import LinkScores
from t2s_bench.linking.embedding import EmbeddingLinker
from t2s_bench.linking.lexical import LexicalLinker


class CombinedLinker:
    name = "combined"

    def __init__(self, embedder: str | None = None, lexical_weight: float = 0.5, values: bool = True):
        self.embedding = EmbeddingLinker(embedder)
        self.lexical = LexicalLinker(values=values)
        self.lexical_weight = lexical_weight

    def prefetch(self, questions: list[str]) -> None:
        self.embedding.prefetch(questions)

    def link(self, question: str, schema: Schema, db_path: Path | None = None) -> LinkScores:
        emb = self.embedding.link(question, schema, db_path)
        lex = self.lexical.link(question, schema, db_path)
        w = self.lexical_weight
        return LinkScores(
            tables={k: (1 - w) * v + w * lex.tables.get(k, 0.0) for k, v in emb.tables.items()},
            columns={k: (1 - w) * v + w * lex.columns.get(k, 0.0) for k, v in emb.columns.items()},
        )

    def config(self) -> dict:
        return {"linker": self.name, "embedder": self.embedding.embedder_name,
                "lexical_weight": self.lexical_weight, "values": self.lexical.values}
