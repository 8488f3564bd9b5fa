"""Few-shot example selection from a training pool: random, question similarity, masked-question similarity.

Examples never come from the database under evaluation.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter

from t2s_bench.datasets.schema import Schema
from t2s_bench.datasets.spider import Example

# Word tokenisation of natural-language questions (not SQL).
_WORD = re.compile(r"[a-z0-9]+")
_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|“[^”]*”")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def mask_question(question: str, schema: Schema | None) -> list[str]:
    """DAIL-SQL-style masking: schema words -> <col>/<tab>, values -> <val>."""
    text = _QUOTED.sub(" <val> ", question)
    tab_words, col_words = set(), set()
    if schema is not None:
        for t in schema.tables:
            tab_words.update(words(t.natural_name))
            for c in t.columns:
                col_words.update(words(c.natural_name))
    out = []
    for w in words(text.replace("<val>", " zzval ")):
        if w == "zzval" or _NUMBER.match(w):
            out.append("<val>")
        elif w in tab_words:
            out.append("<tab>")
        elif w in col_words:
            out.append("<col>")
        else:
            out.append(w)
    return out


class TfidfIndex:
    """Cosine similarity over TF-IDF bags of words (unigrams + bigrams); small and dependency-free."""

    def __init__(self, docs: list[list[str]]):
        self.docs = [self._grams(d) for d in docs]
        df = Counter(g for d in self.docs for g in set(d))
        n = len(self.docs)
        self.idf = {g: math.log((1 + n) / (1 + c)) + 1 for g, c in df.items()}
        self.vecs = [self._vec(d) for d in self.docs]

    @staticmethod
    def _grams(tokens: list[str]) -> list[str]:
        return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]

    def _vec(self, grams: list[str]) -> dict[str, float]:
        tf = Counter(grams)
        v = {g: c * self.idf.get(g, 0.0) for g, c in tf.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {g: x / norm for g, x in v.items()}

    def scores(self, tokens: list[str]) -> list[float]:
        q = self._vec(self._grams(tokens))
        return [sum(w * v.get(g, 0.0) for g, w in q.items()) for v in self.vecs]


class ExampleSelector:
    """Pick k examples for a question from a pool, excluding the evaluated database."""

    METHODS = ("random", "similarity", "masked")

    def __init__(self, pool: list[Example], schemas: dict[str, Schema], method: str = "masked", seed: int = 42):
        if method not in self.METHODS:
            raise ValueError(f"unknown selection method {method!r}; choose from {self.METHODS}")
        self.pool, self.schemas, self.method, self.seed = pool, schemas, method, seed
        self._index = None
        if method == "similarity":
            self._index = TfidfIndex([words(e.question) for e in pool])
        elif method == "masked":
            self._index = TfidfIndex([mask_question(e.question, schemas.get(e.db_id)) for e in pool])

    def select(self, example: Example, schema: Schema, k: int) -> list[Example]:
        """k examples, most similar last (nearest the question); random ones in the order drawn."""
        picks = self.ranked(example, schema, k)
        return picks if self.method == "random" else list(reversed(picks))

    def ranked(self, example: Example, schema: Schema, n: int) -> list[Example]:
        """Up to n examples from other databases, most similar first."""
        allowed = [i for i, e in enumerate(self.pool) if e.db_id != example.db_id]
        if self.method == "random":
            rng = random.Random(f"{self.seed}:{example.db_id}:{example.index}")
            return [self.pool[i] for i in rng.sample(allowed, min(n, len(allowed)))]
        tokens = words(example.question) if self.method == "similarity" else mask_question(example.question, schema)
        scores = self._index.scores(tokens)
        return [self.pool[i] for i in sorted(allowed, key=lambda i: (-scores[i], i))[:n]]


# DAIL-SQL's second criterion: among the candidates nearest by question, prefer those whose SQL has
# the shape of a zero-shot draft of the answer.
SKELETON_SEARCH = 100  # candidates (nearest by question) that the skeleton re-ranking looks at
SKELETON_THRESHOLD = 0.7  # skeleton similarity an example needs to be preferred


def rerank_by_skeleton(ranked: list[Example], draft_sql: str, k: int,
                       threshold: float = SKELETON_THRESHOLD) -> list[Example]:
    """k of `ranked` (best first): those whose SQL skeleton is similar to the draft's, in question
    order, then the rest in question order; returned most similar last, like `select`."""
    from t2s_bench.sql.skeleton import skeleton_similarity

    if not draft_sql:
        return list(reversed(ranked[:k]))
    close = [skeleton_similarity(draft_sql, e.query) >= threshold for e in ranked]
    chosen = ([e for e, c in zip(ranked, close) if c] + [e for e, c in zip(ranked, close) if not c])[:k]
    return list(reversed(chosen))
