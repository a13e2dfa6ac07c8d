"""The demo base model: Qwen2 in plain PyTorch, with Hugging Face tensor names, and its two swappable pieces.

* `Rope` turns positions into the rotation every query and key gets (HF rotate-half RoPE). A variant
  of the demo base with another position scheme (CLEX's learned scaling, a truncated basis) replaces
  `model.rope` and nothing else.
* `softmax_attention` is the attention kernel: scores, mask, normalisation, weighted values. A variant
  with another normalisation (softplus attention) replaces `model.attend`.

Both the full-attention forward here and the beacon forward (`beacon.py`) go through these two, so a
variant changes both at once. The beacon parameters (`beacon_embed_tokens`, `beacon_{q,k,v}_proj`) live
on the same modules so that `state_dict()` is the safetensors layout of an Activation Beacon checkpoint.

Weights (hidden h, heads H of size D, KV heads, vocabulary V, MLP width I, per layer unless noted):
  model.embed_tokens.weight [V, h] (tied to the output), model.norm.weight [h],
  model.beacon_embed_tokens.weight [1, h] (beacon models only),
  input_layernorm.weight [h], post_attention_layernorm.weight [h],
  self_attn.{q,beacon_q}_proj.weight [H*D, h] + bias [H*D], self_attn.{k,v,beacon_k,beacon_v}_proj.weight
  [KV*D, h] + bias [KV*D], self_attn.o_proj.weight [h, H*D], mlp.{gate,up}_proj.weight [I, h],
  mlp.down_proj.weight [h, I].
"""

from __future__ import annotations

import json
from typing import Optional

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


class Rope:
    """HF rotate-half RoPE: position p rotates dimension pair (i, i + D/2) by p * theta^(-2i/D); the angle
    is computed in float32."""

    def __init__(self, head_dim: int, theta: float):
        self.D = head_dim
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))

    def cos_sin(self, positions: torch.Tensor):
        """positions [n] -> cos, sin [n, D]."""
        freqs = positions.float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos(), emb.sin()

    @staticmethod
    def apply(x, cos, sin):
        """x [B, heads, n, D]; cos, sin [n, D]."""
        h = x.shape[-1] // 2
        return x * cos + torch.cat([-x[..., h:], x[..., :h]], dim=-1) * sin


def softmax_attention(q, k, v, visible: Optional[torch.Tensor] = None, causal: bool = False):
    """q [B, H, n, D], k and v [B, H, M, D] (KV heads already repeated). `visible` [.., n, M] bool, True =
    may attend; or `causal` for a plain causal mask over n = M. Returns [B, H, n, D]."""
    if causal:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    s = (q @ k.transpose(2, 3)) * (q.shape[-1] ** -0.5)
    if visible is not None:
        s = s.masked_fill(~visible, float("-inf"))
    return s.softmax(-1) @ v


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

    def qkv(self, h, beacon_rows: Optional[torch.Tensor] = None):
        """h [B, n, hidden] -> q [B, H, n, D], k and v [B, KV, n, D] (before RoPE). Rows where `beacon_rows`
        [n] is True use the beacon projections."""
        B, n, _ = h.shape
        if beacon_rows is not None and bool(beacon_rows.any()):
            sel = beacon_rows.view(1, n, 1)
            q = torch.where(sel, self.beacon_q_proj(h), self.q_proj(h))
            k = torch.where(sel, self.beacon_k_proj(h), self.k_proj(h))
            v = torch.where(sel, self.beacon_v_proj(h), self.v_proj(h))
        else:
            q, k, v = self.q_proj(h), self.k_proj(h), self.v_proj(h)
        return (
            q.view(B, n, self.H, self.D).transpose(1, 2),
            k.view(B, n, self.KV, self.D).transpose(1, 2),
            v.view(B, n, self.KV, self.D).transpose(1, 2),
        )


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
        self.rope = Rope(self.D, float(cfg.get("rope_theta", 10000.0)))
        self.attend = softmax_attention

    def logits(self, hidden_normed):
        w = self.model.embed_tokens.weight if self.tied else self.lm_head.weight
        return hidden_normed @ w.t()

    def base_parameters(self):
        return [p for n, p in self.named_parameters() if "beacon" not in n]

    def beacon_parameters(self):
        return [p for n, p in self.named_parameters() if "beacon" in n]

    def init_beacon_from_base(self, init: str = "eos", eos_id: int = 2, bos_id: int = 1):
        """What the official from_pretrained does for a base checkpoint: beacon projections copy the base
        ones (weights and biases) and the beacon embedding copies the eos (or bos) embedding."""
        with torch.no_grad():
            src = eos_id if init == "eos" else bos_id
            self.model.beacon_embed_tokens.weight.copy_(self.model.embed_tokens.weight[src : src + 1])
            for layer in self.model.layers:
                a = layer.self_attn
                for n in "qkv":
                    getattr(a, f"beacon_{n}_proj").weight.copy_(getattr(a, f"{n}_proj").weight)
                    getattr(a, f"beacon_{n}_proj").bias.copy_(getattr(a, f"{n}_proj").bias)

    def forward_full(self, ids: torch.Tensor, positions: Optional[torch.Tensor] = None, exact: bool = False, on_qk=None):
        """Plain causal forward over ids [B, T] at positions 0..T-1 (or `positions` [T]). Returns the
        normed hidden states [B, T, hidden]. `exact`: the plain softmax kernel instead of the fused one
        (for golden checks). `on_qk(layer, q, k)`, if given, sees each layer's queries [B, H, T, D] and
        keys [B, KV, T, D] after RoPE (training reads attention targets from them)."""
        B, T = ids.shape
        x = self.model.embed_tokens(ids)
        cos, sin = self.rope.cos_sin(torch.arange(T) if positions is None else positions)
        visible = torch.ones(T, T, dtype=torch.bool).tril() if exact else None
        rep = self.H // self.KV
        for li, layer in enumerate(self.model.layers):
            a = layer.self_attn
            q, k, v = a.qkv(layer.input_layernorm(x))
            q, k = Rope.apply(q, cos, sin), Rope.apply(k, cos, sin)
            if on_qk is not None:
                on_qk(li, q, k)
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
            o = self.attend(q, k, v, visible=visible, causal=not exact)
            x = x + a.o_proj(o.transpose(1, 2).reshape(B, T, -1))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return self.model.norm(x)


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
