#!/usr/bin/env python3
"""decode_summary.py RAW ENV OUT.md: the table of bench/decode_bench.sh. Reads RAW/CASE.SIDE.ROUND.txt
(`load L` then bench_step's or llama_decode.py's `key value` lines) and writes medians, ratios and every
round's value, marking runs that started on a loaded machine. A median is taken over the quiet runs (no other
process runnable at the start) when there are at least 3 of them on a side, else over all of them with a
warning that the entry is no result."""
import glob
import os
import statistics
import sys

raw, env, out = sys.argv[1], sys.argv[2], sys.argv[3]
CASES = [("decode_1", "decode tok/s, 1 thread (19-token prompt + 128 new, greedy)"),
         ("decode_2", "decode tok/s, 2 threads"),
         ("prefill_1", "prefill tok/s, 230-token prompt, 1 thread"),
         ("prefill_2", "prefill tok/s, 230-token prompt, 2 threads")]


def read(path):
    kv = {}
    for line in open(path):
        parts = line.split()
        if len(parts) >= 2:
            kv.setdefault(parts[0], parts[1])
    return kv


def value(case, kv):
    if case.startswith("decode"):
        return float(kv["decode_tok_s"])
    return 230.0 / float(kv["prefill_s"])


rows, rss, detail = [], {"ours": [], "llama": []}, []
loaded_runs, not_results = 0, []


def median_of(vals, quiet):
    """The median over the quiet runs when there are at least 3, else over all (and False: not a result)."""
    q = [v for v, ok in zip(vals, quiet) if ok]
    return (statistics.median(q), True) if len(q) >= 3 else (statistics.median(vals), False)


for case, title in CASES:
    vals, quiet = {"ours": [], "llama": []}, {"ours": [], "llama": []}
    for side in ("ours", "llama"):
        files = sorted(glob.glob(os.path.join(raw, f"{case}.{side}.*.txt")), key=lambda p: int(p.split(".")[-2]))
        for p in files:
            kv = read(p)
            load = float(kv["load"])
            loaded = int(kv["others"]) > 0
            loaded_runs += loaded
            v = value(case, kv)
            vals[side].append(v)
            quiet[side].append(not loaded)
            rss[side].append(int(kv["peak_rss_kib"]) / 1024)
            detail.append(f"| {case} | {side} | {p.split('.')[-2]} | {load:.2f} | {kv['others']}"
                          f"{' (loaded)' if loaded else ''} | {v:.1f} |")
    (mo, qo), (ml, ql) = median_of(vals["ours"], quiet["ours"]), median_of(vals["llama"], quiet["llama"])
    if not (qo and ql):
        not_results.append(case)
    rows.append(f"| {title}{'' if qo and ql else ' (loaded: no result)'} | {mo:.1f} | {ml:.1f} | {mo / ml:.2f} |")
env_lines = open(env).read().strip().splitlines()
with open(out, "w") as f:
    f.write("# Decoding and prefill: lmnet vs llama.cpp (`make bench-decode`)\n\n")
    f.write("Same file (SmolLM2-135M-Instruct Q4_1), same threads, fresh processes alternating ours/llama.cpp "
            "in every round; medians over the quiet runs of each side (no other process runnable at the start). Written by bench/decode_bench.sh; do not edit.\n\n")
    f.write("| | lmnet | llama.cpp | ratio |\n|---|---|---|---|\n")
    f.write("\n".join(rows) + "\n")
    f.write(f"| peak RSS, MiB (median over all runs) | {statistics.median(rss['ours']):.0f} | "
            f"{statistics.median(rss['llama']):.0f} | {statistics.median(rss['ours']) / statistics.median(rss['llama']):.2f} |\n\n")
    if loaded_runs:
        f.write(f"{loaded_runs} runs started while another process was runnable (marked below); they are left "
                "out of the medians.\n\n")
    if not_results:
        f.write(f"**Fewer than 3 quiet runs on a side for {', '.join(not_results)}: those medians include loaded "
                "runs and are not results.**\n\n")
    f.write("llama.cpp's RSS includes the Python interpreter and numpy (about 40 MiB before the model is "
            "loaded: base_rss_kib in the raw files). Prompts are random token ids of the same length on both "
            "sides (the ids do not change the work).\n\n## Environment\n\n")
    f.write("\n".join(f"- {l}" for l in env_lines) + "\n\n## Every run\n\n")
    f.write("| case | side | round | 1-min load at start | other runnable | tok/s |\n|---|---|---|---|---|---|\n")
    f.write("\n".join(detail) + "\n")
