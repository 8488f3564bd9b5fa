"""The embedding linker: cosine similarity between the question and each table and column,
embedded with a sentence-embedding model (all-MiniLM-L6-v2 by default). The element vectors of a
schema are stored on disk once, keyed by model and the schema's content hash: a FAISS inner-product
index when faiss is installed, a numpy matrix otherwise (Spider's schemas have tens of elements,
where both are exact and numpy is as fast)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from t2s_bench import paths
from t2s_bench.datasets.schema import Schema
from t2s_bench.linking.base import LinkScores, schema_hash


def element_texts(schema: Schema) -> tuple[list[str], list[str]]:
    """(keys, texts): "table" and "table.column" keys, with the natural-language text embedded."""
    keys, texts = [], []
    for t in schema.tables:
        keys.append(t.name.lower())
        texts.append(f"{t.natural_name} ({t.name.replace('_', ' ')})")
        for c in t.columns:
            keys.append(f"{t.name.lower()}.{c.name.lower()}")
            texts.append(f"{c.natural_name} of {t.natural_name}")
    return keys, texts


class _Index:
    """Unit vectors of a schema's elements; `search` gives every element's cosine similarity."""

    def __init__(self, matrix: np.ndarray):
        self.matrix = matrix.astype(np.float32)
        self.faiss = None
        try:
            import faiss  # type: ignore[import-not-found]

            self.faiss = faiss.IndexFlatIP(self.matrix.shape[1])
            self.faiss.add(self.matrix)
        except ImportError:
            pass

    def search(self, query: np.ndarray) -> np.ndarray:
        if self.faiss is None:
            return self.matrix @ query
        sims, ids = self.faiss.search(query[None, :].astype(np.float32), self.matrix.shape[0])
        out = np.empty(self.matrix.shape[0], dtype=np.float32)
        out[ids[0]] = sims[0]
        return out


class EmbeddingLinker:
    name = "embedding"

    def __init__(self, embedder: str | None = None):
        from t2s_bench.systems.embeddings import DEFAULT_EMBEDDER

        self.embedder_name = embedder or DEFAULT_EMBEDDER
        self._embedder = None
        self._indexes: dict[str, tuple[list[str], _Index]] = {}
        self._queries: dict[str, np.ndarray] = {}

    @property
    def embedder(self):
        if self._embedder is None:
            from t2s_bench.systems.embeddings import Embedder

            self._embedder = Embedder(self.embedder_name)
        return self._embedder

    def index(self, schema: Schema) -> tuple[list[str], _Index]:
        key = schema_hash(schema)
        if key not in self._indexes:
            keys, texts = element_texts(schema)
            path = paths.cache_dir() / "linking" / "schema-index" / self.embedder_name / f"{key}.npy"
            if path.is_file():
                matrix = np.load(path)
            else:
                matrix = self.embedder.encode(texts)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, matrix)
                tmp.replace(path)
            self._indexes[key] = (keys, _Index(matrix))
        return self._indexes[key]

    def prefetch(self, questions: list[str]) -> None:
        """Embed many questions in one batch (the measurement and the systems call this first).
        Vectors are kept on disk by question, so a machine without the embedding model (a GPU box
        given the cache folder) links questions embedded elsewhere."""
        todo = [q for q in dict.fromkeys(questions) if q not in self._queries]
        folder = paths.cache_dir() / "linking" / "questions" / self.embedder_name
        missing = []
        for q in todo:
            path = folder / f"{hashlib.sha256(q.encode()).hexdigest()[:24]}.npy"
            if path.is_file():
                self._queries[q] = np.load(path)
            else:
                missing.append((q, path))
        if missing:
            folder.mkdir(parents=True, exist_ok=True)
            for (q, path), vec in zip(missing, self.embedder.encode([q for q, _ in missing])):
                self._queries[q] = vec
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, vec)
                tmp.replace(path)

    def link(self, question: str, schema: Schema, db_path: Path | None = None) -> LinkScores:
        self.prefetch([question])
        keys, index = self.index(schema)
        sims = index.search(self._queries[question])
        scores = LinkScores()
        for key, sim in zip(keys, sims.tolist()):
            (scores.columns if "." in key else scores.tables)[key] = max(0.0, float(sim))
        for t in list(scores.tables):  # a table is as relevant as its best column, or its own name
            best_col = max((s for k, s in scores.columns.items() if k.startswith(t + ".")), default=0.0)
            scores.tables[t] = max(scores.tables[t], best_col)
        return scores

    def config(self) -> dict:
        return {"linker": self.name, "embedder": self.embedder_name}
