"""Dumps NumPy / ml_dtypes cast results for the C++ core test (tests/cpp/test_core.cpp).

Usage: python gen_oracle.py OUT_FILE

Record layout (little endian), one per (src, dst) dtype pair:
  u8 src_code, u8 dst_code, u64 n, n*src_itemsize input bytes, n*dst_itemsize output bytes,
  n mask bytes (1 = the C++ core must reproduce the output bits; 0 = NumPy's own result
  depends on where the element sits in the array, see MASK below).
Sign-flip records (torch's conj / neg bits) have dst_code 128 + m, the destination type being
the source type and m the core's Negate mode: 3 = np.negative (neg bit), 2 = np.conjugate (conj
bit), 1 = both bits (the real part negated).
"""

import importlib
import importlib.util
import pathlib
import struct
import sys
import warnings

import ml_dtypes as md
import numpy as np

warnings.simplefilter("ignore")

# The core's element types, in code order, from the one table (csrc/core/element_types.def),
# read by the package's own parser loaded by path (no install needed).
_ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "_element_table", _ROOT / "python" / "torchnp" / "_element_table.py"
)
_table = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _table  # (dataclasses look their module up while it loads)
_spec.loader.exec_module(_table)


def _numpy_type(spelling):
    module, attr = spelling.split(".")
    return getattr(importlib.import_module(module), attr)


DTYPES = [
    np.dtype(_numpy_type(r.numpy))
    for r in _table.read_table(_ROOT / "csrc" / "core" / "element_types.def")
]
rng = np.random.default_rng(1234)


def uint_of(size):
    return np.dtype(f"u{size}")


def small_float_boundaries():
    """Midpoints between neighbouring values of every narrow float type, +- a little."""
    vals = []
    for d in DTYPES[9:11] + DTYPES[16:]:
        codes = np.arange(1 << (8 * d.itemsize), dtype=uint_of(d.itemsize))
        v = np.unique(codes.view(d).astype(np.float64))
        v = v[np.isfinite(v)]
        if d.itemsize == 2:  # keep the file small: a sample of the 16-bit types' boundaries
            v = np.unique(np.concatenate([rng.choice(v, 3000), v[:50], v[-50:]]))
        mids = (v[1:] + v[:-1]) / 2
        vals += [v, mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf)]
        m32 = mids.astype(np.float32)
        vals += [
            np.nextafter(m32, np.float32(np.inf)).astype(np.float64),
            np.nextafter(m32, np.float32(-np.inf)).astype(np.float64),
        ]
        top = v.max()
        vals += [np.array([top * 1.0625, top * 1.125, top * 1.2, top * 2, top * 1e10])]
    out = np.concatenate(vals)
    return np.concatenate([out, -out])


def float_inputs(dt):
    specials = np.array(
        [
            0.0,
            -0.0,
            np.inf,
            -np.inf,
            np.nan,
            -np.nan,
            1.0,
            -1.0,
            0.5,
            -0.5,
            1.5,
            2.5,
            -2.5,
            300.7,
            -300.7,
            1e10,
            -1e10,
            3e9,
            -3e9,
            5e9,
            1e19,
            1.5e19,
            -1e19,
            2.0**63,
            2.0**64,
            1e30,
            -1e30,
            1e300,
            1e-300,
            5e-324,
            1e-45,
            2.0**31,
            -(2.0**31),
            2.0**32,
            2.0**31 - 1,
            -(2.0**31) - 1,
            2.0**32 - 1,
            2.0**32 + 7,
            -(2.0**32) - 7,
            65504.0,
            65520.0,
            65519.99,
            6e-8,
            3e-8,
            2.0**-24,
            2.0**-25,
            2.0**-126,
            2.0**-127,
            2.0**-149,
            2.0**-150,
            3.0 * 2.0**-151,
            1.5 * 2**-127,
            1.5 * 2**-128,
        ]
    )
    ints = np.concatenate([np.arange(-70000, 70000, 7), 2.0 ** np.arange(0, 70)])
    ints = np.concatenate([ints, ints + 1, ints - 1, -ints, ints + 0.5, ints - 0.5, ints + 0.25])
    uniform = rng.uniform(-1000, 1000, 20000)
    logu = np.exp(rng.uniform(-200, 200, 20000)) * rng.choice([-1, 1], 20000)
    v = np.concatenate([specials, ints, uniform, logu, small_float_boundaries()]).astype(dt)
    u = uint_of(dt.itemsize)
    randbits = rng.integers(0, np.iinfo(u).max, 30000, dtype=u, endpoint=True).view(dt)
    return np.concatenate([v, randbits])


def inputs(dt):
    if dt.itemsize <= 2 and dt.kind != "c":
        codes = np.arange(1 << (8 * dt.itemsize), dtype=uint_of(dt.itemsize))
        if dt == np.bool_:
            return np.array([False, True])
        return codes.view(dt)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        base = [
            0,
            1,
            -1,
            2,
            -2,
            127,
            128,
            255,
            256,
            257,
            32767,
            32768,
            65535,
            65536,
            65505,
            65519,
            65520,
            65521,
            2**24,
            2**24 + 1,
            2**31 - 1,
            2**31,
            2**32 - 1,
            2**32,
            2**53 + 1,
            2**62 + 2**38 + 1,
            2**63 - 1,
            2**32 + 2**24 + 1,
            3 * 2**40 + 1,
            2**30 + 2**22 + 1,
            2**62 + 2**61 + 1,
        ]
        base += [int(x) for x in (2 ** np.arange(0, 64))]
        base += [
            (1 << k) + (1 << j) + 1 for k in range(20, 64) for j in range(max(0, k - 26), k - 6)
        ]
        vals = []
        for b in base:
            for x in (b, -b, b - 1, b + 1):
                if info.min <= x <= info.max:
                    vals.append(x)
        u = uint_of(dt.itemsize)
        randbits = rng.integers(0, np.iinfo(u).max, 20000, dtype=u, endpoint=True).view(dt)
        small = rng.integers(max(info.min, -100000), 100000, 5000).astype(dt)
        return np.concatenate([np.array(vals, dtype=dt), randbits, small])
    if dt.kind == "f":
        return float_inputs(dt)
    # complex: real and imaginary parts from the part type's inputs, imag shuffled
    part = {4: np.float16, 8: np.float32, 16: np.float64}[dt.itemsize]
    re = inputs(np.dtype(part))
    im = re.copy()
    rng.shuffle(im)
    im[: len(im) // 8] = 0
    pair = np.stack([re, im], axis=1).copy()
    return pair.view(dt).reshape(-1)


def real_part_f64(x):
    if x.dtype.kind == "c":
        x = x.real if x.dtype != md.complex32 else md.real(x)
    return x.astype(np.float64)


def negations(x):
    """(Negate mode, expected) pairs for the sign flips of x's type (none for bool)."""
    if x.dtype == np.bool_:
        return []
    out = [(3, np.negative(x))]
    if x.dtype.kind == "c" or x.dtype == md.complex32:
        out += [(2, np.conjugate(x)), (1, np.negative(np.conjugate(x)))]
    return out


def main():
    with open(sys.argv[1], "wb") as out:
        for si, sd in enumerate(DTYPES):
            x = inputs(sd)
            for mode, y in negations(x):
                out.write(struct.pack("<BBQ", si, 128 + mode, len(x)))
                out.write(np.ascontiguousarray(x).tobytes())
                out.write(np.ascontiguousarray(y).tobytes())
                out.write(np.ones(len(x), np.uint8).tobytes())
            for di, dd in enumerate(DTYPES):
                try:
                    if sd == md.complex32 and dd == np.bool_:
                        # ml_dtypes 0.6 stores (uint8)(int)real as the bool byte (2.5+0j -> 2,
                        # 256+0j -> False). torchnp deliberately does what NumPy does for complex64:
                        # True where either part is nonzero.
                        y = x.astype(np.complex64).astype(dd)
                    else:
                        y = x.astype(dd)
                except TypeError:
                    print("no NumPy cast", sd, "->", dd)
                    out.write(struct.pack("<BBQ", si, di, 0))
                    continue
                mask = np.ones(len(x), np.uint8)
                if dd == np.uint32 and (
                    sd.kind in "fcV" or sd.name.startswith(("float", "bfloat", "complex"))
                ):
                    # Out-of-range float -> uint32: NumPy's vectorised body (2^31 offset trick on
                    # 32-bit cvtt) and scalar tail (64-bit cvtt, truncate) disagree.
                    r = real_part_f64(x)
                    mask = ((r > -(2.0**31)) & (r < 2.0**32)).astype(np.uint8)
                out.write(struct.pack("<BBQ", si, di, len(x)))
                out.write(np.ascontiguousarray(x).tobytes())
                out.write(np.ascontiguousarray(y).tobytes())
                out.write(mask.tobytes())


if __name__ == "__main__":
    main()
