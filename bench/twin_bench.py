#!/usr/bin/python3
# twin_bench.py: `make bench`'s timing of the PyTorch twin (tests/reference/torch_twin.py), the other side of
# bench/bench_step.c. Builds the twin's nn.Modules from `lmnc ir --json NET.lmn` in float32 (the twin's
# default is float64, the oracle's precision: a benchmark must compare like with like), with random weights
# of the IR's shapes (normal(0, 0.02), norm gains 1, biases 0) or, with --state, the tensors of a
# `NAME dump-state` file. The twin cannot read GGUF files: for networks whose weights come from a model file
# the timing uses random weights of the same shapes (the arithmetic is the same).
#
#   twin_bench.py train  --ir NET.json --threads N --batch B --seq T --warmup W --steps S [--impl I]
#   twin_bench.py decode --ir NET.json --threads N --prompt P --new N [--reps R]
#
# train: one step = opt.zero_grad(), forward, loss, backward, clip_grad_norm_(1.0), AdamW step
# (torch.optim.AdamW, lr 1e-3, betas 0.9/0.95, eps 1e-8, weight decay 0), every tensor the IR marks trainable,
# random tokens, targets the next token (-1 at the last position), as bench_step.c does. --impl: eager
# (default), compile (the module through torch.compile, default options: its compilation happens in the
# warm-up steps) or bf16 (eager under torch.autocast("cpu", dtype=torch.bfloat16), f32 weights and AdamW
# state, the loss in f32). The loss is
# F.cross_entropy (torch_twin.py's cross_entropy also recomputes it from its definition as a cross-check,
# which a timing should not pay for).
# decode: the twin has NO KV cache: every new token recomputes the whole sequence (the twin's forward on
# tokens[:, :pos], logits of every position, the last one used), under torch.no_grad(); prefill is the
# first such forward. Reported as decode_tok_s, labelled "full recomputation" by run.sh.
# Output lines as bench_step.c's: step_s, loss, prefill_s, decode_tok_s, peak_rss_kib (ru_maxrss, the
# whole process, Python and torch included) and rss_after_import_kib (the interpreter with torch loaded).
import argparse
import json
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import torch_twin  # noqa: E402


def rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def build(args):
    with open(args.ir) as f:
        ir = json.load(f)
    net = torch_twin.Twin(ir, torch.float32)
    torch_twin.check_ops(ir, net.reg)
    g = torch.Generator().manual_seed(args.seed)
    state = torch_twin.st_read(args.state)[0] if args.state else None
    with torch.no_grad():
        for name, p in net.reg.tensors.items():
            if state is not None:
                p.copy_(torch.from_numpy(state[name].astype(np.float32)))
            elif name.endswith("norm.weight"):
                p.fill_(1.0)
            elif name.endswith(".bias"):
                p.zero_()
            else:
                p.normal_(0.0, 0.02, generator=g)
    info = {p["name"]: p for p in ir["params"]}
    vocab = next(m["vocab"] for m in ir["models"] if m["name"] == ir["embed_model"]) \
        if ir.get("embed_model") else ir["models"][0]["vocab"]
    trained = [p for n, p in net.reg.tensors.items() if info[n]["trainable"]]
    return ir, net, trained, vocab


def train(args):
    ir, net, trained, vocab = build(args)
    out = ir["losses"][0]["output"]
    run = torch.compile(net) if args.impl == "compile" else net
    cast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.impl == "bf16")
    opt = torch.optim.AdamW(trained, lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
    g = torch.Generator().manual_seed(args.seed + 1)
    print("trainable_floats %d" % sum(p.numel() for p in trained))
    B, T = args.batch, args.seq
    for s in range(args.warmup + args.steps):
        x = torch.randint(0, vocab, (B, T), generator=g)
        y = torch.full((B, T), -1, dtype=torch.long)
        y[:, :-1] = x[:, 1:]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        with cast:
            logits = run(x)[out]
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        print("%s %.6f" % ("step_s" if s >= args.warmup else "warmup_s", dt), flush=True)
    print("loss %.6f" % float(loss.detach()))


def decode(args):
    ir, net, _, vocab = build(args)
    out = ir["losses"][0]["output"]
    g = torch.Generator().manual_seed(args.seed + 2)
    for _ in range(args.reps):
        ids = torch.randint(0, vocab, (1, args.prompt), generator=g)
        with torch.no_grad():
            t0 = time.perf_counter()
            logits = net(ids)[out][0, -1]
            t1 = time.perf_counter()
            for _ in range(args.new):
                nxt = torch.argmax(logits).view(1, 1)
                ids = torch.cat((ids, nxt), dim=1)
                logits = net(ids)[out][0, -1]
            t2 = time.perf_counter()
        print("prefill_s %.6f" % (t1 - t0))
        print("decode_tok_s %.4f" % (args.new / (t2 - t1)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("mode", choices=("train", "decode"))
    ap.add_argument("--ir", required=True)
    ap.add_argument("--state", help="a `NAME dump-state` file (default: random weights)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--impl", choices=("eager", "compile", "bf16"), default="eager")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("torch %s threads %d impl %s" % (torch.__version__, torch.get_num_threads(), args.impl))
    print("rss_after_import_kib %d" % rss_kib())
    (train if args.mode == "train" else decode)(args)
    print("peak_rss_kib %d" % rss_kib())


if __name__ == "__main__":
    main()
