"""Check beacon.py against the golden cases in ../shared/golden (the reference code's float32 logits).

For every beacon-v3-* case (and the plain Qwen2 case): load the case's model, feed input_ids as one
prompt (split at window boundaries, as the reference does), then decode greedily one token per call.
Pass = identical greedy ids and max |logit - expected| <= 1e-3 (prefill rows and decode steps), plus the
same memory sizes and chosen ratio. Exits 0 when all pass, 1 on a failure; skips (exit 0, with a
message) when the golden folder is absent.

    python3 models/recipes/needle/check_golden.py [--golden ../shared/golden]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from beacon import BeaconState, adapt_ratio, load_model  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ATOL = 1e-3


def ratio_for(case: dict, cfg: dict) -> int:
    s = case["settings"]
    ratios = s["beacon_ratio"]
    mix = s["beacon_ratio_mix"]
    if len(ratios) == 1:
        return ratios[0]
    if mix.startswith("adapt-"):
        F = int(mix.split("-", 1)[1])
        return adapt_ratio(ratios, s["beacon_window"], cfg["max_position_embeddings"], case["n_input"] + F)
    raise ValueError(f"ratio mix {mix} with several ratios is not deterministic")


def run_case(golden: str, name: str) -> tuple[bool, str]:
    case = json.load(open(os.path.join(golden, "cases", name, "case.json")))
    exp = load_file(os.path.join(golden, "cases", name, "expected.safetensors"))
    folder = os.path.join(golden, case["model"])
    cfg = json.load(open(os.path.join(folder, "config.json")))
    model = load_model(folder)
    ids = torch.tensor([case["input_ids"]])
    steps = case["greedy_steps"]
    problems = []
    with torch.no_grad():
        if case["kind"] == "plain":
            seq = ids
            pre = model.logits(model.forward_full(seq, exact=True))[0]
            out_ids, step_logits = [], []
            nxt = int(pre[-1].argmax())
            for _ in range(steps):
                out_ids.append(nxt)
                seq = torch.cat([seq, torch.tensor([[nxt]])], dim=1)
                lg = model.logits(model.forward_full(seq, exact=True))[0, -1]
                step_logits.append(lg)
                nxt = int(lg.argmax())
            info = ""
        else:
            s = case["settings"]
            r = ratio_for(case, cfg)
            if r != case["chosen_ratio"]:
                problems.append(f"ratio {r} != {case['chosen_ratio']}")
            st = BeaconState(model, 1, s["beacon_window"], r, s["beacon_sink_size"])
            pre = model.logits(st.feed_long(ids))[0]
            mem = st.memory_size()
            mem["total_kv"] = sum(mem[k] for k in ("sink_kv", "beacon_kv", "raw_kv"))
            if mem != case["memory_after_prefill"]:
                problems.append(f"memory after prefill {mem} != {case['memory_after_prefill']}")
            out_ids, step_logits = [], []
            nxt = int(pre[-1].argmax())
            for _ in range(steps):
                out_ids.append(nxt)
                lg = model.logits(st.feed(torch.tensor([[nxt]])))[0, -1]
                step_logits.append(lg)
                nxt = int(lg.argmax())
            mem = st.memory_size()
            mem["total_kv"] = sum(mem[k] for k in ("sink_kv", "beacon_kv", "raw_kv"))
            if mem != case["memory_after_generation"]:
                problems.append(f"memory after generation {mem} != {case['memory_after_generation']}")
            info = f" r={r}"
    d_pre = (pre - exp["prefill_logits"]).abs().max().item()
    d_step = (torch.stack(step_logits) - exp["step_logits"]).abs().max().item()
    if out_ids != case["expected_greedy_ids"]:
        problems.append(f"greedy ids differ: {out_ids} vs {case['expected_greedy_ids']}")
    if d_pre > ATOL or d_step > ATOL:
        problems.append(f"logits differ by more than {ATOL}")
    line = f"{name}:{info} n={case['n_input']}+{steps} max|dlogit| prefill {d_pre:.2e} steps {d_step:.2e}"
    return (not problems), line + ("" if not problems else "  FAIL: " + "; ".join(problems))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--golden", default=os.path.join(REPO, "..", "shared", "golden"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    golden = os.path.abspath(args.golden)
    cases_dir = os.path.join(golden, "cases")
    if not os.path.isdir(cases_dir):
        print(f"check_golden: skipped, no golden cases at {cases_dir}")
        return 0
    names = sorted(n for n in os.listdir(cases_dir) if n.startswith("beacon-v3-") or n.startswith("qwen2-plain"))
    ok_all = True
    for name in names:
        ok, line = run_case(golden, name)
        ok_all &= ok
        print(("ok   " if ok else "FAIL ") + line, flush=True)
    print("check_golden: all passed" if ok_all else "check_golden: FAILED")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
