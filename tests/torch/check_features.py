"""Runs `ctsweep features` on real COVID-CT images and compares with
torchvision (see reference.py), and checks `--model identity` against PIL.

usage: check_features.py CTSWEEP WORK COVID_ROOT MODEL SIZES

Tolerance: max |ours - ref| <= 1e-4 * max |ref| + 1e-5 over each output
(float32 accumulation in a different order across 13-36 layers; BatchNorm
is folded into the convolutions, which changes rounding a little more).
"""
import os
import subprocess
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        raise SystemExit(f"FAILED: {' '.join(cmd)} exited {r.returncode}")
    return r


def compare(label, ours, ref):
    if ours.shape != ref.shape:
        print(f"FAIL {label}: shape {ours.shape}, reference {ref.shape}")
        return False
    diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    bound = RTOL * np.abs(ref).max() + ATOL
    ok = bool(diff.max() <= bound)
    print(f"{'ok  ' if ok else 'FAIL'} {label}: max|diff| {diff.max():.3g} at {tuple(int(i) for i in worst)} "
          f"(ours {ours[worst]:.6g}, ref {ref[worst]:.6g}), bound {bound:.3g}, max|ref| {np.abs(ref).max():.4g}, "
          f"rel {diff.max() / max(np.abs(ref).max(), 1e-30):.2e}")
    return ok


def main():
    ctsweep, work, covid_root, name = sys.argv[1:5]
    sizes = [int(s) for s in sys.argv[5].split(",")]
    work = os.path.join(work, name)
    if name == "identity":
        # More images for preprocessing: two of every kind.
        images, kinds = reference.pick_images(covid_root, per_kind=2)
        print(f"identity: {len(images)} images of kinds {', '.join(kinds)}")
    else:
        subprocess.run([sys.executable, os.path.join(HERE, "reference.py"), work, covid_root, name,
                        ",".join(map(str, sizes))], check=True)
        images = open(os.path.join(work, "images.txt")).read().split()
    os.makedirs(work, exist_ok=True)
    failed = 0
    passed = 0
    for s in sizes:
        out = os.path.join(work, f"ours_{s}.h5")
        if name == "identity":
            run([ctsweep, "features", "--model", "identity", "--image-size", str(s), "--normalize", "unit",
                 "-o", out] + images)
            with h5py.File(out, "r") as f:
                ours = f["features"][...]
                paths = [p.decode() if isinstance(p, bytes) else p for p in f["paths"][...]]
            assert paths == images, "paths differ"
            ref = np.stack([reference.preprocess(p, s, "unit") for p in images])
            diff = np.abs(ours - ref).max() * 255
            ok = diff <= 1.0 + 1e-4
            print(f"{'ok  ' if ok else 'FAIL'} identity {s}px: max diff {diff:.4f}/255 (limit 1/255)")
            for i, p in enumerate(images):
                d = np.abs(ours[i] - ref[i]).max() * 255
                print(f"     {os.path.basename(p)}: {d:.4f}/255")
        else:
            run([ctsweep, "features", "--model", name, "--weights", os.path.join(work, f"{name}.safetensors"),
                 "--image-size", str(s), "--batch", "3", "-o", out] + images)
            with h5py.File(out, "r") as f:
                ours = f["features"][...]
            ref = np.load(os.path.join(work, f"{name}_{s}.npy"))
            ok = compare(f"{name} {s}px ({len(images)} images)", ours, ref)
            if s == min(sizes):
                # An image's features must not depend on the batch it ran in.
                out2 = os.path.join(work, f"ours_{s}_b4.h5")
                run([ctsweep, "features", "--model", name, "--weights", os.path.join(work, f"{name}.safetensors"),
                     "--image-size", str(s), "--batch", "4", "-o", out2] + images[::-1])
                with h5py.File(out2, "r") as f:
                    other = f["features"][...][::-1]
                same = bool(np.array_equal(ours, other))
                print(f"{'ok  ' if same else 'FAIL'} {name} {s}px: batch 3 vs batch 4, reversed order: "
                      f"{'bit-identical' if same else 'differ, max ' + str(np.abs(ours - other).max())}")
                ok = ok and same
        passed += ok
        failed += not ok
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
