"""Versioned Jinja prompt templates (top-level `prompts/<version>.jinja`).

A template defines two blocks, `system` and `user`; rendering gives chat messages.
A template that also defines `example_user` and `example_assistant` renders few-shot examples
as chat turns between the system and the final user message (otherwise `user` lists them).
The version and the file's sha256 are recorded in every run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import jinja2

from t2s_bench import paths

DEFAULT_TEMPLATE = "v1.0"


@dataclass(frozen=True)
class FewShotExample:
    question: str
    sql: str
    db_id: str = ""
    schema: str = ""  # the example's own (pruned) schema text; used by chat-turn templates


def _compile(path: Path) -> tuple[jinja2.Template, str]:
    """The Jinja template in `path` (undefined variables are errors) and the file's sha256."""
    source = path.read_text(encoding="utf-8")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    return env.from_string(source), hashlib.sha256(source.encode()).hexdigest()


class PromptTemplate:
    def __init__(self, path: Path):
        self.path, self.version = path, path.stem
        self._template, self.sha256 = _compile(path)
        missing = {"system", "user"} - set(self._template.blocks)
        if missing:
            raise ValueError(f"prompt template {path} lacks block(s) {sorted(missing)}")

    @property
    def examples_as_turns(self) -> bool:
        return {"example_user", "example_assistant"} <= set(self._template.blocks)

    def _block(self, name: str, variables: dict) -> str:
        return "".join(self._template.blocks[name](self._template.new_context(variables))).strip()

    def render(self, *, schema: str, question: str, examples=()) -> list[dict[str, str]]:
        """Chat messages: system (instructions + schema), [example turns], user (question)."""
        exs = [e if isinstance(e, FewShotExample) else FewShotExample(*e) for e in examples]
        variables = {"schema": schema, "question": question, "examples": exs}
        out = [{"role": "system", "content": self._block("system", variables)}]
        if self.examples_as_turns:
            for ex in exs:
                out.append({"role": "user", "content": self._block("example_user", {**variables, "example": ex})})
                out.append({"role": "assistant", "content": self._block("example_assistant", {**variables, "example": ex})})
        out.append({"role": "user", "content": self._block("user", variables)})
        return out

    def info(self) -> dict:
        return {"version": self.version, "sha256": self.sha256, "path": str(self.path)}


class FollowUpTemplate:
    """A one-turn template (block `user`) for follow-up messages, e.g. `prompts/repair-v1.0.jinja`."""

    def __init__(self, path: Path):
        self.path, self.version = path, path.stem
        self._template, self.sha256 = _compile(path)
        if "user" not in self._template.blocks:
            raise ValueError(f"follow-up template {path} lacks block 'user'")

    def render(self, **variables) -> dict[str, str]:
        text = "".join(self._template.blocks["user"](self._template.new_context(variables))).strip()
        return {"role": "user", "content": text}

    def info(self) -> dict:
        return {"version": self.version, "sha256": self.sha256}


def load_follow_up(name: str) -> FollowUpTemplate:
    path = paths.prompts_dir() / f"{name}.jinja"
    if not path.is_file():
        raise FileNotFoundError(f"follow-up template {name!r} not found in {paths.prompts_dir()}")
    return FollowUpTemplate(path)


def available_templates() -> list[str]:
    return sorted(p.stem for p in paths.prompts_dir().glob("v*.jinja"))


def load_template(name_or_path: str = DEFAULT_TEMPLATE) -> PromptTemplate:
    """A template by version (`v1.0`) from prompts/, or by file path."""
    path = Path(name_or_path)
    if not path.is_file():
        path = paths.prompts_dir() / f"{name_or_path}.jinja"
    if not path.is_file():
        raise FileNotFoundError(
            f"prompt template {name_or_path!r} not found; available: {available_templates()}"
        )
    return PromptTemplate(path)
