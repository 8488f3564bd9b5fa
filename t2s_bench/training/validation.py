"""Validation by generation and execution through the harness: the model being trained, as it is in
memory, answers the validation questions as the `finetuned` system (same prompt, same generation code,
same scorer as `t2s-bench run`), each validation writing an ordinary run directory.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path

from t2s_bench.backends.transformers_hf import TransformersBackend

log = logging.getLogger(__name__)

# prompting.SchemaOptions field -> PromptedSystem keyword
_SYSTEM_SCHEMA_KWARGS = {"schema": "schema", "linker": "linker", "k": "link_k", "margin": "link_margin",
                         "values": "values", "format": "schema_format", "sample_rows": "sample_rows"}


class InMemoryBackend(TransformersBackend):
    """The transformers backend over a model already in memory (the one being trained).

    Generation is the backend's own. The backend's constructor runs as for a model on disk (`base` names
    the base model folder), except that loading hands back the in-memory model and tokenizer; generation
    is the plain padded strategy without compilation (the model is a PEFT model in training layout, which
    continuous batching or torch.compile would alter). `identity` names the weights in the run's config."""

    def __init__(self, model, tokenizer, *, base: str, identity: dict, batch_size: int = 64):
        import inspect

        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.identity = identity
        wanted = {"batch_size": batch_size, "generation": "padded", "compile": False}
        accepted = inspect.signature(TransformersBackend.__init__).parameters
        kwargs = {k: v for k, v in wanted.items() if k in accepted}
        with _loading_returns(AutoModelForCausalLM, model), _loading_returns(AutoTokenizer, tokenizer):
            super().__init__(base, device=str(next(model.parameters()).device), **kwargs)

    def config(self) -> dict:
        import hashlib

        import transformers

        return {"backend": self.name, **self.identity,
                "chat_template_sha256": hashlib.sha256(self.tokenizer.chat_template.encode()).hexdigest(),
                "params": {"dtype": self.dtype, "device": self.device.split(":")[0], "batch_size": self.batch_size,
                           "temperature": 0.0},
                "transformers": transformers.__version__}

    def close(self) -> None:  # the trainer owns the model
        pass


@contextlib.contextmanager
def _loading_returns(auto_class, obj):
    """`auto_class.from_pretrained(...)` returns `obj` inside the block (restored after, even on error)."""
    own = "from_pretrained" in auto_class.__dict__
    saved = auto_class.__dict__.get("from_pretrained")
    auto_class.from_pretrained = staticmethod(lambda *a, **k: obj)
    try:
        yield
    finally:
        if own:
            auto_class.from_pretrained = saved
        else:
            del auto_class.from_pretrained


def system_options(template: str, schema_format: str, schema_options: dict | None, max_new_tokens: int) -> dict:
    """PromptedSystem keywords for a model trained with these prompt settings."""
    out = {"template": template, "schema_format": schema_format, "max_new_tokens": max_new_tokens}
    for key, value in (schema_options or {}).items():
        if key not in _SYSTEM_SCHEMA_KWARGS:
            raise ValueError(f"schema option {key!r} has no system equivalent; known: {sorted(_SYSTEM_SCHEMA_KWARGS)}")
        out[_SYSTEM_SCHEMA_KWARGS[key]] = value
    return out


def validate(model, tokenizer, dataset, out: Path, *, base_path: str, identity: dict, options: dict,
             gen_batch_size: int, workers: int, timeout: float) -> tuple[float, Path]:
    """Execution accuracy of `model` on `dataset` as the `finetuned` system; (accuracy, run directory).

    `out` is replaced: a validation always reflects the weights of this call."""
    from t2s_bench.api import evaluate
    from t2s_bench.systems.prompted import PromptedSystem

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    was_training, used_cache = model.training, base.config.use_cache
    shutil.rmtree(out, ignore_errors=True)
    backend = InMemoryBackend(model, tokenizer, base=base_path, identity=identity, batch_size=gen_batch_size)
    system = PromptedSystem("finetuned", backend, **options)
    model.eval()
    base.config.use_cache = True
    try:
        result = evaluate(system, dataset=dataset, out=out, batch_size=4 * gen_batch_size, workers=workers,
                          timeout=timeout, progress=False)
    finally:
        base.config.use_cache = used_cache
        model.train(was_training)
    acc = result.ex if result.ex is not None else 0.0
    return float(acc), result.path
