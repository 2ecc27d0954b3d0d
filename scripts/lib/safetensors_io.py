"""safetensors_io.py — a numpy-only writer and reader of safetensors files.

ctsweep reads weights with its own C reader (src/nn/safetensors.c); this
module writes the files that reader consumes (scripts/fetch-weights converts
torchvision checkpoints with it, tests write crafted and reference weights)
and reads them back for checks. It needs nothing but numpy, so it runs with
Debian's python3 and no PyPI packages.

Format: an 8-byte little-endian header length N, N bytes of JSON mapping
each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
relative to the data section) plus an optional "__metadata__" object of
string -> string, then the data section. Like the reference writer we pad the
header with spaces to a multiple of 8 bytes and place tensors by decreasing
element size, so every tensor is aligned to its element size.

    save_file({"w": np.zeros((2, 3), np.float32)}, "x.safetensors",
              metadata={"format": "pt"}, dtypes="BF16")
    tensors = load_file("x.safetensors")      # BF16 comes back as float32
    meta = load_metadata("x.safetensors")
"""

import json
import os
import struct
import tempfile

import numpy as np

MAX_HEADER = 100 * 1000 * 1000

# dtype name -> numpy dtype as stored (little-endian). BF16 has no numpy type:
# it is stored as uint16 bit patterns and converted to/from float32.
_STORED = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}

# numpy kind -> default safetensors dtype when the caller does not choose.
_DEFAULT = {
    np.dtype("float64"): "F64",
    np.dtype("float32"): "F32",
    np.dtype("float16"): "F16",
    np.dtype("int64"): "I64",
    np.dtype("int32"): "I32",
    np.dtype("int16"): "I16",
    np.dtype("int8"): "I8",
    np.dtype("uint8"): "U8",
    np.dtype("bool"): "BOOL",
}


class SafetensorsError(ValueError):
    """A malformed file or an unsupported array; the message names the file."""


# ---- bfloat16 ----


def float32_to_bf16_bits(a):
    """float32 -> bfloat16 bit patterns (uint16), rounding to nearest even.

    NaN stays NaN (quiet, sign kept); values past the bf16 range round to inf
    exactly as a hardware conversion would."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    u = a.view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    nan = np.isnan(a)
    out = rounded.astype(np.uint16)
    out[nan] = ((u[nan] >> 16) | 0x0040).astype(np.uint16)
    return out


def bf16_bits_to_float32(bits):
    """bfloat16 bit patterns (uint16) -> float32, exactly."""
    bits = np.ascontiguousarray(bits, dtype=np.uint16)
    return (bits.astype(np.uint32) << 16).view(np.float32)


# ---- writer ----


def _encode(name, arr, dtype_name):
    """Returns the C-contiguous little-endian array to store for one tensor
    (a view of arr when no conversion is needed, so big weights are not copied)."""
    arr = np.asarray(arr)
    if dtype_name not in _STORED:
        raise SafetensorsError(f"tensor {name!r}: unsupported dtype {dtype_name!r}")
    if dtype_name == "BF16":
        if arr.dtype.kind != "f":
            raise SafetensorsError(f"tensor {name!r}: BF16 needs a floating array, got {arr.dtype}")
        return float32_to_bf16_bits(arr.astype(np.float32, copy=False))
    want = _STORED[dtype_name]
    if arr.dtype.kind != want.kind and not (want.kind == "f" and arr.dtype.kind in "iu"):
        raise SafetensorsError(f"tensor {name!r}: cannot store {arr.dtype} as {dtype_name}")
    return np.ascontiguousarray(arr.astype(want, copy=False))


def save_file(tensors, path, metadata=None, dtypes=None):
    """Writes tensors (dict name -> np.ndarray) to path, atomically.

    dtypes: None keeps each array's own type (float32 -> F32, float16 -> F16,
    int64 -> I64, ...); a string ("F32", "F16", "BF16", "I64", ...) applies to
    every floating array; a dict name -> dtype string chooses per tensor.
    metadata: dict str -> str stored as "__metadata__"."""
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ):
            raise SafetensorsError(f"{path}: metadata must be a dict of str -> str")
    entries = []
    for name, arr in tensors.items():
        if not isinstance(name, str) or name == "__metadata__" or "\0" in name:
            raise SafetensorsError(f"{path}: bad tensor name {name!r}")
        arr = np.asarray(arr)
        if isinstance(dtypes, dict):
            dt = dtypes.get(name) or _DEFAULT.get(arr.dtype)
        elif isinstance(dtypes, str) and arr.dtype.kind == "f":
            dt = dtypes
        else:
            dt = _DEFAULT.get(arr.dtype)
        if dt is None:
            raise SafetensorsError(f"{path}: tensor {name!r}: no safetensors dtype for {arr.dtype}")
        entries.append((name, dt, [int(d) for d in arr.shape], _encode(name, arr, dt)))
    # Largest elements first, then by name: every tensor stays aligned.
    entries.sort(key=lambda e: (-_STORED[e[1]].itemsize, e[0]))
    header = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name, dt, shape, data in entries:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [offset, offset + data.nbytes]}
        offset += data.nbytes
    hjson = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    hjson += b" " * (-len(hjson) % 8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(hjson)))
            f.write(hjson)
            for _, _, _, data in entries:
                if data.nbytes:
                    f.write(memoryview(data.reshape(-1)).cast("B"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---- reader ----


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise SafetensorsError(f"duplicate key {k!r}")
        d[k] = v
    return d


def read_header(path):
    """Returns (header dict, data section bytes offset, file size) after checking
    every entry against the file, like the C reader."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise SafetensorsError(f"{path}: truncated: {size} bytes, shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", raw)
        if n > size - 8:
            raise SafetensorsError(f"{path}: header length {n} is past the end of the file ({size} bytes)")
        if n > MAX_HEADER:
            raise SafetensorsError(f"{path}: header length {n} is larger than the limit of {MAX_HEADER} bytes")
        text = f.read(n)
    try:
        header = json.loads(
            text.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=lambda c: (_ for _ in ()).throw(SafetensorsError(f"bad constant {c}")),
        )
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError(f"{path}: invalid JSON header: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: the header is not a JSON object")
    data_len = size - 8 - n
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise SafetensorsError(f"{path}: __metadata__ must be an object of strings")
            continue
        try:
            dt, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{path}: tensor {name!r}: malformed entry") from None
        if dt not in _STORED:
            raise SafetensorsError(f"{path}: tensor {name!r}: dtype {dt!r} not supported here")
        if not all(type(d) is int and d >= 0 for d in list(shape) + [begin, end]):
            raise SafetensorsError(f"{path}: tensor {name!r}: shape and offsets must be non-negative integers")
        need = int(np.prod(shape, dtype=object)) * _STORED[dt].itemsize
        if end < begin or end > data_len or end - begin != need:
            raise SafetensorsError(
                f"{path}: tensor {name!r}: data_offsets [{begin},{end}] do not fit shape {shape} "
                f"of {dt} in a data section of {data_len} bytes"
            )
        spans.append((begin, end, name))
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise SafetensorsError(f"{path}: tensors {n0!r} and {n1!r} overlap")
    return header, 8 + n, size


def load_metadata(path):
    """The "__metadata__" dict (empty when absent)."""
    return dict(read_header(path)[0].get("__metadata__", {}))


def load_file(path):
    """Returns dict name -> np.ndarray (BF16 converted to float32; others in
    their stored type), in name order."""
    header, start, _ = read_header(path)
    out = {}
    with open(path, "rb") as f:
        for name in sorted(k for k in header if k != "__metadata__"):
            info = header[name]
            begin, end = info["data_offsets"]
            f.seek(start + begin)
            buf = f.read(end - begin)
            arr = np.frombuffer(buf, dtype=_STORED[info["dtype"]]).reshape(info["shape"])
            if info["dtype"] == "BF16":
                arr = bf16_bits_to_float32(arr)
            out[name] = arr.astype(arr.dtype.newbyteorder("="), copy=True)
    return out


# ---- self-test ----


def _self_test():
    import shutil

    d = tempfile.mkdtemp(prefix="safetensors_io-")
    try:
        p = os.path.join(d, "t.safetensors")
        rng = np.random.default_rng(0)
        f32 = rng.standard_normal((3, 4, 5)).astype(np.float32)
        f16 = np.array([0, -0.0, 2.0**-24, 65504, np.inf, -np.inf, np.nan], np.float16)
        i64 = np.array([[1, -2], [2**62, -(2**63)]], np.int64)
        scalar = np.float32(3.5)
        empty = np.zeros((0, 7), np.float32)
        bf = np.array([1.0, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8, 3.0e38, np.nan, -np.inf, 1e-40], np.float32)
        save_file(
            {"f32": f32, "f16": f16, "i64": i64, "scalar": scalar, "empty": empty, "bf": bf, "é \"q\"": f32[0]},
            p,
            metadata={"format": "pt", "note": "ü"},
            dtypes={"bf": "BF16"},
        )
        back = load_file(p)
        assert np.array_equal(back["f32"], f32) and back["f32"].dtype == np.float32
        assert back["f16"].dtype == np.float16 and np.array_equal(back["f16"], f16, equal_nan=True)
        assert np.array_equal(back["i64"], i64) and back["i64"].dtype == np.int64
        assert back["scalar"].shape == () and back["scalar"] == 3.5
        assert back["empty"].shape == (0, 7)
        assert np.array_equal(back["é \"q\""], f32[0])
        # bf16: 1+2^-8 is a tie -> even (1.0); 1+3*2^-8 is a tie -> up to 1+2^-6;
        # nan stays nan; 1e-40 keeps the smallest subnormal.
        got = back["bf"]
        assert got.dtype == np.float32
        want = np.array([1.0, 1.0, 1.0 + 2.0**-6], np.float32)
        assert np.array_equal(got[:3], want) and np.isnan(got[4]) and got[5] == -np.inf, got
        assert got[6] == np.float32(2.0**-133), got[6]
        # Independently: the nearest of the two bf16 neighbours, ties to even.
        x = np.concatenate([rng.standard_normal(20000).astype(np.float32) * np.float32(1e3),
                            (rng.integers(0, 2**32 - 1, 20000, dtype=np.uint64)).astype(np.uint32).view(np.float32)])
        x = x[np.isfinite(x)]
        lo = (x.view(np.uint32) >> 16).astype(np.uint16)
        hi = (lo.astype(np.uint32) + 1).astype(np.uint16)  # next away from zero
        flo = bf16_bits_to_float32(lo).astype(np.float64)
        fhi = bf16_bits_to_float32(hi).astype(np.float64)
        fhi[hi == 0x7F80] = 2.0**128  # rounding past max goes to inf: treat the inf neighbour as 2^128
        fhi[hi == 0xFF80] = -(2.0**128)
        dlo, dhi = np.abs(x - flo), np.abs(x - fhi)
        ref = np.where(dlo < dhi, lo, np.where(dhi < dlo, hi, np.where(lo % 2 == 0, lo, hi)))
        assert np.array_equal(float32_to_bf16_bits(x), ref)
        assert load_metadata(p) == {"format": "pt", "note": "ü"}
        with open(p, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
        assert n % 8 == 0
        header, start, _ = read_header(p)
        for k, v in header.items():
            if k != "__metadata__":
                assert (start + v["data_offsets"][0]) % _STORED[v["dtype"]].itemsize == 0, k
        # Damage is reported, not crashed on.
        raw = open(p, "rb").read()
        for bad in (raw[:5], raw[: 8 + n // 2], raw[:-3], b"\xff" * 8 + raw[8:]):
            q = os.path.join(d, "bad.safetensors")
            with open(q, "wb") as fh:
                fh.write(bad)
            try:
                load_file(q)
            except SafetensorsError as e:
                assert q in str(e)
            else:
                raise AssertionError("damaged file loaded")
        dup = b'{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}'
        with open(q, "wb") as fh:
            fh.write(struct.pack("<Q", len(dup)) + dup + b"\0" * 4)
        try:
            load_file(q)
            raise AssertionError("duplicate key accepted")
        except SafetensorsError as e:
            assert "duplicate" in str(e)
        print("safetensors_io self-test: ok")
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    _self_test()
