"""Activation Beacon (v3: interleave, full-coverage, stride = window) over the demo base of model.py.

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
RoPE and the attention kernel are the model's own (`model.rope`, `model.attend`), so a variant of the
base is a variant of its beacon forward too.
"""

from __future__ import annotations

from typing import Callable

import torch

from model import Qwen2Beacon, Rope, load_model  # noqa: F401  (re-exported: older scripts import them from here)


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
        new_k, new_v = [], []
        sink_n = self.sink_k[0].shape[2]
        mem_n = self.mem_k[0].shape[2]
        raw_n = self.raw_k[0].shape[2]
        M = sink_n + mem_n + raw_n + N
        cos, sin = m.rope.cos_sin(torch.arange(M))
        visible = torch.ones(N, M, dtype=torch.bool).tril(M - N)  # row i sees columns <= M - N + i
        for li, layer in enumerate(m.model.layers):
            a = layer.self_attn
            q, k, v = a.qkv(layer.input_layernorm(x), isb_t)
            new_k.append(k)
            new_v.append(v)
            K = torch.cat([self.sink_k[li], self.mem_k[li], self.raw_k[li], k], dim=2)
            V = torch.cat([self.sink_v[li], self.mem_v[li], self.raw_v[li], v], dim=2)
            K = Rope.apply(K, cos, sin).repeat_interleave(H // KV, dim=1)
            V = V.repeat_interleave(H // KV, dim=1)
            o = m.attend(Rope.apply(q, cos[M - N :], sin[M - N :]), K, V, visible=visible)
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
