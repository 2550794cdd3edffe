#!/usr/bin/env python3
# paper_report.py OUT STEPS BATCH SEQ THREADS full|smoke: the report of `make paper` (scripts/paper.sh) from
# OUT/results.tsv and each run's OUT/ck-NAME/metrics.jsonl: a Markdown table (held-out loss and perplexity,
# trainable parameters, tokens, wall time, peak RSS), the loss curves drawn with gnuplot, the commit, the
# command, the machine, and a reading generated from the numbers (whichever way they come out). The full run
# writes docs/paper.md, docs/paper.png and docs/paper-losses.tsv; the smoke run writes into OUT.
# paper_report.py --losses METRICS.jsonl NAME: that run's steps as paper-losses.tsv lines (make paper-check).
import json
import os
import re
import subprocess
import sys

TRAINED = ("lmnet", "preserve", "lastlayers", "finetune")


def loss_lines(path, name):
    """NAME, step, loss, gradient norm of every training step of a run, the numbers as the run wrote them."""
    lines = []
    with open(path) as f:
        for line in f:
            m = json.loads(line)
            if "loss" not in m or "val_loss" in m:
                continue
            raw = dict(re.findall(r'"(loss|grad_norm)": ([^,}]+)', line))
            lines.append("%s\t%d\t%s\t%s\n" % (name, m["step"], raw.get("loss", "?"), raw.get("grad_norm", "?")))
    return lines


def rows(out):
    with open(os.path.join(out, "results.tsv")) as f:
        head = f.readline().rstrip("\n").split("\t")
        return [dict(zip(head, line.rstrip("\n").split("\t"))) for line in f if line.strip()]


def curves(out, name):
    """(step, loss) of every logged step and (step, val_loss) of every evaluation of a run."""
    train, val = [], []
    path = os.path.join(out, "ck-" + name, "metrics.jsonl")
    if not os.path.exists(path):
        return train, val
    with open(path) as f:
        for line in f:
            m = json.loads(line)
            if "val_loss" in m:
                val.append((m["step"], m["val_loss"]))
            elif "loss" in m:
                train.append((m["step"], m["loss"]))
    return train, val


def plot(out, table, png):
    cmds, k = [], 1
    base = next((float(r["val_loss"]) for r in table if r["variant"] == "base"), None)
    for i, r in enumerate(table):
        train, val = curves(out, r["variant"])
        if not train:
            continue
        k = max(1, len(train) // 50)  # a running mean over k steps keeps the curve readable
        smooth = [(train[j][0], sum(l for _, l in train[max(0, j - k + 1):j + 1]) / len(train[max(0, j - k + 1):j + 1]))
                  for j in range(len(train))]
        for kind, pts in (("train", smooth), ("val", val)):
            path = os.path.join(out, "%s.%s.dat" % (r["variant"], kind))
            with open(path, "w") as f:
                f.writelines("%d %.6f\n" % p for p in pts)
            if pts:
                style = "lines lw 2 lc %d" % (i + 1) if kind == "train" else "linespoints pt 7 lc %d" % (i + 1)
                title = "%s %s" % (r["label"].split(")")[0] + ")", "training" if kind == "train" else "held-out")
                cmds.append("'%s' using 1:2 with %s title '%s'" % (path, style, title))
    if base is not None:
        cmds.append("%f with lines dt 2 lc rgb 'black' title '(a) SmolLM2 as it is, held-out'" % base)
    script = ("set terminal pngcairo size 1000,600\nset output '%s'\nset xlabel 'optimizer step'\n"
              "set ylabel 'loss (nats per token; training: running mean of %d steps)'\nset key top right\nset grid\n"
              "plot %s\n" % (png, k, ", ".join(cmds)))
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def reading(table):
    by = {r["variant"]: r for r in table}
    base = float(by["base"]["val_loss"])
    lines = []
    for n in TRAINED:
        r = by[n]
        v = float(r["val_loss"])
        lines.append("- %s: held-out loss %.4f, %s SmolLM2's %.4f by %.4f nats (%+.1f%% perplexity)." % (
            r["label"], v, "below" if v < base else "above", base, abs(v - base),
            100.0 * (2.718281828459045 ** (v - base) - 1.0)))
    best = min(TRAINED, key=lambda n: float(by[n]["val_loss"]))
    lines.append("- Lowest held-out loss at this budget: %s." % by[best]["label"])
    return "\n".join(lines)


def main():
    if sys.argv[1] == "--losses":
        sys.stdout.writelines(loss_lines(sys.argv[2], sys.argv[3]))
        return
    out, steps, batch, seq, threads, mode = sys.argv[1:7]
    table = rows(out)
    full = mode == "full"
    md = "docs/paper.md" if full else os.path.join(out, "paper.md")
    png = "docs/paper.png" if full else os.path.join(out, "paper.png")
    # the state of the tree the run trained from: before this report rewrites docs/paper.*
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/paper*"],
                           capture_output=True, text=True).stdout.strip()
    plot(out, table, png)
    with open("docs/paper-losses.tsv" if full else os.path.join(out, "losses.tsv"), "w") as f:
        for n in TRAINED:
            path = os.path.join(out, "ck-" + n, "metrics.jsonl")
            if os.path.exists(path):
                f.writelines(loss_lines(path, n))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    load = open("/proc/loadavg").read().split()[:3]
    tokens = int(steps) * int(batch) * int(seq)
    with open(md, "w") as f:
        f.write("# `make %s`: the LMNet claim in miniature on SmolLM2-135M-Instruct\n\n" % ("paper" if full else "paper-smoke"))
        if not full:
            f.write("A smoke run of the pipeline at a tiny budget: the numbers say nothing about LMNet.\n\n")
        f.write("Commit `%s`%s, command `make %s`, %s, %s threads, load average at the end %s.\n\n" % (
            commit, " (with uncommitted changes)" if dirty else "", "paper" if full else "paper-smoke", cpu, threads,
            " ".join(load)))
        f.write("Corpus: the English sayings of Debian's `fortunes` package, every 20th saying of each file held out "
                "(scripts/corpus.sh); never trained on. Every variant: %s AdamW steps of %s x %s tokens (%d tokens), "
                "lr 1e-4 with %d warmup steps and a cosine to 1e-5, weight decay 0.01 (biases exempt), clipping 1.0, "
                "seed 20250518; held-out loss over %s.\n\n" % (steps, batch, seq, tokens, int(steps) // 10,
                                                                "the first batches of the held-out text"))
        f.write("| variant | trainable parameters | tokens | wall time | peak RSS | held-out loss | perplexity |\n")
        f.write("|---|---:|---:|---:|---:|---:|---:|\n")
        for r in table:
            wall = float(r["wall_s"])
            f.write("| %s | %s | %s | %s | %s | %s | %s |\n" % (
                r["label"], "{:,}".format(int(r["trainable"] or 0)), "{:,}".format(int(r["tokens"])),
                "%.0f s" % wall if wall else "-", "%s MiB" % r["peak_mib"] if int(r["peak_mib"]) else "-",
                r["val_loss"], r["ppl"]))
        f.write("\n![loss curves](%s)\n\n## Reading\n\n%s\n" % (os.path.basename(png), reading(table)))
    print("paper: wrote %s and %s" % (md, png))


if __name__ == "__main__":
    main()
