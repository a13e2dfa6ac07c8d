"""Qwen2 with Activation Beacon (v3: interleave, full-coverage, stride = window) in plain PyTorch.

The beacon forward is ALGORITHMS.md §1.3 (the algorithm of ctx's engine and of FlagEmbedding 7ed43d6),
checked against ../shared/golden/cases/beacon-v3-* by check_golden.py:

* a document is split into windows of W raw tokens; a call processes raw tokens up to the window end;
* one beacon row is inserted after every r-th raw token (counted across calls, reset at window end);
* KV rows of a call: [sink ; beacon memory ; raw entries of the unfinished window ; new rows], keys
  stored before RoPE, positions 0..M-1 over that whole list, recomputed at every call;
* plain causal attention over that list; beacon rows embed with `beacon_embed_tokens` and use
  `beacon_{q,k,v}_proj`; o_proj, norms, MLP and lm_head are shared; logits of beacon rows are dropped;
* when a window's W raw tokens are complete, its beacon rows join the memory and its raw rows go.

The same code runs batched (B documents with the same length and ratio schedule) and with autograd, so
training uses exactly this forward (no truncation of backprop: the whole document's graph is kept).
Module and parameter names are the Hugging Face ones, so `state_dict()` is the safetensors layout.
"""

from __future__ import annotations

import json
import math
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, n: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


class Attention(nn.Module):
    def __init__(self, cfg: dict, beacon: bool):
        super().__init__()
        h, H, KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
        D = h // H
        self.H, self.KV, self.D = H, KV, D
        self.q_proj = nn.Linear(h, H * D, bias=True)
        self.k_proj = nn.Linear(h, KV * D, bias=True)
        self.v_proj = nn.Linear(h, KV * D, bias=True)
        self.o_proj = nn.Linear(H * D, h, bias=False)
        if beacon:
            self.beacon_q_proj = nn.Linear(h, H * D, bias=True)
            self.beacon_k_proj = nn.Linear(h, KV * D, bias=True)
            self.beacon_v_proj = nn.Linear(h, KV * D, bias=True)


class MLP(nn.Module):
    def __init__(self, h: int, i: int):
        super().__init__()
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, cfg: dict, beacon: bool):
        super().__init__()
        eps = cfg["rms_norm_eps"]
        self.input_layernorm = RMSNorm(cfg["hidden_size"], eps)
        self.self_attn = Attention(cfg, beacon)
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], eps)
        self.mlp = MLP(cfg["hidden_size"], cfg["intermediate_size"])


class Backbone(nn.Module):
    def __init__(self, cfg: dict, beacon: bool):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList([Layer(cfg, beacon) for _ in range(cfg["num_hidden_layers"])])
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        if beacon:
            self.beacon_embed_tokens = nn.Embedding(1, cfg["hidden_size"])


def rope_cos_sin(positions: torch.Tensor, D: int, theta: float):
    """HF rotate-half RoPE; the angle position * inv_freq is computed in float32."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def apply_rope(x, cos, sin):  # x [B, heads, n, D]; cos/sin [n, D]
    return x * cos + rotate_half(x) * sin


class Qwen2Beacon(nn.Module):
    def __init__(self, cfg: dict, beacon: bool = True):
        super().__init__()
        self.cfg = cfg
        self.has_beacon = beacon
        self.model = Backbone(cfg, beacon)
        self.tied = bool(cfg.get("tie_word_embeddings", False))
        if not self.tied:
            self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        self.H = cfg["num_attention_heads"]
        self.KV = cfg["num_key_value_heads"]
        self.D = cfg["hidden_size"] // self.H
        self.theta = float(cfg.get("rope_theta", 10000.0))

    # ---------------------------------------------------------------- helpers
    def logits(self, hidden_normed):
        w = self.model.embed_tokens.weight if self.tied else self.lm_head.weight
        return hidden_normed @ w.t()

    def base_parameters(self):
        return [p for n, p in self.named_parameters() if "beacon" not in n]

    def beacon_parameters(self):
        return [p for n, p in self.named_parameters() if "beacon" in n]

    def init_beacon_from_base(self, init: str = "eos", eos_id: int = 2, bos_id: int = 1):
        """What from_pretrained does for a base checkpoint: beacon projections copy the base ones and the
        beacon embedding copies the eos (or bos) embedding."""
        with torch.no_grad():
            src = eos_id if init == "eos" else bos_id
            self.model.beacon_embed_tokens.weight.copy_(self.model.embed_tokens.weight[src : src + 1])
            for layer in self.model.layers:
                a = layer.self_attn
                for n in "qkv":
                    getattr(a, f"beacon_{n}_proj").weight.copy_(getattr(a, f"{n}_proj").weight)
                    getattr(a, f"beacon_{n}_proj").bias.copy_(getattr(a, f"{n}_proj").bias)

    # ---------------------------------------------------------- full attention
    def forward_full(self, ids: torch.Tensor, positions: Optional[torch.Tensor] = None, sdpa: bool = True, hide0=None):
        """Plain causal forward over ids [B, T], positions 0..T-1 (or given). Returns normed hidden [B, T, h].
        Training only: `hide0` [B] (a position per document, -1 for none) hides that position from the
        layer-0 attention of every later row."""
        B, T = ids.shape
        mask0 = None
        if hide0 is not None:
            causal = torch.ones(T, T, dtype=torch.bool).tril()
            col = torch.arange(T)
            hidden = (col[None, None, :] == hide0[:, None, None]) & (col[None, :, None] > hide0[:, None, None])
            mask0 = (causal[None] & ~hidden)[:, None]  # [B, 1, T, T], True = may attend
        H, KV, D = self.H, self.KV, self.D
        x = self.model.embed_tokens(ids)
        pos = torch.arange(T) if positions is None else positions
        cos, sin = rope_cos_sin(pos, D, self.theta)
        for li, layer in enumerate(self.model.layers):
            a = layer.self_attn
            h = layer.input_layernorm(x)
            q = a.q_proj(h).view(B, T, H, D).transpose(1, 2)
            k = a.k_proj(h).view(B, T, KV, D).transpose(1, 2)
            v = a.v_proj(h).view(B, T, KV, D).transpose(1, 2)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            k = k.repeat_interleave(H // KV, dim=1)
            v = v.repeat_interleave(H // KV, dim=1)
            if li == 0 and mask0 is not None:
                o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask0)
            elif sdpa:
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                s = (q @ k.transpose(2, 3)) * (D**-0.5)
                s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
                o = s.softmax(-1) @ v
            x = x + a.o_proj(o.transpose(1, 2).reshape(B, T, H * D))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return self.model.norm(x)


class BeaconState:
    """Per-document beacon memory (batched: B documents sharing length and ratio schedule).

    `ratio` is either an int (fixed for the document) or a callable(window_index) -> int, called once at
    the start of every window (the training mix "step-random")."""

    def __init__(self, model: Qwen2Beacon, batch: int, window: int, ratio, sink_size: int = 0):
        self.m = model
        self.B = batch
        self.W = window
        self.ratio_fn: Callable[[int], int] = ratio if callable(ratio) else (lambda _w, r=ratio: r)
        self.sink_size = sink_size
        L, KV, D = len(model.model.layers), model.KV, model.D
        empty = lambda: torch.zeros(batch, KV, 0, D)
        self.mem_k = [empty() for _ in range(L)]
        self.mem_v = [empty() for _ in range(L)]
        self.raw_k = [empty() for _ in range(L)]
        self.raw_v = [empty() for _ in range(L)]
        self.sink_k = [empty() for _ in range(L)]
        self.sink_v = [empty() for _ in range(L)]
        self.raw_isb: list[bool] = []
        self.rem = 0  # raw tokens since the last beacon
        self.start = 0  # first raw token of the current window
        self.end = 0  # raw tokens consumed
        self.window_index = 0
        self.r = self.ratio_fn(0)

    def memory_size(self):
        return {
            "sink_kv": self.sink_k[0].shape[2],
            "beacon_kv": self.mem_k[0].shape[2],
            "raw_kv": self.raw_k[0].shape[2],
            "raw_tokens": self.end - self.start,
        }

    def feed(self, ids: torch.Tensor) -> torch.Tensor:
        """One call: ids [B, n] are the next raw tokens, n <= raw tokens left in the current window.
        Returns the normed hidden states of the raw rows [B, n, hidden]."""
        m = self.m
        B, n = ids.shape
        assert self.end + n <= self.start + self.W, "a call must not cross a window boundary"
        H, KV, D = m.H, m.KV, m.D
        # interleave: a beacon after every r-th raw token
        order, isb, c = [], [], self.rem
        for i in range(n):
            order.append(i)
            isb.append(False)
            c += 1
            if c == self.r:
                order.append(n)  # index of the beacon embedding in `table` below
                isb.append(True)
                c = 0
        N = len(order)
        isb_t = torch.tensor(isb)
        table = torch.cat([m.model.embed_tokens(ids), m.model.beacon_embed_tokens.weight.expand(B, 1, -1)], dim=1)
        x = table[:, torch.tensor(order)]
        has_b = bool(isb_t.any())
        bsel = isb_t.view(1, N, 1)
        new_k, new_v = [], []
        sink_n = self.sink_k[0].shape[2]
        mem_n = self.mem_k[0].shape[2]
        raw_n = self.raw_k[0].shape[2]
        M = sink_n + mem_n + raw_n + N
        cos, sin = rope_cos_sin(torch.arange(M), D, m.theta)
        mask = torch.ones(N, M, dtype=torch.bool).triu(M - N + 1)  # True = hidden
        for li, layer in enumerate(m.model.layers):
            a = layer.self_attn
            h = layer.input_layernorm(x)
            if has_b:
                q = torch.where(bsel, a.beacon_q_proj(h), a.q_proj(h))
                k = torch.where(bsel, a.beacon_k_proj(h), a.k_proj(h))
                v = torch.where(bsel, a.beacon_v_proj(h), a.v_proj(h))
            else:
                q, k, v = a.q_proj(h), a.k_proj(h), a.v_proj(h)
            q = q.view(B, N, H, D).transpose(1, 2)
            k = k.view(B, N, KV, D).transpose(1, 2)
            v = v.view(B, N, KV, D).transpose(1, 2)
            new_k.append(k)
            new_v.append(v)
            K = torch.cat([self.sink_k[li], self.mem_k[li], self.raw_k[li], k], dim=2)
            V = torch.cat([self.sink_v[li], self.mem_v[li], self.raw_v[li], v], dim=2)
            K = apply_rope(K, cos, sin)
            qr = apply_rope(q, cos[M - N :], sin[M - N :])
            K = K.repeat_interleave(H // KV, dim=1)
            V = V.repeat_interleave(H // KV, dim=1)
            s = (qr @ K.transpose(2, 3)) * (D**-0.5)
            s = s.masked_fill(mask, float("-inf"))
            o = s.softmax(-1) @ V
            x = x + a.o_proj(o.transpose(1, 2).reshape(B, N, H * D))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        out = m.model.norm(x)[:, ~isb_t]

        # state update
        if self.sink_size > 0 and mem_n == 0:
            s_ = self.sink_size
            self.sink_k = [k[:, :, :s_] for k in new_k]
            self.sink_v = [v[:, :, :s_] for v in new_v]
        self.rem = c
        self.end += n
        if self.end == self.start + self.W:  # window complete: keep its beacons, drop its raw rows
            all_isb = torch.tensor(self.raw_isb + isb)
            for li in range(len(m.model.layers)):
                rk = torch.cat([self.raw_k[li], new_k[li]], dim=2)[:, :, all_isb]
                rv = torch.cat([self.raw_v[li], new_v[li]], dim=2)[:, :, all_isb]
                self.mem_k[li] = torch.cat([self.mem_k[li], rk], dim=2)
                self.mem_v[li] = torch.cat([self.mem_v[li], rv], dim=2)
                self.raw_k[li] = self.raw_k[li][:, :, :0]
                self.raw_v[li] = self.raw_v[li][:, :, :0]
            self.raw_isb = []
            self.start += self.W
            self.window_index += 1
            self.r = self.ratio_fn(self.window_index)
            self.rem = 0
        else:
            for li in range(len(m.model.layers)):
                self.raw_k[li] = torch.cat([self.raw_k[li], new_k[li]], dim=2)
                self.raw_v[li] = torch.cat([self.raw_v[li], new_v[li]], dim=2)
            self.raw_isb += isb
        return out

    def feed_long(self, ids: torch.Tensor) -> torch.Tensor:
        """Feed any number of tokens, split at window boundaries (a prefill). Returns raw-row hidden."""
        outs = []
        i = 0
        T = ids.shape[1]
        while i < T:
            e = min(T, i + (self.start + self.W - self.end))
            outs.append(self.feed(ids[:, i:e]))
            i = e
        return torch.cat(outs, dim=1)


def adapt_ratio(ratios: list[int], window: int, max_pos: int, length: int) -> int:
    """beacon_ratio_mix "adapt-F": L = length (= first call ids + F). Among r with r <= W, W % r == 0, the
    smallest r with (P - W) * r + W >= L, else the largest."""
    ok = sorted(r for r in ratios if r <= window and window % r == 0)
    for r in ok:
        if (max_pos - window) * r + window >= length:
            return r
    return ok[-1]


def load_model(folder: str, dtype=torch.float32) -> Qwen2Beacon:
    from safetensors.torch import load_file

    cfg = json.load(open(f"{folder}/config.json"))
    sd = load_file(f"{folder}/model.safetensors")
    beacon = any("beacon" in k for k in sd)
    model = Qwen2Beacon(cfg, beacon=beacon)
    sd = {k: v.to(dtype) for k, v in sd.items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and model.tied)]
    if missing or unexpected:
        raise RuntimeError(f"weights do not match the config: missing {missing}, unexpected {unexpected}")
    return model.eval()
