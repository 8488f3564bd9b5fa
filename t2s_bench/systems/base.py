"""The System protocol and its registry.

A system turns a batch of tasks (question + schema context) into predictions.
Third parties add one with `@register_system("name")` on a factory taking keyword config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from t2s_bench.datasets.schema import Schema
from t2s_bench.datasets.spider import Example


@dataclass
class Task:
    example: Example
    schema: Schema
    db_path: Path | None


@dataclass
class Prediction:
    index: int
    db_id: str
    sql: str  # final SQL, extracted from the raw output
    raw_output: str = ""
    prompt: list[dict] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None  # e.g. prompt overflow, backend failure
    trace: list[dict] = field(default_factory=list)  # earlier generations: zero-shot draft, repaired answers

    def to_json(self) -> dict:
        return asdict(self)


class System(Protocol):
    name: str

    def predict(self, tasks: list[Task]) -> list[Prediction]: ...

    def config(self) -> dict:
        """Everything that changes predictions: hashed into the run's cache key."""
        ...


SystemFactory = Callable[..., System]
SYSTEMS: dict[str, SystemFactory] = {}


def register_system(name: str):
    def wrap(factory: SystemFactory) -> SystemFactory:
        SYSTEMS[name] = factory
        return factory

    return wrap


def load_plugins() -> None:
    """Import third-party modules that register systems: entry points `t2s_bench.systems`
    and the comma-separated module names in $T2S_PLUGINS."""
    import importlib
    import os
    from importlib.metadata import entry_points

    for ep in entry_points(group="t2s_bench.systems"):
        ep.load()
    for module in filter(None, os.environ.get("T2S_PLUGINS", "").split(",")):
        importlib.import_module(module.strip())


def get_system(name: str, **config) -> System:
    from t2s_bench.systems import builtin, vote  # noqa: F401  (registers the built-in systems)

    load_plugins()

    if name not in SYSTEMS:
        raise ValueError(f"unknown system {name!r}; registered: {sorted(SYSTEMS)}")
    return SYSTEMS[name](**config)
