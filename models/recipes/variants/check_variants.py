"""Check that ctx runs an exported variant exactly as this recipe's PyTorch forward does.

    python3 models/recipes/variants/check_variants.py [clex|lssa|softmax|focus ...]

For each variant: a few needle prompts (some past the window, CLEX ones across a change of t), their
prefill logits, greedy decoding one token per call, all computed by the recipe's forward on the exported
float16 weights (in float32); written as golden cases in ../shared/golden's format under
models/recipes/variants/work/golden-<variant>/, then run by ctx's own golden runner on the reference
backend (tools/golden.ts), and cut to fixtures/variants/<variant>.json for the CI test: pass = identical greedy ids and max |dlogit| <= 1e-3 on every row, plus
kind-specific checks (CLEX: ctx's f(t) table and the t of every call; focus: the chunk plan).
The LSSA model is also checked as LSSAR p = 3 and p = 15 (the same weights with softplus_reweight set).
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

STEPS = 6


def plain_generate(model, prompt: list[int], steps: int):
    """Full causal attention recomputed per step (its logits equal a KV cache's)."""
    with torch.no_grad():
        pre = model.logits(model.forward_full(torch.tensor([prompt]), exact=True))[0]
        ids, rows = [int(pre[-1].argmax())], []
        for i in range(steps):
            lg = model.logits(model.forward_full(torch.tensor([prompt + ids[: i + 1]]), exact=True))[0, -1]
            rows.append(lg)
            if i + 1 < steps:
                ids.append(int(lg.argmax()))
    return pre, torch.stack(rows), ids


def cases_clex(folder: str, root: str):
    from clex import cached_logits, load_clex

    model, cfg = load_clex(folder)
    P = cfg["max_position_embeddings"]
    layer = model.model.clex_layer
    table = layer.table()
    for name, n in (("prefill-t1-to-t2", P - 2), ("prefill-t2-to-t3", 2 * P - 1), ("t6", 5 * P + 7)):
        prompt, _ = common.greedy_prompt(31 + n, "single", n - 3)
        pre, steps, ids, t0, ts = cached_logits(model, table, P, prompt, STEPS)
        settings = {"rope_scaling": cfg["rope_scaling"], "max_position_embeddings": P, "rope_theta": cfg.get("rope_theta", 10000.0),
                    "head_dim": model.D, "log_scale": False, "attention": "eager softmax, keys cached before RoPE",
                    "scale_factor_prefill": t0, "scale_factor_steps": ts}
        common.write_case(root, f"clex-{name}-n{n}", "clex", folder, prompt, pre, steps, ids, settings,
                          tensors={"clex_scaled_inv_freq": table},
                          extra={"tolerance": {"suggested_atol": 1e-3, "suggested_rtol_clex_scaled_inv_freq": 1e-4}})


def past_window(root: str) -> str:
    """Where cases of plain `full` past the window go: ctx's golden runner (like `ctx ask`) refuses `full`
    there, so they are not under root; the CI test replays them with the efficacy harness's `full`
    (positions 0..n-1, the window exceeded on purpose), as bench/efficacy reads these models."""
    return root + "-past-window"


def cases_softmax(folder: str, root: str):
    model = common.load_model(folder)
    P = model.cfg["max_position_embeddings"]
    for n in (P // 2, 2 * P + 3):
        prompt, _ = common.greedy_prompt(41 + n, "single", n - 3)
        pre, steps, ids = plain_generate(model, prompt, STEPS)
        where = root if n + STEPS <= P else past_window(root)
        common.write_case(where, f"softmax-n{n}", "plain", folder, prompt, pre, steps, ids, None)


def cases_lssa(folder: str, root: str):
    import softplus

    model = common.load_model(folder)
    P = model.cfg["max_position_embeddings"]
    for p in (None, 3, 15):
        target = folder
        if p is not None:  # the same weights, re-weighting set in the config
            target = os.path.join(root, "models", f"lssar-p{p}")
            os.makedirs(target, exist_ok=True)
            cfg = {**json.load(open(os.path.join(folder, "config.json"))), **softplus.config_keys(p)}
            json.dump(cfg, open(os.path.join(target, "config.json"), "w"), indent=1)
            shutil.copyfile(os.path.join(folder, "model.safetensors"), os.path.join(target, "model.safetensors"))
        model.attend = softplus.make_attention(p)
        keys = softplus.config_keys(p)
        settings = {"variant": "LSSA" if p is None else "LSSAR", "head_dim": model.D, **keys}
        for n in (P // 2, 2 * P + 3):
            prompt, _ = common.greedy_prompt(43 + n, "single", n - 3)
            pre, steps, ids = plain_generate(model, prompt, STEPS)
            name = "lssa" if p is None else f"lssar-p{p}"
            where = root if n + STEPS <= P else past_window(root)
            common.write_case(where, f"{name}-n{n}", "softplus", target, prompt, pre, steps, ids, settings)


def cases_focus(folder: str, root: str):
    import focus

    model, cfg, s = focus.load_focus(folder)
    P = cfg["max_position_embeddings"]
    for n in (P - 20, 3 * P + 5, 8 * P + 1):
        prompt, _ = common.greedy_prompt(47 + n, "single", n - 3)
        pre, steps, ids = focus.generate(model, prompt, STEPS, s)
        settings = {"local_window": s.local_window, "memory_stride": [s.stride], "beacon_param": cfg["beacon_param"],
                    "max_position_embeddings": P, "short_prompt_limit": s.short_prompt_limit, "tail_cap": s.tail_cap,
                    "bos_id_prepended": s.bos}
        common.write_case(root, f"focus-n{n}", "focusllm", folder, prompt, pre, steps, ids, settings,
                          extra={"focus": focus.plan(n, prompt, s)})


CASES = {"clex": cases_clex, "softmax": cases_softmax, "lssa": cases_lssa, "focus": cases_focus}
FIXTURES = os.path.join(common.REPO, "fixtures", "variants")


def write_fixture(variant: str, folder: str, root: str):
    """fixtures/variants/<variant>.json: the cases just written, cut to what a fast test needs (the CI test
    test/demo/variants.test.ts runs them on ctx's cpu backend): prompt, greedy ids, the prefill's last row
    and every step's logits (float32 values, 7 significant digits; |error| < 1e-5 at these magnitudes)."""
    from safetensors.numpy import load_file

    cases = []
    dirs = [os.path.join(r, "cases", name) for r in (root, past_window(root)) if os.path.isdir(os.path.join(r, "cases"))
            for name in sorted(os.listdir(os.path.join(r, "cases")))]
    for d in dirs:
        name = os.path.basename(d)
        case = json.load(open(os.path.join(d, "case.json")))
        t = load_file(os.path.join(d, "expected.safetensors"))
        rw = (case.get("settings") or {}).get("softplus_reweight")
        cases.append({
            "name": name,
            "strategy": "focus" if case["kind"] == "focusllm" else "full" if d.startswith(root + os.sep) else "full-past-window",
            "softplus_reweight": None if case["kind"] != "softplus" else ("off" if rw is None else rw["p"]),
            "input_ids": case["input_ids"],
            "expected_greedy_ids": case["expected_greedy_ids"],
            "atol": case["tolerance"]["suggested_atol"],
            "last_prefill_logits": [float(f"{x:.7g}") for x in t["prefill_logits"][-1].tolist()],
            "step_logits": [[float(f"{x:.7g}") for x in row] for row in t["step_logits"].tolist()],
        })
    os.makedirs(FIXTURES, exist_ok=True)
    out = {"model": os.path.relpath(folder, common.REPO), "made_by": "models/recipes/variants/check_variants.py",
           "model_sha256": sha256(os.path.join(folder, "model.safetensors")), "cases": cases}
    with open(os.path.join(FIXTURES, f"{variant}.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


def sha256(path: str) -> str:
    import hashlib

    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def check(variant: str, folder: str, root: str) -> int:
    """Writes the variant's cases under root and runs ctx's golden runner on them. 0 = all passed."""
    for r in (root, past_window(root)):
        shutil.rmtree(r, ignore_errors=True)
    os.makedirs(root)
    torch.set_num_threads(1)
    CASES[variant](os.path.abspath(folder), root)
    write_fixture(variant, os.path.abspath(folder), root)
    ok, out = common.run_ctx_golden(root)
    common.log(f"ctx (reference backend) on {folder}:\n{out}")
    return 0 if ok else 1


def main() -> int:
    variants = sys.argv[1:] or list(CASES)
    folders = {"clex": "needle-clex", "softmax": "needle-softmax", "lssa": "needle-lssa", "focus": "needle-focus"}
    rc = 0
    for v in variants:
        folder = os.path.join(common.REPO, "models", folders[v])
        if not os.path.exists(os.path.join(folder, "model.safetensors")):
            print(f"check_variants: {v}: no model at {folder} (run train_{'softplus' if v in ('lssa', 'softmax') else v}.py first)")
            rc = 1
            continue
        rc |= check(v, folder, os.path.join(common.DEFAULT_WORK, f"golden-{v}"))
    return rc


if __name__ == "__main__":
    sys.exit(main())
