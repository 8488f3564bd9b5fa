"""Decode-step attention for grouped-query models, registered with transformers as `t2s_sdpa`.

Qwen2.5-Coder puts 14 query heads on 2 key/value heads (0.5B; 12 on 2 at 1.5B). With a padding mask,
transformers 5.17 (the GPU image's) copies the keys and values out to every query head before SDPA
(`repeat_kv`): at one new token per row that rewrites the whole KV cache G times per layer and step, and
decoding big batches is bound by that copy. Here one token's G query heads of a key/value head become G
query rows of that head: the same dot products, the cache read once. Newer transformers (5.24) do the same
(`pack_gqa`, though not in compiled code); this keeps the older one fast, compiled (the static strategy's
CUDA graphs) or not. Every other call (prompt prefill, no groups) goes to transformers' own SDPA attention.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

NAME = "t2s_sdpa"
_registered = False


def gqa_decode_sdpa(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """transformers' attention-function contract: query (B, H, q, d), key/value (B, KV, L, d) ->
    ((B, q, H, d), None). Called for every layer at every step: imports stay at module level."""
    groups = getattr(module, "num_key_value_groups", 1)
    batch, heads, q_len, dim = query.shape
    mask_per_head = attention_mask is not None and attention_mask.shape[1] != 1
    if q_len != 1 or groups == 1 or mask_per_head or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    packed = query.reshape(batch, heads // groups, groups, dim)  # (B, KV, G, d): the G heads as G query rows
    out = torch.nn.functional.scaled_dot_product_attention(packed, key, value, attn_mask=attention_mask,
                                                           dropout_p=dropout, scale=scaling)
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def register() -> None:
    """Make `t2s_sdpa` known to transformers (attention and mask builders: SDPA's mask)."""
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, gqa_decode_sdpa)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    _registered = True


@contextmanager
def decode_attention(model):
    """Run the block with `t2s_sdpa` in place of the model's SDPA attention (other kinds: unchanged)."""
    config = model.config
    before = config._attn_implementation
    if before != "sdpa":
        yield
        return
    register()
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = before
