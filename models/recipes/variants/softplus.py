"""Softplus attention (arXiv 2501.13428; ../shared/research/SOFTPLUS.md) as a drop-in for the demo base's
attention kernel (`model.attend`), differentiable, for training and for checking ctx.

Per query row i and head, over the n_i keys the row sees (q, k after RoPE, D = head dim):
  c_ij = (q_i/|q_i|) . (k_j/|k_j|)
  a_ij = softplus(ln(D) ln(n_i) c_ij) / sum_j softplus(...)                      LSSA
  LSSAR: x_ij = max(0, n_i a_ij - o_i) (o_i = 0 while n_i <= r0, else o), w_ij = x_ij^p / sum_j x_ij^p
No epsilon in either denominator, no 1/sqrt(D); x^p is computed as (x/x_max)^p.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

import common  # noqa: F401  (puts ../needle on the import path)

BLOCK_ROWS = 512


def _visible(n: int, M: int, visible: Optional[torch.Tensor], causal: bool) -> torch.Tensor:
    if visible is not None:
        return visible
    assert causal, "softplus attention needs a mask or causal=True"
    return torch.ones(n, M, dtype=torch.bool).tril(M - n)


def lssa_weights(q, k, visible):
    """q [B, H, n, D], k [B, H, M, D], visible [n, M] -> LSSA weights [B, H, n, M] (0 where hidden) and n_i [n, 1]."""
    D = q.shape[-1]
    c = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-1, -2)
    count = visible.sum(-1, keepdim=True).to(q.dtype)  # n_i
    e = F.softplus(math.log(D) * torch.log(count) * c, threshold=1e9).masked_fill(~visible, 0.0)
    return e / e.sum(-1, keepdim=True), count


def reweight(a, count, p: float, offset: float = 1.0, first_rows: int = 3):
    """LSSAR's second stage on LSSA weights a [.., n, M] (0 where hidden), n_i = count [n, 1]."""
    o = torch.where(count <= first_rows, torch.zeros_like(count), torch.full_like(count, offset))
    x = (count * a - o).clamp_min(0.0)
    x_max = x.amax(-1, keepdim=True)
    uniform = x_max == 0  # an exactly uniform row: the limit of sharpening it is itself (ctx does the same)
    w = (x / torch.where(uniform, torch.ones_like(x_max), x_max)) ** p
    w = w / w.sum(-1, keepdim=True).clamp_min(1e-30)
    return torch.where(uniform, a, w)


def make_attention(reweight_p: Optional[float] = None, offset: float = 1.0, first_rows: int = 3):
    """An attention kernel with model.attend's signature: LSSA, or LSSAR with power p."""

    def attend(q, k, v, visible: Optional[torch.Tensor] = None, causal: bool = False):
        n, M = q.shape[2], k.shape[2]
        vis = _visible(n, M, visible, causal)
        out = []
        for r in range(0, n, BLOCK_ROWS):  # query blocks: [B, H, rows, M] at a time (long evaluations)
            a, count = lssa_weights(q[:, :, r : r + BLOCK_ROWS], k, vis[r : r + BLOCK_ROWS])
            if reweight_p is not None:
                a = reweight(a, count, reweight_p, offset, first_rows)
            out.append(a @ v)
        return torch.cat(out, dim=2)

    return attend


def config_keys(reweight_p: Optional[float] = None) -> dict:
    """ctx's softplus config keys (src/model/softplus-config.ts; the golden cases' keys)."""
    return {
        "attention_type": "softplus",
        "softplus_scale": "log_head_dim_x_log_n",
        "softplus_qk_norm": True,
        "softplus_reweight": None if reweight_p is None else {"p": reweight_p, "offset": 1.0, "no_offset_first_rows": 3},
    }
