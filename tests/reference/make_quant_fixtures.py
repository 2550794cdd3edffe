#!/usr/bin/env python3
"""make_quant_fixtures.py: writes the dequantisation and reader fixtures of tests/test_dequant.c,
tests/test_gguf.c and tests/test_safetensors.c with OUTSIDE implementations (the PyPI packages `gguf`
and `safetensors`), so that the C code is checked against code it does not share.

    python3 -m pip install gguf numpy safetensors
    python3 tests/reference/make_quant_fixtures.py tests/fixtures/quant

Per ggml type T it writes T.dat (little-endian):
    char magic[8] = "LMNQFIX1"; u32 ggml_type; u32 n_values; u32 n_bytes; u32 zero;
    u8 raw[n_bytes]           the row as ggml blocks
    f32 expected[n_values]    gguf.quants.dequantize(raw, T)
The first half of each quantised row comes from gguf.quants.quantize of a pseudo-random row (where the
package can quantise T), the rest is random block bytes with sane fp16 scales, so every bit pattern of
the packed fields is exercised. F16/BF16/F32 rows also carry special values (zeros, subnormals, inf, NaN).

It also writes py_llama.gguf.dat and py_qwen2.gguf.dat (gguf.GGUFWriter: every metadata type, arrays,
quantised tensors holding the rows above) and py_st.safetensors.dat (safetensors.numpy.save_file).
The .dat suffix keeps them clear of the repository's *.gguf / *.safetensors ignore rules.
"""
import os
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGML_QUANT_SIZES, GGUFValueType, GGUFWriter
from gguf import quants

N = 1024  # values per row: 4 K-quant blocks, 32 legacy blocks
SEED = 20250519

# (type, byte offsets of fp16 scale fields inside one block)
QUANT_TYPES = [
    (T.Q8_0, [0]),
    (T.Q4_0, [0]),
    (T.Q4_1, [0, 2]),
    (T.Q5_0, [0]),
    (T.Q5_1, [0, 2]),
    (T.Q4_K, [0, 2]),
    (T.Q5_K, [0, 2]),
    (T.Q6_K, [208]),
]


def base_row(rng):
    """A row with a different magnitude per 32-value group and a few outliers."""
    scale = np.exp(rng.uniform(-4.0, 2.0, size=N // 32)).repeat(32)
    row = rng.standard_normal(N) * scale
    row[rng.integers(0, N, size=8)] *= 20.0
    return row.astype(np.float32)


def random_blocks(rng, qtype, fields, n_values):
    blck, size = GGML_QUANT_SIZES[qtype]
    nb = n_values // blck
    raw = rng.integers(0, 256, size=(nb, size), dtype=np.uint8)
    for off in fields:
        d = rng.uniform(-2.0, 2.0, size=nb).astype(np.float16)
        d[0] = np.float16(6.1e-5)  # smallest normal
        if nb > 1:
            d[1] = np.frombuffer(struct.pack("<H", 0x0003), dtype=np.float16)[0]  # subnormal scale
        raw[:, off:off + 2] = d.view(np.uint8).reshape(nb, 2)
    return raw.reshape(-1)


def quant_row(rng, qtype, fields):
    row = base_row(rng)
    half = N // 2
    try:
        first = quants.quantize(row[:half].reshape(1, half), qtype).reshape(-1)
    except NotImplementedError:
        first = random_blocks(rng, qtype, fields, half)
    second = random_blocks(rng, qtype, fields, N - half)
    return np.concatenate([first, second]).astype(np.uint8)


def special_f32():
    bits = [0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000,
            0x7F7FFFFF, 0x3F800000, 0xBF800000]
    return np.array(bits, dtype=np.uint32).view(np.float32)


def float_row(rng, qtype):
    row = base_row(rng)
    if qtype == T.F32:
        row[:10] = special_f32()
        return row.view(np.uint8)
    if qtype == T.F16:
        h = row.astype(np.float16).view(np.uint16).copy()
        h[:12] = [0x0000, 0x8000, 0x0001, 0x03FF, 0x8200, 0x0400, 0x7BFF, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0x3C00]
        h[12:12 + 256] = rng.integers(0, 65536, size=256)  # arbitrary bit patterns
        return h.view(np.uint8)
    b = quants.quantize(row, T.BF16).view(np.uint16).copy()
    b[:10] = [0x0000, 0x8000, 0x0001, 0x807F, 0x7F80, 0xFF80, 0x7FC0, 0x7F7F, 0x3F80, 0xFFC1]
    b[10:10 + 256] = rng.integers(0, 65536, size=256)
    return b.view(np.uint8)


def write_fixture(path, qtype, raw):
    expected = quants.dequantize(raw, qtype).astype(np.float32).reshape(-1)
    assert expected.size == N, (qtype, expected.size)
    with open(path, "wb") as f:
        f.write(b"LMNQFIX1")
        f.write(struct.pack("<IIII", int(qtype), N, raw.size, 0))
        f.write(raw.tobytes())
        f.write(expected.astype("<f4").tobytes())


def write_llama_gguf(path, rows):
    w = GGUFWriter(path, "llama")
    w.add_uint32("llama.context_length", 128)
    w.add_uint32("llama.embedding_length", 64)
    w.add_uint32("llama.block_count", 2)
    w.add_uint32("llama.feed_forward_length", 172)
    w.add_uint32("llama.attention.head_count", 4)
    w.add_uint32("llama.attention.head_count_kv", 2)
    w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_float32("llama.rope.freq_base", 10000.0)
    w.add_array("tokenizer.ggml.tokens", [f"tok{i}" for i in range(32)])
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.15625)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "h\u00e9llo")
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -(2**62))
    w.add_float64("test.f64", 3.141592653589793)
    w.add_key_value("test.arr_i32", [1, -2, 3], GGUFValueType.ARRAY, sub_type=GGUFValueType.INT32)
    w.add_key_value("test.arr_u8", [0, 7, 255], GGUFValueType.ARRAY, sub_type=GGUFValueType.UINT8)
    w.add_key_value("test.arr_f32", [0.5, -1.25], GGUFValueType.ARRAY, sub_type=GGUFValueType.FLOAT32)
    w.add_key_value("test.arr_bool", [True, False, True], GGUFValueType.ARRAY, sub_type=GGUFValueType.BOOL)
    w.add_key_value("test.arr_str", ["a", "bc", ""], GGUFValueType.ARRAY, sub_type=GGUFValueType.STRING)
    embd = (np.arange(32 * 64, dtype=np.float32) * 0.25).reshape(32, 64)  # GGUF {64, 32}
    w.add_tensor("token_embd.weight", embd)
    w.add_tensor("blk.0.attn_norm.weight", np.linspace(-1, 1, 64, dtype=np.float32))
    w.add_tensor("test.cube", np.arange(24, dtype=np.float32).reshape(2, 3, 4))  # GGUF {4, 3, 2}
    for name, (qtype, raw) in rows.items():
        blck, size = GGML_QUANT_SIZES[qtype]
        w.add_tensor(f"quant.{name}", raw.reshape(4, -1), raw_dtype=qtype)  # GGUF {256, 4}
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_qwen2_gguf(path):
    w = GGUFWriter(path, "qwen2")
    w.add_custom_alignment(64)
    w.add_uint32("qwen2.context_length", 32768)
    w.add_uint32("qwen2.embedding_length", 32)
    w.add_uint32("qwen2.block_count", 1)
    w.add_uint32("qwen2.feed_forward_length", 48)
    w.add_uint32("qwen2.attention.head_count", 4)
    w.add_uint32("qwen2.attention.head_count_kv", 2)
    w.add_float32("qwen2.attention.layer_norm_rms_epsilon", 1e-6)
    w.add_float32("qwen2.rope.freq_base", 1000000.0)
    w.add_tensor("token_embd.weight", np.ones((40, 32), dtype=np.float16))  # GGUF {32, 40}: vocab 40
    w.add_tensor("output.weight", np.full((40, 32), 0.5, dtype=np.float32))
    w.add_tensor("blk.0.attn_q.bias", np.arange(32, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_safetensors(path):
    from safetensors.numpy import save_file
    tensors = {
        "a.weight": (np.arange(12, dtype=np.float32) - 5.5).reshape(3, 4),
        "b.half": np.array([1.0, -2.0, 0.5, 65504.0], dtype=np.float16).reshape(2, 2),
        "c.vec": np.linspace(0, 1, 5, dtype=np.float32),
    }
    save_file(tensors, path, metadata={"format": "np", "note": "made by safetensors.numpy"})


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/quant"
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(SEED)
    rows = {}
    for qtype in (T.F32, T.F16, T.BF16):
        raw = float_row(rng, qtype)
        write_fixture(os.path.join(out, qtype.name.lower() + ".dat"), qtype, raw)
    for qtype, fields in QUANT_TYPES:
        raw = quant_row(rng, qtype, fields)
        rows[qtype.name.lower()] = (qtype, raw)
        write_fixture(os.path.join(out, qtype.name.lower() + ".dat"), qtype, raw)
    write_llama_gguf(os.path.join(out, "py_llama.gguf.dat"), rows)
    write_qwen2_gguf(os.path.join(out, "py_qwen2.gguf.dat"))
    write_safetensors(os.path.join(out, "py_st.safetensors.dat"))


if __name__ == "__main__":
    main()
