#!/usr/bin/env python3
"""make_seeds.py - writes the seed corpora of fuzz_safetensors and fuzz_idx
into tests/fuzz/corpus/{safetensors,idx}: small valid files of every kind
the loaders accept (so the fuzzer starts deep in the parsers) and one of
each hostile kind the unit tests name. Deterministic; rerun after changing
it and commit the files.  usage: make_seeds.py [OUT_DIR]"""
import gzip, json, os, struct, sys, zlib

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")


def st(tensors, meta=None, pad=True, extra=b""):
    """tensors: list of (name, shape, floats); returns safetensors bytes."""
    head, data = {}, b""
    if meta is not None:
        head["__metadata__"] = meta
    for name, shape, vals in tensors:
        b = struct.pack("<%df" % len(vals), *vals)
        head[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    js = json.dumps(head, separators=(",", ":")).encode()
    if pad:
        js += b" " * (-len(js) % 8)
    return struct.pack("<Q", len(js)) + js + data + extra


def write(kind, name, blob):
    d = os.path.join(out, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)


block_meta = {"format": "netc", "model": "fuzz", "structure_hash": "0123456789abcdef",
              "step": "7", "seed": "1"}
w = ("w", [2, 3], [0.5, -1, 2, 3, 4, 5])
b = ("b", [3], [1, 2, 3])
good = st([w, b], block_meta)
seeds = {
    "block_ok": good,
    "block_other_hash": st([w, b], dict(block_meta, structure_hash="fedcba9876543210")),
    "block_wrong_shape": st([("w", [3, 2], w[2]), b], block_meta),
    "block_missing_tensor": st([w], block_meta),
    "block_no_step": st([w, b], {k: v for k, v in block_meta.items() if k != "step"}),
    "empty_header": st([]),
    "scalar_and_empty": st([("s", [], [1.5]), ("e", [0, 4], [])], {"k": "v"}),
    "rank4": st([("t", [1, 2, 1, 2], [1, 2, 3, 4])]),
    "unpadded": st([b], pad=False),
    "trailing": st([b], extra=b"\0\0\0\0"),
    "truncated": good[:-5],
    "short": good[:6],
    "huge_header_len": struct.pack("<Q", 1 << 40) + good[8:],
    "bad_json": struct.pack("<Q", 8) + b'{"a":[1,',
    "bad_dtype": good.replace(b'"F32"', b'"F16"', 1),
}
over = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
js = json.dumps(over).encode()
seeds["overlap"] = struct.pack("<Q", len(js)) + js + bytes(12)
flipped = bytearray(good)
flipped[40] ^= 0x20
seeds["bit_flipped"] = bytes(flipped)
# As nrt_checkpoint_save writes it: "netc_crc32" = CRC-32 of the file with
# its own 8 digits as zeros (runtime/checkpoint.c); and one data bit flipped.
zeroed = st([w, b], dict(block_meta, netc_crc32="00000000"))
crc = b"%08x" % zlib.crc32(zeroed)
seeds["block_crc_ok"] = zeroed.replace(b'"netc_crc32":"00000000"', b'"netc_crc32":"' + crc + b'"')
crc_flipped = bytearray(seeds["block_crc_ok"])
crc_flipped[-3] ^= 0x01
seeds["block_crc_flipped"] = bytes(crc_flipped)
for k, v in seeds.items():
    write("safetensors", k, v)


def idx(type_code, dims, payload):
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


imgs = idx(0x08, [3, 2, 2], bytes(range(12)))
labels = idx(0x08, [3], bytes([0, 1, 2]))
iseeds = {
    "u8_images": imgs,
    "u8_labels": labels,
    "u8_images_gz": gzip.compress(imgs, mtime=0),
    "u8_labels_gz": gzip.compress(labels, mtime=0),
    "i8": idx(0x09, [2, 2], bytes([1, 255, 3, 128])),
    "i16": idx(0x0B, [2], struct.pack(">hh", -2, 300)),
    "i32": idx(0x0C, [2], struct.pack(">ii", -2, 70000)),
    "f32": idx(0x0D, [1, 2], struct.pack(">ff", 1.5, -2)),
    "f64": idx(0x0E, [1], struct.pack(">d", 3.25)),
    "rank4": idx(0x08, [1, 1, 2, 2], bytes(4)),
    "empty_items": idx(0x08, [0, 28, 28], b""),
    "truncated": imgs[:-3],
    "truncated_gz": gzip.compress(imgs, mtime=0)[:-6],
    "trailing": imgs + b"\0",
    "bad_magic": b"\1\0" + imgs[2:],
    "bad_type": bytes([0, 0, 0x07]) + imgs[3:],
    "rank0": bytes([0, 0, 8, 0]),
    "huge_count": idx(0x08, [0x7fffffff, 28, 28], bytes(16)),
    "promises_16gib": idx(0x08, [0x7fffffff, 8], bytes(8)),   # regression: was malloc(16 GiB)
    # regressions found by the campaign (UBSan: signed overflow)
    "zero_items_huge_item": idx(0x08, [0, 0x7fffffff, 0x7fffffff, 0x7fffffff], b""),
    "label_int32_max": idx(0x0C, [2], struct.pack(">ii", 1, 0x7fffffff)),
    "gzip_of_gzip": gzip.compress(gzip.compress(labels, mtime=0), mtime=0),
}
for k, v in iseeds.items():
    write("idx", k, v)
