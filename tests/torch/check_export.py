"""`ctsweep export` against PyTorch, and its refusals.

usage: check_export.py CTSWEEP WORK CASE
CASE:
  torch   a sweep (phantoms at 32 px, seeded random backbones, fp32 feature
          store, conv_algo direct, keep_weights: both) of VGG16 and ResNet-34 with unfreeze 0
          and 1, 3 epochs; each trial exported at its selected and at its
          final epoch and loaded by the README's PyTorch lines (taken from
          README.md between its export-lines markers, run as they are) into
          torchvision.models.<model>() and an nn.Sequential head: their
          probabilities of the test images, preprocessed by `ctsweep features
          --model identity` (ctsweep's own preprocessing), equal the trial's
          /test/prob at that epoch within 1e-5 absolute (worst printed).
          The metadata: the epoch (the trial's selected_epoch, or its
          last), the threshold (%.9g of analysis.metrics.youden_threshold on
          that epoch's val probabilities), classes, model, image size, trial
          id, fingerprint. The file also loads with ctsweep's own reader:
          `ctsweep features --weights EXPORTED` gives torchvision's features
          of the exported backbone (1e-4 relative + 1e-5). `ctsweep predict`
          on the exported file gives the recorded /test/prob bit for bit
          (test images in /test/index order, --eval-rows the batch size).
          The same sweep with conv_algo auto (Winograd for the 3x3 layers):
          its final epochs, PyTorch within 1e-4, predict bit for bit.
  errors  the refusals, each one line with its exit code and -o absent
          afterwards (no temporary file left either): no --trial, an unknown
          trial, an unknown --epoch kind, a trial that is not done, a trial
          that kept no weights for that epoch, an -o in a missing folder and
          an -o that is a folder. `ctsweep validate` names damaged kept
          weights (a wrong epoch, a float64 tensor, statistics without their
          pair).
"""
import csv
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
from analysis.metrics import youden_threshold  # noqa: E402

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1")
ATOL, ATOL_AUTO = 1e-5, 1e-4
PASSED = FAILED = 0

CONFIG = """
data:
  phantoms: {count: 48, size: 48, seed: 3}
  split: {fractions: [0.5, 0.25, 0.25], seed: 1}
  image_size: 32
head: {standardize: true}
train: {feature_batch: 16, feature_store: fp32, keep_weights: %s, backbone_lr_scale: 0.1, conv_algo: %s}
grid:
  model: [vgg16, resnet34]
  unfreeze: [0, 1]
  epochs: [%s]
  batch_size: [8]
  clr:
    - {mode: triangular, base_lr: 1.0e-4, max_lr: 1.0e-3, step_size_epochs: 1}
"""


def report(ok, msg):
    global PASSED, FAILED
    PASSED += bool(ok)
    FAILED += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {msg}", flush=True)


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV)


def sweep(ctsweep, work, name, keep="both", epochs="3", algo="direct"):
    out = os.path.join(work, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(work, exist_ok=True)
    cfg = os.path.join(work, f"{name}.yaml")
    open(cfg, "w").write(CONFIG % (keep, algo, epochs))
    r = run(["mpirun", "-n", "1", ctsweep, "run", cfg, "-o", out])
    assert r.returncode == 0, r.stderr
    return out


def readme_lines():
    text = open(os.path.join(ROOT, "README.md")).read()
    m = re.search(r"<!-- export-lines -->\n```python\n(.*?)```\n<!-- /export-lines -->", text, re.S)
    assert m, "README.md has no export-lines block"
    return m.group(1)


def load_readme(path):
    """The README's lines, run as they are on `path`: returns their names."""
    import torch  # noqa: F401  (the lines import it themselves)
    ns = {}
    exec(readme_lines().replace('"MODEL.safetensors"', repr(path)), ns)
    return ns


def case_torch(ctsweep, work):
    # conv_algo direct: oneDNN's direct kernels, the 1e-5; auto (on
    # AVX2 ctsweep's Winograd, on AVX-512 oneDNN's, ~1e-5 relative from direct
    # in the features) within 1e-4, the final epochs only.
    torch_sweep(ctsweep, work, "direct", ("selected", "final"), ATOL)
    torch_sweep(ctsweep, work, "auto", ("final",), ATOL_AUTO)


def torch_sweep(ctsweep, work, algo, kinds, atol):
    import torch
    torch.set_num_threads(2)
    out = sweep(ctsweep, work, f"export_torch_{algo}", algo=algo)
    work = os.path.join(work, algo)
    os.makedirs(work, exist_ok=True)
    with h5py.File(os.path.join(out, "sweep.h5"), "r") as h:
        paths = [p.decode() for p in h["dataset/path"][...]]
        labels = h["dataset/label"][...]
        fingerprint = h.attrs["dataset_fingerprint"]
        fingerprint = fingerprint.decode() if isinstance(fingerprint, bytes) else fingerprint
    trials = sorted(glob.glob(os.path.join(out, "trials", "*.h5")))
    report(len(trials) == 4, f"{len(trials)} trials")
    inputs = None
    differ = 0
    for tf in trials:
        tid = os.path.basename(tf)[:-3]
        with h5py.File(tf, "r") as h:
            model, unfreeze = h.attrs["model"], int(h.attrs["unfreeze"])
            model = model.decode() if isinstance(model, bytes) else model
            selected, epochs = int(h.attrs["selected_epoch"]), int(h.attrs["epochs"])
            test_prob, val_prob = h["test/prob"][...], h["val/prob"][...]
            test_index, val_index = h["test/index"][...], h["val/index"][...]
        differ += selected != epochs
        if inputs is None:
            xh5 = os.path.join(work, "test_inputs.h5")
            r = run([ctsweep, "features", "--model", "identity", "--image-size", "32", "--normalize", "imagenet",
                     "-o", xh5] + [paths[i] for i in test_index])
            assert r.returncode == 0, r.stderr
            with h5py.File(xh5, "r") as f:
                inputs = torch.from_numpy(f["features"][...])
        for kind in kinds:
            dst = os.path.join(work, f"{tid}_{kind}.safetensors")
            r = run([ctsweep, "export", out, "--trial", tid, "--epoch", kind, "-o", dst])
            if r.returncode != 0:
                report(False, f"{model} unfreeze {unfreeze} {kind}: export failed: {r.stderr.strip()}")
                continue
            ns = load_readme(dst)
            meta = ns["meta"]
            epoch = selected if kind == "selected" else epochs
            with torch.no_grad():
                p = ns["probs"](inputs).numpy()
            ref = test_prob[epoch - 1]
            d = np.abs(p - ref)
            worst = int(d.argmax())
            report(d.max() <= atol, f"{model} unfreeze {unfreeze} {kind} epoch {epoch} conv_algo {algo}: PyTorch vs "
                   f"/test/prob max |diff| {d.max():.2e} (image {worst}: {p[worst]:.7f} vs {ref[worst]:.7f}; "
                   f"limit {atol:g})")
            thr = youden_threshold(labels[val_index], val_prob[epoch - 1])[0]
            want = {"format": "ctsweep-model/1", "model": model, "image_size": "32", "normalize": "imagenet",
                    "classes": '["CT_NonCOVID","CT_COVID"]', "threshold": "%.9g" % thr, "epoch": str(epoch),
                    "epoch_kind": kind, "trial_id": tid, "dataset_fingerprint": fingerprint,
                    "unfreeze": str(unfreeze), "feature_store": "fp32", "precision": "fp32", "conv_algo": algo}
            bad = {k: (meta.get(k), v) for k, v in want.items() if meta.get(k) != v}
            head = json.loads(meta["head"])
            report(not bad and head["standardize"] is True and "software_version" in meta,
                   f"{model} unfreeze {unfreeze} {kind}: metadata {'as recorded' if not bad else bad}, head {head}")
            # ctsweep predict on the exported file: the test images in /test/index
            # order, the head and tail evaluated in groups of the trial's batch size
            # as the sweep scores its test split: the recorded probabilities, bit for
            # bit (float32 through %.9g), and within 1e-6 in any case.
            csv_path = os.path.join(work, f"{tid}_{kind}.csv")
            r = run([ctsweep, "predict", dst, *[paths[i] for i in test_index], "-o", csv_path, "--eval-rows", "8",
                     "--threads", "2"])
            if r.returncode != 0:
                report(False, f"{model} unfreeze {unfreeze} {kind}: predict failed: {r.stderr.strip()[-300:]}")
            else:
                with open(csv_path) as f:
                    rows = list(csv.DictReader(f))
                pp = np.array([float(row["prob"]) for row in rows], np.float32)
                same_paths = [row["path"] for row in rows] == [paths[i] for i in test_index]
                dp = float(np.abs(pp.astype(np.float64) - ref).max()) if len(pp) == len(ref) else float("inf")
                exact = len(pp) == len(ref) and np.array_equal(pp, ref.astype(np.float32))
                report(same_paths and dp <= 1e-6 and exact,
                       f"{model} unfreeze {unfreeze} {kind}: ctsweep predict vs /test/prob epoch {epoch}: max |diff| "
                       f"{dp:.2e}, {'bit-identical' if exact else 'NOT bit-identical'} over {len(pp)} images")
            if kind == "final" and unfreeze == 1:
                # ctsweep's own loader reads the exported backbone as torchvision does.
                fh5 = os.path.join(work, f"{tid}_features.h5")
                r = run([ctsweep, "features", "--model", model, "--weights", dst, "--image-size", "32",
                         "--threads", "2", "-o", fh5] + [paths[i] for i in test_index[:4]])
                ok = r.returncode == 0
                if ok:
                    with h5py.File(fh5, "r") as f:
                        ours = f["features"][...].reshape(4, -1)
                    with torch.no_grad():
                        ref_f = ns["net"](inputs[:4]).numpy()
                    err = np.abs(ours - ref_f).max()
                    ok = err <= 1e-4 * np.abs(ref_f).max() + 1e-5
                report(ok, f"{model} unfreeze 1: ctsweep features --weights EXPORTED equals torchvision's "
                       f"features of it ({r.stderr.strip()[-200:] if r.returncode else f'max |diff| {err:.2e}'})")
    print(f"{differ} of {len(trials)} trials selected an epoch before their last")
    # Sizes of the kept weights per trial (float32 values, both epochs).
    for tf in trials:
        with h5py.File(tf, "r") as h:
            n = sum(h["model/final"][k].size for k in h["model/final"])
            print(f"{h.attrs['model']} unfreeze {h.attrs['unfreeze']}: {n} kept values per epoch "
                  f"({n * 4 / 1e6:.2f} MB)")


def expect(name, r, code, pattern, dst):
    err = r.stderr.strip()
    leftovers = glob.glob(dst + "*") if dst else []
    ok = r.returncode == code and len(err.splitlines()) == 1 and re.fullmatch(pattern, err) and not leftovers
    report(ok, f"{name}: exit {r.returncode} (want {code}), '{err}'" + (f", left {leftovers}" if leftovers else ""))


def case_errors(ctsweep, work):
    out = sweep(ctsweep, work, "export_errors", keep="selected", epochs="1")
    tid = sorted(os.path.basename(f)[:-3] for f in glob.glob(os.path.join(out, "trials", "*.h5")))[0]
    dst = os.path.join(work, "bad.safetensors")
    for f in glob.glob(dst + "*"):
        os.remove(f)
    x = [ctsweep, "export"]
    expect("no --trial", run(x + [out, "-o", dst]), 2,
           r"ctsweep export: --trial ID is required \(usage: .*\)", dst)
    expect("unknown trial", run(x + [out, "--trial", "0123456789abcdef", "-o", dst]), 1,
           rf"ctsweep export: {re.escape(out)}: no trial 0123456789abcdef here \(ctsweep status .* lists the trials\)", dst)
    expect("a trial id that is a path", run(x + [out, "--trial", "../sweep", "-o", dst]), 1,
           rf"ctsweep export: {re.escape(out)}: no trial \.\./sweep here .*", dst)
    expect("unknown --epoch", run(x + [out, "--trial", tid, "--epoch", "best", "-o", dst]), 2,
           r"ctsweep export: --epoch must be selected or final, not 'best'", dst)
    expect("no weights for that epoch", run(x + [out, "--trial", tid, "--epoch", "final", "-o", dst]), 1,
           rf"ctsweep export: .*/trials/{tid}\.h5: trial {tid} kept no final weights \(train\.keep_weights decides "
           r"which a trial keeps\); try --epoch selected", dst)
    expect("not a results folder", run(x + [work + "/nothing", "--trial", tid, "-o", dst]), 1,
           r"ctsweep export: .*/nothing: no sweep.h5 here, not a ctsweep results folder", dst)
    # A trial that is not done: its file says running.
    running = os.path.join(work, "export_running")
    shutil.rmtree(running, ignore_errors=True)
    shutil.copytree(out, running)
    with h5py.File(os.path.join(running, "trials", f"{tid}.h5"), "r+") as h:
        h.attrs["status"] = "running"
    expect("trial not done", run(x + [running, "--trial", tid, "-o", dst]), 1,
           rf"ctsweep export: .*/trials/{tid}\.h5: trial {tid} is running, not done: it has no weights to export yet",
           dst)
    missing_dir = os.path.join(work, "no_such_folder", "m.safetensors")
    expect("-o in a missing folder", run(x + [out, "--trial", tid, "-o", missing_dir]), 1,
           rf"ctsweep export: {re.escape(missing_dir)}: cannot write: No such file or directory", missing_dir)
    folder = os.path.join(work, "a_folder.safetensors")
    os.makedirs(os.path.join(folder, "inside"), exist_ok=True)
    r = run(x + [out, "--trial", tid, "-o", folder])
    left = [f for f in glob.glob(folder + "*") if f != folder]
    ok = r.returncode == 1 and re.fullmatch(rf"ctsweep export: {re.escape(folder)}: cannot write: Is a directory",
                                            r.stderr.strip()) and not left and os.listdir(folder) == ["inside"]
    report(ok, f"-o that is a folder: exit {r.returncode}, '{r.stderr.strip()}', temporaries left {left}")
    # ctsweep validate checks the kept weights.
    r = run([ctsweep, "validate", out])
    report(r.returncode == 0, f"validate with kept weights: exit {r.returncode}, {r.stdout.strip()[-80:]}")
    damaged = os.path.join(work, "export_damaged")
    shutil.rmtree(damaged, ignore_errors=True)
    shutil.copytree(out, damaged)
    with h5py.File(os.path.join(damaged, "trials", f"{tid}.h5"), "r+") as h:
        h["model/selected"].attrs["epoch"] = 7
        del h["model/selected/head.standardize.inv_std"]
        del h["model/selected/head.1.bias"]
        h["model/selected/head.1.bias"] = np.zeros(2, np.float64)
    r = run([ctsweep, "validate", damaged])
    want = [f"trials/{tid}.h5: /model/selected@epoch is not the trial's selected epoch",
            f"trials/{tid}.h5: /model/selected/head.1.bias (and any other listed) is not a float32 tensor",
            f"trials/{tid}.h5: /model/selected: head.standardize.mean and .inv_std are not both there"]
    missing = [w for w in want if w not in r.stdout + r.stderr]
    report(r.returncode == 1 and not missing, f"validate of damaged kept weights: exit {r.returncode}, "
           f"{'each problem named' if not missing else 'missing ' + str(missing)}")
    r = run(x + [out, "--trial", tid, "-o", dst])
    report(r.returncode == 0 and os.path.exists(dst) and not glob.glob(dst + ".tmp*"),
           f"the same trial's selected epoch exports: exit {r.returncode}, {r.stdout.strip()}")
    # A unique prefix of the id, in either case, names the trial; an ambiguous one is refused.
    with open(dst, "rb") as f:
        whole = f.read()
    ids = sorted(os.path.basename(f)[:-3] for f in glob.glob(os.path.join(out, "trials", "*.h5")))
    k = next(n for n in range(1, 17) if sum(i.startswith(tid[:n]) for i in ids) == 1)
    pre = os.path.join(work, "prefix.safetensors")
    r = run(x + [out, "--trial", tid[:k].upper(), "-o", pre])
    same = r.returncode == 0 and open(pre, "rb").read() == whole
    report(same, f"--trial {tid[:k].upper()} (a unique prefix, upper case): exit {r.returncode}, the same file")
    amb_dir = os.path.join(work, "export_ambiguous")
    shutil.rmtree(amb_dir, ignore_errors=True)
    shutil.copytree(out, amb_dir)
    twin = tid[:8] + ("f" if tid[8] != "f" else "e") + tid[9:]
    shutil.copy(os.path.join(amb_dir, "trials", f"{tid}.h5"), os.path.join(amb_dir, "trials", f"{twin}.h5"))
    amb = os.path.join(work, "ambiguous.safetensors")
    expect("an ambiguous prefix", run(x + [amb_dir, "--trial", tid[:8], "-o", amb]), 1,
           rf"ctsweep export: {re.escape(amb_dir)}: trial prefix {tid[:8]} is ambiguous: 2 trials start with it "
           rf"\(({tid}, {twin}|{twin}, {tid})\)", amb)


def main():
    ctsweep, work, case = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(work, exist_ok=True)
    {"torch": case_torch, "errors": case_errors}[case](ctsweep, work)
    print(f"{PASSED} passed, {FAILED} failed")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
