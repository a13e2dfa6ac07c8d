"""FocusLLM (arXiv 2408.11745) on the demo base: its candidate projections and its forwards, as
../shared/research/FOCUSLLM.md describes the official code (leezythu/FocusLLM @ac695a6), written anew.

Weights added to the base (per layer, h = hidden, H heads and KV heads of size D), used only by the
candidate row of a chunk pass; initialised as copies of the base's (the official from_pretrained):
  self_attn.beacon_q_proj  weight [H*D, h] + bias [H*D]     (the base's q_proj has a bias: Qwen2)
  self_attn.beacon_k_proj  weight [KV*D, h] + bias [KV*D]
  self_attn.beacon_v_proj  weight [KV*D, h] + bias [KV*D]
  self_attn.beacon_o_proj  weight [h, H*D]                  (no bias, like o_proj)
  model.beacon_embed_tokens [1, h]  stored like the official checkpoints (the eos embedding), never read

A prompt of N >= the short-prompt limit: context [0, N-LW) cut into chunks of S; tail = bos(last T prompt
tokens), T = min(512, S, LW); chunk pass i = chunk_i || tail at positions 0.., its last row (the prompt's
last token) the candidate, run with the beacon projections; local pass = the C candidates' K/V at
positions 0..C-1, then bos(local window) at C.., base weights; its rows give the logits. A generated
token is appended to every chunk (becoming its candidate) and to the local window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch
import torch.nn as nn

import common  # noqa: F401  (puts ../needle on the import path)
from model import Qwen2Beacon, Rope, softmax_attention

BOS = 1
TAIL_CAP = 512


@dataclass
class FocusSettings:
    local_window: int
    stride: int
    short_prompt_limit: int
    bos: int = BOS
    tail_cap: int = TAIL_CAP


def settings_for(P: int) -> FocusSettings:
    """The demo variant's settings for a base window P: local window P/2, stride P/2 - P/32 (so a chunk pass,
    S + T + 1 rows, stays inside the window with 15 generated tokens for P = 256), plain attention below P."""
    return FocusSettings(local_window=P // 2, stride=P // 2 - P // 32, short_prompt_limit=P)


def config_keys(s: FocusSettings) -> dict:
    """FocusLLM's config keys and ctx's own (src/model/focus-config.ts); no beacon_window."""
    return {
        "local_window": s.local_window,
        "memory_stride": [s.stride],
        "beacon_param": ["q", "k", "v", "o"],
        "focus_short_prompt_limit": s.short_prompt_limit,
        "focus_bos_token_id": s.bos,
    }


def make_model(cfg: dict) -> Qwen2Beacon:
    """The base architecture with the candidate projections (q/k/v from model.py, o added here)."""
    model = Qwen2Beacon(cfg, beacon=True)
    for layer in model.model.layers:
        a = layer.self_attn
        a.beacon_o_proj = nn.Linear(a.H * a.D, cfg["hidden_size"], bias=False)
    return model


def init_from_base(model: Qwen2Beacon, eos: int):
    model.init_beacon_from_base("eos", eos_id=eos)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.beacon_o_proj.weight.copy_(layer.self_attn.o_proj.weight)


def load_focus(folder: str) -> tuple[Qwen2Beacon, dict, FocusSettings]:
    from safetensors.torch import load_file

    cfg = json.load(open(f"{folder}/config.json"))
    model = make_model(cfg)
    model.load_state_dict({k: v.float() for k, v in load_file(f"{folder}/model.safetensors").items()})
    s = FocusSettings(cfg["local_window"], cfg["memory_stride"][0], cfg["focus_short_prompt_limit"], cfg.get("focus_bos_token_id", BOS))
    return model.eval(), cfg, s


# ------------------------------------------------------------------------------------------ the passes
def base_kv(model: Qwen2Beacon, ids: torch.Tensor):
    """Plain causal pass over ids [B, m] at positions 0..m-1 with the base weights. Returns per layer the
    keys before RoPE and the values, each [B, KV, m, D]."""
    B, m = ids.shape
    x = model.model.embed_tokens(ids)
    cos, sin = model.rope.cos_sin(torch.arange(m))
    rep = model.H // model.KV
    ks, vs = [], []
    for layer in model.model.layers:
        a = layer.self_attn
        q, k, v = a.qkv(layer.input_layernorm(x))
        ks.append(k)
        vs.append(v)
        K = Rope.apply(k, cos, sin).repeat_interleave(rep, dim=1)
        o = softmax_attention(Rope.apply(q, cos, sin), K, v.repeat_interleave(rep, dim=1), causal=True)
        x = x + a.o_proj(o.transpose(1, 2).reshape(B, m, -1))
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    return ks, vs


def candidate_kv(model: Qwen2Beacon, cand: torch.Tensor, ks, vs):
    """The candidate row (token ids cand [B]) after rows whose K/V are ks, vs ([B, KV, m, D] per layer), at
    position m, with the beacon projections in every layer. Returns its per-layer K (before RoPE), V [B, KV, 1, D]."""
    B = cand.shape[0]
    m = ks[0].shape[2]
    x = model.model.embed_tokens(cand)[:, None]
    cos, sin = model.rope.cos_sin(torch.arange(m + 1))
    rep = model.H // model.KV
    ck, cv = [], []
    for li, layer in enumerate(model.model.layers):
        a = layer.self_attn
        h = layer.input_layernorm(x)
        q = a.beacon_q_proj(h).view(B, 1, a.H, a.D).transpose(1, 2)
        k = a.beacon_k_proj(h).view(B, 1, a.KV, a.D).transpose(1, 2)
        v = a.beacon_v_proj(h).view(B, 1, a.KV, a.D).transpose(1, 2)
        ck.append(k)
        cv.append(v)
        K = Rope.apply(torch.cat([ks[li], k], dim=2), cos, sin).repeat_interleave(rep, dim=1)
        V = torch.cat([vs[li], v], dim=2).repeat_interleave(rep, dim=1)
        o = softmax_attention(Rope.apply(q, cos[m:], sin[m:]), K, V)
        x = x + a.beacon_o_proj(o.transpose(1, 2).reshape(B, 1, -1))
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    return ck, cv


def local_logits(model: Qwen2Beacon, ck, cv, ids: torch.Tensor) -> torch.Tensor:
    """The local pass: C candidates (per layer K before RoPE, V [B, KV, C, D]) at positions 0..C-1, then
    ids [B, m] at C..C+m-1, base weights; every local row sees all candidates. Returns logits [B, m, V]."""
    B, m = ids.shape
    C = ck[0].shape[2]
    x = model.model.embed_tokens(ids)
    cos, sin = model.rope.cos_sin(torch.arange(C + m))
    visible = torch.ones(m, C + m, dtype=torch.bool).tril(C)
    rep = model.H // model.KV
    for li, layer in enumerate(model.model.layers):
        a = layer.self_attn
        q, k, v = a.qkv(layer.input_layernorm(x))
        K = Rope.apply(torch.cat([ck[li], k], dim=2), cos, sin).repeat_interleave(rep, dim=1)
        V = torch.cat([cv[li], v], dim=2).repeat_interleave(rep, dim=1)
        o = softmax_attention(Rope.apply(q, cos[C:], sin[C:]), K, V, visible=visible)
        x = x + a.o_proj(o.transpose(1, 2).reshape(B, m, -1))
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    return model.logits(model.model.norm(x))


def with_bos(ids: torch.Tensor, bos: int = BOS) -> torch.Tensor:
    """ids [B, m] with bos in front unless they start with it (checked on the first sequence: a batch
    shares its layout)."""
    if ids.shape[1] and int(ids[0, 0]) == bos:
        return ids
    return torch.cat([torch.full((ids.shape[0], 1), bos, dtype=ids.dtype), ids], dim=1)


def candidates(model: Qwen2Beacon, context: torch.Tensor, tail: torch.Tensor, stride: int, grad: bool):
    """All chunk passes of a batch: context [B, n] cut into chunks of `stride` (the last shorter), each
    followed by tail [B, t] whose last token is the candidate. Returns per layer the candidates' K, V
    [B, KV, C, D] in chunk order. The chunks' own rows never depend on the candidate projections, so
    they run without autograd; the candidate row carries the gradient when `grad`."""
    B, n = context.shape
    groups = []  # (first chunk, chunk count, chunk length)
    full = n // stride
    if full:
        groups.append((0, full, stride))
    if n % stride:
        groups.append((full * stride, 1, n % stride))
    out_k, out_v = None, None
    for start, count, length in groups:
        chunks = context[:, start : start + count * length].reshape(B * count, length)
        X = torch.cat([chunks, tail.repeat_interleave(count, dim=0)], dim=1)
        with torch.no_grad():
            ks, vs = base_kv(model, X[:, :-1])
        with torch.set_grad_enabled(grad):
            ck, cv = candidate_kv(model, X[:, -1], ks, vs)
        # [B*count, KV, 1, D] -> [B, KV, count, D]
        ck = [k.view(B, count, *k.shape[1:]).squeeze(3).transpose(1, 2) for k in ck]
        cv = [v.view(B, count, *v.shape[1:]).squeeze(3).transpose(1, 2) for v in cv]
        out_k = ck if out_k is None else [torch.cat([a, b], dim=2) for a, b in zip(out_k, ck)]
        out_v = cv if out_v is None else [torch.cat([a, b], dim=2) for a, b in zip(out_v, cv)]
    return out_k, out_v


# ------------------------------------------------------------------------------------------ inference
def plan(N: int, prompt: list[int], s: FocusSettings) -> dict:
    """The chunk plan of a prompt, in the golden cases' `focus` record format."""
    if N < s.short_prompt_limit:
        bos = prompt[0] != s.bos
        return {"chunked": False, "n_context": 0, "chunk_number": 0, "chunks": [], "tail_len": 0, "tail_start": N,
                "tail_bos_prepended": False, "local_start": 0, "local_bos_prepended": bos, "prefill_rows": N + int(bos),
                "chunk_pass_lengths_prefill": []}
    n_ctx = N - s.local_window
    chunks = [[a, min(a + s.stride, n_ctx)] for a in range(0, n_ctx, s.stride)]
    T = min(s.tail_cap, s.stride, s.local_window)
    tail_bos = prompt[N - T] != s.bos
    local_bos = prompt[n_ctx] != s.bos
    return {"chunked": True, "n_context": n_ctx, "chunk_number": len(chunks), "chunks": chunks, "tail_len": T,
            "tail_start": N - T, "tail_bos_prepended": tail_bos, "local_start": n_ctx, "local_bos_prepended": local_bos,
            "prefill_rows": s.local_window + int(local_bos), "chunk_pass_lengths_prefill": [b - a + T + int(tail_bos) for a, b in chunks]}


@torch.no_grad()
def logits(model: Qwen2Beacon, prompt: list[int], generated: list[int], s: FocusSettings) -> torch.Tensor:
    """Logits of the rows ctx and the official code return after the prompt and then `generated` tokens
    (stateless form, FOCUSLLM.md section 4): the local pass's rows [m, V] (plain: bos(prompt) + generated)."""
    N = len(prompt)
    if N < s.short_prompt_limit:
        ids = with_bos(torch.tensor([prompt + generated]), s.bos)
        return model.logits(model.forward_full(ids, exact=True))[0]
    p = plan(N, prompt, s)
    tail = with_bos(torch.tensor([prompt[p["tail_start"] :]]), s.bos)
    tail = torch.cat([tail, torch.tensor([generated], dtype=torch.long)], dim=1)
    ck, cv = [], []
    for a, b in p["chunks"]:  # chunks differ in length only at the end; one pass each keeps this simple
        k1, v1 = candidates(model, torch.tensor([prompt[a:b]]), tail, b - a, grad=False)
        ck.append(k1)
        cv.append(v1)
    ck = [torch.cat([c[li] for c in ck], dim=2) for li in range(len(model.model.layers))]
    cv = [torch.cat([c[li] for c in cv], dim=2) for li in range(len(model.model.layers))]
    local = with_bos(torch.tensor([prompt[p["local_start"] :]]), s.bos)
    local = torch.cat([local, torch.tensor([generated], dtype=torch.long)], dim=1)
    return local_logits(model, ck, cv, local)[0]


def generate(model: Qwen2Beacon, prompt: list[int], steps: int, s: FocusSettings):
    """Prefill logits [rows, V], step logits [steps, V] and the greedy ids (the first from the prefill)."""
    pre = logits(model, prompt, [], s)
    ids, step_logits = [int(pre[-1].argmax())], []
    for i in range(steps):
        lg = logits(model, prompt, ids[: i + 1], s)[-1]
        step_logits.append(lg)
        if i + 1 < steps:
            ids.append(int(lg.argmax()))
    return pre, torch.stack(step_logits), ids
