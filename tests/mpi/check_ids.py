"""Trial ids across builds and weights files (ctest label mpi).

usage: check_ids.py CTSWEEP WORK [trained]

- The demo's ids and those of an augmented configuration without weights
  are the ones earlier builds made (pinned here, computed before ids hashed
  the weights' content).
- The augmentation settings are written out for hashing in one place only
  (augment_spec_hash in src/data/augment.c).
- A sweep with a weights file (workers simulated: the file is never loaded)
  records trial_id_format 2 and the file's SHA-256 (hashlib as reference);
  the weights moved elsewhere give the same ids (dry run), and --resume
  with the configuration naming their new path keeps every trial.
- --resume: the same folder continues; a folder of format 1 with weights
  (the attributes removed, as builds before them wrote it) is refused with
  one error line and nothing rewritten, and so is a merge of it; weights
  whose content changed since are refused naming the key and the file; a
  format-1 folder without weights resumes as before. validate accepts
  folders without trial_id_format.

With `trained` (label torch: the weights are torchvision's randomly
initialised ResNet-34 written by tests/torch/reference.py): a sweep trained
for real with the weights at one path, then moved and renamed, makes the
same trial files with bit-identical results; one tensor value changed gives
every trial a new id.
"""
import glob
import hashlib
import os
import re
import shutil
import sys

import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_sweep import DEMO_IDS, ENV, mpirun, report, results, run, same, validate  # noqa: E402
import check_sweep  # noqa: E402

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

CONFIG = """
data:
  phantoms: {count: 64, size: 64, seed: 2}
  split: {fractions: [0.6, 0.2, 0.2], seed: 1}
  image_size: 48
  augment: {rotate_deg: 10, rotate_prob: 0.5, flip: lr, flip_prob: 0.5, noise_std: 0.1, noise_prob: 0.3}
  aug_views: 2
head: {standardize: true}
train: {feature_batch: 16}
grid:
  model: [resnet34, vgg16]
  epochs: [2, 4]
  batch_size: [8]
  clr:
    - {mode: triangular, base_lr: 1.0e-4, max_lr: 1.0e-3, step_size_epochs: 1}
%s
"""
# CONFIG without weights, as every earlier ctsweep identified its trials.
CONFIG_IDS = {"0fb2cec8e155a078", "5e7ec3ecf2d2d058", "6692c1a9769cf7c8", "a9c7700f50c1e18d"}

AUG_FIELDS = ("rotate_deg", "rotate_prob", "flip_axis", "flip_prob", "zoom_min", "zoom_max", "zoom_prob",
              "noise_std", "noise_prob", "aug_views")

SIM = dict(ENV, CTSWEEP_SIMULATE_EPOCH_MS="1")


def dry_ids(ctsweep, cfg, out):
    r = run([ctsweep, "run", cfg, "-o", out, "--dry-run"])
    return r.returncode, {l.split()[0] for l in r.stdout.splitlines() if len(l.split()) > 8 and len(l.split()[0]) == 16}


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def errors(r):
    return [l for l in r.stderr.splitlines() if "error" in l]


def mtimes(out):
    return {f: os.path.getmtime(f) for f in glob.glob(os.path.join(out, "trials", "*.h5"))}


def check_pinned(ctsweep, work):
    rc, ids = dry_ids(ctsweep, os.path.join(REPO, "sweep", "demo.yaml"), os.path.join(work, "demo"))
    report(rc == 0 and ids == DEMO_IDS, f"the demo's {len(ids)} trial ids are unchanged")
    rc, ids = dry_ids(ctsweep, write(os.path.join(work, "plain.yaml"), CONFIG % ""), os.path.join(work, "plain"))
    report(rc == 0 and ids == CONFIG_IDS, f"an augmented configuration without weights keeps its ids: {sorted(ids)}")


def check_augment_listed_once():
    """A statement that formats or hashes two augmentation fields or more
    lists them by hand: only augment_spec_hash may."""
    found = []
    for path in glob.glob(os.path.join(REPO, "src", "**", "*.[ch]"), recursive=True) + \
            glob.glob(os.path.join(REPO, "src", "**", "*.cu"), recursive=True):
        text = re.sub(r"//[^\n]*|/\*.*?\*/", "", open(path).read(), flags=re.S)
        for stmt in text.split(";"):
            if "printf" not in stmt and "sha256_update" not in stmt:
                continue
            named = [f for f in AUG_FIELDS if re.search(r"(->|\.)" + f + r"\b", stmt)]
            if len(named) >= 2:
                found.append(os.path.relpath(path, REPO))
    report(found == ["src/data/augment.c"], f"augmentation fields formatted for hashing only in {found}")


def check_weights(ctsweep, work):
    weights = os.path.join(work, "vgg16.safetensors")
    with open(weights, "wb") as f:
        f.write(os.urandom(200000))
    digest = hashlib.sha256(open(weights, "rb").read()).hexdigest()
    cfg = write(os.path.join(work, "weights.yaml"), CONFIG % f"weights: {{vgg16: {weights}}}")
    out = os.path.join(work, "weights")
    shutil.rmtree(out, ignore_errors=True)
    r = run(mpirun(2, [ctsweep, "run", cfg, "-o", out]), env=SIM)
    ok_v, msg = validate(ctsweep, out)
    with h5py.File(os.path.join(out, "sweep.h5"), "r") as h:
        fmt, stored = h.attrs.get("trial_id_format"), h.attrs.get("weights_sha256")
        ids = {x.decode() if isinstance(x, bytes) else x for x in h["trials"]["trial_id"]}
    report(r.returncode == 0 and ok_v and fmt == 2 and stored == f"vgg16 {digest}\n",
           f"a sweep with weights: exit {r.returncode}, {msg}, trial_id_format {fmt}, weights_sha256 {stored!r}")
    report(not ids & CONFIG_IDS and len(ids) == 4, "its ids are format 2's, not those without weights")

    moved = os.path.join(work, "elsewhere", "renamed.safetensors")
    os.makedirs(os.path.dirname(moved), exist_ok=True)
    shutil.move(weights, moved)
    moved_cfg = write(os.path.join(work, "moved.yaml"), CONFIG % f"weights: {{vgg16: {moved}}}")
    rc, moved_ids = dry_ids(ctsweep, moved_cfg, os.path.join(work, "moved"))
    report(rc == 0 and moved_ids == ids, "the weights moved and renamed: the same ids")
    moved_out = os.path.join(work, "weights-moved")
    shutil.rmtree(moved_out, ignore_errors=True)
    shutil.copytree(out, moved_out)
    r = run(mpirun(2, [ctsweep, "run", moved_cfg, "-o", moved_out, "--resume"]), env=SIM)
    report(r.returncode == 0 and "resume: 4 trials already done" in r.stdout,
           f"--resume with the weights moved (the configuration naming the new path): exit {r.returncode}, "
           f"{errors(r) or 'all 4 trials kept'}")
    shutil.move(moved, weights)

    r = run(mpirun(2, [ctsweep, "run", cfg, "-o", out, "--resume"]), env=SIM)
    report(r.returncode == 0 and "resume: 4 trials already done" in r.stdout,
           f"--resume of the same folder: exit {r.returncode}, {errors(r) or 'all 4 trials kept'}")

    # As builds before trial_id_format wrote it: ids of format 1.
    old = os.path.join(work, "format1")
    shutil.rmtree(old, ignore_errors=True)
    shutil.copytree(out, old)
    with h5py.File(os.path.join(old, "sweep.h5"), "r+") as h:
        del h.attrs["trial_id_format"]
        del h.attrs["weights_sha256"]
    ok_v, msg = validate(ctsweep, old)
    report(ok_v, f"validate accepts a folder without trial_id_format: {msg}")
    before = mtimes(old)
    r = run(mpirun(2, [ctsweep, "run", cfg, "-o", old, "--resume"]), env=SIM)
    want = (f"ctsweep: error: {old}/sweep.h5: trial ids were made with id format 1 (weights hashed by path); this "
            "build makes format 2 (weights hashed by content): resume cannot reuse them; run into a new folder")
    report(r.returncode == 1 and errors(r) == [want] and mtimes(old) == before,
           f"--resume of a format-1 folder with weights: exit {r.returncode}, {errors(r)}, files untouched")
    merged = os.path.join(work, "merged1")
    shutil.rmtree(merged, ignore_errors=True)
    r = run([ctsweep, "merge", "-o", merged, old], env=SIM)
    report(r.returncode == 1 and len(errors(r)) == 1 and "id format 1" in errors(r)[0] and
           "merge cannot reuse" in errors(r)[0], f"merge of it: exit {r.returncode}, {errors(r)}")

    # The weights replaced in place by others of the same size.
    with open(weights, "r+b") as f:
        f.seek(1234)
        b = f.read(1)
        f.seek(1234)
        f.write(bytes([b[0] ^ 1]))
    before = mtimes(out)
    r = run(mpirun(2, [ctsweep, "run", cfg, "-o", out, "--resume"]), env=SIM)
    e = errors(r)
    report(r.returncode == 1 and len(e) == 1 and f"weights.vgg16 ({weights}) changed since the sweep ran" in e[0] and
           f"was {digest[:16]}" in e[0] and mtimes(out) == before,
           f"--resume after one byte of the weights changed: exit {r.returncode}, {e}, files untouched")

    # Without weights, a folder of format 1 resumes as it always did.
    plain_cfg = os.path.join(work, "plain.yaml")
    plain = os.path.join(work, "plain1")
    shutil.rmtree(plain, ignore_errors=True)
    r = run(mpirun(2, [ctsweep, "run", plain_cfg, "-o", plain]), env=SIM)
    with h5py.File(os.path.join(plain, "sweep.h5"), "r+") as h:
        had = "weights_sha256" in h.attrs
        del h.attrs["trial_id_format"]
    r = run(mpirun(2, [ctsweep, "run", plain_cfg, "-o", plain, "--resume"]), env=SIM)
    report(r.returncode == 0 and not had and "resume: 4 trials already done" in r.stdout,
           f"--resume of a format-1 folder without weights: exit {r.returncode}, {errors(r) or 'all 4 trials kept'}")


def check_trained(ctsweep, work):
    sys.path.insert(0, os.path.join(REPO, "tests", "torch"))
    import reference
    import torch
    first = os.path.join(work, "resnet34.safetensors")
    m = reference.build_model("resnet34", 3)
    reference.save_weights(m, "resnet34", first)
    small = (CONFIG % "weights: {resnet34: %s}").replace("model: [resnet34, vgg16]", "model: [resnet34]")
    outs = {}
    for name in ("first", "moved", "changed"):
        if name == "moved":
            moved = os.path.join(work, "moved", "renamed.safetensors")
            os.makedirs(os.path.dirname(moved), exist_ok=True)
            shutil.move(first, moved)
            path = moved
        elif name == "changed":
            with torch.no_grad():
                m.layer4[1].conv2.weight[0, 0, 0, 0] += 0.5
            reference.save_weights(m, "resnet34", first)
            path = first
        else:
            path = first
        cfg = write(os.path.join(work, f"trained-{name}.yaml"), small % path)
        out = outs[name] = os.path.join(work, f"trained-{name}")
        shutil.rmtree(out, ignore_errors=True)
        r = run(mpirun(2, [ctsweep, "run", cfg, "-o", out]))
        report(r.returncode == 0, f"trained with the weights ({name}): exit {r.returncode} {errors(r)}")
    a, b, c = (results(outs[k]) for k in ("first", "moved", "changed"))
    report(len(a) == 2 and same(a, b), f"the weights moved and renamed: the same trial files {sorted(b)} with "
           "bit-identical results")
    report(len(c) == 2 and not set(a) & set(c), f"one weight changed: new ids {sorted(c)}")


def main():
    ctsweep, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    if sys.argv[3:] == ["trained"]:
        check_trained(ctsweep, work)
    else:
        check_pinned(ctsweep, work)
        check_augment_listed_once()
        check_weights(ctsweep, work)
    print(f"{check_sweep.PASSED} passed, {check_sweep.FAILED} failed")
    sys.exit(1 if check_sweep.FAILED else 0)


if __name__ == "__main__":
    main()
