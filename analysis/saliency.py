"""Grad-CAM overlays for the report's galleries, from the model a trial kept.

A done trial file holds the trainable weights of its selected (and/or final)
epoch under /model/<kind> (train.keep_weights). For each model's selected
trial the report exports them (`ctsweep export OUTDIR --trial ID --epoch
KIND`) and runs `ctsweep predict MODEL IMAGE... --saliency DIR` on the images
of its galleries: the same decode, preprocessing and forward pass as the
sweep, Grad-CAM of the positive logit at the last stage, one overlay PNG per
image named `DIR/<index>_<stem>.png` by the image's position in the list.
predict's probabilities are compared with the recorded /test/prob at that
epoch, so the overlays are shown for exactly the model whose numbers the
report prints.

The ctsweep binary: --ctsweep PATH, else $CTSWEEP_BIN, else the repository's
build folder ($CTSWEEP_BUILD or build/), else ctsweep on PATH.
"""
import csv
import os
import re
import shutil
import subprocess
import tempfile
import time

import h5py

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def find_ctsweep(explicit=None):
    """The ctsweep binary to run, or None."""
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    cands = [os.environ.get("CTSWEEP_BIN")]
    build = os.environ.get("CTSWEEP_BUILD") or os.path.join(REPO, "build")
    cands.append(os.path.join(build, "ctsweep"))
    cands.append(shutil.which("ctsweep"))
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def kept_epochs(trial_path):
    """{'selected': epoch, 'final': epoch} for the weights the trial file holds."""
    out = {}
    try:
        with h5py.File(trial_path, "r") as h:
            if "model" not in h:
                return out
            for kind in ("selected", "final"):
                if kind in h["model"] and "epoch" in h["model"][kind].attrs:
                    out[kind] = int(h["model"][kind].attrs["epoch"])
    except OSError:
        pass
    return out


def pick_kind(kept, epoch):
    """The kept weights that belong to `epoch`, or None."""
    for kind in ("selected", "final"):
        if kept.get(kind) == epoch:
            return kind
    return None


class SaliencyError(Exception):
    pass


def _run(cmd, timeout):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as ex:
        raise SaliencyError(f"{os.path.basename(cmd[0])} {cmd[1]}: {ex}")
    return r


def _last_line(text):
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def overlays(ctsweep, outdir, trial_id, kind, images, dest, timeout=1800):
    """Export trial `trial_id`'s `kind` weights and predict `images` with
    Grad-CAM into folder `dest` (made fresh). Returns (per image (png path
    or None, probability or None), seconds taken)."""
    t0 = time.time()
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ctsweep-cam-") as tmp:
        model = os.path.join(tmp, "model.safetensors")
        r = _run([ctsweep, "export", outdir, "--trial", trial_id, "--epoch", kind, "-o", model], timeout)
        if r.returncode != 0:
            raise SaliencyError(f"ctsweep export exit {r.returncode}: {_last_line(r.stderr)}")
        csv_path = os.path.join(tmp, "pred.csv")
        r = _run([ctsweep, "predict", model, *images, "-o", csv_path, "--saliency", dest], timeout)
        # Exit 3: some image was bad; the others are predicted.
        if r.returncode not in (0, 3) or not os.path.isfile(csv_path):
            raise SaliencyError(f"ctsweep predict exit {r.returncode}: {_last_line(r.stderr)}")
        probs = {}
        with open(csv_path, newline="") as f:
            for row in csv.DictReader(f):
                probs.setdefault(row["path"], float(row["prob"]))
    pngs = {}
    for name in os.listdir(dest) if os.path.isdir(dest) else []:
        m = re.match(r"(\d+)_.*\.png$", name)
        if m:
            pngs[int(m.group(1))] = os.path.join(dest, name)
    result = [(pngs.get(i), probs.get(p)) for i, p in enumerate(images)]
    return result, time.time() - t0
