#!/usr/bin/env python3
# torch_twin.py: the PyTorch twin of an LMNet network (arXiv 2505.12741), built from `lmnc ir --json` and
# the semantics of /work/shared/reference/lmnet.md and docs/language.md, NOT from lmnet's C code. It loads
# the state that `NAME dump-state` wrote (every parameter tensor by name, one batch, the optimizer settings)
# and writes a parity fixture for tests/test_twin.c: the state itself, every output, the loss, the gradient
# of every trainable tensor, and the losses of N AdamW steps on that batch (torch.optim.AdamW, constant lr).
#
#   python3 tests/reference/torch_twin.py --ir NET.ir.json --state NET.state.safetensors \
#       -o NET.twin.safetensors
#
# Tooling only (never needed to build or test lmnet): Debian's python3-torch (1.13) is enough.
#
# Semantics, module by module (lmnet.md "Structure", language.md "edge modules"):
#   vertex        all decoder layers of its model plus the final norm; shared vertices of a model call one
#                 module (one weight set), unshared ones own a copy (named by the vertex)
#   llama block   x + Wo attn(RoPE(Wq n), RoPE(Wk n), Wv n), n = RMSNorm(x); then h + Wdown(silu(Wgate m) *
#                 Wup m), m = RMSNorm(h); RMSNorm(x) = x / sqrt(mean(x^2) + eps) * g; GQA: query head i reads
#                 kv head i // (heads / kv_heads); causal softmax(q.k / sqrt(hd)); RoPE on interleaved pairs
#                 (x[2p], x[2p+1]) (llama GGUF layout, ggml NORMAL), angle pos * theta^(-2p/hd)
#   qwen2 block   as llama, q/k/v biases when qkv_bias, RoPE on half-split pairs (x[p], x[p + hd/2]) (NEOX)
#   gpt2 block    x + Wo attn(split(Wqkv LN1(x) + b)) + bo; h + Wdown gelu(Wup LN2(h) + bup) + bdown; GELU
#                 with GPT-2's tanh approximation; LayerNorm with bias; no RoPE (learned positions at embed)
#   gpt2_block    edge: x = X + MHA(X) (fused qkv, output projection, causal, no pre-norm; `unscaled` drops
#                 1/sqrt(hd)), then y = x + gelu(W LN(x) + b)
#   mlp           edge: x + gelu(C2(gelu(C1 x))), biases on C1 and C2
#   linear        x W^T (+ b)
#   embed         token embedding (plus learned positions for gpt2, added to every position of the sequence
#                 inside the network); `prefix N` prepends N fixed vectors before the tokens, so the tokens
#                 sit at positions N..N+T-1 for RoPE and learned positions alike, and logits of the prefix
#                 positions are dropped
#   head          logits = h E^T with E the token embedding (tied) or the model's own output matrix
#   classify      Linear(d, classes) with bias on the last position
#   sources       `a + b -> ...` sums the sources before the edge's modules
#   aggregation   a vertex's input is the sum (or the mean: the sum / in-degree) of its incoming edges
#   losses        cross-entropy, mean over targets != -1, label smoothing eps:
#                 (1-eps) nll + eps mean_c(-log p); the objective is the weighted sum of all losses
import argparse
import json
import math
import os
import struct
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- safetensors (the format is a u64 header size, a JSON header, then the raw little-endian data) ----

DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}


def st_read(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    head = json.loads(raw[8 : 8 + n].decode("utf-8"))
    meta = head.pop("__metadata__", {}) or {}
    data = raw[8 + n :]
    tensors = {}
    for name, t in head.items():
        b, e = t["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=np.dtype(DTYPES[t["dtype"]]).newbyteorder("<"))
        tensors[name] = arr.reshape(t["shape"]).copy()
    return tensors, meta


def st_write(path, tensors, meta):
    head, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr, dtype=np.float32)
        b = a.astype("<f4").tobytes()
        head[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    head["__metadata__"] = {k: str(v) for k, v in meta.items()}
    h = json.dumps(head, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# ---- modules -----------------------------------------------------------------------------------------


class Registry:
    """The network's parameter tensors by their lmnet names; modules ask for them while being built."""

    def __init__(self, params, dtype):
        self.info = {p["name"]: p for p in params}
        self.tensors = {}
        self.dtype = dtype

    def get(self, name, shape):
        if name not in self.info:
            raise KeyError("the IR has no parameter '%s'" % name)
        if list(self.info[name]["shape"]) != list(shape):
            raise ValueError("%s: IR shape %s, module expects %s" % (name, self.info[name]["shape"], shape))
        if name not in self.tensors:
            p = nn.Parameter(torch.zeros(*shape, dtype=self.dtype),
                             requires_grad=self.info[name]["trainable"])
            self.tensors[name] = p
        return self.tensors[name]


def rms_norm(x, g, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g


def gelu(x):
    return F.gelu(x, approximate="tanh")


def rope(x, pos, theta, mode):
    """x [B, H, T, hd] rotated by angle pos * theta^(-2p/hd) on the pairs of the given layout."""
    hd = x.shape[-1]
    half = hd // 2
    p = torch.arange(half, dtype=torch.float64)
    freq = theta ** (-2.0 * p / hd)
    ang = pos.to(torch.float64)[:, None] * freq[None, :]  # [T, half]
    cos, sin = torch.cos(ang).to(x.dtype), torch.sin(ang).to(x.dtype)
    if mode == "normal":  # interleaved pairs (x[2p], x[2p+1])
        x0, x1 = x[..., 0::2], x[..., 1::2]
        y0, y1 = x0 * cos - x1 * sin, x0 * sin + x1 * cos
        return torch.stack((y0, y1), dim=-1).flatten(-2)
    x0, x1 = x[..., :half], x[..., half:]  # neox: half-split pairs (x[p], x[p + hd/2])
    return torch.cat((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)


def attention(q, k, v, scale):
    """q [B, H, T, hd], k, v [B, KV, T, hd]: causal softmax(scale q.k) v with GQA, back to [B, T, H*hd]."""
    B, H, T, hd = q.shape
    rep = H // k.shape[1]
    k = k.repeat_interleave(rep, dim=1)
    v = v.repeat_interleave(rep, dim=1)
    s = (q @ k.transpose(-1, -2)) * scale
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    s = s.masked_fill(mask, float("-inf"))
    o = torch.softmax(s, dim=-1) @ v
    return o.transpose(1, 2).reshape(B, T, H * hd)


def heads(x, n):
    B, T, C = x.shape
    return x.view(B, T, n, C // n).transpose(1, 2)


class Linear(nn.Module):
    def __init__(self, reg, prefix, din, dout, bias):
        super().__init__()
        self.weight = reg.get(prefix + "weight", [dout, din])
        self.bias = reg.get(prefix + "bias", [dout]) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class LlamaBlock(nn.Module):
    """A llama or qwen2 decoder layer (pre-norm attention with RoPE and GQA, SwiGLU MLP, two RMSNorms)."""

    def __init__(self, reg, prefix, hp):
        super().__init__()
        d, H, KV, F_ = hp["dim"], hp["heads"], hp["kv_heads"], hp["ffn"]
        hd = d // H
        bias = bool(hp["qkv_bias"])
        self.H, self.KV, self.hd, self.eps = H, KV, hd, hp["eps"]
        self.theta = hp["rope_theta"]
        self.mode = "neox" if hp["arch"] == "qwen2" else "normal"
        self.attn_norm = reg.get(prefix + "attn_norm.weight", [d])
        self.q = Linear(reg, prefix + "attn_q.", d, H * hd, bias)
        self.k = Linear(reg, prefix + "attn_k.", d, KV * hd, bias)
        self.v = Linear(reg, prefix + "attn_v.", d, KV * hd, bias)
        self.o = Linear(reg, prefix + "attn_output.", H * hd, d, False)
        self.ffn_norm = reg.get(prefix + "ffn_norm.weight", [d])
        self.gate = Linear(reg, prefix + "ffn_gate.", d, F_, False)
        self.up = Linear(reg, prefix + "ffn_up.", d, F_, False)
        self.down = Linear(reg, prefix + "ffn_down.", F_, d, False)

    def forward(self, x, pos):
        n = rms_norm(x, self.attn_norm, self.eps)
        q = rope(heads(self.q(n), self.H), pos, self.theta, self.mode)
        k = rope(heads(self.k(n), self.KV), pos, self.theta, self.mode)
        v = heads(self.v(n), self.KV)
        h = x + self.o(attention(q, k, v, 1.0 / math.sqrt(self.hd)))
        m = rms_norm(h, self.ffn_norm, self.eps)
        return h + self.down(F.silu(self.gate(m)) * self.up(m))


class GPT2Block(nn.Module):
    """A GPT-2 block: pre-LayerNorm attention with fused qkv, pre-LayerNorm GELU MLP, biases everywhere."""

    def __init__(self, reg, prefix, hp):
        super().__init__()
        d, F_ = hp["dim"], hp["ffn"]
        self.H, self.d, self.eps = hp["heads"], d, hp["eps"]
        self.ln1_w = reg.get(prefix + "attn_norm.weight", [d])
        self.ln1_b = reg.get(prefix + "attn_norm.bias", [d])
        self.qkv = Linear(reg, prefix + "attn_qkv.", d, 3 * d, True)
        self.o = Linear(reg, prefix + "attn_output.", d, d, True)
        self.ln2_w = reg.get(prefix + "ffn_norm.weight", [d])
        self.ln2_b = reg.get(prefix + "ffn_norm.bias", [d])
        self.up = Linear(reg, prefix + "ffn_up.", d, F_, True)
        self.down = Linear(reg, prefix + "ffn_down.", F_, d, True)

    def forward(self, x, pos):
        n = F.layer_norm(x, (self.d,), self.ln1_w, self.ln1_b, self.eps)
        q, k, v = self.qkv(n).split(self.d, dim=-1)
        hd = self.d // self.H
        h = x + self.o(attention(heads(q, self.H), heads(k, self.H), heads(v, self.H), 1.0 / math.sqrt(hd)))
        m = F.layer_norm(h, (self.d,), self.ln2_w, self.ln2_b, self.eps)
        return h + self.down(gelu(self.up(m)))


class GPT2Edge(nn.Module):
    """LMNet's GPT-2 edge: x = X + MHA(X) (no pre-norm, optionally unscaled), y = x + gelu(W LN(x) + b)."""

    def __init__(self, reg, prefix, hp, scaled):
        super().__init__()
        d = hp["dim"]
        self.H, self.d, self.eps = hp["heads"], d, hp["eps"]
        self.scale = 1.0 / math.sqrt(d // self.H) if scaled else 1.0
        self.qkv = Linear(reg, prefix + "attn_qkv.", d, 3 * d, True)
        self.o = Linear(reg, prefix + "attn_output.", d, d, True)
        self.ln_w = reg.get(prefix + "ffn_norm.weight", [d])
        self.ln_b = reg.get(prefix + "ffn_norm.bias", [d])
        self.up = Linear(reg, prefix + "ffn_up.", d, d, True)

    def forward(self, x, pos):
        q, k, v = self.qkv(x).split(self.d, dim=-1)
        h = x + self.o(attention(heads(q, self.H), heads(k, self.H), heads(v, self.H), self.scale))
        return h + gelu(self.up(F.layer_norm(h, (self.d,), self.ln_w, self.ln_b, self.eps)))


class MLPEdge(nn.Module):
    def __init__(self, reg, prefix, d, hidden):
        super().__init__()
        self.fc1 = Linear(reg, prefix + "fc1.", d, hidden, True)
        self.fc2 = Linear(reg, prefix + "fc2.", hidden, d, True)

    def forward(self, x, pos):
        return x + gelu(self.fc2(gelu(self.fc1(x))))


def make_block(reg, prefix, hp):
    return GPT2Block(reg, prefix, hp) if hp["arch"] == "gpt2" else LlamaBlock(reg, prefix, hp)


class Vertex(nn.Module):
    """A stripped model: all its decoder layers plus the final norm."""

    def __init__(self, reg, prefix, hp):
        super().__init__()
        self.hp = hp
        self.blocks = nn.ModuleList(
            make_block(reg, "%sblk.%d." % (prefix, i), hp) for i in range(hp["layers"]))
        d = hp["dim"]
        self.norm_w = reg.get(prefix + "output_norm.weight", [d])
        self.norm_b = reg.get(prefix + "output_norm.bias", [d]) if hp["arch"] == "gpt2" else None

    def forward(self, x, pos):
        for b in self.blocks:
            x = b(x, pos)
        if self.hp["arch"] == "gpt2":
            return F.layer_norm(x, (self.hp["dim"],), self.norm_w, self.norm_b, self.hp["eps"])
        return rms_norm(x, self.norm_w, self.hp["eps"])


class Embed(nn.Module):
    def __init__(self, reg, hp, prefix_len):
        super().__init__()
        m, d = hp["name"], hp["dim"]
        self.wte = reg.get(m + ".token_embd.weight", [hp["vocab"], d])
        self.wpe = reg.get(m + ".position_embd.weight", [hp["ctx"], d]) if hp["arch"] == "gpt2" else None
        self.prefix = reg.get(m + ".prefix", [prefix_len, d]) if prefix_len else None

    def forward(self, tokens):
        x = F.embedding(tokens, self.wte)  # [B, T, d]
        if self.prefix is not None:
            x = torch.cat((self.prefix.unsqueeze(0).expand(x.shape[0], -1, -1), x), dim=1)
        if self.wpe is not None:
            x = x + self.wpe[: x.shape[1]].unsqueeze(0)
        return x


class Head(nn.Module):
    def __init__(self, reg, hp):
        super().__init__()
        m = hp["name"]
        shape = [hp["vocab"], hp["dim"]]
        self.weight = reg.get(m + (".token_embd.weight" if hp["tied"] else ".output.weight"), shape)

    def forward(self, x, pos):
        return F.linear(x, self.weight)


class Classify(nn.Module):
    def __init__(self, reg, prefix, din, classes):
        super().__init__()
        self.lin = Linear(reg, prefix, din, classes, True)

    def forward(self, x, pos):
        return self.lin(x[:, -1, :])


class Chain(nn.Module):
    """The modules of one edge, applied left to right (the embed, when first, consumes the tokens)."""

    def __init__(self, mods):
        super().__init__()
        self.mods = nn.ModuleList(mods)

    def forward(self, x, pos):
        for m in self.mods:
            x = m(x, pos)
        return x


class Twin(nn.Module):
    def __init__(self, ir, dtype):
        super().__init__()
        self.ir = ir
        self.reg = Registry(ir["params"], dtype)
        self.models = {m["name"]: m for m in ir["models"]}
        self.prefix = int(ir["prefix"])
        self.mean = ir["aggregate"] == "mean"
        self.vertex_mods = nn.ModuleDict()
        shared = {}
        for v in ir["vertices"]:
            hp = self.models[v["model"]]
            if v["shared"]:
                if v["model"] not in shared:
                    shared[v["model"]] = Vertex(self.reg, v["model"] + ".", hp)
                self.vertex_mods[v["name"]] = shared[v["model"]]
            else:
                self.vertex_mods[v["name"]] = Vertex(self.reg, v["name"] + ".", hp)
        self.embed = None
        self.chains = nn.ModuleList()
        for e in ir["edges"]:
            self.chains.append(self.build_chain(e))
        self.incoming = {
            v["name"]: [e for e in ir["edges"] if e["dst_kind"] == "vertex" and e["dst"] == v["name"]]
            for v in ir["vertices"]}

    def build_chain(self, e):
        mods = []
        for i, m in enumerate(e["modules"]):
            pre = "%s.m%d." % (e["key"], i)
            k = m["kind"]
            if k == "embed":
                if self.embed is None:
                    self.embed = Embed(self.reg, self.models[m["model"]], int(m.get("prefix", 0)))
                mods.append(None)  # the tokens enter here
            elif k == "linear":
                mods.append(_Pos(Linear(self.reg, pre, m["din"], m["dout"], m.get("bias", False))))
            elif k == "identity":
                continue
            elif k == "mlp":
                mods.append(MLPEdge(self.reg, pre, m["din"], m["hidden"]))
            elif k == "decoder_layer":
                mods.append(make_block(self.reg, pre, self.models[m["model"]]))
            elif k == "gpt2_block":
                mods.append(GPT2Edge(self.reg, pre, self.models[m["model"]], m.get("scaled", True)))
            elif k == "head":
                mods.append(Head(self.reg, self.models[m["model"]]))
            elif k == "classify":
                mods.append(Classify(self.reg, pre, m["din"], m["dout"]))
            else:
                raise ValueError("edge %d: unknown module kind '%s'" % (e["id"], k))
        if mods and mods[0] is None:
            mods = mods[1:]
        if any(m is None for m in mods):
            raise ValueError("edge %d: embed must be the first module" % e["id"])
        return Chain(mods)

    def forward(self, tokens):
        B, T = tokens.shape
        pos = torch.arange(self.prefix + T)
        memo = {}

        def source(s):
            if s == "tokens":
                return self.embed(tokens)
            return vertex(s)

        def edge_out(e):
            x = None
            for s in e["sources"]:
                y = source(s)
                x = y if x is None else x + y
            return self.chains[self.ir["edges"].index(e)](x, pos)

        def vertex(name):
            if name not in memo:
                ins = [edge_out(e) for e in self.incoming[name]]
                x = ins[0]
                for y in ins[1:]:
                    x = x + y
                if self.mean and len(ins) > 1:
                    x = x / len(ins)
                memo[name] = self.vertex_mods[name](x, pos)
            return memo[name]

        outs = {}
        for o in self.ir["outputs"]:
            # several chains into one output: their logits add (one head, linear, after their sum)
            y = sum(edge_out(self.ir["edges"][i]) for i in o.get("edges", [o["edge"]]))
            outs[o["name"]] = y[:, self.prefix :, :] if o["kind"] == "lm" else y
        return outs

    def loss(self, outs, targets):
        kinds = {o["name"]: o["kind"] for o in self.ir["outputs"]}
        total = 0.0
        for l in self.ir["losses"]:
            y = outs[l["output"]]
            if kinds[l["output"]] == "lm":
                logits, tg = y.reshape(-1, y.shape[-1]), targets.reshape(-1)
            else:
                logits, tg = y, targets.reshape(-1)
            total = total + float(l["weight"]) * cross_entropy(logits, tg, float(l["smoothing"]))
        return total


class _Pos(nn.Module):
    """Adapts a module without positions to the (x, pos) calling convention of a chain."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x, pos):
        return self.m(x)


def cross_entropy(logits, targets, smoothing):
    """Mean over targets != -1 of (1 - s) * (-log p[target]) + s * mean over classes of (-log p)."""
    loss = F.cross_entropy(logits, targets, ignore_index=-1, label_smoothing=smoothing)
    # the same from the definition: the fixture must not depend on how a torch release treats the pair
    keep = targets != -1
    logp = torch.log_softmax(logits[keep], dim=-1)
    nll = -logp.gather(1, targets[keep][:, None]).squeeze(1)
    ref = ((1.0 - smoothing) * nll - smoothing * logp.mean(-1)).mean()
    if abs(float(loss.detach()) - float(ref.detach())) > 1e-6 * max(1.0, abs(float(ref.detach()))):
        raise RuntimeError("torch's cross_entropy (%r) differs from its definition (%r)"
                           % (float(loss), float(ref)))
    return ref


# ---- the run -----------------------------------------------------------------------------------------


def load_ir(args):
    if args.ir:
        with open(args.ir) as f:
            return json.load(f)
    out = subprocess.run([args.lmnc, "ir", "--json", args.lmn], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def check_ops(ir, reg):
    """Every op's parameters are the ones the modules above bound (the IR's own account of the wiring)."""
    names = [p["name"] for p in ir["params"]]
    used = set(reg.tensors)
    for op in ir["ops"]:
        for i in op["params"]:
            if names[i] not in used:
                raise RuntimeError("op %d (%s) reads %s, which the twin does not use"
                                   % (op["id"], op["name"], names[i]))
    missing = [n for n in names if n not in used]
    if missing:
        raise RuntimeError("parameters the twin does not use: %s" % ", ".join(missing))


EXPORT_TOL = 1e-5  # max |ours - twin| over the largest |twin| output (float64 twin against float32 lmnet)


def run_export(d, dtype, tol):
    """Rebuilds the network `NAME export` wrote into folder d from network.json and model.safetensors alone,
    runs test_data.safetensors' tokens through it and checks the outputs against the ones lmnet computed."""
    with open(os.path.join(d, "network.json")) as f:
        ir = json.load(f)
    state, meta = st_read(os.path.join(d, "model.safetensors"))
    if meta.get("format") != "lmnet-export" or meta.get("network") != ir["network"]:
        sys.exit("%s: not an lmnet export of '%s'" % (d, ir["network"]))
    data, _ = st_read(os.path.join(d, "test_data.safetensors"))
    net = Twin(ir, dtype)
    with torch.no_grad():
        for name, p in net.reg.tensors.items():
            if name not in state:
                sys.exit("%s/model.safetensors: no tensor '%s' (a frozen tensor of a model file: export with --all)"
                         % (d, name))
            p.copy_(torch.from_numpy(state[name].astype(np.float64)).to(dtype))
        extra = sorted(set(state) - set(net.reg.tensors))
        if extra:
            sys.exit("%s/model.safetensors: tensors the network does not use: %s" % (d, ", ".join(extra)))
        tokens = torch.from_numpy(data["tokens"].astype(np.int64))
        y = net(tokens)[ir["losses"][0]["output"]].numpy()
    want = data["output"]
    if y.shape != want.shape:
        sys.exit("%s: output shape %s, test_data holds %s" % (d, y.shape, want.shape))
    err = float(np.max(np.abs(y - want)))
    rel = err / max(float(np.max(np.abs(y))), 1e-30)
    ok = rel <= tol
    print("%s: %d tensors from %s/model.safetensors | output %s | max abs %.3e rel %.3e (tol %.0e) | %s" % (
        ir["network"], len(net.reg.tensors), d, "x".join(map(str, y.shape)), err, rel, tol,
        "ok" if ok else "FAIL"))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(
        description="The PyTorch twin of an LMNet network: writes a parity fixture from a dump-state file, "
                    "or (--export DIR) rebuilds an exported network and checks its outputs.")
    ap.add_argument("--ir", help="the network's `lmnc ir --json` output")
    ap.add_argument("--lmn", help="or the .lmn file (with --lmnc)")
    ap.add_argument("--lmnc", default="bin/lmnc")
    ap.add_argument("--export", help="a folder `NAME export` wrote: rebuild it and check test_data")
    ap.add_argument("--tol", type=float, default=EXPORT_TOL,
                    help="--export: largest max|ours - twin| / max|twin| accepted (default %g)" % EXPORT_TOL)
    ap.add_argument("--state", help="what `NAME dump-state` wrote")
    ap.add_argument("-o", "--out", help="the fixture to write")
    ap.add_argument("--steps", type=int, default=10, help="AdamW steps (default 10)")
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                    help="precision of the twin's arithmetic (default float64: the oracle's own error stays "
                         "far below float32's)")
    args = ap.parse_args()
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    if args.export:
        sys.exit(run_export(args.export, dtype, args.tol))
    if not args.ir and not args.lmn:
        ap.error("give --ir or --lmn")
    if not args.state or not args.out:
        ap.error("give --state and -o (or --export)")

    ir = load_ir(args)
    state, meta = st_read(args.state)
    if meta.get("format") != "lmnet-state":
        sys.exit("%s: not an lmnet-state file" % args.state)
    if meta.get("network") != ir["network"]:
        sys.exit("%s holds network '%s', the IR describes '%s'"
                 % (args.state, meta.get("network"), ir["network"]))
    if meta.get("schedule", "constant") != "constant" or int(meta.get("warmup", 0)) != 0:
        sys.exit("%s: the twin replays a constant learning rate; the config says %s with %s warmup steps"
                 % (args.state, meta.get("schedule"), meta.get("warmup")))

    net = Twin(ir, dtype)
    check_ops(ir, net.reg)
    with torch.no_grad():
        for name, p in net.reg.tensors.items():
            if name not in state:
                sys.exit("%s: no tensor '%s'" % (args.state, name))
            p.copy_(torch.from_numpy(state[name].astype(np.float64)).to(dtype))
    tok_f, tg_f = state["batch:tokens"], state["batch:targets"]
    if not (np.all(tok_f == np.round(tok_f)) and np.all(tg_f == np.round(tg_f))):
        sys.exit("%s: the batch holds non-integers" % args.state)
    tokens = torch.from_numpy(tok_f.astype(np.int64))
    targets = torch.from_numpy(tg_f.astype(np.int64))

    # which tensors the first stage trains
    train = meta.get("stage_train", "all")
    if train == "names":
        sys.exit("%s: a stage training named groups: the IR does not name the edge type of each edge"
                 % args.state)
    info = {p["name"]: p for p in ir["params"]}
    trained = [n for n, p in net.reg.tensors.items()
               if info[n]["trainable"] and (train == "all" or info[n]["owner"] == "edge")]
    for n, p in net.reg.tensors.items():
        p.requires_grad_(n in trained)

    # forward, loss, gradients
    outs = net(tokens)
    loss = net.loss(outs, targets)
    loss.backward()
    fixture = dict(state)
    for name, y in outs.items():
        fixture["out:" + name] = y.detach().clone().numpy()
    fixture["loss"] = np.array([float(loss)])
    for n in trained:
        g = net.reg.tensors[n].grad
        # a copy: the optimizer below zeroes and refills .grad in place
        g = g if g is not None else torch.zeros_like(net.reg.tensors[n])
        fixture["grad:" + n] = g.detach().clone().numpy()

    # AdamW on the same batch
    lr, b1, b2 = float(meta["lr"]), float(meta["beta1"]), float(meta["beta2"])
    eps, wd, clip = float(meta["eps"]), float(meta["weight_decay"]), float(meta.get("grad_clip", 0))
    # weight decay groups by what each tensor is, from its name (as HF Trainer groups by name): biases
    # (LayerNorm's too), norm gains, embeddings; the config's optimizer.no_decay lists the exempt kinds
    exempt = {k.strip() for k in meta.get("no_decay", "").split(",") if k.strip()}

    def kinds(name):
        member = name.split(".")[-2]
        return {k for k, hit in (("bias", name.endswith(".bias")), ("norm", "norm" in member),
                                 ("embedding", member in ("token_embd", "position_embd"))) if hit}

    groups = [{"params": [net.reg.tensors[n] for n in trained if not kinds(n) & exempt], "weight_decay": wd},
              {"params": [net.reg.tensors[n] for n in trained if kinds(n) & exempt], "weight_decay": 0.0}]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=(b1, b2), eps=eps)
    losses = []
    for _ in range(args.steps):
        opt.zero_grad(set_to_none=False)
        l = net.loss(net(tokens), targets)
        losses.append(float(l))
        l.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_([net.reg.tensors[n] for n in trained], clip)
        opt.step()
    with torch.no_grad():
        final = float(net.loss(net(tokens), targets))
    fixture["train:losses"] = np.array(losses)
    fixture["train:final_loss"] = np.array([final])

    m = {k: v for k, v in meta.items()}
    m.update({"format": "lmnet-twin", "version": "1", "twin": "tests/reference/torch_twin.py",
              "torch": torch.__version__, "numpy": np.__version__, "dtype": args.dtype,
              "train_steps": args.steps, "primary_output": ir["losses"][0]["output"],
              "outputs": ",".join(o["name"] for o in ir["outputs"])})
    st_write(args.out, fixture, m)
    print("%s: loss %.6f | %d trainable tensors | AdamW losses %s -> %.6f | %s" % (
        ir["network"], float(loss), len(trained), " ".join("%.4f" % x for x in losses[:3]), final, args.out))


if __name__ == "__main__":
    main()
