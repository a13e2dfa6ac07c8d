"""Plain Phi-2 golden cases: a tiny random-weight PhiForCausalLM (transformers) and its float32 logits.

Phi-2 is the architecture of CLEX-Phi-2-32K (issue 17). These cases pin ctx's Phi forward pass, without
CLEX, in the format of ../shared/golden (README there), so `npm run golden -- fixtures/golden-phi` reads
them: models/<name>/{config.json, model.safetensors}, cases/<case>/{case.json, expected.safetensors}.

What makes Phi-2 differ from Llama, all exercised here: attention and MLP in parallel on the same
LayerNorm output (x + attn(LN(x)) + mlp(LN(x)), one LayerNorm per layer), LayerNorm with a bias, RoPE on
the first partial_rotary_factor·head_dim dims of each head only, a GELU (tanh approximation, "gelu_new")
MLP fc1 -> fc2, biases on q/k/v, the output projection (`dense`), fc1, fc2 and lm_head, and the final
norm named `model.final_layernorm`.

Reference: transformers' PhiForCausalLM, eager attention, float32, the prompt in one call, then one
token per call with its KV cache (greedy). Independent check: a numpy re-implementation written from the
description above (not from transformers), in float64 and float32, teacher-forced on the same ids; its
max |diff| goes into each case's `tolerance`.

Deterministic: weights and inputs come from torch.Generator seeds (weight_seed in case.json); the seed
is advanced until the smallest top1 - top2 margin at a greedy choice is >= 2e-3 and the greedy ids hold
>= 8 distinct values, as for ../shared/golden, and until the subtlest mistake (an erf GELU instead of
gelu_new) moves some logit by >= 5x the cases' tolerance (2e-4, see ATOL); `tolerance.sensitivity` lists
what each mistake costs. Rerunning on the same torch build rewrites identical
files; another CPU or BLAS may move logits in the last float32 bits.

    python3 tools/golden-phi/make_cases.py [--out fixtures/golden-phi]

Needs torch, numpy, safetensors, transformers (a venv: see ../../../shared/research/TOOLCHAIN.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
import transformers
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file
from transformers import PhiConfig, PhiForCausalLM

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL_NAME = "phi2-tiny"
FIRST_SEED = 7100
MIN_MARGIN = 2e-3
MIN_DISTINCT = 8
# suggested_atol of these cases. The independent float32 run agrees to < 1e-5, so 2e-4 leaves 20x room
# for another float32 engine, while the subtlest mistake (an erf GELU instead of gelu_new) moves logits
# by only 1.4e-3 .. 2.6e-3 at this size: with the usual 1e-3 it would pass by a hair.
ATOL = 2e-4
MIN_VARIANT_DIFF = 5 * ATOL

# config.json as Phi-2 checkpoints write it (microsoft/phi-2, DAMO-NLP-SG/CLEX-Phi-2-32K: transformers
# 4.3x keys, rope_theta and partial_rotary_factor at the top level), scaled down. The CLEX-Phi-2 shape
# is 32 heads of 80 with partial_rotary_factor 0.4; here 4 heads of 16 with 0.5, so 8 rotary dims.
CONFIG = {
    "architectures": ["PhiForCausalLM"],
    "model_type": "phi",
    "vocab_size": 96,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "hidden_act": "gelu_new",
    "max_position_embeddings": 256,
    "partial_rotary_factor": 0.5,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "layer_norm_eps": 1e-5,
    "qk_layernorm": False,
    "tie_word_embeddings": False,
    "attention_dropout": 0.0,
    "embd_pdrop": 0.0,
    "resid_pdrop": 0.0,
    "initializer_range": 0.02,
    "use_cache": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": None,
    "torch_dtype": "float32",
}

# (case name, prompt length, greedy steps)
CASES = [("phi2-plain-n24", 24, 12), ("phi2-plain-n180", 180, 16)]


def tensor_shapes(c: dict) -> list[tuple[str, list[int]]]:
    """Every weight of the model with its shape, in the order they are drawn."""
    h, i, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    d = h // c["num_attention_heads"]
    q, kv = c["num_attention_heads"] * d, c["num_key_value_heads"] * d
    out = [("model.embed_tokens.weight", [v, h])]
    for n in range(c["num_hidden_layers"]):
        p = f"model.layers.{n}."
        out += [
            (p + "input_layernorm.weight", [h]),
            (p + "input_layernorm.bias", [h]),
            (p + "self_attn.q_proj.weight", [q, h]),
            (p + "self_attn.q_proj.bias", [q]),
            (p + "self_attn.k_proj.weight", [kv, h]),
            (p + "self_attn.k_proj.bias", [kv]),
            (p + "self_attn.v_proj.weight", [kv, h]),
            (p + "self_attn.v_proj.bias", [kv]),
            (p + "self_attn.dense.weight", [h, q]),
            (p + "self_attn.dense.bias", [h]),
            (p + "mlp.fc1.weight", [i, h]),
            (p + "mlp.fc1.bias", [i]),
            (p + "mlp.fc2.weight", [h, i]),
            (p + "mlp.fc2.bias", [h]),
        ]
    out += [
        ("model.final_layernorm.weight", [h]),
        ("model.final_layernorm.bias", [h]),
        ("lm_head.weight", [v, h]),
        ("lm_head.bias", [v]),
    ]
    return out


def random_weights(c: dict, seed: int) -> dict[str, torch.Tensor]:
    """The scheme of ../shared/golden: N(0,1) embeddings, N(0, (1.6/sqrt(fan_in))^2) linears,
    N(0, (2.5/sqrt(hidden))^2) lm_head, N(0, 0.2^2) biases, LayerNorm weights 1 + U(-0.25, 0.25)."""
    g = torch.Generator().manual_seed(seed)
    w = {}
    for name, shape in tensor_shapes(c):
        if name == "model.embed_tokens.weight":
            t = torch.randn(shape, generator=g)
        elif "layernorm.weight" in name:
            t = 1 + (torch.rand(shape, generator=g) - 0.5) * 0.5
        elif name.endswith(".bias"):
            t = torch.randn(shape, generator=g) * 0.2
        elif name == "lm_head.weight":
            t = torch.randn(shape, generator=g) * (2.5 / math.sqrt(shape[1]))
        else:
            t = torch.randn(shape, generator=g) * (1.6 / math.sqrt(shape[1]))
        w[name] = t.float().contiguous()
    return w


def reference_run(model: PhiForCausalLM, ids: list[int], steps: int):
    """Prompt in one call (logits of every row), then one greedy token per call with the KV cache."""
    with torch.no_grad():
        out = model(torch.tensor([ids]), use_cache=True)
        prefill = out.logits[0].clone()
        cache = out.past_key_values
        greedy, step_logits = [], []
        nxt = int(prefill[-1].argmax())
        for _ in range(steps):
            greedy.append(nxt)
            out = model(torch.tensor([[nxt]]), past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            row = out.logits[0, -1].clone()
            step_logits.append(row)
            nxt = int(row.argmax())
    return prefill, torch.stack(step_logits), greedy


# Mistakes an engine could make, each run by independent_logits(variant=...) to show the cases catch it.
VARIANTS = {
    "rope_on_all_dims": "RoPE over the whole head instead of the first partial_rotary_factor·head_dim dims",
    "gelu_exact_instead_of_tanh": "erf GELU instead of gelu_new (tanh approximation)",
    "sequential_attention_then_mlp": "x += attn(LN(x)); x += mlp(LN(x)) (Llama order) instead of the parallel sum",
    "no_dense_bias": "the attention output projection (dense) without its bias",
    "no_lm_head_bias": "lm_head without its bias",
    "layer_norm_without_bias": "LayerNorms without their bias",
}


def independent_logits(c: dict, w: dict[str, torch.Tensor], ids: list[int], dtype, variant: str | None = None) -> np.ndarray:
    """Phi-2 written from its description in numpy: logits of every row of `ids`, full causal pass."""
    W = {k: v.double().numpy().astype(dtype) for k, v in w.items()}
    if variant == "no_dense_bias":
        for k in W:
            if k.endswith("self_attn.dense.bias"):
                W[k] = W[k] * 0
    if variant == "no_lm_head_bias":
        W["lm_head.bias"] = W["lm_head.bias"] * 0
    if variant == "layer_norm_without_bias":
        for k in W:
            if "layernorm.bias" in k:
                W[k] = W[k] * 0
    H, nh = c["hidden_size"], c["num_attention_heads"]
    D = H // nh
    R = D if variant == "rope_on_all_dims" else int(c["partial_rotary_factor"] * D)
    eps = c["layer_norm_eps"]
    n = len(ids)

    def layer_norm(x, name):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * W[name + ".weight"] + W[name + ".bias"]

    def lin(x, name):
        return x @ W[name + ".weight"].T + W[name + ".bias"]

    def gelu(x):
        if variant == "gelu_exact_instead_of_tanh":
            return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))

    # RoPE on the first R dims of each head, rotate-half layout; angles as float32 like transformers.
    inv = (1.0 / (np.float32(c["rope_theta"]) ** (np.arange(0, R, 2, dtype=np.float32) / np.float32(R)))).astype(np.float32)
    ang = (np.arange(n, dtype=np.float32)[:, None] * inv[None, :]).astype(np.float32)
    cos = np.cos(np.concatenate([ang, ang], -1)).astype(dtype)
    sin = np.sin(np.concatenate([ang, ang], -1)).astype(dtype)

    def rope(x):  # x [heads, n, D]
        r, rest = x[..., :R], x[..., R:]
        half = R // 2
        rot = np.concatenate([-r[..., half:], r[..., :half]], -1)
        return np.concatenate([r * cos + rot * sin, rest], -1)

    x = W["model.embed_tokens.weight"][ids]
    mask = np.triu(np.full((n, n), -np.inf, dtype=dtype), 1)
    for L in range(c["num_hidden_layers"]):
        p = f"model.layers.{L}."
        h = layer_norm(x, p + "input_layernorm")

        def mlp(h):
            return lin(gelu(lin(h, p + "mlp.fc1")), p + "mlp.fc2")

        q = rope(lin(h, p + "self_attn.q_proj").reshape(n, nh, D).transpose(1, 0, 2))
        k = rope(lin(h, p + "self_attn.k_proj").reshape(n, nh, D).transpose(1, 0, 2))
        v = lin(h, p + "self_attn.v_proj").reshape(n, nh, D).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / np.sqrt(D).astype(dtype) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        attn = lin(a.transpose(1, 0, 2).reshape(n, H), p + "self_attn.dense")
        if variant == "sequential_attention_then_mlp":
            x = x + attn
            x = x + mlp(layer_norm(x, p + "input_layernorm"))
        else:
            x = x + attn + mlp(h)
    return lin(layer_norm(x, "model.final_layernorm"), "lm_head")


def margins(prefill: torch.Tensor, steps: torch.Tensor) -> float:
    rows = torch.cat([prefill[-1:], steps[:-1]])
    top2 = rows.topk(2, dim=-1).values
    return float((top2[:, 0] - top2[:, 1]).min())


def build(seed: int):
    """Weights for `seed` and, per case, its prompt and reference outputs; None if a case is too close."""
    w = random_weights(CONFIG, seed)
    cfg = PhiConfig(**{k: v for k, v in CONFIG.items() if k not in ("architectures", "model_type", "torch_dtype")})
    cfg._attn_implementation = "eager"
    model = PhiForCausalLM(cfg).eval()
    model.load_state_dict(w, strict=True)
    g = torch.Generator().manual_seed(seed + 1)
    runs = []
    for name, n, steps in CASES:
        ids = torch.randint(3, CONFIG["vocab_size"], (n,), generator=g).tolist()
        prefill, step_logits, greedy = reference_run(model, ids, steps)
        if margins(prefill, step_logits) < MIN_MARGIN or len(set(greedy)) < MIN_DISTINCT:
            return None
        gelu = independent_logits(CONFIG, w, ids + greedy, np.float64, "gelu_exact_instead_of_tanh")
        expected = torch.cat([prefill, step_logits[:-1]]).double().numpy()
        if np.abs(gelu[: len(expected)] - expected).max() < MIN_VARIANT_DIFF:
            return None
        runs.append((name, ids, steps, prefill, step_logits, greedy))
    return w, runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "fixtures", "golden-phi"))
    args = ap.parse_args()
    torch.set_num_threads(1)  # one thread: the same summation order on every run

    seed = FIRST_SEED
    while (built := build(seed)) is None:
        seed += 1
    w, runs = built

    tmp = args.out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model_dir = os.path.join(tmp, "models", MODEL_NAME)
    os.makedirs(model_dir)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    save_file(w, os.path.join(model_dir, "model.safetensors"))

    versions = f"transformers {transformers.__version__}, torch {torch.__version__} CPU, float32"
    for name, ids, steps, prefill, step_logits, greedy in runs:
        diffs = {}
        for label, dtype in (("float64", np.float64), ("float32", np.float32)):
            seq = ids + greedy
            ind = independent_logits(CONFIG, w, seq, dtype)
            ind_greedy = [int(ind[len(ids) - 1 + i].argmax()) for i in range(steps)]
            if ind_greedy != greedy:
                print(f"{name}: the independent {label} run picks {ind_greedy}, the reference {greedy}", file=sys.stderr)
                return 1
            diffs[label] = {
                "prefill": float(np.abs(ind[: len(ids)] - prefill.double().numpy()).max()),
                "steps": float(np.abs(ind[len(ids) : len(ids) + steps] - step_logits.double().numpy()).max()),
            }
        sensitivity = {"note": "max abs logit differences vs the expected tensors when one thing is done wrong (independent float64 run, teacher-forced)"}
        for variant, what in VARIANTS.items():
            ind = independent_logits(CONFIG, w, ids + greedy, np.float64, variant)
            sensitivity[variant] = {
                "what": what,
                "prefill": float(np.abs(ind[: len(ids)] - prefill.double().numpy()).max()),
                "steps": float(np.abs(ind[len(ids) : len(ids) + steps] - step_logits.double().numpy()).max()),
            }
        V = CONFIG["vocab_size"]
        case = {
            "name": name,
            "kind": "plain",
            "reference": f"transformers PhiForCausalLM (eager attention, DynamicCache), {versions}; tools/golden-phi/make_cases.py",
            "model": f"models/{MODEL_NAME}",
            "weight_seed": seed,
            "n_input": len(ids),
            "input_ids": ids,
            "greedy_steps": steps,
            "expected_greedy_ids": greedy,
            "settings": None,
            "tensors": {
                "prefill_logits": f"float32 [{len(ids)}, {V}]: logits at every input position of the one-call prefill; row i predicts the token after input_ids[i]",
                "step_logits": f"float32 [{steps}, {V}]: row i = logits returned after feeding expected_greedy_ids[i]",
            },
            "tolerance": {
                "note": "expected tensors come from the reference in float32. An independent numpy re-implementation (independent_logits in make_cases.py, full causal pass, no KV cache) teacher-forced on the same greedy ids reproduced them with the max abs differences below and picked the same greedy ids.",
                "max_abs_diff_vs_independent_float64": diffs["float64"],
                "max_abs_diff_vs_independent_float32": diffs["float32"],
                "max_abs_logit": float(max(prefill.abs().max(), step_logits.abs().max())),
                "min_top1_top2_margin_at_greedy_choices": margins(prefill, step_logits),
                "distinct_greedy_ids": len(set(greedy)),
                "suggested_atol": ATOL,
                "sensitivity": sensitivity,
            },
        }
        case_dir = os.path.join(tmp, "cases", name)
        os.makedirs(case_dir)
        with open(os.path.join(case_dir, "case.json"), "w") as f:
            json.dump(case, f, indent=1)
            f.write("\n")
        save_numpy(
            {"prefill_logits": prefill.numpy().astype(np.float32), "step_logits": step_logits.numpy().astype(np.float32)},
            os.path.join(case_dir, "expected.safetensors"),
        )
        smallest = min(max(v["prefill"], v["steps"]) for k, v in sensitivity.items() if k != "note")
        print(f"{name}: seed {seed}, {len(ids)} + {steps} tokens, vs independent float64 prefill {diffs['float64']['prefill']:.1e} steps {diffs['float64']['steps']:.1e}; smallest wrong-variant diff {smallest:.2g}")

    # Keep the README, replace the generated folders only when everything was written.
    for sub in ("models", "cases"):
        shutil.rmtree(os.path.join(args.out, sub), ignore_errors=True)
        os.makedirs(args.out, exist_ok=True)
        os.replace(os.path.join(tmp, sub), os.path.join(args.out, sub))
    shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
