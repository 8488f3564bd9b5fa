"""Seeded token choice over one logits vector (numpy), for backends that decode token by token (llama.cpp).

`TokenChooser` is made per answer with the answer's seed; each call picks the next token: the argmax
when greedy, else nucleus sampling at the temperature (inverse CDF over the top-p tokens, one uniform
draw per step from the answer's own generator). It returns the token and its log-probability under the
untempered distribution (what `Generation.token_logprobs` reports). Hand-written because llama.cpp's
own samplers are per context, not per parallel sequence, and report no log-probabilities.
"""

from __future__ import annotations

# tokens ranked before falling back to a full sort (a nucleus almost always fits in far fewer)
_PARTIAL = 2048


class TokenChooser:
    def __init__(self, temperature: float = 0.0, top_p: float = 1.0, seed: int = 0) -> None:
        import numpy as np

        self.temperature, self.top_p = temperature, top_p
        self._rng = np.random.default_rng(seed) if temperature > 0 else None

    def __call__(self, logits) -> tuple[int, float]:
        import numpy as np

        logits = np.asarray(logits, dtype=np.float64)
        top = float(logits.max())
        log_z = top + float(np.log(np.exp(logits - top).sum()))
        if self._rng is None:
            token = int(logits.argmax())
            return token, float(logits[token]) - log_z
        scaled = (logits - top) / self.temperature
        probs = np.exp(scaled)
        probs /= probs.sum()
        order = _ranked(probs, self.top_p)
        ranked = probs[order]
        keep = (np.cumsum(ranked) - ranked) < self.top_p  # the nucleus; the top token always stays
        cum = np.cumsum(ranked[keep])
        pos = min(int(np.searchsorted(cum, self._rng.random() * cum[-1], side="right")), len(cum) - 1)
        token = int(order[pos])
        return token, float(logits[token]) - log_z


def _ranked(probs, top_p: float):
    """Token ids by decreasing probability, enough of them to cover `top_p` (ties by id)."""
    import numpy as np

    if len(probs) > _PARTIAL:
        part = np.argpartition(-probs, _PARTIAL)[:_PARTIAL]
        if probs[part].sum() >= top_p:
            return part[np.lexsort((part, -probs[part]))]
    ids = np.arange(len(probs))
    return np.lexsort((ids, -probs))
