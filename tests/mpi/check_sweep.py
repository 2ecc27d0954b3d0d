"""The sweep under MPI, end to end (ctest label mpi).

usage: check_sweep.py CTSWEEP WORK CASE
CASE:
  ranks     the same sweep with 1, 2 and 3 ranks: identical per-epoch
            metrics, learning rates and probabilities; validate passes
  signal    SIGUSR1 mid-run: exit 75 (resume me), files valid, then
            --resume finishes with results identical to an uninterrupted run
  kill      SIGKILL of the whole mpirun at 5 random moments, --resume after
            each: validate passes after every kill, final results identical
  failure   one absurd-learning-rate trial fails with a non-finite-loss
            message, all others are done, exit status 3; an injected fault
            and --retry-failed; a checkpoint at the epoch of a budget whose
            report is missing is not resumed from (the run starts again)
  config    bad configurations: one error line naming file:line:key, exit 1,
            an existing OUTDIR untouched
  resume    --resume with a changed configuration is refused naming the keys;
            new grid values run only the new trials
  status    `ctsweep status` on a running sweep and on a finished one; a
            second run on the same OUTDIR meanwhile is refused; a truncated
            trial file fails validate (named) and --resume trains it again
  chaos     20 SIGKILLs of the whole job, resuming after each (a sweep
            that finishes between kills is checked and started afresh): half at
            random moments, half injected by CTSWEEP_KILL_POINT inside the
            master's file commits (new file open, closed, renamed; manifest,
            trial files, checkpoints): every file validates after every kill,
            nothing finished is lost, the final results equal an
            uninterrupted run; prints the kill points covered
  limits    under `ulimit -v`: a sweep whose feature_cache_mb holds almost
            nothing recomputes features instead of growing (same results as
            the cached run, more forwards), and a PNG declaring 50000 x 50000
            pixels is refused by the image guards with one line naming it
  slices    the grid in 3 slices (`run --slice I/3`, as Slurm array tasks
            run it, with different rank counts), one of them killed mid-run:
            the slices are disjoint and cover the grid; `ctsweep merge` of
            the finished slices gives the uninterrupted run's results; a
            merge with a slice missing leaves its trials pending (exit 75)
            and a merge with the killed slice carries its checkpoint, and
            `run --resume` on the merged folder then finishes identically;
            merging folders of different sweeps, the same slice twice, or
            into a folder of a plain run, and resuming a slice as another,
            are each refused with one line naming the folders
  data      data sets no classifier can be judged on, refused before any
            training with one exact line, exit 1, and OUTDIR untouched
            (a missing one not created, an existing one unchanged): an
            empty class folder, a class in train only (split files), one
            image copied into val and test under another name; a copy
            within train is a warning with the count and the run goes on,
            as a copy across splits does under data.on_duplicate: warn; the
            table of images per class and split on stdout
  kfold     a 3-fold sweep of phantoms grouped by a pattern (2 models, 2
            epoch budgets per fold): /dataset/group and /dataset/fold, no
            group in two of train/val/test in any fold, fold in /trials and
            the trial files, /test/prob at every epoch, the selected epoch
            and its test_acc/test_auc recomputed here; the same backbone
            passes per model as the single-split sweep of the same data;
            validate passes; --resume after a SIGKILL gives the
            uninterrupted results; the demo's trial ids are unchanged; a
            schema version 1 folder (tests/mpi/fixtures) still validates
  lock      the OUTDIR lock under LD_PRELOAD shims (tests/shim_flock.c) with
            NFS semantics (EBADF for an exclusive flock through a read-only
            descriptor) and with Lustre-without-flock semantics (ENOSYS):
            the sweep runs; a second run meanwhile is refused naming the
            holder's host, pid and start; status says running and who holds
            it; after a SIGKILL of the whole job the stale lock is taken over
            with a message and --resume finishes identically; --break-lock
            takes a lock a live run holds
  lostrank  SIGKILL of one worker rank alone mid-run, the job run as
            slurm/ctsweep-cpu.sbatch runs it (outside Slurm): Open MPI ends
            the job; the script finds the results valid and exits 75; every
            file validates and --resume finishes with results identical to an
            uninterrupted run
  hung      SIGSTOP of one worker rank with sweep.worker_timeout 6: the
            master ends the job with exit 75 within the timeout, naming the
            rank and host; every file validates; --resume finishes identically
  retire    CTSWEEP_DEVICE_FAULT=2 (rank 2's "GPU" fails every run at once with a CUDA
            error): its failed runs are retried on rank 1 (sweep.retries),
            rank 2 is retired after two device errors in a row; exit 0 and
            results identical to an uninterrupted run
  samedata  one rank started on a different copy of the data (MPMD: its
            configuration points at another folder): refused at start-up,
            one error naming that rank and its host
  simulate  CTSWEEP_SIMULATE_EPOCH_MS=5 (workers send synthetic epochs) under
            the fsync/rename delay shim, with trial files batched for 1000 s
            (CTSWEEP_TRIAL_FLUSH): every trial file still holds all its epochs
            (written at budgets and run ends), the folder validates, and the
            master's line counts every epoch message
  disk      the output on a small tmpfs that fills mid-sweep, then on one
            remounted read-only mid-sweep: one error line naming the file
            and the cause, exit 74 (not the resume code 75), every file valid, nothing finished lost,
            and --resume once the space (or write access) is back gives the
            uninterrupted results (needs root, for mount)
"""
import glob
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

CONFIG = """
data:
  phantoms: {count: 64, size: 64, seed: 2}
  split: {fractions: [0.6, 0.2, 0.2], seed: 1}
  image_size: 48
  augment: {rotate_deg: 10, rotate_prob: 0.5, flip: lr, flip_prob: 0.5}
  aug_views: 2
head: {standardize: true}
train: {feature_batch: 16}
grid:
  model: [resnet34, vgg16]
  epochs: [2, 4]
  batch_size: [8]
  clr:
    - {mode: triangular, base_lr: 1.0e-4, max_lr: 1.0e-3, step_size_epochs: 1}
    - {mode: exp_range, base_lr: 1.0e-4, max_lr: 1.0e-3, step_size: 3, gamma: 0.99}
%s
"""

PASSED = FAILED = 0
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1")


def report(ok, msg):
    global PASSED, FAILED
    PASSED += bool(ok)
    FAILED += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {msg}", flush=True)


def session_pids(sid):
    """Processes in session sid (mpirun started with start_new_session=True
    leads one; Open MPI puts each rank in a process group of its own, so
    killpg on mpirun's group alone would leave the ranks running)."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(d))
    return pids


def kill_job(p):
    """SIGKILL mpirun and every rank at once, as a scheduler killing the job
    does, and wait until all of them are gone."""
    deadline = time.time() + 60
    while True:
        pids = session_pids(p.pid)
        if not pids or time.time() > deadline:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if p.poll() is None:
            try:
                p.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
        time.sleep(0.05)
    p.wait()


def write_config(work, name, extra=""):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(CONFIG % extra)
    return path


def mpirun(n, args):
    return ["mpirun", "-n", str(n), "--oversubscribe"] + args


def run(cmd, env=None, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, env=env or ENV, **kw)


def results(out):
    """Everything deterministic about a finished sweep, the kept weights included."""
    r = {}
    for f in sorted(glob.glob(os.path.join(out, "trials", "*.h5"))):
        with h5py.File(f, "r") as h:
            e = h["epochs"][...]
            cols = [c for c in e.dtype.names if c != "seconds"]
            # The kept weights (train.keep_weights): their table and every value.
            table, values = [], [np.zeros(0, np.float32)]
            for kind in sorted(h["model"]) if "model" in h else []:
                for name in sorted(h["model"][kind]):
                    table.append((kind, int(h["model"][kind].attrs["epoch"]), name, h["model"][kind][name].shape))
                    values.append(h["model"][kind][name][...].ravel())
            r[os.path.basename(f)] = (np.array([tuple(x[c] for c in cols) for x in e]), h["lr_trace"][...],
                                      h["val/prob"][...], h["test/prob"][...], h.attrs["status"], tuple(table),
                                      np.concatenate(values))
    return r


def same(a, b):
    if a.keys() != b.keys():
        return False
    for k in a:
        for x, y in zip(a[k], b[k]):
            if isinstance(x, np.ndarray):
                if not np.array_equal(x, y):
                    return False
            elif x != y:
                return False
    return True


def validate(ctsweep, out):
    r = run([ctsweep, "validate", out])
    return r.returncode == 0, (r.stdout + r.stderr).strip().splitlines()[-1:]


def reusable(ctsweep, out):
    """Whether the reference run in out was made by this very ctsweep binary
    (a reference from another build may lack what this one records)."""
    st = os.stat(ctsweep)
    stamp, path = f"{st.st_size} {st.st_mtime_ns}\n", os.path.join(out, "made_by_ctsweep")
    if os.path.exists(os.path.join(out, "sweep.h5")) and os.path.exists(path) and open(path).read() == stamp:
        return True
    shutil.rmtree(out, ignore_errors=True)
    return False


def stamp_reference(ctsweep, out):
    st = os.stat(ctsweep)
    open(os.path.join(out, "made_by_ctsweep"), "w").write(f"{st.st_size} {st.st_mtime_ns}\n")


def reference(ctsweep, work, cfg):
    out = os.path.join(work, "ref")
    if not reusable(ctsweep, out):
        r = run(mpirun(1, [ctsweep, "run", cfg, "-o", out]))
        assert r.returncode == 0, r.stderr
        stamp_reference(ctsweep, out)
    return out, results(out)


def case_ranks(ctsweep, work):
    cfg = write_config(work, "sweep.yaml")
    ref_out, ref = reference(ctsweep, work, cfg)
    report(len(ref) == 8 and all(v[4] == "done" for v in ref.values()), f"1 rank: {len(ref)} trials done")
    for n in (2, 3):
        out = os.path.join(work, f"ranks{n}")
        shutil.rmtree(out, ignore_errors=True)
        t = time.time()
        r = run(mpirun(n, [ctsweep, "run", cfg, "-o", out]))
        ok_v, msg = validate(ctsweep, out)
        report(r.returncode == 0 and ok_v and same(ref, results(out)),
               f"{n} ranks: exit {r.returncode}, {msg}, results bit-identical to 1 rank ({time.time() - t:.0f}s)")


def wait_for_done(out, n, timeout=300):
    t = time.time()
    while time.time() - t < timeout:
        done = 0
        for f in glob.glob(os.path.join(out, "trials", "*.h5")):
            try:
                with h5py.File(f, "r") as h:
                    done += h.attrs["status"] == "done"
            except Exception:
                pass
        if done >= n:
            return True
        time.sleep(0.3)
    return False


def case_signal(ctsweep, work):
    cfg = write_config(work, "sweep.yaml")
    _, ref = reference(ctsweep, work, cfg)
    out = os.path.join(work, "signal")
    shutil.rmtree(out, ignore_errors=True)
    p = subprocess.Popen(mpirun(3, [ctsweep, "run", cfg, "-o", out]), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=ENV)
    wait_for_done(out, 1)
    p.send_signal(signal.SIGUSR1)
    log, _ = p.communicate(timeout=300)
    with h5py.File(os.path.join(out, "sweep.h5"), "r") as h:
        state = h.attrs["state"]
    ok_v, msg = validate(ctsweep, out)
    report(p.returncode == 75 and state == "interrupted" and ok_v,
           f"SIGUSR1: exit {p.returncode} (want 75), manifest state {state}, {msg}")
    # Workers stopped in training checkpoint their run; a worker stopped in a
    # backbone pass (at its next batch) has nothing to checkpoint yet.
    runs_ckpt = set()
    for f in glob.glob(os.path.join(out, "trials", "*.h5")):
        with h5py.File(f, "r") as h:
            if h.attrs["status"] != "done" and "checkpoint" in h and "file" in h["checkpoint"].attrs:
                runs_ckpt.add(h["checkpoint"].attrs["file"])
    r = run(mpirun(3, [ctsweep, "run", cfg, "-o", out, "--resume"]))
    ok_v, msg = validate(ctsweep, out)
    from_ckpt = [l for l in r.stdout.splitlines() if "continues from its checkpoint" in l]
    left = glob.glob(os.path.join(out, "checkpoints", "*.h5"))
    report(r.returncode == 0 and ok_v and same(ref, results(out)) and len(from_ckpt) == len(runs_ckpt) and not left,
           f"resume after SIGUSR1: exit {r.returncode}, {msg}, {len(from_ckpt)} run(s) continued from the "
           f"checkpoint taken at the signal (of {len(runs_ckpt)} taken), results identical to an uninterrupted run, checkpoints of the "
           f"finished runs deleted ({len(left)} left)")


def case_kill(ctsweep, work):
    cfg = write_config(work, "sweep.yaml")
    _, ref = reference(ctsweep, work, cfg)
    out = os.path.join(work, "kill")
    shutil.rmtree(out, ignore_errors=True)
    rng = random.Random(int(os.environ.get("CTSWEEP_KILL_SEED", "7")))
    # Checkpoint at every epoch so that kills land between checkpoints too.
    env = dict(ENV, CTSWEEP_CHECKPOINT_EVERY="2")
    args = [ctsweep, "run", cfg, "-o", out]
    for k in range(5):
        delay = rng.uniform(4.0, 20.0)
        # Own process group, so SIGKILL reaches mpirun and every rank at once.
        p = subprocess.Popen(mpirun(3, args + (["--resume"] if k else [])), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            p.wait(timeout=delay)
            killed = False
        except subprocess.TimeoutExpired:
            kill_job(p)
            killed = True
        if os.path.exists(os.path.join(out, "sweep.h5")):
            ok_v, msg = validate(ctsweep, out)
        else:
            ok_v, msg = True, ["no manifest yet"]
        done = len([1 for v in results(out).values() if v[4] == "done"]) if ok_v else -1
        # status must not call a killed sweep running (once the killed ranks,
        # which outlive mpirun by a moment, are gone).
        live, t_st = True, time.time()
        while live and time.time() - t_st < 15:
            st = run([ctsweep, "status", out]).stdout if os.path.exists(os.path.join(out, "sweep.h5")) else ""
            live = "sweep running" in st
            if live:
                time.sleep(0.2)
        report(ok_v and not live, f"kill {k + 1} at {delay:.1f}s ({'killed' if killed else 'had finished'}): {msg}, "
               f"{done} done, status: {'RUNNING (wrong)' if live else st.strip().splitlines()[-1:]}")
        args = [ctsweep, "run", cfg, "-o", out]
    r = run(mpirun(3, args + ["--resume"]))
    ok_v, msg = validate(ctsweep, out)
    report(r.returncode == 0 and ok_v and same(ref, results(out)),
           f"final resume: exit {r.returncode}, {msg}, results identical to an uninterrupted run")


def case_failure(ctsweep, work):
    cfg = os.path.join(work, "absurd.yaml")
    with open(cfg, "w") as f:
        f.write((CONFIG % "").replace("model: [resnet34, vgg16]", "model: [resnet34]").replace(
            "    - {mode: exp_range, base_lr: 1.0e-4, max_lr: 1.0e-3, step_size: 3, gamma: 0.99}",
            "    - {mode: triangular, base_lr: 1.0, max_lr: 1.0e+12, step_size: 2}"))
    out = os.path.join(work, "failure")
    shutil.rmtree(out, ignore_errors=True)
    r = run(mpirun(3, [ctsweep, "run", cfg, "-o", out]))
    res = results(out)
    failed, done = [], []
    for k, v in res.items():
        with h5py.File(os.path.join(out, "trials", k), "r") as h:
            (failed if v[4] == "failed" else done).append((k, h.attrs["error"], h.attrs["max_lr"]))
    ok_v, msg = validate(ctsweep, out)
    ok = (r.returncode == 3 and ok_v and failed and all(m >= 1e11 and "non-finite" in e for _, e, m in failed)
          and len(failed) == 2 and all(m < 1 for _, _, m in done) and len(done) == 2)
    report(ok, f"absurd learning rate: exit {r.returncode} (want 3), {len(failed)} failed "
               f"({failed[0][1] if failed else '-'}), {len(done)} done, {msg}")
    # A worker-side error injected into one run; then --retry-failed reruns it.
    cfg = write_config(work, "sweep.yaml")
    _, ref = reference(ctsweep, work, cfg)
    victim = sorted(ref)[0][:-3]
    out = os.path.join(work, "fault")
    shutil.rmtree(out, ignore_errors=True)
    r = run(mpirun(3, [ctsweep, "run", cfg, "-o", out]), env=dict(ENV, CTSWEEP_FAULT=f"{victim}:1"))
    res = results(out)
    failed = [k for k, v in res.items() if v[4] == "failed"]
    report(r.returncode == 3 and victim + ".h5" in failed and len(failed) <= 2 and len(res) - len(failed) >= 6,
           f"injected worker fault: exit {r.returncode}, failed {failed}, the rest done")
    r = run(mpirun(3, [ctsweep, "run", cfg, "-o", out, "--resume", "--retry-failed"]))
    report(r.returncode == 0 and same(ref, results(out)), f"--retry-failed: exit {r.returncode}, all trials done, "
                                                          f"results identical to an uninterrupted run")
    # A checkpoint at the epoch of a budget whose report never reached the
    # results (the state a kill between the two could leave before
    # checkpoints waited for the epoch's budget reports): resuming from it
    # would skip that budget, so --resume runs the run again instead.
    def attrs(k):
        with h5py.File(os.path.join(work, "ref", "trials", k), "r") as h:
            return h.attrs["model"], h.attrs["clr_mode"], int(h.attrs["epochs"])
    e2, e4 = (k[:-3] for k in sorted((k for k in ref if attrs(k)[:2] == ("vgg16", "triangular")),
                                       key=lambda k: attrs(k)[2]))
    out = os.path.join(work, "budgetckpt")
    shutil.rmtree(out, ignore_errors=True)
    r = run(mpirun(2, [ctsweep, "run", cfg, "-o", out]), env=dict(ENV, CTSWEEP_CHECKPOINT_EVERY="0",
                                                                  CTSWEEP_FAULT=f"{e4}:3"))
    t2, t4 = (os.path.join(out, "trials", k + ".h5") for k in (e2, e4))
    with h5py.File(t4, "r") as h:
        ck = dict(h["checkpoint"].attrs) if "checkpoint" in h else {}
    with h5py.File(t2, "a") as h:
        # Unfinished: its epochs (and their test probabilities) recorded, the
        # budget's report (and the kept weights sent with it) missing.
        h.attrs["status"] = "running"
        if "model" in h:  # the weights come with the budget's report
            del h["model"]
        for k, v in ck.items():
            h.require_group("checkpoint").attrs[k] = v
    ok_v, msg = validate(ctsweep, out)
    report(r.returncode == 3 and ck.get("epoch") == 2 and ok_v,
           f"set-up: the {e2}/{e4} run failed at epoch 3 with its checkpoint at epoch {ck.get('epoch')}; "
           f"trial {e2} (budget 2) made unfinished, pointing at it: {msg}")
    r = run(mpirun(2, [ctsweep, "run", cfg, "-o", out, "--resume", "--retry-failed"]))
    cont = [l for l in r.stdout.splitlines() if "continues from its checkpoint" in l]
    ok_v, msg = validate(ctsweep, out)
    report(r.returncode == 0 and ok_v and not cont and same(ref, results(out)),
           f"--resume does not continue past the unrecorded budget ({cont or 'no run continued'}): exit "
           f"{r.returncode}, {msg}, results identical to an uninterrupted run")


def case_config(ctsweep, work):
    out = os.path.join(work, "config_out")
    os.makedirs(out, exist_ok=True)
    sentinel = os.path.join(out, "keep.txt")
    with open(sentinel, "w") as f:
        f.write("finished results")
    base = CONFIG % ""
    cases = [
        ("unknown key", base.replace("  image_size: 48", "  image_size: 48\n  imagesize: 48"), "data.imagesize"),
        ("wrong type", base.replace("image_size: 48", "image_size: big"), "data.image_size"),
        ("empty list", base.replace("batch_size: [8]", "batch_size: []"), "grid.batch_size"),
        ("max_lr < base_lr", base.replace("max_lr: 1.0e-3, step_size_epochs", "max_lr: 1.0e-5, step_size_epochs"),
         "max_lr"),
        ("batch size 0", base.replace("batch_size: [8]", "batch_size: [0]"), "grid.batch_size"),
        ("missing weights", base + "weights: {vgg16: /nonexistent/vgg16.safetensors}\n", "weights.vgg16"),
    ]
    for name, text, key in cases:
        cfg = os.path.join(work, "bad.yaml")
        with open(cfg, "w") as f:
            f.write(text)
        before = sorted(os.listdir(out))
        r = run(mpirun(2, [ctsweep, "run", cfg, "-o", out]))
        lines = [l for l in r.stderr.splitlines() if "error" in l]
        ok = (r.returncode == 1 and len(lines) == 1 and key in lines[0] and "bad.yaml:" in lines[0]
              and sorted(os.listdir(out)) == before)
        report(ok, f"bad config ({name}): exit {r.returncode}: {lines[0] if lines else r.stderr.strip()[:200]}")


def case_groups(ctsweep, work):
    """ranks_per_trial 2: each batch split over two ranks, gradients summed with
    MPI_Allreduce. Float sums in another order: results match one rank per trial
    within 1e-4 (probabilities, losses, accuracies) after 4 epochs."""
    cfg = write_config(work, "sweep.yaml")
    _, ref = reference(ctsweep, work, cfg)
    gcfg = os.path.join(work, "groups.yaml")
    with open(gcfg, "w") as f:
        f.write((CONFIG % "").replace("ranks_per_trial: 1", "") + "ranks_per_trial: 2\n")
    for n in (3, 5):
        out = os.path.join(work, f"groups{n}")
        shutil.rmtree(out, ignore_errors=True)
        r = run(mpirun(n, [ctsweep, "run", gcfg, "-o", out]))
        res = results(out)
        worst = 0.0
        ids_differ = sorted(res) != sorted(ref)
        for k in ref:
            if k not in res:
                continue
            for x, y in zip(ref[k][:4], res[k][:4]):
                worst = max(worst, float(np.max(np.abs(np.asarray(x, float) - np.asarray(y, float)))) if np.size(x) else 0)
        ok_v, msg = validate(ctsweep, out)
        report(r.returncode == 0 and ok_v and not ids_differ and worst <= 1e-4,
               f"ranks_per_trial 2 with {n} ranks: exit {r.returncode}, {msg}, max difference from 1 rank "
               f"per trial {worst:.2e} (limit 1e-4)")
    bad = run(mpirun(2, [ctsweep, "run", gcfg, "-o", os.path.join(work, "groups_bad")]))
    line = [l for l in bad.stderr.splitlines() if "error" in l]
    report(bad.returncode == 1 and line and "ranks_per_trial" in line[0],
           f"ranks_per_trial 2 with 1 worker refused: {line[0] if line else bad.stderr[-200:]}")


def case_badimage(ctsweep, work):
    data = os.path.join(work, "baddata")
    shutil.rmtree(data, ignore_errors=True)
    r = run([ctsweep, "phantoms", "-o", data, "-n", "40", "--size", "64", "--seed", "4"])
    assert r.returncode == 0, r.stderr
    with open(os.path.join(data, "CT_COVID", "broken.png"), "w") as f:
        f.write("not an image\n")
    for policy in ("error", "skip"):
        cfg = os.path.join(work, f"bad_{policy}.yaml")
        text = (CONFIG % "").replace("  phantoms: {count: 64, size: 64, seed: 2}\n",
                                      f"  root: {data}\n  on_bad_image: {policy}\n")
        with open(cfg, "w") as f:
            f.write(text.replace("model: [resnet34, vgg16]", "model: [resnet34]").replace("epochs: [2, 4]", "epochs: [1]"))
        out = os.path.join(work, f"bad_{policy}_out")
        shutil.rmtree(out, ignore_errors=True)
        r = run(mpirun(2, [ctsweep, "run", cfg, "-o", out]))
        lines = [l for l in r.stderr.splitlines() if "broken.png" in l]
        if policy == "error":
            report(r.returncode == 1 and len(lines) == 1 and "not a PNG or JPEG" in lines[0] and
                   not os.path.exists(os.path.join(out, "sweep.h5")),
                   f"on_bad_image error: exit {r.returncode}, stops before training: {lines[0] if lines else '-'}")
        else:
            with h5py.File(os.path.join(out, "sweep.h5"), "r") as h:
                skipped = [x.decode() if isinstance(x, bytes) else x for x in h["dataset/skipped"][...]]
                n = len(h["dataset/path"])
            report(r.returncode == 0 and len(skipped) == 1 and "broken.png" in skipped[0] and n == 40 and lines,
                   f"on_bad_image skip: exit {r.returncode}, {n} images kept, skipped {skipped}, warned on stderr")


def phantom_root(ctsweep, work, name, n=40):
    """A data root of n phantoms (half per class) with split files: per class
    the first 12 names train, the next 4 val, the last 4 test."""
    data = os.path.join(work, name)
    shutil.rmtree(data, ignore_errors=True)
    r = run([ctsweep, "phantoms", "-o", data, "-n", str(n), "--size", "48", "--seed", "5"])
    assert r.returncode == 0, r.stderr
    os.makedirs(os.path.join(data, "splits"))
    lists = {}
    for cls in ("CT_COVID", "CT_NonCOVID"):
        names = sorted(os.listdir(os.path.join(data, cls)))
        lists[cls] = {"train": names[:12], "val": names[12:16], "test": names[16:]}
    return data, lists


def write_splits(data, lists):
    for cls, splits in lists.items():
        for split, names in splits.items():
            with open(os.path.join(data, "splits", f"{split}{cls}.txt"), "w") as f:
                f.write("".join(n + "\n" for n in names))


def data_config(work, name, data, split, extra=""):
    cfg = os.path.join(work, name)
    text = (CONFIG % "").replace("  phantoms: {count: 64, size: 64, seed: 2}\n",
                                 f"  root: {os.path.abspath(data)}\n{extra}")
    text = text.replace("  split: {fractions: [0.6, 0.2, 0.2], seed: 1}\n", f"  split: {split}\n")
    with open(cfg, "w") as f:
        f.write(text.replace("model: [resnet34, vgg16]", "model: [resnet34]").replace("epochs: [2, 4]", "epochs: [1]"))
    return cfg


def refused(ctsweep, work, name, cfg, want):
    """The run is refused with exactly one error line, exit 1; a missing OUTDIR
    is not created and an existing one is left as it was."""
    slug = name.replace(" ", "_")
    fresh = os.path.join(work, f"{slug}_out", "new")
    shutil.rmtree(os.path.dirname(fresh), ignore_errors=True)
    r = run(mpirun(2, [ctsweep, "run", cfg, "-o", fresh]))
    lines = [l for l in r.stderr.splitlines() if "error" in l]
    ok = r.returncode == 1 and lines == [want] and not os.path.exists(os.path.dirname(fresh))
    report(ok, f"{name}: exit {r.returncode}, OUTDIR not created: {lines[0] if lines else r.stderr.strip()[-300:]}")
    if not ok and lines != [want]:
        print(f"     want {want}")
    kept = os.path.join(work, f"{slug}_kept")
    shutil.rmtree(kept, ignore_errors=True)
    os.makedirs(kept)
    with open(os.path.join(kept, "notes.txt"), "w") as f:
        f.write("someone's notes\n")
    before = sorted(os.listdir(kept))
    r = run(mpirun(2, [ctsweep, "run", cfg, "-o", kept]))
    lines = [l for l in r.stderr.splitlines() if "error" in l]
    report(r.returncode == 1 and lines == [want] and sorted(os.listdir(kept)) == before,
           f"{name}: an existing OUTDIR untouched: {sorted(os.listdir(kept))}")


def case_data(ctsweep, work):
    # An empty class folder (a copy that failed), the default seeded split.
    data = os.path.join(work, "data_empty")
    shutil.rmtree(data, ignore_errors=True)
    r = run([ctsweep, "phantoms", "-o", data, "-n", "40", "--size", "48", "--seed", "5"])
    assert r.returncode == 0, r.stderr
    for n in os.listdir(os.path.join(data, "CT_NonCOVID")):
        os.remove(os.path.join(data, "CT_NonCOVID", n))
    cfg = data_config(work, "data_empty.yaml", data, "{fractions: [0.6, 0.2, 0.2], seed: 1}")
    refused(ctsweep, work, "empty class folder", cfg,
            "ctsweep: error: data: class CT_NonCOVID has 0 images in val (train 0, val 0, test 0); AUC and accuracy "
            "would be meaningless")
    # A class in train only: its val and test split files list nothing.
    data, lists = phantom_root(ctsweep, work, "data_trainonly")
    lists["CT_COVID"] = {"train": sum(lists["CT_COVID"].values(), []), "val": [], "test": []}
    write_splits(data, lists)
    cfg = data_config(work, "data_trainonly.yaml", data, "{files: splits}")
    refused(ctsweep, work, "class in train only", cfg,
            "ctsweep: error: data: class CT_COVID has 0 images in val (train 20, val 0, test 0); AUC and accuracy "
            "would be meaningless")
    # One val image copied into test under another name.
    data, lists = phantom_root(ctsweep, work, "data_leak")
    src = lists["CT_COVID"]["val"][1]
    shutil.copyfile(os.path.join(data, "CT_COVID", src), os.path.join(data, "CT_COVID", "zz_copy.png"))
    lists["CT_COVID"]["test"].append("zz_copy.png")
    write_splits(data, lists)
    cfg = data_config(work, "data_leak.yaml", data, "{files: splits}")
    refused(ctsweep, work, "copy in val and test", cfg,
            f"ctsweep: error: data: CT_COVID/{src} (val) and CT_COVID/zz_copy.png (test) have identical content: "
            "leakage between splits (1 set of identical files across splits); set data.on_duplicate: warn to run "
            "anyway")
    # The same under on_duplicate: warn, with a copy within train too: both
    # warned, the run goes on; the table on stdout.
    dup = lists["CT_NonCOVID"]["train"][2]
    shutil.copyfile(os.path.join(data, "CT_NonCOVID", dup), os.path.join(data, "CT_NonCOVID", "zz_twin.png"))
    lists["CT_NonCOVID"]["train"].append("zz_twin.png")
    write_splits(data, lists)
    cfg = data_config(work, "data_warn.yaml", data, "{files: splits}", "  on_duplicate: warn\n")
    out = os.path.join(work, "data_warn_out")
    shutil.rmtree(out, ignore_errors=True)
    r = run(mpirun(2, [ctsweep, "run", cfg, "-o", out]))
    warns = [l.split("warning: ", 1)[1] for l in r.stderr.splitlines() if "warning: data:" in l]
    want = [
        "data: fewer than 10 images of a class in val or test: CT_NonCOVID val 4, test 4; CT_COVID val 4, test 5; "
        "intervals will be wide",
        f"data: CT_COVID/{src} (val) and CT_COVID/zz_copy.png (test) have identical content: leakage between splits "
        "(1 set of identical files across splits; data.on_duplicate: warn)",
        f"data: 1 image is identical to another of the same split (train 1, val 0, test 0), e.g. CT_NonCOVID/{dup} "
        "and CT_NonCOVID/zz_twin.png (train): each copy counts again",
    ]
    table = ("data: images per class and split\n"
             "  class          train     val    test\n"
             "  CT_NonCOVID       13       4       4\n"
             "  CT_COVID          12       4       5\n"
             "  total             25       8       9\n")
    ok_v, msg = validate(ctsweep, out)
    report(r.returncode == 0 and warns == want and table in r.stdout and ok_v,
           f"on_duplicate: warn and a copy within train: exit {r.returncode}, {len(warns)} data warnings, table "
           f"printed: {table in r.stdout}, {msg}")
    if warns != want:
        print("     got  " + "\n          ".join(warns) + "\n     want " + "\n          ".join(want))


def case_resume(ctsweep, work):
    cfg = write_config(work, "sweep.yaml")
    ref_out, ref = reference(ctsweep, work, cfg)
    out = os.path.join(work, "resume")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(ref_out, out)
    changed = os.path.join(work, "changed.yaml")
    with open(changed, "w") as f:
        f.write((CONFIG % "").replace("image_size: 48", "image_size: 56").replace("rotate_prob: 0.5", "rotate_prob: 0.4"))
    before = {k: os.path.getmtime(os.path.join(out, "trials", k)) for k in os.listdir(os.path.join(out, "trials"))}
    r = run(mpirun(2, [ctsweep, "run", changed, "-o", out, "--resume"]))
    lines = [l for l in r.stderr.splitlines() if "error" in l]
    after = {k: os.path.getmtime(os.path.join(out, "trials", k)) for k in os.listdir(os.path.join(out, "trials"))}
    report(r.returncode == 1 and len(lines) == 1 and "data.image_size" in lines[0] and
           "data.augment.rotate_prob" in lines[0] and before == after,
           f"resume with a changed config refused, files untouched: {lines[0] if lines else r.stderr[-200:]}")
    grown = os.path.join(work, "grown.yaml")
    with open(grown, "w") as f:
        f.write((CONFIG % "").replace("batch_size: [8]", "batch_size: [8, 12]"))
    r = run(mpirun(2, [ctsweep, "run", grown, "-o", out, "--resume"]))
    res = results(out)
    kept = all(os.path.getmtime(os.path.join(out, "trials", k)) == before[k] for k in before)
    report(r.returncode == 0 and "resume: 8 trials already done" in r.stdout and len(res) == 16 and kept and
           all(same({k: ref[k]}, {k: res[k]}) for k in ref),
           f"new grid values on resume: exit {r.returncode}, {len(res)} trials, the 8 finished ones untouched")


def case_status(ctsweep, work):
    cfg = write_config(work, "sweep.yaml")
    out = os.path.join(work, "status")
    shutil.rmtree(out, ignore_errors=True)
    p = subprocess.Popen(mpirun(2, [ctsweep, "run", cfg, "-o", out]), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=ENV)
    wait_for_done(out, 1)
    r = run([ctsweep, "status", out])
    running = r.returncode == 0 and "trials:" in r.stdout and "sweep running" in r.stdout
    report(running, f"status while running: {r.stdout.strip().splitlines()[-1] if r.stdout else r.stderr}")
    r = run([ctsweep, "run", cfg, "-o", out, "--resume"])
    lines = r.stderr.strip().splitlines()
    report(r.returncode == 1 and len(lines) == 1 and "another ctsweep run is writing" in lines[0],
           f"a second run on the same OUTDIR while the first runs: exit {r.returncode}, {lines}")
    p.wait(timeout=300)
    r = run([ctsweep, "status", out])
    last = r.stdout.strip().splitlines()[-1] if r.stdout else r.stderr
    rows = [l for l in r.stdout.splitlines() if len(l.split()) > 5 and l.split()[5] == "done"]
    report(r.returncode == 0 and "8 done" in last and "sweep done" in last and len(rows) == 8,
           f"status after: {last}")
    # A damaged trial file: validate names it; --resume trains that trial again.
    _, ref = reference(ctsweep, work, cfg)
    dmg = os.path.join(work, "damaged")
    shutil.rmtree(dmg, ignore_errors=True)
    shutil.copytree(out, dmg)
    victim = sorted(glob.glob(os.path.join(dmg, "trials", "*.h5")))[0]
    os.truncate(victim, 2000)
    r = run([ctsweep, "validate", dmg])
    named = [l for l in (r.stdout + r.stderr).splitlines() if os.path.basename(victim) in l]
    report(r.returncode == 1 and named, f"validate on a truncated trial file: exit {r.returncode}, {named[:1]}")
    r = run(mpirun(2, [ctsweep, "run", cfg, "-o", dmg, "--resume"]))
    ok_v, msg = validate(ctsweep, dmg)
    report(r.returncode == 0 and ok_v and same(ref, results(dmg)),
           f"--resume retrains the damaged trial: exit {r.returncode}, {msg}, results identical to an uninterrupted run")


def case_chaos(ctsweep, work):
    cfg = write_config(work, "sweep.yaml")
    _, ref = reference(ctsweep, work, cfg)
    chaos(ctsweep, work, cfg, ref, "chaos", kills_wanted=20)


def chaos(ctsweep, work, cfg, ref, name, kills_wanted):
    """kills_wanted SIGKILLs of the sweep of cfg, whose uninterrupted results are ref."""
    out = os.path.join(work, name)
    shutil.rmtree(out, ignore_errors=True)
    rng = random.Random(int(os.environ.get("CTSWEEP_CHAOS_SEED", "11")))
    covered = {}
    finished_before = {}
    kills = rounds = cycles = 0
    # kills_wanted kills that land: when a sweep finishes between kills, its results
    # must equal the uninterrupted run's, and a fresh round starts.
    while kills < kills_wanted and cycles < 4 * kills_wanted:
        cycles += 1
        env = dict(ENV, CTSWEEP_CHECKPOINT_EVERY="1")
        args = [ctsweep, "run", cfg, "-o", out] + (["--resume"] if os.path.exists(os.path.join(out, "sweep.h5")) else [])
        if cycles % 2:
            point = ("open", "closed", "renamed")[(cycles // 2) % 3]
            env["CTSWEEP_KILL_POINT"] = f"{point}:{rng.randint(1, 25)}"
            delay = 300
        else:
            delay = rng.uniform(2.0, 12.0)
        p = subprocess.Popen(mpirun(3, args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env=env, start_new_session=True)
        try:
            _, err = p.communicate(timeout=delay)
            hit = [l for l in err.splitlines() if l.startswith("ctsweep: kill point")]
            if hit:
                kill_job(p)  # the ranks the injected kill left behind, before the next run takes the lock
                where = hit[0].split(" at ")[-1]
                kind = ("manifest" if where.endswith("sweep.h5") else
                        "checkpoint" if "/checkpoints/" in where else "trial file")
                point = hit[0].split()[3]  # e.g. closed:5
                what = f"{point} ({kind})"
                key = f"{point.split(':')[0]} ({kind})"
                covered[key] = covered.get(key, 0) + 1
                kills += 1
            else:
                what = None
        except subprocess.TimeoutExpired:
            kill_job(p)
            p.communicate()
            what = f"SIGKILL at {delay:.1f}s"
            covered["random moment"] = covered.get("random moment", 0) + 1
            kills += 1
        if what is None:
            # Not killed: the sweep ran to its end.
            ok_v, msg = validate(ctsweep, out)
            same_v = same(ref, results(out))
            report(p.returncode == 0 and ok_v and same_v,
                   f"chaos round {rounds + 1} finished after {kills} kill(s) so far: exit {p.returncode}, {msg}, "
                   f"results {'identical to' if same_v else 'DIFFERENT from'} an uninterrupted run"
                   + ("" if p.returncode == 0 else f"; stderr: {err.strip().splitlines()[-3:]}"))
            rounds += 1
            shutil.rmtree(out, ignore_errors=True)
            finished_before = {}
            continue
        if os.path.exists(os.path.join(out, "sweep.h5")):
            ok_v, msg = validate(ctsweep, out)
        else:
            ok_v, msg = True, ["no manifest yet"]
        now = results(out) if ok_v else {}
        lost = [t for t, v in finished_before.items() if t not in now or not same({t: v}, {t: now[t]})]
        finished_before = {t: v for t, v in now.items() if v[4] == "done"}
        report(ok_v and not lost, f"chaos kill {kills}: {what}: {msg}, {len(finished_before)} done, "
               f"{len(lost)} finished trial(s) lost or changed")
    r = run(mpirun(3, [ctsweep, "run", cfg, "-o", out] + (["--resume"] if os.path.exists(os.path.join(out, "sweep.h5")) else [])))
    ok_v, msg = validate(ctsweep, out)
    report(kills == kills_wanted and r.returncode == 0 and ok_v and same(ref, results(out)),
           f"chaos: {kills} kills in {rounds + 1} round(s); final resume: exit {r.returncode}, {msg}, results "
           f"identical to an uninterrupted run")
    print("kill points covered: " + ", ".join(f"{k} x{v}" for k, v in sorted(covered.items())), flush=True)


def case_slices(ctsweep, work):
    cfg = write_config(work, "sweep.yaml")
    _, ref = reference(ctsweep, work, cfg)
    base = os.path.join(work, "slices")
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    d = [os.path.join(base, f"s{i}") for i in range(3)]
    ids = []
    for i in range(3):
        r = run(mpirun(1 + i % 2 + 1, [ctsweep, "run", cfg, "-o", d[i], "--slice", f"{i}/3"]))
        ok_v, msg = validate(ctsweep, d[i])
        with h5py.File(os.path.join(d[i], "sweep.h5"), "r") as h:
            mine = [x.decode() for x in h["trials"]["trial_id"]]
            tag = h.attrs.get("slice")
        ids += mine
        part = {k: v for k, v in ref.items() if k[:-3] in mine}
        report(r.returncode == 0 and ok_v and tag == f"{i}/3" and same(part, results(d[i])),
               f"slice {i}/3 on {1 + i % 2 + 1} ranks: exit {r.returncode}, {msg}, {len(mine)} trial(s), "
               f"results identical to the whole run's")
    report(sorted(ids) == sorted(k[:-3] for k in ref) and len(set(ids)) == len(ids),
           f"the slices hold {len(ids)} trials, each of the grid's {len(ref)} exactly once")

    merged = os.path.join(base, "merged")
    r = run([ctsweep, "merge", "-o", merged] + d)
    ok_v, msg = validate(ctsweep, merged)
    report(r.returncode == 0 and ok_v and same(ref, results(merged)),
           f"merge of 3 slices: exit {r.returncode}, {msg}, results identical to an uninterrupted run: "
           f"{r.stdout.strip().splitlines()[-1:]}")
    with h5py.File(os.path.join(merged, "sweep.h5"), "r") as h:
        st = set(x.decode() for x in h["trials"]["status"])
        state = h.attrs["state"]
    report(st == {"done"} and state == "done", f"merged manifest: state {state}, trial statuses {sorted(st)}")
    r = run([ctsweep, "merge", "-o", merged] + d)
    report(r.returncode == 0 and same(ref, results(merged)), f"merging again into the merged folder: exit {r.returncode}")

    # A slice killed mid-run (with a checkpoint) and a slice not given.
    killed = os.path.join(base, "s1-killed")
    env = dict(ENV, CTSWEEP_CHECKPOINT_EVERY="0", CTSWEEP_KILL_POINT="renamed:9")
    p = subprocess.run(mpirun(2, [ctsweep, "run", cfg, "-o", killed, "--slice", "1/3"]), capture_output=True,
                       text=True, env=env)
    partial = results(killed)
    ckpts = glob.glob(os.path.join(killed, "checkpoints", "*.h5"))
    report(p.returncode != 0 and "kill point" in p.stderr and ckpts and any(v[4] != "done" for v in partial.values()),
           f"slice 1/3 killed mid-run: exit {p.returncode}, {len(ckpts)} checkpoint(s), "
           f"statuses {sorted(str(v[4]) for v in partial.values())}")
    for name, srcs in (("with the killed slice", [d[0], killed, d[2]]), ("with slice 1/3 missing", [d[0], d[2]])):
        out = os.path.join(base, "partial")
        shutil.rmtree(out, ignore_errors=True)
        r = run([ctsweep, "merge", "-o", out] + srcs)
        ok_v, msg = validate(ctsweep, out)
        said = r.stdout.strip().splitlines()
        carried = glob.glob(os.path.join(out, "checkpoints", "*.h5"))
        report(r.returncode == 75 and ok_v and any("pending" in l for l in said) and
               (bool(carried) if "killed" in name else any("slices not given: 1/3" in l for l in said)),
               f"merge {name}: exit {r.returncode}, {msg}, {len(carried)} checkpoint(s) carried over, {said[-2:]}")
        r = run(mpirun(2, [ctsweep, "run", cfg, "-o", out, "--resume"]))
        ok_v, msg = validate(ctsweep, out)
        cont = [l for l in r.stdout.splitlines() if "continues from its checkpoint" in l]
        report(r.returncode == 0 and ok_v and same(ref, results(out)) and (bool(cont) or "missing" in name),
               f"--resume on that merge: exit {r.returncode}, {msg}, {len(cont)} run(s) continued from a checkpoint, "
               f"results identical to an uninterrupted run")

    # Refusals: one line naming what is at fault, nothing written.
    other = write_config(work, "other.yaml", "ranks_per_trial: 1")
    od = os.path.join(base, "other")
    r = run([ctsweep, "run", other, "-o", od, "--slice", "0/3"])
    cases = [
        ("folders of two sweeps", [ctsweep, "merge", "-o", os.path.join(base, "x1"), d[0], od], [od, "configuration"]),
        ("the same slice twice", [ctsweep, "merge", "-o", os.path.join(base, "x2"), d[0], d[1], d[0]], ["0/3", "both"]),
        ("into a plain run's folder", [ctsweep, "merge", "-o", os.path.join(work, "ref"), d[0]], ["ref", "merge"]),
        ("a folder without a manifest", [ctsweep, "merge", "-o", os.path.join(base, "x3"), base], [base, "sweep.h5"]),
        ("resume of slice 0/3 as 2/3", mpirun(1, [ctsweep, "run", cfg, "-o", d[0], "--resume", "--slice", "2/3"]),
         ["slice 0/3", "--slice 0/3"]),
        ("--slice 3/3", [ctsweep, "run", cfg, "-o", os.path.join(base, "x4"), "--slice", "3/3"], ["3/3"]),
    ]
    for what, cmd, names in cases:
        before = results(os.path.join(work, "ref"))
        r = run(cmd)
        lines = [l for l in r.stderr.strip().splitlines() if "error" in l or "expected" in l]
        report(r.returncode in (1, 2) and len(lines) == 1 and all(n in lines[0] for n in names) and
               same(before, results(os.path.join(work, "ref"))) and not os.path.exists(os.path.join(base, "x1", "sweep.h5")),
               f"refused: {what}: exit {r.returncode}, {lines}")


def png_header_only(path, w, h):
    """A PNG whose IHDR declares w x h RGB pixels, with one tiny IDAT."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def limited(cmd, kib):
    return ["bash", "-c", f"ulimit -v {kib} && exec \"$@\"", "limited"] + cmd


def case_limits(ctsweep, work):
    cfg = write_config(work, "sweep.yaml")
    ref_out, ref = reference(ctsweep, work, cfg)
    # The same grid with the cache budget cut to 1 MiB (the phantoms'
    # features need several).
    small = os.path.join(work, "small_cache.yaml")
    with open(cfg) as f:
        text = f.read().replace("train: {feature_batch: 16}", "train: {feature_batch: 16, feature_cache_mb: 1}")
    with open(small, "w") as f:
        f.write(text)
    out = os.path.join(work, "limits")
    shutil.rmtree(out, ignore_errors=True)
    # Enough address space for MPI, oneDNN and the backbone plans.
    r = run(limited(mpirun(2, [ctsweep, "run", small, "-o", out]), 6 << 20))
    res = results(out) if r.returncode == 0 else {}

    def forwards(o):
        with h5py.File(os.path.join(o, "sweep.h5"), "r") as h:
            t = h["trials"][...]
        return int(sum(t["forwards"]))
    report(r.returncode == 0 and same(ref, res) and forwards(out) > forwards(ref_out),
           f"feature_cache_mb 1 under ulimit -v 6 GiB: exit {r.returncode}, results identical to the cached run, "
           f"forwards {forwards(out) if r.returncode == 0 else '?'} > {forwards(ref_out)} (recomputed, not stored)"
           + (f"; {r.stderr.strip().splitlines()[-1:]}" if r.returncode else ""))
    bomb = os.path.join(work, "bomb.png")
    png_header_only(bomb, 50000, 50000)
    r = run(limited([ctsweep, "features", "--model", "identity", "--image-size", "32", "-o",
                     os.path.join(work, "bomb.h5"), bomb], 1 << 20))
    lines = r.stderr.strip().splitlines()
    report(r.returncode == 1 and len(lines) == 1 and bomb in lines[0] and "limit" in lines[0],
           f"50000 x 50000 PNG under ulimit -v 1 GiB: exit {r.returncode}, {lines}")


KFOLD_CONFIG = """
data:
  phantoms: {count: 90, size: 48, seed: 3}
  split: {fractions: [0.6, 0.2, 0.2], seed: 1%s}
  groups: {pattern: '^(CT_[A-Za-z]+/phantom_[0-9]{4})'}
  image_size: 32
head: {standardize: true}
train: {feature_batch: 16}
grid:
  model: [resnet34, vgg16]
  epochs: [2, 3]
  batch_size: [8]
  clr:
    - {mode: triangular, base_lr: 1.0e-4, max_lr: 1.0e-3, step_size_epochs: 1}
"""

# The demo's trial ids as every earlier ctsweep computed them: a
# configuration without groups or folds keeps its ids (and results).
DEMO_IDS = set("""d9e9798f9ace0e31 24b4ac356d8a473d 23788726f179b62a 908449ae638c2520 f70c365a6cb992db
367a54d989d28cb6 4fbb6c2701222f43 f04e21e064c4fb08 757c7f1e5ebec464 c5c16d48f47dec4c 5ecad3c32ddfefbc
60dbe5027bc31fc1 9fd09df08b70662c b6fe085c158010e3 f44acadf8182aeb5 aa3afa3b792a819d 9532a17e3ec25860
6c5a66711da10f4e 354e2b63595168a3 1d451a7a77546cc2 f2ffc933048bc1a7 6b6d54e6e7486631 d2e2d9a193bb7593
6eed312b2dba351e""".split())


def forwards_per_model(out):
    """Backbone passes per model: the trials of one run share one count, so
    each run (the trial's hyperparameters but its epoch budget) counts once."""
    with h5py.File(os.path.join(out, "sweep.h5"), "r") as h:
        t = h["trials"][...]
    runs = {}
    for r in t:
        key = (r["model"], r["batch_size"], r["clr_mode"], r["seed"], r["fold"] if "fold" in t.dtype.names else -1)
        runs[key] = int(r["forwards"])
    per = {}
    for key, n in runs.items():
        per[key[0].decode()] = per.get(key[0].decode(), 0) + n
    return per


def selected(epochs):
    """The selection rule, written out: highest val AUC, ties by lower val
    loss, then the earlier epoch (1-based)."""
    best = 0
    for e in range(1, len(epochs)):
        a, b = epochs[e], epochs[best]
        if a["val_auc"] > b["val_auc"] or (a["val_auc"] == b["val_auc"] and a["val_loss"] < b["val_loss"]):
            best = e
    return best + 1


def case_kfold(ctsweep, work):
    from sklearn.metrics import roc_auc_score
    kcfg, scfg = os.path.join(work, "kfold.yaml"), os.path.join(work, "kfold_single.yaml")
    with open(kcfg, "w") as f:
        f.write(KFOLD_CONFIG % ", kfold: 3")
    with open(scfg, "w") as f:
        f.write(KFOLD_CONFIG % "")
    out, single = os.path.join(work, "kfold"), os.path.join(work, "kfold_single")
    for o, c in ((out, kcfg), (single, scfg)):
        shutil.rmtree(o, ignore_errors=True)
        t = time.time()
        r = run(mpirun(2, [ctsweep, "run", c, "-o", o]))
        ok_v, msg = validate(ctsweep, o)
        report(r.returncode == 0 and ok_v, f"{os.path.basename(o)}: exit {r.returncode}, {msg} ({time.time() - t:.0f}s)"
               + (f"; {r.stderr.strip().splitlines()[-1:]}" if r.returncode else ""))
        if r.returncode:
            return
    with h5py.File(os.path.join(out, "sweep.h5"), "r") as h:
        d = h["dataset"]
        split, fold, label = d["split"][...], d["fold"][...], d["label"][...]
        group = [g.decode() for g in d["group"][...]]
        trials = h["trials"][...]
    report(all((fold == -1) == (split == 2)) and set(fold[split != 2]) == {0, 1, 2},
           f"/dataset/fold: -1 for the {int(sum(split == 2))} test images, folds 0..2 for the others")
    whole = True
    for k in range(3):
        role = np.where(split == 2, 2, np.where(fold == k, 1, 0))
        seen = {}
        for g, r in zip(group, role):
            whole &= seen.setdefault(g, r) == r
    report(whole and len(set(group)) < len(group),
           f"{len(set(group))} groups of {len(group)} images: none in two of train/val/test in any fold")
    counts = [[int(sum((fold == k) & (label == l))) for l in (0, 1)] for k in range(3)]
    report(all(max(c[l] for c in counts) - min(c[l] for c in counts) <= 5 for l in (0, 1)),
           f"val per fold and class {counts} (within one group of 5)")
    report(sorted(trials["fold"].tolist()) == [0] * 4 + [1] * 4 + [2] * 4, f"/trials fold: {sorted(trials['fold'].tolist())}")
    test_rows = np.where(split == 2)[0]
    ok_files, worst = True, ""
    for row in trials:
        tid = row["trial_id"].decode()
        with h5py.File(os.path.join(out, "trials", tid + ".h5"), "r") as h:
            tp, ep = h["test/prob"][...], h["epochs"][...]
            sel = int(h.attrs["selected_epoch"])
            vi, ti = h["val/index"][...], h["test/index"][...]
            f_attr = int(h.attrs["fold"])
        y = label[ti]
        acc = float(np.mean((tp[sel - 1] > 0.5) == (y != 0)))
        auc = roc_auc_score(y, tp[sel - 1])
        checks = [f_attr == row["fold"], tp.shape == (row["epochs"], len(test_rows)), sel == selected(ep),
                  sel == row["selected_epoch"], abs(acc - row["test_acc"]) <= 1e-12,
                  abs(auc - row["test_auc"]) <= 1e-12, list(vi) == list(np.where(fold == f_attr)[0]),
                  list(ti) == list(test_rows)]
        if not all(checks):
            ok_files, worst = False, f"{tid}: {checks}"
    report(ok_files, "trial files: fold, /test/prob [epochs, n_test], selected epoch by the rule, test_acc and "
           "test_auc (sklearn) at it, val rows of the fold" + (f"; {worst}" if worst else ""))
    kf, sf = forwards_per_model(out), forwards_per_model(single)
    report(kf == sf and all(v > 0 for v in kf.values()),
           f"backbone passes per model: 3 folds {kf}, one split {sf}")
    r = run([ctsweep, "status", out])
    report(r.returncode == 0 and " fold " in r.stdout.splitlines()[0] and "highest val AUC" in r.stdout,
           f"status names the fold and the selection rule: {[l for l in r.stdout.splitlines() if 'sel:' in l]}")
    # SIGKILL after the first finished trial, then --resume.
    ref = results(out)
    killed = os.path.join(work, "kfold_killed")
    shutil.rmtree(killed, ignore_errors=True)
    env = dict(ENV, CTSWEEP_CHECKPOINT_EVERY="0")
    p = subprocess.Popen(mpirun(2, [ctsweep, "run", kcfg, "-o", killed]), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    wait_for_done(killed, 1)
    kill_job(p)
    n_done = len([1 for v in results(killed).values() if v[4] == "done"])
    r = run(mpirun(2, [ctsweep, "run", kcfg, "-o", killed, "--resume"]), env=env)
    ok_v, msg = validate(ctsweep, killed)
    report(r.returncode == 0 and ok_v and same(ref, results(killed)),
           f"--resume after a SIGKILL with {n_done} of 12 trials done: exit {r.returncode}, {msg}, results identical")
    # A version-1 folder written before this format (tests/mpi/fixtures) still
    # validates; a version-2 trial file with version 1's /test/prob does not.
    v1 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "results-v1")
    r = run([ctsweep, "validate", v1])
    st = run([ctsweep, "status", v1])
    report(r.returncode == 0 and st.returncode == 0 and "schema version 1" in st.stdout,
           f"a schema version 1 folder: {(r.stdout + r.stderr).strip().splitlines()[-1:]}, status reads it")
    # Its configuration (no groups, no folds) run now: the same trial ids and
    # the same records; version 1's final-epoch test probabilities are the
    # last row of version 2's. A tolerance, not equality: the fixture was
    # written on another machine, whose oneDNN kernels may differ.
    again = os.path.join(work, "kfold_v1_again")
    shutil.rmtree(again, ignore_errors=True)
    r = run(mpirun(1, [ctsweep, "run", os.path.join(v1, "config.yaml"), "-o", again]))
    old_ids = sorted(os.listdir(os.path.join(v1, "trials")))
    new_ids = sorted(os.listdir(os.path.join(again, "trials"))) if r.returncode == 0 else []
    worst = 0.0
    for k in old_ids if old_ids == new_ids else []:
        with h5py.File(os.path.join(v1, "trials", k), "r") as a, h5py.File(os.path.join(again, "trials", k), "r") as b:
            pairs = [(a["val/prob"][...], b["val/prob"][...]), (a["lr_trace"][...], b["lr_trace"][...]),
                     (a["test/prob"][...], b["test/prob"][-1])]
            pairs += [(a["epochs"][c], b["epochs"][c]) for c in ("train_loss", "val_loss", "val_acc", "val_auc")]
            for x, y in pairs:
                x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
                d = np.where(np.isnan(x) & np.isnan(y), 0.0, np.abs(x - y)) if x.shape == y.shape else [np.inf]
                worst = max([worst] + [np.inf if np.isnan(v) else float(v) for v in d])
    report(r.returncode == 0 and old_ids == new_ids and worst <= 1e-4,
           f"the version 1 folder's configuration rerun: the same {len(new_ids)} trial ids, records within "
           f"{worst:.2g} of the stored ones (tolerance 1e-4)")
    bad = os.path.join(work, "kfold_v1_prob")
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(out, bad)
    victim = sorted(glob.glob(os.path.join(bad, "trials", "*.h5")))[0]
    with h5py.File(victim, "r+") as h:
        last = h["test/prob"][-1]
        del h["test/prob"]
        h["test/prob"] = last
    r = run([ctsweep, "validate", bad])
    named = [l for l in (r.stdout + r.stderr).splitlines() if os.path.basename(victim) in l and "test/prob" in l]
    report(r.returncode == 1 and named, f"version 2 with a 1-D /test/prob: exit {r.returncode}, {named[:1]}")
    demo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sweep", "demo.yaml")
    r = run([ctsweep, "run", demo, "-o", os.path.join(work, "demo_ids"), "--dry-run"])
    ids = {l.split()[0] for l in r.stdout.splitlines() if len(l.split()) > 8 and len(l.split()[0]) == 16}
    report(r.returncode == 0 and ids == DEMO_IDS, f"the demo's {len(ids)} trial ids are unchanged")


def mount_tmpfs(path, size_mb):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["umount", path], capture_output=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", path], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise SystemExit(f"FAIL cannot mount a tmpfs at {path} (this case needs root): {r.stderr.strip()}")


def disk_trouble(ctsweep, work, name, cause, make_trouble, undo):
    """Runs the sweep into a fresh tmpfs, causes trouble once a trial is
    done, checks the failure, undoes it and resumes."""
    cfg = write_config(work, "sweep.yaml")
    _, ref = reference(ctsweep, work, cfg)
    mnt = os.path.join(work, name)
    mount_tmpfs(mnt, 512)  # the reference sweep keeps 4 VGG16 heads of 52 MB (train.keep_weights)
    try:
        out = os.path.join(mnt, "out")
        p = subprocess.Popen(mpirun(3, [ctsweep, "run", cfg, "-o", out]), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, env=ENV)
        wait_for_done(out, 1)
        make_trouble(mnt)
        _, err = p.communicate(timeout=300)
        before = {k: v for k, v in results(out).items() if v[4] == "done"}
        lines = [l for l in err.splitlines() if l.startswith("ctsweep: error:")]
        named = lines and out in lines[0] and cause in lines[0]
        ok_v, msg = validate(ctsweep, out)
        report(p.returncode == 74 and named and ok_v and before,
               f"{name}: exit {p.returncode} (want 74), {lines[0] if lines else 'no error line'!r}, {msg}, "
               f"{len(before)} trial(s) done")
        undo(mnt)
        r = run(mpirun(3, [ctsweep, "run", cfg, "-o", out, "--resume"]))
        after = results(out)
        kept = all(same({k: v}, {k: after[k]}) for k, v in before.items())
        ok_v, msg = validate(ctsweep, out)
        report(r.returncode == 0 and ok_v and kept and same(ref, after),
               f"{name}: resume once fixed: exit {r.returncode}, {msg}, the {len(before)} finished trial(s) "
               f"unchanged, results identical to an uninterrupted run")
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)


def case_disk(ctsweep, work):
    def fill(mnt):
        # Everything left on the file system goes to one file.
        with open(os.path.join(mnt, "filler"), "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            except OSError:
                pass

    disk_trouble(ctsweep, work, "full", "No space left on device", fill,
                 lambda mnt: os.unlink(os.path.join(mnt, "filler")))
    def remount(mode):
        def do(mnt):
            # A file open for writing makes a read-only remount fail (EBUSY):
            # retry until the master is between writes.
            t = time.time()
            while subprocess.run(["mount", "-o", f"remount,{mode}", mnt], capture_output=True).returncode != 0:
                if time.time() - t > 30:
                    raise SystemExit(f"FAIL cannot remount {mnt} {mode}")
                time.sleep(0.02)
        return do
    disk_trouble(ctsweep, work, "readonly", "Read-only file system", remount("ro"), remount("rw"))


def case_lock(ctsweep, work):
    import fcntl
    import socket
    shim = os.environ["CTSWEEP_SHIM_FLOCK_LIB"]
    cfg = write_config(work, "sweep.yaml")
    _, ref = reference(ctsweep, work, cfg)
    host = socket.gethostname()
    for mode, errname in (("nfs", "EBADF"), ("enosys", "ENOSYS")):
        env = dict(ENV, LD_PRELOAD=shim, CTSWEEP_SHIM_FLOCK=mode)
        out = os.path.join(work, f"lock_{mode}")
        shutil.rmtree(out, ignore_errors=True)
        # The shim in force: what the old lock (exclusive flock through a
        # read-only descriptor) met.
        os.makedirs(out)
        probe = subprocess.run(["/usr/bin/python3", "-c", "import fcntl,errno,sys\n"
                                f"f=open({os.path.join(out, '.lock')!r},'a+');f2=open(f.name,'r')\n"
                                "try:\n fcntl.flock(f2, fcntl.LOCK_EX|fcntl.LOCK_NB); print('locked')\n"
                                "except OSError as e: print(errno.errorcode[e.errno])"],
                               capture_output=True, text=True, env=env)
        report(probe.stdout.strip() == errname, f"{mode} shim: an exclusive flock through a read-only descriptor "
                                                f"gives {probe.stdout.strip()} (want {errname})")
        shutil.rmtree(out)
        p = subprocess.Popen(mpirun(3, [ctsweep, "run", cfg, "-o", out]), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
        wait_for_done(out, 1)
        r = run(mpirun(1, [ctsweep, "run", cfg, "-o", out, "--resume"]), env=env)
        lines = [l for l in r.stderr.splitlines() if "error" in l]
        st = run([ctsweep, "status", out], env=env).stdout
        report(r.returncode == 1 and len(lines) == 1 and f"host {host}" in lines[0] and f"pid " in lines[0]
               and "since" in lines[0] and "sweep running" in st and "held by host" in st,
               f"{mode}: a second run meanwhile is refused: {lines[0] if lines else r.stderr.strip()[-200:]!r}; "
               f"status: {[l for l in st.splitlines() if 'held by' in l]}")
        kill_job(p)
        owner = os.path.exists(os.path.join(out, ".lock.owner"))
        t_st = time.time()
        while True:  # the killed ranks outlive mpirun by a moment
            st = run([ctsweep, "status", out], env=env).stdout
            if "stopped" in st or time.time() - t_st > 15:
                break
            time.sleep(0.2)
        r = run(mpirun(3, [ctsweep, "run", cfg, "-o", out, "--resume"]), env=env)
        took = [l for l in r.stderr.splitlines() if "stale lock" in l]
        ok_v, msg = validate(ctsweep, out)
        report(owner and "stopped" in st and r.returncode == 0 and took and ok_v and same(ref, results(out))
               and not os.path.exists(os.path.join(out, ".lock.owner")),
               f"{mode}: after a SIGKILL of the job (record left: {owner}, status "
               f"{'stopped' if 'stopped' in st else 'NOT stopped'}) --resume takes the stale lock over "
               f"({took[0].split(': ', 2)[-1] if took else 'no message'}): exit {r.returncode}, {msg}, results "
               f"identical to an uninterrupted run, record removed at the end")
    # --break-lock: a record naming a live process elsewhere (here: this
    # test's own pid on a host that is not this one) is refused, then taken.
    out = os.path.join(work, "lock_break")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    with open(os.path.join(out, ".lock.owner"), "w") as f:
        f.write(f"host=othernode\npid={os.getpid()}\npid_start=1\njob=\nrestarts=0\nstarted=2026-12-01T00:00:00Z\n")
    env = dict(ENV, LD_PRELOAD=shim, CTSWEEP_SHIM_FLOCK="enosys")
    r = run(mpirun(2, [ctsweep, "run", cfg, "-o", out]), env=env)
    lines = [l for l in r.stderr.splitlines() if "error" in l]
    report(r.returncode == 1 and lines and "othernode" in lines[0] and "--break-lock" in lines[0],
           f"a record of another host without Slurm is refused: {lines[0] if lines else r.stderr.strip()[-200:]!r}")
    r = run(mpirun(2, [ctsweep, "run", cfg, "-o", out, "--break-lock"]), env=env)
    took = [l for l in r.stderr.splitlines() if "stale lock" in l]
    report(r.returncode == 0 and took and same(ref, results(out)),
           f"--break-lock takes it: exit {r.returncode}, {took[0].split(': ', 2)[-1] if took else 'no message'}")


def rank_pid(sid, rank):
    """The ctsweep process of MPI rank `rank` in session sid."""
    for pid in session_pids(sid):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if b"OMPI_COMM_WORLD_RANK=%d" % rank in env and b"ctsweep" in cmd.split(b"\0")[0]:
            return pid
    return None


def repo_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def case_lostrank(ctsweep, work):
    cfg = write_config(work, "sweep.yaml")
    _, ref = reference(ctsweep, work, cfg)
    out = os.path.join(work, "lostrank")
    shutil.rmtree(out, ignore_errors=True)
    env = dict(ENV, CTSWEEP=ctsweep, CTSWEEP_CPU_BIND="none", CTSWEEP_LAUNCHER="mpirun")
    for k in ("SLURM_JOB_ID", "SLURM_NTASKS", "SLURM_RESTART_COUNT", "SLURM_CPUS_PER_TASK"):
        env.pop(k, None)
    p = subprocess.Popen(["bash", os.path.join(repo_root(), "slurm", "ctsweep-cpu.sbatch"), cfg, out, "3"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    wait_for_done(out, 1)
    victim = rank_pid(p.pid, 2)
    t = time.time()
    if victim:
        os.kill(victim, signal.SIGKILL)
    try:
        log, _ = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        kill_job(p)
        log = "(timed out)"
    took = time.time() - t
    kill_job(p)  # whatever outlived mpirun, before --resume takes the lock
    said = [l for l in log.splitlines() if "lost a rank" in l]
    ok_v, msg = validate(ctsweep, out)
    report(victim and p.returncode == 75 and said and ok_v,
           f"SIGKILL of rank 2 (pid {victim}) alone: the job exits {p.returncode} (want 75) {took:.1f}s later, "
           f"{msg}; {said[0].split(': ', 1)[-1] if said else log[-600:]}")
    r = run(mpirun(3, [ctsweep, "run", cfg, "-o", out, "--resume"]))
    ok_v, msg = validate(ctsweep, out)
    report(r.returncode == 0 and ok_v and same(ref, results(out)),
           f"--resume after the lost rank: exit {r.returncode}, {msg}, results identical to an uninterrupted run")


def case_hung(ctsweep, work):
    cfg = write_config(work, "hung.yaml", "sweep: {worker_timeout: 6}")
    ref_cfg = write_config(work, "sweep.yaml")
    _, ref = reference(ctsweep, work, ref_cfg)
    out = os.path.join(work, "hung")
    shutil.rmtree(out, ignore_errors=True)
    p = subprocess.Popen(mpirun(3, [ctsweep, "run", cfg, "-o", out]), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)
    wait_for_done(out, 1)
    victim = rank_pid(p.pid, 2)
    t = time.time()
    if victim:
        os.kill(victim, signal.SIGSTOP)
    try:
        _, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        err = "(timed out)"
    took = time.time() - t
    kill_job(p)
    lines = [l for l in err.splitlines() if l.startswith("ctsweep: error:")]
    ok_v, msg = validate(ctsweep, out)
    with h5py.File(os.path.join(out, "sweep.h5"), "r") as h:
        state = h.attrs["state"]
    report(victim and p.returncode == 75 and took < 6 + 30 and lines and "rank 2 on" in lines[0]
           and "worker_timeout" in lines[0] and ok_v and state == "interrupted",
           f"SIGSTOP of rank 2: exit {p.returncode} (want 75) {took:.1f}s later (timeout 6 s), manifest {state}, "
           f"{msg}; {lines[0] if lines else err[-400:]!r}")
    r = run(mpirun(3, [ctsweep, "run", cfg, "-o", out, "--resume"]))
    ok_v, msg = validate(ctsweep, out)
    report(r.returncode == 0 and ok_v and same(ref, results(out)),
           f"--resume after the hung rank: exit {r.returncode}, {msg}, results identical to an uninterrupted run")


def case_retire(ctsweep, work):
    cfg = write_config(work, "sweep.yaml")
    _, ref = reference(ctsweep, work, cfg)
    out = os.path.join(work, "retire")
    shutil.rmtree(out, ignore_errors=True)
    r = run(mpirun(3, [ctsweep, "run", cfg, "-o", out]), env=dict(ENV, CTSWEEP_DEVICE_FAULT="2"))
    retried = [l for l in r.stderr.splitlines() if "trying it again on another worker" in l]
    retired = [l for l in r.stderr.splitlines() if "retired for the rest of the job" in l]
    res = results(out)
    ranks = set()
    for k in res:
        with h5py.File(os.path.join(out, "trials", k), "r") as h:
            ranks.add(int(h.attrs["rank"]) if "rank" in h.attrs else -1)
    ok_v, msg = validate(ctsweep, out)
    report(r.returncode == 0 and len(retried) == 2 and len(retired) == 1 and "rank 2" in retired[0] and ok_v
           and same(ref, res),
           f"a broken device on rank 2: exit {r.returncode}, {len(retried)} run(s) retried on another worker, "
           f"{retired[0].split('warning: ')[-1][:160] if retired else 'not retired'}; {msg}, results identical to an "
           f"uninterrupted run (trained on ranks {sorted(ranks)})")


def case_samedata(ctsweep, work):
    import socket
    cfg = write_config(work, "sweep.yaml")
    data = os.path.join(work, "data_copy")
    if not os.path.exists(data):
        r = run([ctsweep, "phantoms", "-o", data, "-n", "64", "--size", "64", "--seed", "2"])
        assert r.returncode == 0, r.stderr
    text = (CONFIG % "").replace("  phantoms: {count: 64, size: 64, seed: 2}\n", f"  root: {data}\n")
    stale = os.path.join(work, "stale_data")
    shutil.rmtree(stale, ignore_errors=True)
    shutil.copytree(data, stale)
    victim = sorted(glob.glob(os.path.join(stale, "*", "*.png")))[5]
    os.remove(victim)  # the stale copy lacks one image
    a, b = os.path.join(work, "data_a.yaml"), os.path.join(work, "data_b.yaml")
    with open(a, "w") as f:
        f.write(text)
    with open(b, "w") as f:
        f.write(text.replace(data, stale))
    out = os.path.join(work, "samedata")
    shutil.rmtree(out, ignore_errors=True)
    r = run(["mpirun", "--oversubscribe", "-n", "2", ctsweep, "run", a, "-o", out, ":", "-n", "1", ctsweep, "run", b,
             "-o", out])
    lines = [l for l in r.stderr.splitlines() if "error" in l]
    host = socket.gethostname()
    report(r.returncode == 1 and len(lines) == 1 and f"rank 2 on host {host}" in lines[0] and "different data set" in lines[0]
           and not os.path.exists(os.path.join(out, "sweep.h5")),
           f"rank 2 on another copy of the data: exit {r.returncode}: {lines[0] if lines else r.stderr.strip()[-300:]!r}")
    r = run(["mpirun", "--oversubscribe", "-n", "2", ctsweep, "run", a, "-o", out, "--dry-run", ":", "-n", "1", ctsweep,
             "run", a, "-o", out, "--dry-run"])
    report(r.returncode == 0, f"the same copy everywhere: accepted (dry run exit {r.returncode})")


def case_simulate(ctsweep, work):
    cfg = write_config(work, "sweep.yaml")
    out = os.path.join(work, "simulate")
    shutil.rmtree(out, ignore_errors=True)
    env = dict(ENV, CTSWEEP_SIMULATE_EPOCH_MS="5", CTSWEEP_TRIAL_FLUSH="1000", CTSWEEP_FSYNC_DELAY_MS="2",
               LD_PRELOAD=os.environ["CTSWEEP_SHIM_FSYNC_LIB"])
    r = run(mpirun(4, [ctsweep, "run", cfg, "-o", out]), env=env)
    line = [l for l in r.stdout.splitlines() if l.startswith("master:")]
    epochs = {}
    for f in glob.glob(os.path.join(out, "trials", "*.h5")):
        with h5py.File(f, "r") as h:
            epochs[os.path.basename(f)] = (len(h["epochs"]), int(h.attrs["epochs"]), h.attrs["status"])
    full = all(n == want and st == "done" for n, want, st in epochs.values())
    ok_v, msg = validate(ctsweep, out)
    # 4 runs (2 models x 2 schedules) of 4 epochs each.
    report(r.returncode == 0 and ok_v and len(epochs) == 8 and full and line and line[0].startswith("master: 16 epoch messages"),
           f"simulated workers, batched trial files: exit {r.returncode}, {msg}, every trial file holds its "
           f"{sorted(set(e[1] for e in epochs.values()))} epochs: {full}; {line[0] if line else r.stdout[-300:]}")


def main():
    ctsweep, work, case = sys.argv[1], sys.argv[2], sys.argv[3]
    # The shared reference run is kept per instruction set: results are
    # bit-identical on one ISA, not across them (an AVX-512 CPU's second pass
    # with ONEDNN_MAX_CPU_ISA=AVX2 must not meet the first pass's reference).
    isa = subprocess.run([ctsweep, "--version"], capture_output=True, text=True).stdout.split("ISA ")[-1].strip(" )\n")
    print(f"oneDNN ISA: {isa} (ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', 'unset')})")
    work = os.path.join(work, isa)
    os.makedirs(work, exist_ok=True)
    {"ranks": case_ranks, "signal": case_signal, "kill": case_kill, "failure": case_failure,
     "config": case_config, "resume": case_resume, "groups": case_groups, "badimage": case_badimage, "data": case_data, "status": case_status, "disk": case_disk, "lock": case_lock, "lostrank": case_lostrank, "hung": case_hung, "retire": case_retire,
     "samedata": case_samedata, "simulate": case_simulate, "chaos": case_chaos, "limits": case_limits,
     "slices": case_slices, "kfold": case_kfold}[case](ctsweep, work)
    print(f"{PASSED} passed, {FAILED} failed")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
