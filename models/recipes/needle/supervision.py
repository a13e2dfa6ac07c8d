"""Attention targets for the base's binding circuit, and the initialisation that lets it form.

Answering `recall K` from `... K V ...` takes two attention steps (an induction circuit): a head at V's
row reads the row before it (so V's row carries "my name is K"), and a head at the question's K row finds
the row whose name is K and reads V from it. Trained on answers alone, this base sat at "copy any
number of the document" for thousands of steps (README, "Binding pilots"): the answer's gradient
reaches the lookup only once the previous-token head exists, and the previous-token head is useful only
once the lookup exists. Here both heads are told where to look:

  layer PREV_LAYER, head 0: every row attends to the row before it;
  layer LOOK_LAYER, head 0: each question's name row attends to the asked number's row in the document.

The loss is the mean negative log of the attention weight on the target row (causal softmax of that
head's scaled scores, computed apart from the fused kernel). Which heads carry which step is a choice;
nothing else in the model is told anything. With it, and `mimetic_init`, the pilots bound names to
numbers within ~700 steps of 16 sequences (README).
"""

from __future__ import annotations

import numpy as np
import torch

import language as lang
from model import Qwen2Beacon

PREV_LAYER, LOOK_LAYER = 1, 2


def head_log_attention(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """One head: q [B, T, D], k [B, T, D] after RoPE -> causal log attention weights [B, T, T]."""
    T = q.shape[1]
    s = (q @ k.transpose(1, 2)) * (q.shape[-1] ** -0.5)
    s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return s.log_softmax(-1)


def lookup_rows(b: lang.Batch) -> np.ndarray:
    """[B, q] the row of each question's answer number in its document (numbers are distinct within a
    document, so its first occurrence is the fact)."""
    name_rows = b.target_rows[0::2]
    out = np.empty((b.ids.shape[0], len(name_rows)), dtype=np.int64)
    for i in range(b.ids.shape[0]):
        for j, r in enumerate(name_rows):
            out[i, j] = int(np.flatnonzero(b.ids[i, :r] == b.targets[i, 2 * j])[0])
    return out


def forward_supervised(model: Qwen2Beacon, b: lang.Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """forward_full over the batch's ids, and the attention loss of the two heads (mean over their
    targets, summed over the two heads). Returns (normed hidden [B, T, hidden], loss)."""
    ids = torch.from_numpy(b.ids)
    B, T = ids.shape
    name_rows = torch.from_numpy(b.target_rows[0::2])
    number_rows = torch.from_numpy(lookup_rows(b))
    losses = []

    def on_qk(layer: int, q: torch.Tensor, k: torch.Tensor):
        if layer == PREV_LAYER:
            lp = head_log_attention(q[:, 0], k[:, 0])
            r = torch.arange(1, T)
            losses.append(-lp[:, r, r - 1].mean())
        elif layer == LOOK_LAYER:
            lp = head_log_attention(q[:, 0], k[:, 0])[:, name_rows]  # [B, q, T]
            losses.append(-lp.gather(-1, number_rows[..., None]).mean())

    h = model.forward_full(ids, on_qk=on_qk)
    return h, sum(losses)


def mimetic_init(model: Qwen2Beacon, std: float, generator: torch.Generator):
    """Mimetic initialisation of attention (Trockman & Kolter, 2023): k and v projections at `std`, each
    head's q projection a copy of its KV head's k projection (W_q^T W_k positive semi-definite: a row
    attends to rows like itself) and its slice of o_proj the transpose of that v projection (W_o W_v
    positive semi-definite: a head passes on what it read). Biases stay zero."""
    with torch.no_grad():
        for layer in model.model.layers:
            a = layer.self_attn
            a.k_proj.weight.normal_(0.0, std, generator=generator)
            a.v_proj.weight.normal_(0.0, std, generator=generator)
            per_kv = a.H // a.KV
            for h in range(a.H):
                kv = slice((h // per_kv) * a.D, (h // per_kv + 1) * a.D)
                a.q_proj.weight[h * a.D : (h + 1) * a.D] = a.k_proj.weight[kv]
                a.o_proj.weight[:, h * a.D : (h + 1) * a.D] = a.v_proj.weight[kv].t()
