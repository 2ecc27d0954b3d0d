"""A phantom sweep over every model of the registry, end to end under MPI
(ctest label mpi): run, validate, status, and the analysis report.

The model list is read from `ctsweep run --help-config` (grid.model's help is
built from the registry), so a model added to the registry joins this sweep
without an edit here; the test insists on at least the seven it was written
for. Small on purpose: 48 phantoms of 64 px at 64 px input, one view, two
epochs, one batch size and schedule, seeded random backbones with
head.standardize, 2 ranks (one master, one worker).

Checks: exit 0 and one trial per model, each `done`; `ctsweep validate`
exits 0; `ctsweep status` names every model; `python3 -m analysis report`
exits 0, its HTML names every model and draws a confusion matrix per model,
and the models' colours (figures.model_colours) are distinct.

usage: check_all_models.py CTSWEEP WORK
"""
import os
import re
import shutil
import subprocess
import sys

import h5py

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import check_sweep as cs  # noqa: E402

EXPECTED = {"vgg16", "vgg19", "resnet18", "resnet34", "resnet50", "densenet121", "densenet169"}

CONFIG = """
data:
  phantoms: {count: 48, size: 64, seed: 3}
  split: {fractions: [0.5, 0.25, 0.25], seed: 0}
  image_size: 64
head: {standardize: true}
train: {backend: cpu, feature_batch: 8}
grid:
  model: [%s]
  epochs: [2]
  batch_size: [8]
  clr:
    - {mode: triangular, base_lr: 1.0e-4, max_lr: 1.0e-3, step_size_epochs: 1}
  seed: [0]
"""


def registry_models(ctsweep):
    """grid.model's help, "Backbones: a, b, c.", unwrapped."""
    text = cs.run([ctsweep, "run", "--help-config"]).stdout
    m = re.search(r"\ngrid\.model: [^\n]*\n((?:    [^\n]*\n)+)", text)
    words = " ".join(m.group(1).split()) if m else ""
    m = re.match(r"Backbones: (.*)\.$", words)
    return [s.strip() for s in m.group(1).split(",")] if m else []


def main():
    ctsweep, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    models = registry_models(ctsweep)
    cs.report(EXPECTED <= set(models), f"the registry lists {len(models)} models: {', '.join(models)}")
    cfg = os.path.join(work, "all_models.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG % ", ".join(models))
    out = os.path.join(work, "all_models")
    shutil.rmtree(out, ignore_errors=True)
    r = cs.run(cs.mpirun(2, [ctsweep, "run", cfg, "-o", out]))
    cs.report(r.returncode == 0, f"the sweep of {len(models)} models exits {r.returncode}" +
              (f": {r.stderr.strip().splitlines()[-1:]}" if r.returncode else ""))
    if r.returncode:
        sys.stderr.write(r.stderr[-4000:])
    status = {}
    with h5py.File(os.path.join(out, "sweep.h5"), "r") as h:
        t = h["trials"][...]
        for row in t:
            name = row["model"].decode() if isinstance(row["model"], bytes) else str(row["model"])
            st = row["status"].decode() if isinstance(row["status"], bytes) else str(row["status"])
            status[name] = st
    cs.report(sorted(status) == sorted(models) and all(s == "done" for s in status.values()),
              f"one trial per model, all done: {status}")
    ok, last = cs.validate(ctsweep, out)
    cs.report(ok, f"validate: {last}")
    r = cs.run([ctsweep, "status", out])
    cs.report(r.returncode == 0 and all(m in r.stdout for m in models), f"status names every model (exit {r.returncode})")
    rep = os.path.join(work, "all_models_report")
    shutil.rmtree(rep, ignore_errors=True)
    r = subprocess.run(["/usr/bin/python3", "-m", "analysis", "report", out, "-o", rep], cwd=REPO,
                       capture_output=True, text=True, timeout=900)
    cs.report(r.returncode == 0, f"analysis report exits {r.returncode}" +
              (f": {r.stderr.strip().splitlines()[-1:]}" if r.returncode else ""))
    html = ""
    if os.path.exists(os.path.join(rep, "index.html")):
        with open(os.path.join(rep, "index.html")) as f:
            html = f.read()
    missing = [m for m in models if m not in html]
    figs = [m for m in models if not os.path.exists(os.path.join(rep, "fig", f"confusion_{m}.png"))]
    cs.report(html and not missing and not figs,
              f"the report names every model (missing: {missing}) and draws each one's confusion matrix "
              f"(missing: {figs})")
    sys.path.insert(0, REPO)
    from analysis import figures
    colours = figures.model_colours(models)
    cs.report(len(set(colours.values())) == len(models), f"distinct colours: {colours}")
    print(f"{cs.PASSED} passed, {cs.FAILED} failed")
    sys.exit(1 if cs.FAILED else 0)


if __name__ == "__main__":
    main()
