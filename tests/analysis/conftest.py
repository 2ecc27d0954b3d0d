"""Shared set-up of the analysis tests: where the repository, the ctsweep
binary and the scratch folder are, and the three results directories the
report tests read, each produced here by `ctsweep run` on a configuration
derived from sweep/demo.yaml:

- complete:    the whole reduced grid (one process, master and worker: results
               are bit-identical whatever the rank count, which the mpi tests check);
- failed:      one trial made to fail by CTSWEEP_FAULT (exit status 3);
- interrupted: SIGKILL of the run while a trial is mid-training, never resumed;
the last two with resnet34 alone (the cheaper backbone; 4 trials).

The reduced grid keeps the demo's data section (phantoms, seeded stratified
split, augmentation, image normalisation) with fewer, smaller phantoms and
smaller inputs, and 2 models x 1 batch size x 2 schedules x epochs {2, 3}
(8 trials, 4 training runs), so the whole label takes about a minute and a
half of CPU time on two cores.
Nothing is skipped: a missing ctsweep binary, torch or Chromium fails the test.
"""
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import h5py
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, REPO)
sys.path.insert(0, HERE)

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", PYTHONDONTWRITEBYTECODE="1")
ENV.pop("CTSWEEP_FAULT", None)


def ctsweep_bin():
    b = os.environ.get("CTSWEEP_BIN") or os.path.join(REPO, "build", "ctsweep")
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        pytest.fail(f"ctsweep binary not found at {b} (build it, or set CTSWEEP_BIN)")
    return b


def work_dir():
    w = os.environ.get("CTSWEEP_TEST_WORK") or os.path.join(REPO, "build", "test-work", "analysis")
    os.makedirs(w, exist_ok=True)
    return w


def reduced_demo_config():
    """sweep/demo.yaml with fewer, smaller phantoms and a smaller grid."""
    with open(os.path.join(REPO, "sweep", "demo.yaml")) as f:
        text = f.read()
    edits = [
        (r"phantoms: \{count: \d+, size: \d+, seed: (\d+)\}", r"phantoms: {count: 160, size: 64, seed: \1}"),
        (r"(\n  image_size:) \d+", r"\1 48"),
        (r"(\n  model:) \[[^\]]*\]", r"\1 [vgg16, resnet34]"),
        (r"(\n  epochs:) \[[^\]]*\]", r"\1 [2, 3]"),
        (r"(\n  batch_size:) \[[^\]]*\]", r"\1 [16]"),
    ]
    for pat, rep in edits:
        text, n = re.subn(pat, rep, text)
        assert n == 1, f"sweep/demo.yaml changed: pattern {pat!r} matched {n} times"
    return text


def run(cmd, env=None, timeout=600, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, env=env or ENV, timeout=timeout, **kw)


def validate(out):
    r = run([ctsweep_bin(), "validate", out])
    assert r.returncode == 0, f"ctsweep validate {out}: exit {r.returncode}: {r.stdout}{r.stderr}"
    return r.stdout.strip()


def trial_states(out):
    """{trial_id: (status, epochs recorded)} from the trial files that can be read now."""
    st = {}
    for f in glob.glob(os.path.join(out, "trials", "*.h5")):
        try:
            with h5py.File(f, "r") as h:
                st[os.path.basename(f)[:-3]] = (h.attrs["status"], len(h["epochs"]))
        except (OSError, KeyError):
            pass
    return st


class Sweeps:
    """The results directories, made on first use and shared by the tests."""

    def __init__(self):
        self.work = work_dir()
        self.cfg = os.path.join(self.work, "demo_reduced.yaml")
        with open(self.cfg, "w") as f:
            f.write(reduced_demo_config())
        # The cheaper backbone alone, for the runs that only need some trials.
        self.cfg_resnet = os.path.join(self.work, "demo_reduced_resnet34.yaml")
        text, n = re.subn(r"(\n  model:) \[[^\]]*\]", r"\1 [resnet34]", reduced_demo_config())
        assert n == 1
        with open(self.cfg_resnet, "w") as f:
            f.write(text)
        self._dirs = {}
        self.timings = {}

    def _fresh(self, name):
        out = os.path.join(self.work, name)
        shutil.rmtree(out, ignore_errors=True)
        return out

    def complete(self):
        if "complete" not in self._dirs:
            out = self._fresh("complete")
            t = time.time()
            r = run([ctsweep_bin(), "run", self.cfg, "-o", out])
            self.timings["complete"] = time.time() - t
            assert r.returncode == 0, f"sweep exit {r.returncode}: {r.stderr[-2000:]}"
            self._dirs["complete"] = out
        return self._dirs["complete"]

    def failed(self):
        """The same configuration restricted to resnet34 (the cheaper backbone;
        trial ids do not depend on the rest of the grid): one run's 3-epoch
        trial fails by CTSWEEP_FAULT at epoch 3, its 2-epoch sibling is done."""
        if "failed" not in self._dirs:
            out = self._fresh("failed")
            ids = self.complete_ids()
            victim = next(t for t, (model, epochs, clr) in ids.items()
                          if model == "resnet34" and epochs == 3 and clr == "exp_range")
            t = time.time()
            r = run([ctsweep_bin(), "run", self.cfg_resnet, "-o", out], env=dict(ENV, CTSWEEP_FAULT=f"{victim}:3"))
            self.timings["failed"] = time.time() - t
            assert r.returncode == 3, f"sweep with a fault: exit {r.returncode} (want 3): {r.stderr[-2000:]}"
            self._dirs["failed"] = out
            self.victim = victim
        return self._dirs["failed"]

    def complete_ids(self):
        """{trial_id: (model, epochs, clr_mode)} of the configuration, from the complete run's manifest."""
        out = self.complete()
        with h5py.File(os.path.join(out, "sweep.h5"), "r") as h:
            rows = h["trials"][...]
        dec = (lambda v: v.decode() if isinstance(v, bytes) else v)
        return {dec(r["trial_id"]): (dec(r["model"]), int(r["epochs"]), dec(r["clr_mode"])) for r in rows}

    def interrupted(self):
        """SIGKILL while one trial is done and another has epochs but is not
        done: the manifest still says `running`. An epoch takes a fraction of
        a second, so the run is frozen (SIGSTOP) before the files are looked
        at again; if it had moved on, it continues (SIGCONT) and is caught at
        the next such moment."""
        if "interrupted" not in self._dirs:
            out = self._fresh("interrupted")
            t = time.time()
            # Every epoch written as it ends (CTSWEEP_TRIAL_FLUSH=0): batched
            # writes (5 s by default) can keep a quick run's in-progress
            # epochs out of the files until its trials are done.
            # Budgets 2 and 12 epochs: once a run's 2-epoch trial is done, its
            # 12-epoch twin trains 10 more epochs, a window a poll can catch
            # on a fast machine too (with [2, 3] it lasted one epoch).
            cfg = os.path.join(self.work, "demo_reduced_resnet34_long.yaml")
            with open(self.cfg_resnet) as f:
                text, n = re.subn(r"(\n  epochs:) \[[^\]]*\]", r"\1 [2, 12]", f.read())
            assert n == 1
            with open(cfg, "w") as f:
                f.write(text)
            p = subprocess.Popen([ctsweep_bin(), "run", cfg, "-o", out], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, env=dict(ENV, CTSWEEP_TRIAL_FLUSH="0"),
                                 start_new_session=True)

            def mid_run():
                st = trial_states(out)
                done = [k for k, (s, _) in st.items() if s == "done"]
                mid = [k for k, (s, n) in st.items() if s == "running" and n >= 1]
                return (done, mid) if done and mid else None
            caught = None
            try:
                while time.time() - t < 300 and p.poll() is None:
                    if mid_run():
                        os.killpg(p.pid, signal.SIGSTOP)
                        time.sleep(0.1)
                        caught = mid_run()
                        if caught:
                            break
                        os.killpg(p.pid, signal.SIGCONT)
                    time.sleep(0.02)
            finally:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            self.timings["interrupted"] = time.time() - t
            assert caught, f"the run never had a done trial and a running one together (exit {p.returncode})"
            self._dirs["interrupted"] = out
        return self._dirs["interrupted"]


@pytest.fixture(scope="session")
def sweeps():
    s = Sweeps()
    yield s
    if s.timings:
        print("\nsweep timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in s.timings.items()))


@pytest.fixture(scope="session")
def repo():
    return REPO
