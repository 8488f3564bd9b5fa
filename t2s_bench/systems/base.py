"""The System protocol and its registry.

A system turns a batch of tasks (question + schema context) into predictions.
Third parties add one with `@register_system("name")` on a factory taking keyword options, in a
module named in $T2S_PLUGINS or through the `t2s_bench.systems` entry point group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from t2s_bench.records import Prediction, Task
from t2s_bench.registry import Registry

__all__ = ["SYSTEMS", "Prediction", "System", "SystemFactory", "Task", "get_system", "register_system"]


class System(Protocol):
    name: str

    def predict(self, tasks: list[Task]) -> list[Prediction]: ...

    def config(self) -> dict:
        """Everything that changes predictions: hashed into the run's cache key."""
        ...


SystemFactory = Callable[..., System]
SYSTEMS: Registry[SystemFactory] = Registry("system", entry_point_group="t2s_bench.systems")
for _name in ("zero-shot", "few-shot", "rag", "finetuned", "oracle"):
    SYSTEMS.register(_name, f"t2s_bench.systems.builtin:{_name.replace('-', '_')}")
SYSTEMS.register("vote", "t2s_bench.systems.vote:vote")
SYSTEMS.register("self-consistency", "t2s_bench.systems.builtin:self_consistency")


def register_system(name: str, *, replace: bool = False) -> Callable[[SystemFactory], SystemFactory]:
    return SYSTEMS.register(name, replace=replace)


def load_plugins() -> None:
    SYSTEMS.load_plugins(force=True)


def get_system(name: str, **options: Any) -> System:
    """Build the system `name`; options it (or its backend) does not take are an OptionError."""
    return SYSTEMS.create(name, **options)
