"""A prompted system: template + schema (+ examples) -> backend -> extracted SQL.

zero-shot, few-shot, RAG and fine-tuned systems are this one class with different example sources.
Optional stages: a zero-shot draft that guides example selection, self-consistency or beam search with
the first executable beam, and execution-guided repair.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from t2s_bench.backends.base import Backend, GenerationRequest
from t2s_bench.datasets.spider import Example
from t2s_bench.prompting import (
    FewShotExample,
    SchemaOptions,
    SchemaView,
    load_follow_up,
    load_template,
    schema_for,
    serialize_schema,
)
from t2s_bench.prompting.schema_view import prefetch as prefetch_linking
from t2s_bench.systems.base import Prediction, Task
from t2s_bench.systems.beam import BeamSearch
from t2s_bench.systems.extract import extract_sql
from t2s_bench.systems.repair import CHECK_TIMEOUT_S, REPAIR_TEMPLATE, execution_error, repair_messages
from t2s_bench.systems.self_consistency import SelfConsistency, mean_logprob
from t2s_bench.systems.vote import execution_vote

log = logging.getLogger(__name__)

OVERFLOW_STRATEGIES = ("prune", "truncate", "drop")


class ExampleSource(Protocol):
    needs_draft: bool  # examples chosen with a zero-shot draft of the answer (DAIL-SQL)

    def examples_for(self, task: Task, k: int, draft: str | None = None) -> list[Example]: ...

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
        repair: int = 0,
        repair_template: str = REPAIR_TEMPLATE,
        votes: int = 1,
        schema: str = "full",
        linker: str | None = None,
        link_k: int | None = None,
        link_margin: float | None = None,
        values: bool = False,
        samples: int = 0,
        temperature: float = 0.7,
        top_p: float = 0.95,
        sample_seed: int = 0,
        beams: int = 0,
        beam_nonempty: bool = False,
    ):
        if overflow not in OVERFLOW_STRATEGIES:
            raise ValueError(f"unknown overflow strategy {overflow!r}; choose from {OVERFLOW_STRATEGIES}")
        if k and examples is None:
            raise ValueError(f"system {name!r}: k={k} needs an example source")
        self.name, self.backend = name, backend
        self.template = load_template(template)
        self.schema_format, self.sample_rows = schema_format, sample_rows
        self.k, self.examples, self.max_new_tokens, self.overflow = k, examples, max_new_tokens, overflow
        if votes > 1 and not (k and examples is not None):
            raise ValueError(f"system {name!r}: votes={votes} needs few-shot examples (k > 0): "
                             "greedy zero-shot gives one answer per prompt")
        self.votes = votes  # answers from `votes` disjoint example sets, chosen by execution voting
        self.repair = repair  # rounds of execution-guided repair (0: off)
        self.follow_up = load_follow_up(repair_template) if repair else None
        # self-consistency: `samples` sampled answers + the greedy one, voted by execution (0: off)
        self.self_consistency = SelfConsistency(samples, temperature, top_p, sample_seed) if samples else None
        # beam search, the first beam that runs on the database (0: off; systems/beam.py)
        self.beam = BeamSearch(beams, beam_nonempty) if beams or beam_nonempty else None
        if self.beam and (samples or votes > 1):
            raise ValueError(f"system {name!r}: beams={beams} replaces the greedy answer; it does not combine "
                             f"with {'samples' if samples else 'votes'} (self-consistency / example-set votes)")
        if self.beam and not backend.supports_beam_search:
            raise ValueError(f"system {name!r}: beams={beams} needs a backend with beam search (transformers); "
                             f"the {backend.name or type(backend).__name__} backend has none: use samples=N "
                             "(self-consistency) instead")
        # schema linking: the full schema or a pruned one, with or without retrieved values
        self.schema_options = SchemaOptions.of({"schema": schema, "linker": linker, "k": link_k, "margin": link_margin,
                                                "values": values, "format": schema_format, "sample_rows": sample_rows})
        self._views: dict[tuple[str, str], SchemaView] = {}

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
            **({"draft": "zero-shot, same template without examples"} if self.needs_draft else {}),
            **({"votes": {"example_sets": self.votes, "rule": "execution vote, ties to the best-ranked set"}}
               if self.votes > 1 else {}),
            **({"schema": self.schema_options.config()} if not self.schema_options.is_default else {}),
            **({"self_consistency": self.self_consistency.config()} if self.self_consistency else {}),
            **({"beam": self.beam.config()} if self.beam else {}),
            **({"repair": {"rounds": self.repair, "template": self.follow_up.info(),
                           "check_timeout_s": CHECK_TIMEOUT_S}} if self.repair else {}),
        }

    # -- prompt building -------------------------------------------------------------
    def _schema_view(self, task: Task) -> SchemaView | None:
        """The pruned schema / retrieved values of the task (None: the full schema), once per question."""
        if self.schema_options.is_default:
            return None
        key = (task.example.db_id, task.example.question)
        if key not in self._views:
            self._views[key] = schema_for(task, options=self.schema_options)
        return self._views[key]

    def _render(self, task: Task, fmt: str, shots: list[Example], tables=None, sample_rows=None) -> list[dict]:
        view = self._schema_view(task)
        schema_text = serialize_schema(
            task.schema,
            fmt,
            db_path=task.db_path,
            sample_rows=self.sample_rows if sample_rows is None else sample_rows,
            tables=tables if tables is not None or view is None else view.tables,
            columns=view.columns if view else None,
            values=view.values if view else None,
        )
        with_schema = self.template.examples_as_turns and self.examples is not None
        few = [
            FewShotExample(e.question, _tidy(e.query), e.db_id, self.examples.schema_text(e) if with_schema else "")
            for e in shots
        ]
        return self.template.render(schema=schema_text, question=task.example.question, examples=few)

    def build_prompt(self, task: Task, draft: str | None = None) -> tuple[list[dict], str | None]:
        """Messages that fit the context window, or (messages, error) when they cannot."""
        return self._fit(task, self._shots(task, draft))

    def _fit(self, task: Task, shots: list[Example]) -> tuple[list[dict], str | None]:
        """The prompt with these examples, shrunk by the overflow strategy when it is too long."""
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
        """Stages, each one batched backend call: [zero-shot draft] -> answer (or one answer per example
        set, then an execution vote; or B beams, then the first that runs) -> [self-consistency samples and
        vote] -> [repair rounds]."""
        if not self.schema_options.is_default:
            prefetch_linking([t.example.question for t in tasks], self.schema_options)
        drafts: dict[int, Prediction] = {}
        if self.needs_draft:
            drafts = dict(enumerate(self._generate(tasks, [self._fit(t, []) for t in tasks])))
        scores: list[float | None] | None = None  # mean token log-probability of each answer
        if self.votes > 1:
            preds = self._vote(tasks, drafts)
        else:
            prompts = [self._fit(task, self._shots(task, _sql(drafts.get(i)))) for i, task in enumerate(tasks)]
            gens: list = []
            preds = self._generate(tasks, prompts, gens, num_beams=self.beam.beams if self.beam else 1)
            scores = [mean_logprob(g) if g is not None else None for g in gens]
        if self.self_consistency:
            preds = self.self_consistency.apply(self.backend, tasks, preds, self.max_new_tokens, scores)
        if self.beam:
            preds = self.beam.apply(tasks, preds, gens)
        for i, draft in drafts.items():
            _absorb(preds[i], draft, "draft")
        if self.repair:
            self._repair(tasks, preds)
        for task, pred in zip(tasks, preds):  # what the prompt showed, read by the linking-recall metrics
            view = self._schema_view(task)
            if view is not None and not any(e.get("stage") == "schema" for e in pred.trace):
                pred.trace.insert(0, view.trace_entry())
        return preds

    @property
    def needs_draft(self) -> bool:
        return bool(self.k and getattr(self.examples, "needs_draft", False))

    def _shots(self, task: Task, draft: str | None, n: int | None = None) -> list[Example]:
        """n (default k) examples for the task, most similar last."""
        if not self.k:
            return []
        if self.needs_draft:
            return self.examples.examples_for(task, n or self.k, draft=draft)
        return self.examples.examples_for(task, n or self.k)

    def _vote(self, tasks: list[Task], drafts: dict[int, Prediction]) -> list[Prediction]:
        """One answer per example set (the k best, the next k, ...), then execution voting."""
        owners, prompts = [], []
        for i, task in enumerate(tasks):
            best_first = self._shots(task, _sql(drafts.get(i)), n=self.k * self.votes)[::-1]
            for j in range(self.votes):
                window = best_first[j * self.k:(j + 1) * self.k][::-1]
                if window or j == 0:
                    owners.append(i)
                    prompts.append(self._fit(task, window))
        candidates = self._generate([tasks[i] for i in owners], prompts)
        preds = []
        for i, task in enumerate(tasks):
            mine = [c for owner, c in zip(owners, candidates) if owner == i]
            chosen, groups = execution_vote([c.sql if not c.error else "" for c in mine], task.db_path)
            pred = mine[chosen]
            for n, other in enumerate(mine):
                if n != chosen:
                    _add_cost(pred, other)
            pred.trace = [*[_trace_entry(f"candidate {n}", c, None) for n, c in enumerate(mine)],
                          {"stage": "vote", "groups": groups, "chosen": chosen}]
            preds.append(pred)
        return preds

    def _generate(self, tasks: list[Task], prompts: list[tuple[list[dict], str | None]],
                  generations: list | None = None, num_beams: int = 1) -> list[Prediction]:
        """One batched backend call for the prompts that fit; errors stay per example. `generations`,
        when given, receives each task's Generation (None where there was none); `num_beams > 1` asks for
        beam search (the prediction is the top beam)."""
        preds: list[Prediction | None] = [None] * len(tasks)
        if generations is not None:
            generations[:] = [None] * len(tasks)
        requests, slots = [], []
        for i, (task, (messages, error)) in enumerate(zip(tasks, prompts)):
            if error:
                preds[i] = Prediction(task.example.index, task.example.db_id, "", prompt=messages, error=error)
                continue
            requests.append(GenerationRequest(messages=messages, max_tokens=self.max_new_tokens, num_beams=num_beams))
            slots.append(i)
        if not requests:
            return preds  # type: ignore[return-value]
        start = time.perf_counter()
        try:
            gens = self.backend.generate(requests)
        except Exception as e:  # a backend failure is recorded per example, never lost
            log.exception("backend failed on a batch of %d", len(requests))
            err, share = f"backend error: {type(e).__name__}: {e}", (time.perf_counter() - start) / len(slots)
            for j, i in enumerate(slots):
                ex = tasks[i].example
                preds[i] = Prediction(ex.index, ex.db_id, "", prompt=requests[j].messages, error=err, latency_s=share)
            return preds  # type: ignore[return-value]
        for j, i in enumerate(slots):
            g, ex = gens[j], tasks[i].example
            if generations is not None:
                generations[i] = g
            preds[i] = Prediction(
                index=ex.index,
                db_id=ex.db_id,
                sql=extract_sql(g.text),
                raw_output=g.text,
                prompt=requests[j].messages,
                prompt_tokens=g.prompt_tokens,
                completion_tokens=g.completion_tokens,
                latency_s=g.latency_s,
                error=g.error,
            )
        return preds  # type: ignore[return-value]

    def _repair(self, tasks: list[Task], preds: list[Prediction]) -> None:
        """Up to `self.repair` rounds: an answer that fails on its database goes back to the model with
        SQLite's error; the first retry that runs replaces it, otherwise the first answer stays."""
        budget = self.backend.context_window - self.max_new_tokens
        open_: dict[int, tuple[list[dict], str, str]] = {}  # i -> (conversation, failed answer, its error)
        for i, (task, pred) in enumerate(zip(tasks, preds)):
            error = None if pred.error else execution_error(pred.sql, task.db_path)
            if error:
                open_[i] = (pred.prompt, pred.raw_output.strip() or pred.sql, error)
        first_error = {i: error for i, (_, _, error) in open_.items()}
        attempts: dict[int, list[dict]] = {i: [] for i in open_}
        for _ in range(self.repair):
            todo, prompts = [], []
            for i, (messages, answer, error) in open_.items():
                follow = repair_messages(messages, answer, error, self.follow_up, tasks[i].schema)
                if self.backend.count_tokens(follow) <= budget:
                    todo.append(i)
                    prompts.append((follow, None))
            if not todo:
                break
            still_open = {}
            for i, retry in zip(todo, self._generate([tasks[i] for i in todo], prompts)):
                error = retry.error or execution_error(retry.sql, tasks[i].db_path)
                if error is None:
                    first = preds[i]
                    retry.trace = [*first.trace, _trace_entry("answer", first, first_error[i]), *attempts[i]]
                    _add_cost(retry, first)
                    preds[i] = retry
                    continue
                attempts[i].append(_trace_entry("repair", retry, error))
                _add_cost(preds[i], retry)
                still_open[i] = (retry.prompt, retry.raw_output.strip() or retry.sql, error)
            open_ = still_open
        for i in open_:
            preds[i].trace.extend(attempts[i])


def _sql(pred: Prediction | None) -> str | None:
    return pred.sql if pred is not None else None


def _trace_entry(stage: str, pred: Prediction, error: str | None) -> dict:
    return {"stage": stage, "sql": pred.sql, "raw_output": pred.raw_output, "error": error or pred.error}


def _add_cost(pred: Prediction, other: Prediction) -> None:
    pred.prompt_tokens += other.prompt_tokens
    pred.completion_tokens += other.completion_tokens
    pred.latency_s += other.latency_s


def _absorb(pred: Prediction, earlier: Prediction, stage: str) -> None:
    """Fold an earlier generation of the same example into `pred`: its cost and a trace entry."""
    pred.trace = [*earlier.trace, _trace_entry(stage, earlier, None), *pred.trace]
    _add_cost(pred, earlier)


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
