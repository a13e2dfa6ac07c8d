"""Where the base's attention goes, for the two steps binding needs (experiments/binding_pilot.py checkpoints).

    python3 models/recipes/needle/experiments/binding_heads.py /tmp/binding/a.pt [more.pt ...]

On the pilots' held-out batch (128 sequences `[bos] K1 V1 .. K8 V8 (recall K V </s>)*8`), per layer and
head, the mean attention weight
  prev:        from each number V_i in the document to its name K_i (the row before: a previous-token head);
  asked V:     from a question's name row to the asked fact's number in the document (the lookup);
  other V:     from that row to each of the 7 other numbers (equal to `asked V`: no binding);
  K:           from that row to the asked name's own row in the document.
Binding by induction is a previous-token head in one layer and, in a later one, question rows attending
to the asked fact's number more than to the others.
"""

import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import language as lang  # noqa: E402
import train as recipe  # noqa: E402
from model import Qwen2Beacon  # noqa: E402


def main(paths: list[str]):
    torch.set_num_threads(1)
    b = lang.sample_batch(np.random.default_rng(999), 128, 16, 8, 0, 8)
    ids = torch.from_numpy(b.ids)
    v_rows = 2 + 2 * np.arange(8)  # V_i in the document ([bos] at row 0)
    q_rows = b.target_rows[0::2]  # each question's name row, [8]
    asked = np.array([[int(np.where(b.ids[i, 1:17:2] == b.ids[i, r])[0][0]) for r in q_rows] for i in range(128)])  # [128, 8]
    bi = np.arange(128)[:, None]
    for path in paths:
        model = Qwen2Beacon(recipe.CONFIG, beacon=True)
        model.load_state_dict(torch.load(path))
        weights = []  # per layer [B, H, T, T]

        def attend(q, k, v, visible=None, causal=False):
            T = q.shape[-2]
            s = (q @ k.transpose(2, 3)) * (q.shape[-1] ** -0.5)
            w = s.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf")).softmax(-1)
            weights.append(w)
            return w @ v

        model.attend = attend
        with torch.no_grad():
            model.forward_full(ids)
        print(path)
        for layer, w in enumerate(weights):
            prev = w[:, :, v_rows, v_rows - 1].mean((0, 2))
            to_v = torch.stack([w[bi, h, q_rows[None, :], 2 + 2 * asked] for h in range(w.shape[1])]).mean((1, 2))
            to_k = torch.stack([w[bi, h, q_rows[None, :], 1 + 2 * asked] for h in range(w.shape[1])]).mean((1, 2))
            all_v = w[:, :, q_rows][:, :, :, v_rows].sum(-1).mean((0, 2))
            other = (all_v - to_v) / 7
            r = lambda t: [round(float(x), 3) for x in t]  # noqa: E731
            print(f"  layer {layer}: prev {r(prev)}  asked V {r(to_v)}  other V {r(other)}  K {r(to_k)}")


if __name__ == "__main__":
    main(sys.argv[1:])
