#!/usr/bin/env python3
"""make_hf_fixture.py: writes the Hugging Face fixtures of tests/test_hf.c. From ONE set of random weights
per architecture it writes the model twice, with OUTSIDE writers (the PyPI packages `gguf` and
`safetensors`): as a GGUF in llama.cpp's layout (gguf.GGUFWriter) and as a Hugging Face directory
(config.json + model.safetensors in transformers' layout). The C test loads both into the same network
descriptor and requires bit-identical parameters, which checks the name mapping, the llama q/k row
permutation (convert_hf_to_gguf.py's `permute`, applied here to the HF weights to get the GGUF ones) and
the gpt2 Conv1D transposition.

    python3 -m pip install gguf numpy safetensors
    python3 tests/reference/make_hf_fixture.py tests/fixtures/hf

Writes, under OUT:
    llama.gguf.dat, llama/config.json, llama/model.safetensors.dat            untied, GQA, permuted q/k
    llama_sharded/config.json, llama_sharded/model-0000{1,2}-of-00002.safetensors.dat  (same weights, 2 shards)
    qwen2.gguf.dat, qwen2/config.json, qwen2/model.safetensors.dat            tied, q/k/v biases, no permutation
    gpt2.gguf.dat,  gpt2/config.json,  gpt2/model.safetensors.dat             tied, "transformer." prefix, Conv1D
The .dat suffix keeps them clear of the repository's *.gguf / *.safetensors ignore rules; the test copies
them under their real names into a temporary directory.
"""
import json
import os
import sys

import numpy as np
from gguf import GGUFWriter
from safetensors.numpy import save_file

VOCAB, DIM, HEADS, CTX = 32, 16, 4, 32


def rnd(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py LlamaModel.permute: HF q/k rows -> GGUF (interleaved-pair) rows."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape))


def llama_like(rng, arch, layers, kv, ffn, tied):
    """HF tensors and the matching GGUF tensors of a llama / qwen2 model."""
    hd = DIM // HEADS
    hf, gg = {}, {}
    emb = rnd(rng, VOCAB, DIM)
    hf["model.embed_tokens.weight"], gg["token_embd.weight"] = emb, emb
    for n in range(layers):
        p, b = f"model.layers.{n}.", f"blk.{n}."
        t = {
            "input_layernorm.weight": ("attn_norm.weight", rnd(rng, DIM)),
            "self_attn.q_proj.weight": ("attn_q.weight", rnd(rng, DIM, DIM)),
            "self_attn.k_proj.weight": ("attn_k.weight", rnd(rng, kv * hd, DIM)),
            "self_attn.v_proj.weight": ("attn_v.weight", rnd(rng, kv * hd, DIM)),
            "self_attn.o_proj.weight": ("attn_output.weight", rnd(rng, DIM, DIM)),
            "post_attention_layernorm.weight": ("ffn_norm.weight", rnd(rng, DIM)),
            "mlp.gate_proj.weight": ("ffn_gate.weight", rnd(rng, ffn, DIM)),
            "mlp.up_proj.weight": ("ffn_up.weight", rnd(rng, ffn, DIM)),
            "mlp.down_proj.weight": ("ffn_down.weight", rnd(rng, DIM, ffn)),
        }
        if arch == "qwen2":
            t["self_attn.q_proj.bias"] = ("attn_q.bias", rnd(rng, DIM))
            t["self_attn.k_proj.bias"] = ("attn_k.bias", rnd(rng, kv * hd))
            t["self_attn.v_proj.bias"] = ("attn_v.bias", rnd(rng, kv * hd))
        for hname, (gname, w) in t.items():
            hf[p + hname] = w
            g = w
            if arch == "llama" and gname.startswith("attn_q."):
                g = permute(w, HEADS, HEADS)
            elif arch == "llama" and gname.startswith("attn_k."):
                g = permute(w, HEADS, kv)
            gg[b + gname] = np.ascontiguousarray(g)
    norm = rnd(rng, DIM)
    hf["model.norm.weight"], gg["output_norm.weight"] = norm, norm
    if not tied:
        head = rnd(rng, VOCAB, DIM)
        hf["lm_head.weight"], gg["output.weight"] = head, head
    return hf, gg


def gpt2(rng, layers):
    """HF GPT2LMHeadModel tensors (Conv1D weights [in, out]) and the GGUF ones ([out, in] as numpy)."""
    hf, gg = {}, {}
    for hname, gname, shape in (("wte.weight", "token_embd.weight", (VOCAB, DIM)),
                                ("wpe.weight", "position_embd.weight", (CTX, DIM)),
                                ("ln_f.weight", "output_norm.weight", (DIM,)),
                                ("ln_f.bias", "output_norm.bias", (DIM,))):
        w = rnd(rng, *shape)
        hf["transformer." + hname], gg[gname] = w, w
    ffn = 4 * DIM
    for n in range(layers):
        p, b = f"transformer.h.{n}.", f"blk.{n}."
        t = {
            "ln_1.weight": ("attn_norm.weight", (DIM,), False), "ln_1.bias": ("attn_norm.bias", (DIM,), False),
            "attn.c_attn.weight": ("attn_qkv.weight", (DIM, 3 * DIM), True),
            "attn.c_attn.bias": ("attn_qkv.bias", (3 * DIM,), False),
            "attn.c_proj.weight": ("attn_output.weight", (DIM, DIM), True),
            "attn.c_proj.bias": ("attn_output.bias", (DIM,), False),
            "ln_2.weight": ("ffn_norm.weight", (DIM,), False), "ln_2.bias": ("ffn_norm.bias", (DIM,), False),
            "mlp.c_fc.weight": ("ffn_up.weight", (DIM, ffn), True), "mlp.c_fc.bias": ("ffn_up.bias", (ffn,), False),
            "mlp.c_proj.weight": ("ffn_down.weight", (ffn, DIM), True),
            "mlp.c_proj.bias": ("ffn_down.bias", (DIM,), False),
        }
        for hname, (gname, shape, conv1d) in t.items():
            w = rnd(rng, *shape)
            hf[p + hname] = w
            gg[b + gname] = np.ascontiguousarray(w.T) if conv1d else w
        # the causal-mask buffer older checkpoints carry: not a parameter, must be ignored
        hf[p + "attn.bias"] = np.tril(np.ones((1, 1, CTX, CTX), dtype=np.float32))
    return hf, gg


def write_gguf(path, arch, hp, tensors):
    w = GGUFWriter(path, arch)
    w.add_context_length(CTX)
    w.add_embedding_length(DIM)
    w.add_block_count(hp["layers"])
    w.add_feed_forward_length(hp["ffn"])
    w.add_head_count(HEADS)
    if arch == "gpt2":
        w.add_layer_norm_eps(1e-5)
    else:
        w.add_head_count_kv(hp["kv"])
        w.add_layer_norm_rms_eps(hp["eps"])
        w.add_rope_freq_base(hp["theta"])
        w.add_rope_dimension_count(DIM // HEADS)
    w.add_vocab_size(VOCAB)
    for name, t in tensors.items():
        w.add_tensor(name, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_config(arch, hp, tied):
    c = {"architectures": ["LlamaForCausalLM" if arch == "llama" else "Qwen2ForCausalLM"], "model_type": arch,
         "hidden_size": DIM, "intermediate_size": hp["ffn"], "num_hidden_layers": hp["layers"],
         "num_attention_heads": HEADS, "num_key_value_heads": hp["kv"], "max_position_embeddings": CTX,
         "rms_norm_eps": hp["eps"], "rope_theta": hp["theta"], "rope_scaling": None,
         "tie_word_embeddings": tied, "vocab_size": VOCAB, "hidden_act": "silu", "torch_dtype": "float32",
         "bos_token_id": 1, "eos_token_id": 2}
    if arch == "llama":
        c.update({"attention_bias": False, "mlp_bias": False, "head_dim": DIM // HEADS})
    return c


def gpt2_config():
    return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": DIM, "n_layer": 2,
            "n_head": HEADS, "n_inner": None, "n_positions": CTX, "n_ctx": CTX, "vocab_size": VOCAB,
            "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new",
            "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}}}


def write_hf(d, config, tensors, shards=1):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    names = list(tensors)
    if shards == 1:
        save_file(tensors, os.path.join(d, "model.safetensors.dat"), metadata={"format": "pt"})
        return
    for i in range(shards):
        part = {k: tensors[k] for k in names[i::shards]}
        save_file(part, os.path.join(d, f"model-{i + 1:05d}-of-{shards:05d}.safetensors.dat"),
                  metadata={"format": "pt"})


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/hf"
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20240531)
    hp = {"layers": 2, "kv": 2, "ffn": 24, "eps": 1e-5, "theta": 10000.0}
    hf, gg = llama_like(rng, "llama", 2, 2, 24, tied=False)
    write_gguf(os.path.join(out, "llama.gguf.dat"), "llama", hp, gg)
    write_hf(os.path.join(out, "llama"), llama_config("llama", hp, False), hf)
    write_hf(os.path.join(out, "llama_sharded"), llama_config("llama", hp, False), hf, shards=2)

    hp = {"layers": 1, "kv": 2, "ffn": 20, "eps": 1e-6, "theta": 1000000.0}
    hf, gg = llama_like(rng, "qwen2", 1, 2, 20, tied=True)
    write_gguf(os.path.join(out, "qwen2.gguf.dat"), "qwen2", hp, gg)
    write_hf(os.path.join(out, "qwen2"), llama_config("qwen2", hp, True), hf)

    hf, gg = gpt2(rng, 2)
    write_gguf(os.path.join(out, "gpt2.gguf.dat"), "gpt2", {"layers": 2, "ffn": 4 * DIM}, gg)
    write_hf(os.path.join(out, "gpt2"), gpt2_config(), hf)
    for root, _, files in os.walk(out):  # save_file creates 0600 files
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)


if __name__ == "__main__":
    main()
