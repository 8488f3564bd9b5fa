"""Find where a training run's first non-finite gradient comes from.

Replays the trainer exactly (same `setup_training`, seed, prepared data and batch order; the
`before_step` hook of `train`) until the guard skips a step, then re-runs that step's micro-batches
from the same weights and RNG state (a skipped step changes neither weights nor optimizer):

- `bf16_sdpa`: as trained, with forward hooks (max |activation|) and full backward hooks on every
  module: the first module, in backward order, whose grad_input/grad_output is non-finite, which
  (row, position) are non-finite there and whether they are padded positions, and which LoRA
  parameter grads are non-finite after each micro-batch;
- the same step with the base in float32 (LoRA state identical), with eager attention, with the
  SDPA math or memory-efficient kernel only, without dropout, and one example at a time (no padding).

The probe of the hand-written loop kept for reference (benchmarks/baselines/legacy_trainer.py); it found
the NaN gradients of results/nan-probe/, whose fix (the SDPA kernel restriction) the Trainer-based
training keeps. `probe(config, max_steps=...)` returns the report.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time

log = logging.getLogger("t2s_bench.nan_probe")

WINDOW = 8  # backward events kept on each side of the first non-finite one


# ---------------------------------------------------------------- recording hooks


def _stats(t) -> dict:
    import torch

    t = t.detach()
    finite = torch.isfinite(t)
    n_bad = int((~finite).sum())
    good = t[finite]
    return {"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""), "n_nonfinite": n_bad,
            "max_abs_finite": float(good.abs().max()) if good.numel() else None}


class Recorder:
    """Forward and full backward hooks on every module; events in call order."""

    def __init__(self, model, attention_masks: list):
        self.masks = attention_masks
        self.micro = 0
        self.forward: list[dict] = []
        self.backward: list[dict] = []
        self.first_bad: dict | None = None
        self.handles = []
        for name, module in model.named_modules():
            if not name:
                continue
            self.handles.append(module.register_forward_hook(self._on_forward(name)))
            self.handles.append(module.register_full_backward_hook(self._on_backward(name)))

    def _on_forward(self, name):
        import torch

        def hook(module, args, output):
            out = output[0] if isinstance(output, tuple) and output else output
            if isinstance(out, torch.Tensor) and out.is_floating_point():
                self.forward.append({"micro": self.micro, "module": name, **_stats(out)})
        return hook

    def _on_backward(self, name):
        import torch

        def hook(module, grad_input, grad_output):
            event = {"micro": self.micro, "module": name, "order": len(self.backward)}
            for kind, grads in (("grad_output", grad_output), ("grad_input", grad_input)):
                tensors = [g for g in grads if isinstance(g, torch.Tensor)]
                if tensors:
                    event[kind] = _stats(tensors[0])
            self.backward.append(event)
            if self.first_bad is None:
                for kind, grads in (("grad_output", grad_output), ("grad_input", grad_input)):
                    g = next((g for g in grads if isinstance(g, torch.Tensor)), None)
                    if g is not None and not bool(torch.isfinite(g).all()):
                        self.first_bad = {**event, "where": kind, "positions": self._positions(g)}
                        break
        return hook

    def _positions(self, g) -> dict:
        """Non-finite (row, position) of a (batch, seq, ...) gradient against the micro-batch's padding."""
        import torch

        mask = self.masks[self.micro]
        if g.dim() < 2 or tuple(g.shape[:2]) != tuple(mask.shape):
            return {"comparable_with_padding": False}
        bad = ~torch.isfinite(g.detach()).reshape(g.shape[0], g.shape[1], -1).all(-1)
        padded = mask == 0
        rows = sorted({int(r) for r in bad.nonzero()[:, 0]})
        return {
            "comparable_with_padding": True, "n_bad_positions": int(bad.sum()),
            "n_bad_at_padded": int((bad & padded).sum()), "n_bad_at_real_tokens": int((bad & ~padded).sum()),
            "only_padded_positions": bool(bad.any()) and not bool((bad & ~padded).any()),
            "bad_rows": rows,
            "bad_positions_by_row": {r: [int(t) for t in bad[r].nonzero()[:, 0][:12]] for r in rows[:8]},
            "real_length_by_row": {r: int(mask[r].sum()) for r in rows[:8]},
        }

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    def summary(self) -> dict:
        first = self.first_bad
        out = {"first_nonfinite": first, "n_backward_events": len(self.backward),
               "forward_max_abs_top": sorted(
                   ({"module": e["module"], "micro": e["micro"], "max_abs": e["max_abs_finite"],
                     "n_nonfinite": e["n_nonfinite"]} for e in self.forward if e["max_abs_finite"] is not None),
                   key=lambda e: -e["max_abs"])[:15],
               "forward_nonfinite": [e for e in self.forward if e["n_nonfinite"]][:10]}
        if first is not None:
            i = first["order"]
            out["backward_around_first"] = self.backward[max(0, i - WINDOW): i + WINDOW + 1]
            out["forward_of_first_module"] = [e for e in self.forward if e["module"] == first["module"]]
        return out


# ---------------------------------------------------------------- one step, several ways


def _restore_rng(rng: dict) -> None:
    import torch

    torch.set_rng_state(rng["cpu"])
    if rng.get("cuda") is not None:
        torch.cuda.set_rng_state(rng["cuda"])


def _rng_state(device) -> dict:
    import torch

    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def _base_dtype(model, dtype) -> None:
    """Cast the frozen base weights only; LoRA weights stay as they are (float32)."""
    for p in model.parameters():
        if not p.requires_grad and p.is_floating_point():
            p.data = p.data.to(dtype)


def _set_attention(model, impl: str) -> str:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.set_attn_implementation(impl)
    return base.config._attn_implementation


def _sdpa_backend(name: str | None):
    if name is None:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([{"math": SDPBackend.MATH, "efficient": SDPBackend.EFFICIENT_ATTENTION}[name]])


def run_step(model, micro: list[dict], rng: dict, *, one_by_one: bool = False, recorder_masks: bool = False) -> dict:
    """Forward/backward of one step's micro-batches as `optimizer_step` does it; gradients left for inspection."""
    import torch

    from t2s_bench.training.data import IGNORE_INDEX
    from t2s_bench.training.guard import sft_loss_sum

    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    for p in params.values():
        p.grad = None
    total = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in micro)
    _restore_rng(rng)
    recorder = Recorder(model, [b["attention_mask"] for b in micro]) if recorder_masks else None
    losses, first_bad_micro, bad_examples = [], {}, []
    pieces = []
    for i, b in enumerate(micro):
        if one_by_one:  # each example alone: no padding at all
            for r in range(b["input_ids"].shape[0]):
                n = int(b["attention_mask"][r].sum())
                pieces.append((i, r, {k: v[r:r + 1, :n] for k, v in b.items()}))
        else:
            pieces.append((i, None, b))
    try:
        for k, (i, row, batch) in enumerate(pieces):
            if recorder is not None:
                recorder.micro = i
            loss_sum, _ = sft_loss_sum(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
            losses.append(float(loss_sum.detach()))
            if math.isfinite(losses[-1]):
                (loss_sum / total).backward()
            for name, p in params.items():
                if p.grad is not None and name not in first_bad_micro and not bool(torch.isfinite(p.grad).all()):
                    first_bad_micro[name] = k
                    if row is not None and (i, row) not in bad_examples:
                        bad_examples.append((i, row))
    finally:
        if recorder is not None:
            recorder.remove()
    grads = [p.grad for p in params.values() if p.grad is not None]
    norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])))
    bad = {n: int((~torch.isfinite(params[n].grad)).sum()) for n in first_bad_micro}
    result = {
        "loss": sum(losses) / total, "micro_losses": losses, "grad_norm": norm, "finite": math.isfinite(norm),
        "n_nonfinite_param_grads": len(bad), "n_trainable_param_tensors": len(params),
        "nonfinite_param_grads": [{"name": n, "n_nonfinite": c, "first_bad_piece": first_bad_micro[n]}
                                  for n, c in sorted(bad.items(), key=lambda kv: first_bad_micro[kv[0]])][:40],
    }
    if one_by_one:
        result["bad_examples"] = [{"micro": i, "row": r} for i, r in bad_examples]
    if recorder is not None:
        result["hooks"] = recorder.summary()
    for p in params.values():
        p.grad = None
    return result


VARIANTS = (  # name, base dtype, attention, SDPA kernel, dropout, one example at a time, hooks
    ("bf16_sdpa", "bfloat16", "sdpa", None, True, False, True),
    ("bf16_sdpa_no_dropout", "bfloat16", "sdpa", None, False, False, False),
    ("bf16_sdpa_math_kernel", "bfloat16", "sdpa", "math", True, False, False),
    ("bf16_sdpa_efficient_kernel", "bfloat16", "sdpa", "efficient", True, False, False),
    ("bf16_eager", "bfloat16", "eager", None, True, False, True),
    ("bf16_sdpa_one_example_at_a_time", "bfloat16", "sdpa", None, True, True, False),
    ("fp32_sdpa", "float32", "sdpa", None, True, False, False),
    ("fp32_eager", "float32", "eager", None, True, False, False),
)


def analyse_step(model, micro: list[dict], rng: dict, *, train_dtype) -> dict:
    """Every variant of VARIANTS on the same micro-batches and RNG state; the model is restored afterwards."""
    import torch

    results = {}
    start_attn = _set_attention(model, "sdpa")
    for name, dtype, attn, kernel, dropout, one_by_one, hooks in VARIANTS:
        t0 = time.monotonic()
        want = getattr(torch, dtype) if train_dtype == torch.bfloat16 else train_dtype  # CPU trains in float32
        try:
            _base_dtype(model, want)
            got_attn = _set_attention(model, attn)
            model.train(dropout)
            with _sdpa_backend(kernel):
                res = run_step(model, micro, rng, one_by_one=one_by_one, recorder_masks=hooks)
            res.update(base_dtype=str(want).replace("torch.", ""), attention=got_attn, sdpa_kernel=kernel or "default",
                       dropout=dropout)
        except Exception as e:  # e.g. no memory-efficient kernel on CPU: recorded, the others still run
            res = {"error": f"{type(e).__name__}: {e}"[:500]}
        res["seconds"] = round(time.monotonic() - t0, 2)
        results[name] = res
        log.info("%s: %s", name, {k: res.get(k) for k in ("loss", "grad_norm", "finite", "n_nonfinite_param_grads",
                                                          "error")})
    _base_dtype(model, train_dtype)
    _set_attention(model, start_attn)
    model.train()
    return results


def verdict(variants: dict) -> list[str]:
    """Plain-language reading of the variants (only what they show)."""
    ok = {k: v.get("finite") for k, v in variants.items() if "error" not in v}
    notes = []
    if ok.get("bf16_sdpa") is False:
        first = (variants["bf16_sdpa"].get("hooks") or {}).get("first_nonfinite")
        if first:
            pos = first.get("positions", {})
            notes.append(f"first non-finite gradient, in backward order: {first['where']} of {first['module']} "
                         f"(micro-batch {first['micro']})")
            if pos.get("comparable_with_padding"):
                notes.append("non-finite only at padded positions" if pos["only_padded_positions"] else
                             f"non-finite at {pos['n_bad_at_real_tokens']} real-token and {pos['n_bad_at_padded']} "
                             "padded positions")
    elif ok.get("bf16_sdpa") is True:
        notes.append("the step's gradient is finite when replayed: not reproduced")
    for a, b, meaning in (
        ("bf16_sdpa", "fp32_sdpa", "float32 base weights remove it: bf16 precision/range"),
        ("bf16_sdpa", "bf16_eager", "eager attention removes it: the SDPA path"),
        ("bf16_sdpa", "bf16_sdpa_math_kernel", "the SDPA math kernel removes it: the fused SDPA kernel"),
        ("bf16_sdpa", "bf16_sdpa_one_example_at_a_time", "no padding removes it: padded (batched) inputs"),
        ("bf16_sdpa", "bf16_sdpa_no_dropout", "no LoRA dropout removes it: this dropout mask"),
    ):
        if ok.get(a) is False and ok.get(b) is True:
            notes.append(meaning)
    if ok.get("bf16_sdpa_efficient_kernel") is False and ok.get("bf16_sdpa_math_kernel") is True:
        notes.append("memory-efficient SDPA kernel alone gives non-finite gradients")
    return notes


# ---------------------------------------------------------------- replaying the run


def probe(config, *, max_steps: int, expected: dict | None = None, on_model=None) -> dict:
    """Train as `train` does until the guard skips a step (or `max_steps`), then analyse that step.

    `on_model(model)` runs once before the first step (tests use it to inject a fault)."""
    from baselines.legacy_trainer import train  # benchmarks/ on sys.path

    report: dict = {"max_steps": max_steps}
    seen: dict = {}
    t0 = time.monotonic()

    def before_step(setup, state, group, micro):
        done = state["step"]
        if on_model is not None and "model_ready" not in seen:
            on_model(setup.model)
            seen["model_ready"] = True
        prev = seen.get("prev")
        if prev is not None and (setup.guard.skipped > prev["skipped"] or done >= max_steps):
            import torch

            bad = setup.guard.skipped > prev["skipped"]
            report["replay_s"] = round(time.monotonic() - t0, 1)
            report["first_nonfinite_step"] = prev["step"] if bad else None
            report["analysed_step"] = prev["step"]
            report["data_hash"] = setup.prep.data_hash
            report["step"] = {
                "indices": [[setup.train_records[i]["index"] for i in b] for b in prev["group"]],
                "lengths": [[setup.lengths[i] for i in b] for b in prev["group"]],
                "padding": [{"rows_with_padding": int((m["attention_mask"] == 0).any(1).sum()),
                             "padded_positions": int((m["attention_mask"] == 0).sum()),
                             "shape": list(m["input_ids"].shape)} for m in prev["micro"]],
            }
            report["env"] = {"torch": torch.__version__, "device": str(setup.device),
                             "gpu": torch.cuda.get_device_name(setup.device) if setup.device.type == "cuda" else None}
            if expected:
                report["expected"] = expected
                report["reproduced_expected"] = (bad and prev["step"] == expected["step"]
                                                 and report["step"]["indices"] == expected["indices"])
            train_dtype = torch.bfloat16 if setup.device.type == "cuda" else torch.float32
            t1 = time.monotonic()
            report["variants"] = analyse_step(setup.model, prev["micro"], prev["rng"], train_dtype=train_dtype)
            report["analysis_s"] = round(time.monotonic() - t1, 1)
            report["verdict"] = verdict(report["variants"])
            return True
        seen["prev"] = {"step": done + 1, "group": group, "micro": micro, "skipped": setup.guard.skipped,
                        "rng": _rng_state(setup.device)}
        return False

    train(config, before_step=before_step)
    if "variants" not in report:
        report["note"] = "training ended before the probe could analyse a step"
    return report
