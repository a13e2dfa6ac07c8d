"""CLEX (arXiv 2310.16450) on the demo base: the learned ODE over RoPE frequencies, as ../shared/research/CLEX.md
describes the official code (DAMO-NLP-SG/CLEX 023709d, CLEX/clex_layer.py), written anew.

Weights (D = head dim = rotary dim, p = param_factor), one module shared by every layer:
  model.clex_layer.inv_freq                 [D/2]      theta^(-2i/D) at init; stored and used as stored
  model.clex_layer.proj_func.ode_up_proj    [D/2, p*D] Kaiming-uniform(a=sqrt 5) at init
  model.clex_layer.proj_func.ode_down_proj  [p*D, D/2] zeros at init (untrained CLEX = NTK with alpha = 2t-1)

With x = ln f, from x(1) = ln inv_freq:
  dx/dt = act((x + ln ntk(t)) W_up) W_down + d ln ntk/dt,  ln ntk_i(t) = -(2i/D) ln 10000 - (2i/(D-2)) ln(2t-1)
integrated with the Runge-Kutta 3/8 rule ("rk4" of torchdiffeq) on the grid 1, 1+dt, ..., t.

Training (`train_frequencies` + `train_positions`): one t drawn from {1..max_factor} per batch; a sequence
of n = s*P tokens gets the random sorted positions of the official code, covering [0, P*t). Inference
(`ClexRope.for_length`): t = min(ceil(L/P), max_factor) for a call of total length L, integer positions,
the frequency table integrated once in float64 and rounded to float32, as ctx does (src/engine/rope-clex.ts).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

import common  # noqa: F401  (puts ../needle on the import path)
from model import Qwen2Beacon, Rope

TIME_EMBEDDING_BASE = 10000.0  # the official get_time_embedding's default base, whatever rope_theta is


class ODEFunction(nn.Module):
    """The ODE's right-hand side (the official `proj_func`)."""

    def __init__(self, D: int, param_factor: int, act: str):
        super().__init__()
        self.D = D
        self.ode_up_proj = nn.Parameter(torch.empty(D // 2, param_factor * D))
        self.ode_down_proj = nn.Parameter(torch.zeros(param_factor * D, D // 2))
        nn.init.kaiming_uniform_(self.ode_up_proj, a=math.sqrt(5))
        self.act = {"tanh": torch.tanh, "silu": torch.nn.functional.silu}[act]
        i = torch.arange(0, D // 2, dtype=torch.float64)
        # ln ntk(t) = -e ln 10000 - g ln alpha, per dtype: [D/2] each
        self.eg = {dt: ((2 * i / D).to(dt), (2 * i / (D - 2)).to(dt)) for dt in (torch.float32, torch.float64)}

    def forward(self, t: float, x: torch.Tensor) -> torch.Tensor:
        """x [D/2] (float32 or float64) -> dx/dt [D/2]."""
        alpha = 1.0 if t < 1 else 2.0 * t - 1.0
        e, g = self.eg[x.dtype]
        ln_ntk = -e * math.log(TIME_EMBEDDING_BASE) - g * math.log(alpha)
        up, down = self.ode_up_proj.to(x.dtype), self.ode_down_proj.to(x.dtype)
        return self.act((x + ln_ntk) @ up) @ down - (2.0 / alpha) * g


class ClexLayer(nn.Module):
    """`model.clex_layer`: the stored initial frequencies and the ODE."""

    def __init__(self, D: int, theta: float, max_factor: int, param_factor: int = 1, act: str = "tanh", time_dt: float = 0.01):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D)))
        self.proj_func = ODEFunction(D, param_factor, act)
        self.max_factor, self.time_dt = max_factor, time_dt

    def integrate(self, t_end: int, dtype=torch.float32) -> list[torch.Tensor]:
        """x at t = 2 .. t_end (list index t-2), RK 3/8 with step time_dt from x(1) = ln inv_freq.
        The grid 1 + k*dt lands on whole t up to rounding; we read x where it does (K = (t-1)/dt steps)."""
        x = torch.log(self.inv_freq.to(dtype))
        f = self.proj_func
        per_unit = round(1.0 / self.time_dt)
        assert abs(per_unit * self.time_dt - 1.0) < 1e-9, "time_dt must divide 1"
        out = []
        for k in range((t_end - 1) * per_unit):
            t0 = 1.0 + k * self.time_dt
            h = self.time_dt
            k1 = f(t0, x)
            k2 = f(t0 + h / 3, x + h * k1 / 3)
            k3 = f(t0 + 2 * h / 3, x + h * (k2 - k1 / 3))
            k4 = f(t0 + h, x + h * (k1 - k2 + k3))
            x = x + (k1 + 3 * (k2 + k3) + k4) * h / 8
            if (k + 1) % per_unit == 0:
                out.append(x)
        return out

    def train_frequencies(self, t: int) -> torch.Tensor:
        """f(t) [D/2] with autograd (float32, like the official training); t = 1 is inv_freq itself."""
        if t == 1:
            return self.inv_freq
        return torch.exp(self.integrate(t)[-1])

    @torch.no_grad()
    def table(self) -> torch.Tensor:
        """f(t) for t = 1 .. max_factor [max_factor, D/2]: row 0 = inv_freq, the others integrated in float64
        and rounded to float32 (what ctx computes; CLEX.md section 9)."""
        rows = [self.inv_freq.float()] + [torch.exp(x).float() for x in self.integrate(self.max_factor, torch.float64)]
        return torch.stack(rows)


def train_positions(rng: np.random.Generator, n: int, P: int, t: int) -> torch.Tensor:
    """The official training positions of a sequence of n tokens at scale factor t (CLEX.md section 7):
    0, a sorted sample of n-2 distinct integers of [1, n*t-2] divided by s = max(1, n // P), then
    (n*t)//s - 1; they cover [0, P*t) when n = s*P."""
    s = max(1, n // P)
    mid = (np.sort(rng.permutation(n * t - 2)[: n - 2]) + 1).astype(np.float32) / s
    return torch.from_numpy(np.concatenate([[0.0], mid, [float((n * t) // s - 1)]]).astype(np.float32))


class ClexRope:
    """A drop-in for model.Rope (`model.rope`): rotates with the frequencies set by `use`."""

    def __init__(self, freq: torch.Tensor):
        self.freq = freq

    def use(self, freq: torch.Tensor):
        self.freq = freq

    def cos_sin(self, positions: torch.Tensor):
        """positions [n] (integers, or the fractional training positions) -> cos, sin [n, D], float32 angles."""
        ang = positions.float()[:, None] * self.freq.float()[None, :]
        emb = torch.cat([ang, ang], dim=-1)
        return emb.cos(), emb.sin()

    apply = staticmethod(Rope.apply)


def scale_factor(L: int, P: int, max_factor: int) -> int:
    """t of a call whose total length (cached + new) is L."""
    return min(-(-L // P), max_factor)


@torch.no_grad()
def cached_logits(model: Qwen2Beacon, table: torch.Tensor, P: int, prompt: list[int], steps: int):
    """What ctx's `full` does on a CLEX model: the prompt in one call, then one token per call, keys cached
    before RoPE and every key re-rotated with the call's t. Returns prefill logits [n, V], step logits
    [steps, V], greedy ids and the t of every call."""
    max_factor = table.shape[0]
    L_ = len(model.model.layers)
    cache_k: list[torch.Tensor | None] = [None] * L_
    cache_v: list[torch.Tensor | None] = [None] * L_
    rep = model.H // model.KV

    def call(ids: list[int]) -> tuple[torch.Tensor, int]:
        start = 0 if cache_k[0] is None else cache_k[0].shape[2]
        n = len(ids)
        L = start + n
        t = scale_factor(L, P, max_factor)
        rope = ClexRope(table[t - 1])
        cos, sin = rope.cos_sin(torch.arange(L))
        x = model.model.embed_tokens(torch.tensor([ids]))
        visible = torch.ones(n, L, dtype=torch.bool).tril(start)
        for li, layer in enumerate(model.model.layers):
            a = layer.self_attn
            q, k, v = a.qkv(layer.input_layernorm(x))
            cache_k[li] = k if cache_k[li] is None else torch.cat([cache_k[li], k], dim=2)
            cache_v[li] = v if cache_v[li] is None else torch.cat([cache_v[li], v], dim=2)
            K = Rope.apply(cache_k[li], cos, sin).repeat_interleave(rep, dim=1)
            V = cache_v[li].repeat_interleave(rep, dim=1)
            o = model.attend(Rope.apply(q, cos[start:], sin[start:]), K, V, visible=visible)
            x = x + a.o_proj(o.transpose(1, 2).reshape(1, n, -1))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return model.logits(model.model.norm(x))[0], t

    prefill, t0 = call(prompt)
    ids, step_logits, ts = [int(prefill[-1].argmax())], [], []
    for i in range(steps):
        lg, t = call([ids[-1]])
        step_logits.append(lg[-1])
        ts.append(t)
        if i + 1 < steps:
            ids.append(int(lg[-1].argmax()))
    return prefill, torch.stack(step_logits), ids, t0, ts


def attach(model: Qwen2Beacon, cfg: dict) -> ClexLayer:
    """Adds `model.clex_layer` (its state_dict names are the released checkpoints') and a ClexRope."""
    rs = cfg["rope_scaling"]
    layer = ClexLayer(model.D, float(cfg.get("rope_theta", 10000.0)), rs["max_factor"], rs["param_factor"], rs["act"], rs["time_dt"])
    model.model.clex_layer = layer
    model.rope = ClexRope(layer.inv_freq)
    return layer


def load_clex(folder: str) -> tuple[Qwen2Beacon, dict]:
    """An exported CLEX variant, float32."""
    import json

    from safetensors.torch import load_file

    cfg = json.load(open(f"{folder}/config.json"))
    model = Qwen2Beacon(cfg, beacon=False)
    attach(model, cfg)
    model.load_state_dict({k: v.float() for k, v in load_file(f"{folder}/model.safetensors").items()})
    return model.eval(), cfg
