#!/usr/bin/env python3
"""`ctsweep predict` throughput and Grad-CAM cost per image at 224 px.

usage: bench/predict.py [--images 16] [--size 224] [--batch 16] [--threads 2] [--unfreeze 0]
                        [--backend cpu|cuda] [--models vgg16,resnet34] [--work DIR]

For each model, writes a model file in the format of `ctsweep export`
(tests/torch/model_file.py: seeded random backbone, default head) and runs
`ctsweep predict` twice over the same COVID-CT images (from
../shared/data/covid-ct, repeated as needed): without --saliency (images/s,
decode and preprocessing included) and with it (the extra seconds per image
are Grad-CAM's: the backbone up to the last stage again (not with
--unfreeze 1, whose prefix is Grad-CAM's), the last stage forward and
backward, the CAM and the PNG).
Run with Debian's python3 (torch, torchvision, h5py). Build first
(scripts/lib/common.sh: ctsweep_build).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "torch"))
import model_file  # noqa: E402
import reference  # noqa: E402
import numpy as np  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--unfreeze", type=int, default=0)
    ap.add_argument("--models", default="vgg16,resnet34")
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    ctsweep = os.path.join(os.environ.get("CTSWEEP_BUILD", os.path.join(ROOT, "build")), "ctsweep")
    work = a.work or tempfile.mkdtemp(prefix="ctsweep-bench-predict-")
    os.makedirs(work, exist_ok=True)
    imgs, _ = reference.pick_images(os.path.join(ROOT, "..", "shared", "data", "covid-ct"), per_kind=4)
    images = (imgs * (a.images // len(imgs) + 1))[:a.images]
    calib = np.stack([reference.preprocess(p, a.size) for p in imgs[:4]])
    isa = subprocess.run([ctsweep, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{isa}; {a.images} images at {a.size} px, batch {a.batch}, {a.threads} threads, backend {a.backend}, "
          f"unfreeze {a.unfreeze}; load average {open('/proc/loadavg').read().split()[0]}")
    for name in a.models.split(","):
        path = os.path.join(work, f"{name}.safetensors")
        hidden = [512, 256, 128] if name.startswith("vgg") else [256, 128]
        model_file.make(name, path, a.size, hidden=hidden, standardize=True, calib=calib, unfreeze=a.unfreeze)
        common = [ctsweep, "predict", path, *images, "--batch", str(a.batch), "--threads", str(a.threads),
                  "--backend", a.backend, "--no-progress"]
        t = {}
        for mode, extra in (("plain", []), ("saliency", ["--saliency", os.path.join(work, f"sal_{name}")])):
            r = subprocess.run(common + ["-o", os.path.join(work, f"{name}_{mode}.csv")] + extra,
                               capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(r.stderr)
            m = re.search(r", ([0-9.]+) s \(([0-9.]+) images/s", r.stderr)
            t[mode] = float(m.group(1))
        n = a.images
        print(f"{name:10s} predict {n / t['plain']:6.2f} images/s ({1e3 * t['plain'] / n:7.1f} ms/image); "
              f"with --saliency {n / t['saliency']:6.2f} images/s: Grad-CAM "
              f"{1e3 * (t['saliency'] - t['plain']) / n:7.1f} ms/image")


if __name__ == "__main__":
    main()
