#!/usr/bin/env python3
"""compare_pil.py — ctsweep's image pipeline against the Python reference.

The reference workflow preprocesses with Pillow (Image.open(p).convert('RGB'),
resize(BILINEAR)) and torchvision (ToTensor, Normalize); ctsweep must give the
same bytes. This script runs tests/data/image_dump (ctsweep's decoder, resizer
and tensor conversion) and Pillow/torchvision on the same files and compares:

  decode   every COVID-CT image (CT_COVID/*.png, 34 of them JPEG data, and
           CT_NonCOVID/*.jpg, *.png), plus generated files of every other
           kind (grey/grey+alpha/palette+tRNS/1-bit/16-bit/interlaced PNG,
           4:4:4/4:2:2/4:2:0/progressive/grey/CMYK/YCCK JPEG), exact.
  resize   a few images of each kind (RGB PNG, RGBA PNG, grey PNG, RGB JPEG,
           grey JPEG, JPEG named .png, chosen by content) at 224x224, 97x97,
           512x512 (upscale), non-square sizes, one-axis-only sizes and 30
           random sizes from 1x1 to 800x800.
  tensor   resize + ToTensor + Normalize (imagenet and unit), float32.

Reports the maximum absolute difference per kind and size; fails (exit 1) on
any difference above --atol (0 by default: the code is meant to be exact; the
requirement is 1 grey level). A missing data folder is a failure, not a skip.

usage: compare_pil.py {decode,resize,tensor} --dump EXE --data DIR --work DIR
"""
import argparse
import glob
import os
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
from PIL import Image

PNG_SIG = b"\x89PNG\r\n\x1a\n"


# ---- running the driver ----

def read_exact(stream, n):
    buf = b""
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            raise RuntimeError("image_dump: output ended early")
        buf += chunk
    return buf


def run_dump(exe, files, size=None, tensor=None):
    """Yields (path, array or None, error message or None) per file."""
    args = [exe]
    if size:
        args += ["--size", "%dx%d" % size]
    if tensor:
        args += ["--tensor", tensor]
    proc = subprocess.Popen(args + list(files), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for path in files:
            status, w, h, kind, mlen = struct.unpack("<5I", read_exact(proc.stdout, 20))
            msg = read_exact(proc.stdout, mlen).decode("utf-8", "replace") if mlen else None
            if status != 0:
                yield path, None, msg
                continue
            if kind == 0:
                arr = np.frombuffer(read_exact(proc.stdout, w * h * 3), np.uint8).reshape(h, w, 3)
            else:
                arr = np.frombuffer(read_exact(proc.stdout, w * h * 3 * 4), np.float32).reshape(3, h, w)
            yield path, arr, None
    finally:
        rest = proc.stdout.read()
        err = proc.stderr.read().decode("utf-8", "replace")
        rc = proc.wait()
    if rc != 0 or rest:
        raise RuntimeError("image_dump exited %d (%d stray bytes): %s" % (rc, len(rest), err))


# ---- the data set ----

def sniff(path):
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(PNG_SIG):
        return "png"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    return None


def kind_of(path):
    """RGB PNG, RGBA PNG, grey PNG, RGB JPEG, grey JPEG, JPEG named .png, ..."""
    fmt = sniff(path)
    mode = Image.open(path).mode
    if fmt == "jpeg" and path.lower().endswith(".png"):
        return "JPEG named .png"
    if fmt == "jpeg":
        return {"RGB": "RGB JPEG", "L": "grey JPEG"}.get(mode, "JPEG " + mode)
    if fmt == "png":
        return {"RGB": "RGB PNG", "RGBA": "RGBA PNG", "L": "grey PNG"}.get(mode, "PNG " + mode)
    return "unknown"


def dataset_files(data):
    if not os.path.isdir(data):
        sys.exit("FAIL: COVID-CT data folder %s is missing (see ../shared/data/covid-ct/SOURCE.md "
                 "and scripts/fetch-covid-ct); this test does not skip" % data)
    files = sorted(glob.glob(os.path.join(data, "CT_COVID", "*"))) + \
        sorted(glob.glob(os.path.join(data, "CT_NonCOVID", "*")))
    files = [f for f in files if sniff(f)]
    if len(files) != 746:
        sys.exit("FAIL: expected 746 images (349 COVID + 397 non-COVID) in %s, found %d"
                 % (data, len(files)))
    return files


# ---- generated files of every other kind ----

def png_chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


def png_raw(w, h, depth, color, rows, interlace=False):
    """A PNG from raw sample bytes: rows is an (h, row_bytes) uint8 array
    for non-interlaced images, or a function (x0, dx, y0, dy) -> rows for
    Adam7 passes."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 1 if interlace else 0)
    if interlace:
        raw = b""
        for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                               (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
            sub = rows(x0, dx, y0, dy)
            if sub is None:
                continue
            raw += b"".join(b"\0" + r.tobytes() for r in sub)
    else:
        raw = b"".join(b"\0" + r.tobytes() for r in rows)
    return PNG_SIG + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw)) + \
        png_chunk(b"IEND", b"")


def make_generated(work, dump, data_files):
    """Writes one file per extra kind; returns [(path, note)]."""
    os.makedirs(work, exist_ok=True)
    rng = np.random.RandomState(1234)
    # A CT-like base picture: a real slice shrunk to an odd size, plus noise.
    base = Image.open(data_files[0]).convert("RGB").resize((67, 45), Image.BILINEAR)
    rgb = np.clip(np.asarray(base).astype(int) + rng.randint(-20, 21, (45, 67, 3)), 0, 255).astype(np.uint8)
    grey = rgb[:, :, 1]
    out = []

    def save(name, im, **kw):
        p = os.path.join(work, name)
        im.save(p, **kw)
        out.append((p, ""))

    save("gen_L.png", Image.fromarray(grey, "L"))
    save("gen_LA.png", Image.fromarray(np.dstack([grey, 255 - grey]), "LA"))
    save("gen_RGBA_alpha0.png", Image.fromarray(np.dstack([rgb, np.zeros_like(grey)]), "RGBA"))
    save("gen_1bit.png", Image.fromarray(grey > 128).convert("1"))
    pal = Image.fromarray(rgb, "RGB").quantize(colors=37)
    save("gen_P.png", pal)
    save("gen_P_trns.png", pal, transparency=3)
    save("gen_P4bit.png", Image.fromarray(rgb, "RGB").quantize(colors=12), bits=4)
    g16 = (grey.astype(np.uint16) * 257 + rng.randint(0, 257, grey.shape)).astype(np.uint16)
    p16 = os.path.join(work, "gen_grey16.png")
    Image.fromarray(g16).save(p16)  # mode I;16
    out.append((p16, "grey16"))
    # 16-bit RGB, grey 2/4-bit and an Adam7-interlaced RGB: written by hand.
    rgb16 = (rgb.astype(np.uint16) * 257 + rng.randint(0, 257, rgb.shape)).astype(">u2")
    p = os.path.join(work, "gen_rgb16.png")
    with open(p, "wb") as f:
        f.write(png_raw(67, 45, 16, 2, rgb16.reshape(45, -1).view(np.uint8)))
    out.append((p, ""))
    for depth in (2, 4):
        q = grey >> (8 - depth)
        per = 8 // depth
        packed = []
        for row in q:
            padded = np.concatenate([row, np.zeros((-len(row)) % per, np.uint8)]).reshape(-1, per)
            b = np.zeros(len(padded), np.uint8)
            for k in range(per):
                b |= (padded[:, k] << (8 - depth * (k + 1))).astype(np.uint8)
            packed.append(b)
        p = os.path.join(work, "gen_grey%d.png" % depth)
        with open(p, "wb") as f:
            f.write(png_raw(67, 45, depth, 0, packed))
        out.append((p, ""))

    def adam7(x0, dx, y0, dy):
        sub = rgb[y0::dy, x0::dx]
        return None if sub.size == 0 else [r.reshape(-1) for r in sub]
    p = os.path.join(work, "gen_interlaced.png")
    with open(p, "wb") as f:
        f.write(png_raw(67, 45, 8, 2, adam7, interlace=True))
    out.append((p, ""))

    im = Image.fromarray(rgb, "RGB")
    save("gen_444.jpg", im, quality=90, subsampling=0)
    save("gen_422.jpg", im, quality=90, subsampling=1)
    save("gen_420.jpg", im, quality=75, subsampling=2)
    save("gen_progressive.jpg", im, quality=85, progressive=True)
    save("gen_optimized.jpg", im, quality=60, optimize=True)
    save("gen_grey.jpg", Image.fromarray(grey, "L"), quality=85)
    cmyk = Image.fromarray(np.dstack([rgb, grey]), "CMYK")
    save("gen_cmyk.jpg", cmyk, quality=90)
    p = os.path.join(work, "gen_ycck.jpg")
    subprocess.run([dump, "--write-ycck-jpeg", p], check=True)
    out.append((p, ""))
    return out


# ---- commands ----

def pil_rgb(path):
    return np.asarray(Image.open(path).convert("RGB"))


def cmd_decode(a):
    t0 = time.time()
    files = dataset_files(a.data)
    gen = make_generated(a.work, a.dump, files)
    failures = []
    per_kind = {}
    # Generated kinds.
    for (path, note), (_, ours, msg) in zip(gen, run_dump(a.dump, [p for p, _ in gen])):
        name = os.path.basename(path)
        if ours is None:
            failures.append("%s: ctsweep refused it: %s" % (name, msg))
            continue
        ref = pil_rgb(path)
        if note == "grey16":
            # Documented difference (src/data/png.c): ctsweep keeps the
            # high byte; Pillow 9.4 clips the 16-bit value to 255.
            raw = np.asarray(Image.open(path)).astype(np.uint32)
            want = np.repeat((raw >> 8).astype(np.uint8)[:, :, None], 3, axis=2)
            differs = int((ref != ours).sum())
            print("  %-24s high byte as documented (Pillow's clip differs in %d of %d bytes)"
                  % (name, differs, ref.size))
            ref = want
        if ref.shape != ours.shape:
            failures.append("%s: shape %s, Pillow %s" % (name, ours.shape, ref.shape))
            continue
        d = int(np.abs(ref.astype(int) - ours.astype(int)).max())
        if note != "grey16":
            print("  %-24s %-6s max |diff| %d" % (name, Image.open(path).mode, d))
        if d > a.atol:
            failures.append("%s: max |diff| %d" % (name, d))
    # Every real image.
    worst = (-1, None)
    for path, ours, msg in run_dump(a.dump, files):
        kind = kind_of(path)
        n, bad, mx = per_kind.get(kind, (0, 0, 0))
        if ours is None:
            failures.append("%s: ctsweep refused it: %s" % (path, msg))
            per_kind[kind] = (n + 1, bad + 1, mx)
            continue
        ref = pil_rgb(path)
        if ref.shape != ours.shape:
            failures.append("%s: shape %s, Pillow %s" % (path, ours.shape, ref.shape))
            per_kind[kind] = (n + 1, bad + 1, mx)
            continue
        d = int(np.abs(ref.astype(int) - ours.astype(int)).max())
        if d > worst[0]:
            worst = (d, path)
        if d > a.atol:
            failures.append("%s: max |diff| %d" % (path, d))
        per_kind[kind] = (n + 1, bad + (d > a.atol), max(mx, d))
    print("COVID-CT decode vs Pillow %s (%.1f s):" % (Image.__version__, time.time() - t0))
    for kind in sorted(per_kind):
        n, bad, mx = per_kind[kind]
        print("  %-18s %4d images, %d differ, max |diff| %d" % (kind, n, bad, mx))
    print("  worst: %d in %s" % worst)
    return failures


def pick_by_kind(files, per_kind=3):
    """The smallest, median and largest image (by pixels) of each kind."""
    kinds = {}
    for f in files:
        kinds.setdefault(kind_of(f), []).append(f)
    picks = {}
    for kind, fs in sorted(kinds.items()):
        fs = sorted(fs, key=lambda f: (Image.open(f).size[0] * Image.open(f).size[1], f))
        idx = sorted(set([0, len(fs) // 2, len(fs) - 1]))[:per_kind]
        picks[kind] = [fs[i] for i in idx]
    return picks


def cmd_resize(a):
    files = dataset_files(a.data)
    picks = pick_by_kind(files)
    sizes = [(224, 224), (97, 97), (512, 512), (300, 170), (131, 389)]
    failures = []
    table = {}
    for kind, fs in picks.items():
        for size in sizes:
            for path, ours, msg in run_dump(a.dump, fs, size=size):
                ref = np.asarray(Image.open(path).convert("RGB").resize(size, Image.BILINEAR))
                record(table, failures, kind, "%dx%d" % size, path, ours, msg, ref, a.atol)
        # One axis only (Pillow skips the other pass), per image.
        for path in fs:
            w, h = Image.open(path).size
            for size, label in (((w, 97), "W x 97"), ((97, h), "97 x H"), ((w + 1, h), "W+1 x H")):
                (_, ours, msg), = run_dump(a.dump, [path], size=size)
                ref = np.asarray(Image.open(path).convert("RGB").resize(size, Image.BILINEAR))
                record(table, failures, kind, label, path, ours, msg, ref, a.atol)
    # Many sizes, extremes included, on one image of each kind.
    rng = np.random.RandomState(7)
    odd = [(1, 1), (2, 700), (700, 2), (3, 5)] + \
        [tuple(int(v) for v in rng.randint(1, 800, 2)) for _ in range(26)]
    for kind, fs in picks.items():
        for size in odd:
            (path, ours, msg), = run_dump(a.dump, fs[-1:], size=size)
            ref = np.asarray(Image.open(path).convert("RGB").resize(size, Image.BILINEAR))
            record(table, failures, kind, "30 random", path, ours, msg, ref, a.atol)
    cols = ["%dx%d" % s for s in sizes] + ["W x 97", "97 x H", "W+1 x H", "30 random"]
    print("resize(BILINEAR) vs Pillow %s: max |diff| (differing bytes) per kind and size"
          % Image.__version__)
    print("  %-16s" % "kind" + "".join("%13s" % c for c in cols))
    for kind in sorted(table):
        row = table[kind]
        print("  %-16s" % kind + "".join("%13s" % ("%d (%d)" % row[c] if c in row else "-")
                                        for c in cols))
    return failures


def record(table, failures, kind, col, path, ours, msg, ref, atol):
    if ours is None:
        failures.append("%s %s: ctsweep refused it: %s" % (path, col, msg))
        return
    if ours.shape != ref.shape:
        failures.append("%s %s: shape %s, Pillow %s" % (path, col, ours.shape, ref.shape))
        return
    diff = np.abs(ref.astype(int) - ours.astype(int))
    d, cnt = int(diff.max()), int((diff > 0).sum())
    if d > atol:
        y, x, c = np.unravel_index(int(diff.argmax()), diff.shape)
        failures.append("%s %s: max |diff| %d at (y %d, x %d, c %d): ours %d, Pillow %d"
                        % (path, col, d, y, x, c, ours[y, x, c], ref[y, x, c]))
    old = table.setdefault(kind, {}).get(col, (0, 0))
    table[kind][col] = (max(old[0], d), old[1] + cnt)


def cmd_tensor(a):
    import torch
    import torchvision.transforms as T
    files = dataset_files(a.data)
    picks = [fs[0] for fs in pick_by_kind(files, 1).values()]
    failures = []
    for norm in ("imagenet", "unit"):
        for size in (224, 112):
            steps = [T.Resize((size, size)), T.ToTensor()]
            if norm == "imagenet":
                steps.append(T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))
            tf = T.Compose(steps)
            worst = 0.0
            for path, ours, msg in run_dump(a.dump, picks, size=(size, size), tensor=norm):
                if ours is None:
                    failures.append("%s: ctsweep refused it: %s" % (path, msg))
                    continue
                ref = tf(Image.open(path).convert("RGB")).numpy()
                d = float(np.abs(ref - ours).max())
                worst = max(worst, d)
                if d > a.ftol:
                    failures.append("%s %s %d: max |diff| %g" % (path, norm, size, d))
            print("  tensor %-8s %3d px, %d images: max |diff| vs torchvision %s: %g"
                  % (norm, size, len(picks), torch.__version__, worst))
    return failures


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["decode", "resize", "tensor"])
    p.add_argument("--dump", required=True, help="the image_dump driver")
    p.add_argument("--data", required=True, help="the covid-ct folder")
    p.add_argument("--work", required=True, help="scratch folder")
    p.add_argument("--atol", type=int, default=0, help="allowed uint8 difference")
    p.add_argument("--ftol", type=float, default=0.0, help="allowed float difference")
    a = p.parse_args()
    failures = {"decode": cmd_decode, "resize": cmd_resize, "tensor": cmd_tensor}[a.command](a)
    for f in failures[:20]:
        print("FAIL " + f)
    if len(failures) > 20:
        print("... and %d more" % (len(failures) - 20))
    print("%s: %s" % (a.command, "%d failures" % len(failures) if failures else "all equal"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
