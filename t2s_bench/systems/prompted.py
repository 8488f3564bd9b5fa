"""A prompted system: template + schema (+ examples) -> backend -> extracted SQL.

zero-shot, few-shot, RAG and fine-tuned systems are this one class with different example sources.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Protocol

from t2s_bench.backends.base import Backend, GenerationRequest
from t2s_bench.datasets.spider import Example
from t2s_bench.prompting import FewShotExample, load_template, serialize_schema
from t2s_bench.systems.base import Prediction, Task
from t2s_bench.systems.extract import extract_sql

log = logging.getLogger(__name__)

OVERFLOW_STRATEGIES = ("prune", "truncate", "drop")


class ExampleSource(Protocol):
    def examples_for(self, task: Task, k: int) -> list[Example]: ...

    def schema_text(self, example: Example) -> str:
        """The example's own schema, pruned to the tables its SQL uses (compact form)."""
        ...

    def config(self) -> dict: ...


class PromptedSystem:
    def __init__(
        self,
        name: str,
        backend: Backend,
        *,
        template: str = "v1.0",
        schema_format: str = "ddl",
        sample_rows: int = 0,
        k: int = 0,
        examples: ExampleSource | None = None,
        max_new_tokens: int = 256,
        overflow: str = "prune",
    ):
        if overflow not in OVERFLOW_STRATEGIES:
            raise ValueError(f"unknown overflow strategy {overflow!r}; choose from {OVERFLOW_STRATEGIES}")
        if k and examples is None:
            raise ValueError(f"system {name!r}: k={k} needs an example source")
        self.name, self.backend = name, backend
        self.template = load_template(template)
        self.schema_format, self.sample_rows = schema_format, sample_rows
        self.k, self.examples, self.max_new_tokens, self.overflow = k, examples, max_new_tokens, overflow

    def config(self) -> dict:
        return {
            "system": self.name,
            "backend": self.backend.config(),
            "template": self.template.info() | {"path": None},
            "schema_format": self.schema_format,
            "sample_rows": self.sample_rows,
            "k": self.k,
            "examples": self.examples.config() if self.examples else None,
            "max_new_tokens": self.max_new_tokens,
            "overflow": self.overflow,
        }

    # -- prompt building -------------------------------------------------------------
    def _render(self, task: Task, fmt: str, shots: list[Example], tables=None, sample_rows=None) -> list[dict]:
        schema_text = serialize_schema(
            task.schema,
            fmt,
            db_path=task.db_path,
            sample_rows=self.sample_rows if sample_rows is None else sample_rows,
            tables=tables,
        )
        with_schema = self.template.examples_as_turns and self.examples is not None
        few = [
            FewShotExample(e.question, _tidy(e.query), e.db_id, self.examples.schema_text(e) if with_schema else "")
            for e in shots
        ]
        return self.template.render(schema=schema_text, question=task.example.question, examples=few)

    def build_prompt(self, task: Task) -> tuple[list[dict], str | None]:
        """Messages that fit the context window, or (messages, error) when they cannot."""
        shots = self.examples.examples_for(task, self.k) if self.k else []
        budget = self.backend.context_window - self.max_new_tokens
        messages = self._render(task, self.schema_format, shots)
        if self.backend.count_tokens(messages) <= budget:
            return messages, None
        n = self.backend.count_tokens(messages)
        log.warning("example %s: prompt of %d tokens exceeds budget %d (%s)", task.example.index, n, budget, self.overflow)
        if self.overflow == "drop":
            return messages, f"prompt of {n} tokens exceeds the context budget of {budget}"
        if self.overflow == "prune":
            # 1. compact schema, no sample rows; 2. fewer examples; 3. only tables named in the question
            for fmt_shots in ((s, shots[i:]) for i in range(len(shots) + 1) for s in ["compact"]):
                messages = self._render(task, fmt_shots[0], fmt_shots[1], sample_rows=0)
                if self.backend.count_tokens(messages) <= budget:
                    return messages, None
            named = _tables_named(task)
            if named:
                messages = self._render(task, "compact", [], tables=named, sample_rows=0)
                if self.backend.count_tokens(messages) <= budget:
                    return messages, None
            return messages, f"prompt still exceeds the context budget of {budget} after pruning"
        # truncate: cut the schema text by the overflow ratio, keeping the instructions and the question
        messages = self._render(task, self.schema_format, [], sample_rows=0)
        for _ in range(8):
            n = self.backend.count_tokens(messages)
            if n <= budget:
                return messages, None
            sys_text = messages[0]["content"]
            keep = int(len(sys_text) * budget / n * 0.95)
            messages = [{"role": "system", "content": sys_text[:keep]}] + messages[1:]
        return messages, f"prompt could not be truncated to {budget} tokens"

    # -- prediction ------------------------------------------------------------------
    def predict(self, tasks: list[Task]) -> list[Prediction]:
        preds: list[Prediction | None] = [None] * len(tasks)
        requests, slots = [], []
        for i, task in enumerate(tasks):
            messages, error = self.build_prompt(task)
            if error:
                preds[i] = Prediction(task.example.index, task.example.db_id, "", prompt=messages, error=error)
                continue
            requests.append(GenerationRequest(messages=messages, max_tokens=self.max_new_tokens))
            slots.append(i)
        if requests:
            start = time.perf_counter()
            try:
                gens = self.backend.generate(requests)
            except Exception as e:  # a backend failure is recorded per example, never lost
                log.exception("backend failed on a batch of %d", len(requests))
                gens = None
                err = f"backend error: {type(e).__name__}: {e}"
            for j, i in enumerate(slots):
                task = tasks[i]
                if gens is None:
                    preds[i] = Prediction(task.example.index, task.example.db_id, "", prompt=requests[j].messages, error=err,
                                          latency_s=(time.perf_counter() - start) / len(slots))
                    continue
                g = gens[j]
                preds[i] = Prediction(
                    index=task.example.index,
                    db_id=task.example.db_id,
                    sql=extract_sql(g.text),
                    raw_output=g.text,
                    prompt=requests[j].messages,
                    prompt_tokens=g.prompt_tokens,
                    completion_tokens=g.completion_tokens,
                    latency_s=g.latency_s,
                )
        return preds  # type: ignore[return-value]


def _tidy(sql: str) -> str:
    """Example SQL in canonical form (the same normaliser as training targets)."""
    from t2s_bench.sql.normalize import normalize_sql

    try:
        return normalize_sql(sql)
    except Exception:
        return " ".join(sql.split())


def _tables_named(task: Task) -> list[str]:
    """Tables whose name or natural name appears in the question (last-resort schema pruning)."""
    q = task.example.question.lower()
    return [t.name for t in task.schema.tables if t.name.lower() in q or t.natural_name.lower() in q]


Factory = Callable[..., PromptedSystem]
