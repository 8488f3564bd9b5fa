"""Numerical safety: the non-finite step guard, and the float32 SQL-only loss of a step.

Why: a hand-written LoRA loop on Qwen2.5-Coder-0.5B went NaN after 100-450 steps and stayed NaN
(shared/GPU.md). Once one update writes NaN into the weights every later loss is NaN, so
the guard checks the loss and the gradient norm *before* `optimizer.step` and skips the update
(gradients dropped, optimizer state untouched) when either is not finite. The Trainer-based
training (trainer.py) applies `NonFiniteGuard` after gradient clipping; `sft_loss_sum` and
`optimizer_step` are the reference loss and step of the replaced loop (benchmarks/baselines/),
kept for it and for the tests that compare the Trainer's loss with them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from t2s_bench.training.data import IGNORE_INDEX


class NonFiniteTrainingError(RuntimeError):
    """Raised after too many consecutive optimizer steps with a non-finite loss or gradient norm."""


@dataclass
class NonFiniteGuard:
    max_consecutive: int = 5
    skipped: int = 0
    consecutive: int = 0

    def allow(self, loss: float, grad_norm: float, step: int) -> bool:
        """True when the update may be applied; counts and, past the limit, raises."""
        if math.isfinite(loss) and math.isfinite(grad_norm):
            self.consecutive = 0
            return True
        self.skipped += 1
        self.consecutive += 1
        if self.consecutive >= self.max_consecutive:
            raise NonFiniteTrainingError(
                f"{self.consecutive} consecutive optimizer steps had a non-finite loss or gradient norm "
                f"(last at step {step}: loss={loss}, grad_norm={grad_norm}); {self.skipped} skipped in all. "
                "Training stopped: lower the learning rate, check the data for empty targets, or use float32."
            )
        return False


def _causal_lm_parts(model):
    """(decoder, lm_head) of a causal LM, looking through a PEFT wrapper."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else base.model
    return decoder, base.get_output_embeddings()


def sft_loss_sum(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor):
    """Summed token cross-entropy over label positions, in float32; returns (loss_sum, n_label_tokens).

    Only the hidden states at label positions go through the LM head, so the float32 logits are
    (n_sql_tokens, vocab) rather than (batch, seq, vocab). A batch with no label token gives an
    exact 0 with a graph (never 0/0); callers divide by the token count of the whole step.
    """
    decoder, head = _causal_lm_parts(model)
    hidden = decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    shifted = labels[:, 1:]
    mask = shifted != IGNORE_INDEX
    n = int(mask.sum())
    if n == 0:
        return hidden.sum() * 0.0, 0
    logits = head(hidden[:, :-1][mask]).float()
    return F.cross_entropy(logits, shifted[mask], reduction="sum"), n


@dataclass
class StepResult:
    loss: float  # mean loss per label token over the step
    grad_norm: float
    n_tokens: int
    applied: bool


def optimizer_step(model, optimizer, micro_batches: list[dict], *, guard: NonFiniteGuard, max_grad_norm: float,
                   step: int, loss_hook=None) -> StepResult:
    """One optimizer step over accumulated micro-batches, normalised by the step's label-token count.

    A micro-batch with a non-finite loss is not back-propagated; the step is then skipped.
    `loss_hook(step, micro_index, loss_sum) -> loss_sum` lets tests inject faults.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    total = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in micro_batches)
    loss_total, finite = 0.0, True
    if total == 0:  # nothing to learn from: an explicit skip, not a division by zero
        optimizer.zero_grad(set_to_none=True)
        guard.allow(float("nan"), float("nan"), step)
        return StepResult(float("nan"), float("nan"), 0, False)
    for i, batch in enumerate(micro_batches):
        loss_sum, _ = sft_loss_sum(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
        if loss_hook is not None:
            loss_sum = loss_hook(step, i, loss_sum)
        value = float(loss_sum.detach())
        loss_total += value
        if not math.isfinite(value):
            finite = False
            continue
        (loss_sum / total).backward()
    loss = loss_total / total
    if finite:
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
    else:
        grad_norm = float("nan")
    applied = guard.allow(loss, grad_norm, step)
    if applied:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return StepResult(loss, grad_norm, total, applied)
