"""The sbatch scripts against a real Slurm (ctest label slurm).

usage: check_slurm.py CTSWEEP REPO WORK CASE
CASE:
  scripts    bash -n and shellcheck (when installed) on slurm/*.sbatch; the two
             scripts share one body, line for line
  submit     slurm/ctsweep-cpu.sbatch runs a small phantom sweep: the job
             completes, the results validate and equal a direct mpirun run;
             submitted again it trains nothing and touches no trial file
  preempt    the warning signal mid-run (scancel --signal=USR1 --batch): the
             job checkpoints, requeues itself, restarts with --resume and
             finishes; results identical to an uninterrupted run; the job log
             shows the checkpoint and the resume
  badconfig  a bad configuration fails fast: job FAILED, the config error
             (file:line: key) in the job log, no requeue; a missing
             configuration file likewise
  cancel     scancel mid-run: the job ends CANCELLED and is not requeued; the
             results directory stays valid
  gpu        slurm/ctsweep.sbatch on a node that declares GPUs as a generic
             resource (no real GPU: the sweep's backend is cpu): the job gets
             its GPUs, completes, and the results equal the direct run
  array      the sweep as a job array (sbatch --array=0-2): each task runs its
             slice of the grid (one slice is empty: the grid has 2 runs) into
             OUTDIR/slices/I-of-3, every task completes, each slice validates,
             the last task's merge leaves OUTDIR with the whole sweep, equal to
             the direct run; the logs name each task's slice and the merges
  unwritable the results folder (a tmpfs) remounted read-only mid-run: ctsweep
             exits 74, the job ends FAILED 74 and is not requeued, the log says
             why; then the warning signal with CTSWEEP_MAX_REQUEUE=0: exit 75,
             not requeued, the log names the limit
  srun       preempt again with CTSWEEP_LAUNCHER=srun (srun --mpi=pmix);
             skipped when this Slurm or Open MPI lacks PMIx

Every case but scripts starts its own single-node Slurm: munged, slurmctld
and slurmd run as this script's children from a slurm.conf generated for
this machine (its CPUs and memory), on free ports, with every state, spool,
log and pid file under WORK; they are stopped at the end, even on failure or
a signal, and the daemons die with this script if it is killed.
"""
import atexit
import ctypes
import glob
import os
import re
import shutil
import signal
import socket
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
train: {feature_batch: 16, threads: 1}
grid:
  model: [vgg16, resnet34]
  epochs: [3, 16]
  batch_size: [8]
  clr:
    - {mode: triangular, base_lr: 1.0e-4, max_lr: 1.0e-3, step_size_epochs: 1}
"""
N_TRIALS = 4
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL",
         "DEADLINE"}

PASSED = FAILED = 0


def report(ok, msg):
    global PASSED, FAILED
    PASSED += bool(ok)
    FAILED += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {msg}", flush=True)


def base_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_"))}
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return env


def run(cmd, env=None, timeout=120, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, env=env or base_env(), timeout=timeout, **kw)


# ---- the cluster ----

def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def die_with_parent():
    """In the child before exec: SIGTERM when this script dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def mem_mib():
    with open("/proc/meminfo") as f:
        kib = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
    return max(256, kib // 1024 - max(512, kib // 1024 // 10))


class Cluster:
    """A single-node Slurm on this machine, owned by this process."""

    def __init__(self, root, gpus=0):
        self.root = os.path.abspath(root)
        self.gpus = gpus
        self.conf = os.path.join(self.root, "slurm.conf")
        self.procs = []
        self.stopped = False
        self.host = socket.gethostname().split(".")[0]
        self.env = dict(base_env(), SLURM_CONF=self.conf)

    def path(self, *p):
        return os.path.join(self.root, *p)

    def write_conf(self):
        ctld_port, slurmd_port = free_ports(2)
        cpus = len(os.sched_getaffinity(0))  # as nproc
        gres = f" Gres=gpu:{self.gpus}" if self.gpus else ""
        conf = f"""# generated by tests/slurm/check_slurm.py for one test run
ClusterName=ctsweeptest
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: how long a requeued job waits before it starts again (120 s by default).
AuthInfo=socket={self.path('munge', 'munge.sock')},cred_expire=10
StateSaveLocation={self.path('state')}
SlurmdSpoolDir={self.path('spool')}
SlurmctldPidFile={self.path('run', 'slurmctld.pid')}
SlurmdPidFile={self.path('run', 'slurmd.pid')}
SlurmctldLogFile={self.path('log', 'slurmctld.log')}
SlurmdLogFile={self.path('log', 'slurmd.log')}
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={self.path('plugstack.conf')}
TmpFS={self.path('tmp')}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SwitchType=switch/none
JobRequeue=1
ReturnToService=2
SchedulerType=sched/builtin
# Look at pending jobs every 2 s (60 s by default), so a requeued job starts soon.
SchedulerParameters=sched_interval=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
MinJobAge=600
KillWait=10
InactiveLimit=0
SlurmctldTimeout=60
SlurmdTimeout=120
{"GresTypes=gpu" if self.gpus else ""}
NodeName={self.host} NodeHostname={self.host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mib()}{gres} State=UNKNOWN
PartitionName=test Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
"""
        with open(self.conf, "w") as f:
            f.write(conf)
        with open(self.path("plugstack.conf"), "w") as f:
            f.write("")
        if self.gpus:
            # Slurm wants a device file per GPU; /dev/null stands in (nothing is
            # constrained: no cgroups here), so jobs get CUDA_VISIBLE_DEVICES.
            with open(self.path("gres.conf"), "w") as f:
                f.write(f"NodeName={self.host} Name=gpu File=/dev/null Count={self.gpus}\n")
        return cpus

    def spawn(self, name, cmd):
        log = open(self.path("log", name + ".out"), "w")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                             preexec_fn=die_with_parent, cwd=self.root)
        log.close()
        self.procs.append((name, p))
        return p

    def start(self):
        self.kill_leftovers()  # of an earlier run of this case that was killed outright
        shutil.rmtree(self.root, ignore_errors=True)
        for d in ("munge", "state", "spool", "log", "run", "tmp"):
            os.makedirs(self.path(d), mode=0o700)
        os.chmod(self.root, 0o755)
        key = self.path("munge", "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        cpus = self.write_conf()
        self.spawn("munged", ["munged", "-F", "--force", "--socket", self.path("munge", "munge.sock"),
                              "--key-file", key, "--pid-file", self.path("run", "munged.pid"),
                              "--log-file", self.path("log", "munged.log"),
                              "--seed-file", self.path("munge", "munged.seed"), "--num-threads", "2"])
        self.wait_for(lambda: os.path.exists(self.path("munge", "munge.sock")), 20, "munged's socket")
        self.spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", self.conf])
        self.wait_for(lambda: run(["scontrol", "ping"], env=self.env).stdout.count("UP") > 0, 60, "slurmctld")
        self.spawn("slurmd", ["slurmd", "-D", "-f", self.conf, "-N", self.host])
        self.wait_for(lambda: run(["sinfo", "-h", "-N", "-o", "%T"], env=self.env).stdout.strip() == "idle", 60,
                      "the node to be idle")
        return cpus

    def wait_for(self, pred, timeout, what):
        t = time.time()
        while time.time() - t < timeout:
            for name, p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited with {p.returncode} while waiting for {what}: "
                                       f"{self.tail(name)}")
            if pred():
                return
            time.sleep(0.3)
        raise RuntimeError(f"timed out after {timeout}s waiting for {what}; slurmctld: {self.tail('slurmctld')}; "
                           f"slurmd: {self.tail('slurmd')}")

    def tail(self, name, n=5):
        out = []
        for f in (self.path("log", name + ".out"), self.path("log", name + ".log")):
            if os.path.exists(f):
                with open(f, errors="replace") as h:
                    out += h.read().splitlines()[-n:]
        return " | ".join(out)

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        # Cancel what still runs, so slurmstepd and the jobs' processes end too.
        try:
            ids = run(["squeue", "-h", "-o", "%i"], env=self.env, timeout=20).stdout.split()
            if ids:
                run(["scancel"] + ids, env=self.env, timeout=20)
                t = time.time()
                while time.time() - t < 30 and run(["squeue", "-h", "-o", "%i"], env=self.env, timeout=20).stdout.strip():
                    time.sleep(0.5)
        except Exception as e:  # the daemons may be gone already
            print(f"note: cancelling jobs at shutdown: {e}", flush=True)
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.kill_leftovers()

    def leftovers(self):
        """Live processes that carry this cluster's SLURM_CONF: its daemons, their
        slurmstepd and the jobs' processes (zombies excepted: they are dead)."""
        mark = f"SLURM_CONF={self.conf}".encode()
        pids = []
        for d in glob.glob("/proc/[0-9]*"):
            pid = int(os.path.basename(d))
            if pid == os.getpid():
                continue
            try:
                with open(os.path.join(d, "stat")) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        continue
                with open(os.path.join(d, "environ"), "rb") as f:
                    if mark in f.read().split(b"\0"):
                        pids.append(pid)
            except (OSError, IndexError):
                pass
        return pids

    def kill_leftovers(self):
        for pid in self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # ---- jobs ----

    def sbatch(self, args, env=None):
        r = run(["sbatch", "--parsable"] + args, env=dict(self.env, **(env or {})))
        if r.returncode != 0:
            raise RuntimeError(f"sbatch failed: {r.stderr.strip()}")
        return r.stdout.strip().split(";")[0]

    def job(self, jid):
        r = run(["scontrol", "-o", "show", "job", jid], env=self.env)
        return dict(re.findall(r"(\w+)=(\S*)", r.stdout))

    def wait_job(self, jid, pred, timeout):
        t = time.time()
        while time.time() - t < timeout:
            j = self.job(jid)
            if pred(j):
                return j
            time.sleep(0.5)
        return self.job(jid)


def final(j):
    return j.get("JobState") in FINAL


# ---- results ----

def write_config(work, name, text=CONFIG):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def results(out):
    """Everything deterministic in a sweep's trial files."""
    r = {}
    for f in sorted(glob.glob(os.path.join(out, "trials", "*.h5"))):
        with h5py.File(f, "r") as h:
            e = h["epochs"][...]
            cols = [c for c in e.dtype.names if c != "seconds"]
            r[os.path.basename(f)] = (np.array([tuple(x[c] for c in cols) for x in e]), h["lr_trace"][...],
                                      h["val/prob"][...], h["val/index"][...], h["test/prob"][...],
                                      h["test/index"][...], h.attrs["status"])
    return r


def same(a, b):
    if not a or a.keys() != b.keys():
        return False
    for k in a:
        for x, y in zip(a[k], b[k]):
            if isinstance(x, np.ndarray):
                if x.shape != y.shape or not np.array_equal(x, y):
                    return False
            elif x != y:
                return False
    return True


def validate(ctsweep, out):
    r = run([ctsweep, "validate", out])
    return r.returncode == 0, ((r.stdout + r.stderr).strip().splitlines() or ["-"])[-1]


def reference(ctsweep, work, cfg):
    """The same sweep run directly with mpirun, kept between cases."""
    out = os.path.join(work, "ref")
    manifest = os.path.join(out, "sweep.h5")
    ok = (os.path.exists(manifest) and os.path.getmtime(manifest) > os.path.getmtime(ctsweep)
          and validate(ctsweep, out)[0])
    if ok:
        with h5py.File(os.path.join(out, "sweep.h5"), "r") as h:
            ok = h.attrs["config_yaml"] == CONFIG and h.attrs["state"] == "done"
    if not ok:
        shutil.rmtree(out, ignore_errors=True)
        t = time.time()
        r = run(["mpirun", "-n", "2", "--oversubscribe", ctsweep, "run", cfg, "-o", out], timeout=600)
        assert r.returncode == 0, r.stderr
        print(f"reference: direct mpirun -n 2 run in {time.time() - t:.0f}s", flush=True)
    res = results(out)
    assert len(res) == N_TRIALS and all(v[-1] == "done" for v in res.values()), "reference run incomplete"
    return res


def read_log(path):
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()


def show(log, n=12):
    return "\n    " + "\n    ".join(log.strip().splitlines()[-n:])


# ---- cases ----

def case_scripts(ctsweep, repo, work):
    scripts = [os.path.join(repo, "slurm", s) for s in ("ctsweep.sbatch", "ctsweep-cpu.sbatch")]
    for s in scripts:
        r = run(["bash", "-n", s])
        report(r.returncode == 0, f"bash -n {os.path.basename(s)}: {r.stderr.strip() or 'clean'}")
    if shutil.which("shellcheck"):
        r = run(["shellcheck"] + scripts)
        report(r.returncode == 0, f"shellcheck: {(r.stdout.strip() or 'clean')[:2000]}")
    else:
        print("shellcheck not installed: skipped", flush=True)
    bodies = []
    for s in scripts:
        with open(s) as f:
            text = f.read()
        i = text.find("# ---- common to ctsweep.sbatch and ctsweep-cpu.sbatch")
        bodies.append(text[i:] if i >= 0 else None)
        directives = [l for l in text.splitlines() if l.startswith("#SBATCH")]
        need = ["--signal=B:USR1@600", "--requeue", "--open-mode=append"]
        report(all(any(n in d for d in directives) for n in need),
               f"{os.path.basename(s)} asks for {', '.join(need)}")
    report(bodies[0] is not None and bodies[0] == bodies[1], "both scripts share the common body line for line")


def submit_cpu(cluster, repo, work, name, args=(), env=None, script="ctsweep-cpu.sbatch", extra=()):
    log = os.path.join(work, f"{name}.log")
    if os.path.exists(log):
        os.remove(log)
    jid = cluster.sbatch([f"--output={log}", "--job-name=" + name, "--ntasks=2", "--cpus-per-task=1",
                          "--time=00:15:00", f"--chdir={work}"] + list(extra) +
                         [os.path.join(repo, "slurm", script)] + list(args), env=env)
    return jid, log


def case_submit(ctsweep, repo, work, cluster):
    cfg = write_config(work, "sweep.yaml")
    ref = reference(ctsweep, work, cfg)
    out = os.path.join(work, "submit")
    shutil.rmtree(out, ignore_errors=True)
    env = {"CTSWEEP": ctsweep}
    t = time.time()
    jid, log = submit_cpu(cluster, repo, work, "submit", [cfg, out], env)
    j = cluster.wait_job(jid, final, 300)
    text = read_log(log)
    ok_v, msg = validate(ctsweep, out)
    report(j.get("JobState") == "COMPLETED" and j.get("ExitCode") == "0:0" and j.get("Restarts") == "0" and ok_v
           and "sweep done" in text and same(ref, results(out)),
           f"job {jid}: {j.get('JobState')} exit {j.get('ExitCode')} in {time.time() - t:.0f}s, {msg}, "
           f"{len(results(out))} trials equal to the direct mpirun run" + ("" if ok_v else show(text)))
    before = {f: os.path.getmtime(f) for f in glob.glob(os.path.join(out, "trials", "*.h5"))}
    # Again, configured through the environment this time: nothing is trained.
    t = time.time()
    jid, log = submit_cpu(cluster, repo, work, "again", (), dict(env, CTSWEEP_CONFIG=cfg, CTSWEEP_OUT=out))
    j = cluster.wait_job(jid, final, 300)
    text = read_log(log)
    after = {f: os.path.getmtime(f) for f in glob.glob(os.path.join(out, "trials", "*.h5"))}
    report(j.get("JobState") == "COMPLETED" and "--resume" in text and f"resume: {N_TRIALS} trials already done" in text
           and before == after and same(ref, results(out)),
           f"the finished sweep submitted again (job {jid}, {time.time() - t:.0f}s): {j.get('JobState')}, "
           f"runs with --resume, {N_TRIALS} trials already done, no trial file rewritten" +
           ("" if before == after else show(text)))


def epochs_in_flight(out):
    """Epochs recorded by trials that are not done yet."""
    n = 0
    for f in glob.glob(os.path.join(out, "trials", "*.h5")):
        try:
            with h5py.File(f, "r") as h:
                if h.attrs["status"] != "done":
                    n = max(n, len(h["epochs"]))
        except (OSError, KeyError):
            pass
    return n


def case_preempt(ctsweep, repo, work, cluster, name="preempt", env=None):
    cfg = write_config(work, "sweep.yaml")
    ref = reference(ctsweep, work, cfg)
    out = os.path.join(work, name)
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.time()
    jid, log = submit_cpu(cluster, repo, work, name, [cfg, out], dict(env or {}, CTSWEEP=ctsweep))
    t = time.time()
    while time.time() - t < 300 and epochs_in_flight(out) < 2 and not final(cluster.job(jid)):
        time.sleep(0.2)
    n = epochs_in_flight(out)
    r = run(["scancel", "--signal=USR1", "--batch", jid], env=cluster.env)
    report(r.returncode == 0 and n >= 2, f"USR1 sent to the batch shell of job {jid} with a trial at epoch {n} "
                                         f"({time.time() - t0:.0f}s after submission) {r.stderr.strip()}")
    j = cluster.wait_job(jid, lambda j: final(j) or (j.get("JobState") == "PENDING" and j.get("Restarts") == "1"), 120)
    report(j.get("JobState") == "PENDING" and j.get("Restarts") == "1",
           f"job {jid} requeued itself: {j.get('JobState')}, restarts {j.get('Restarts')}, reason {j.get('Reason')}")
    with h5py.File(os.path.join(out, "sweep.h5"), "r") as h:
        state = h.attrs["state"]
    ok_v, msg = validate(ctsweep, out)
    report(state == "interrupted" and ok_v, f"after the stop: manifest state {state}, {msg}")
    # The requeued job starts again when its old credential expires (cred_expire above).
    j = cluster.wait_job(jid, final, 300)
    text = read_log(log)
    ok_v, msg = validate(ctsweep, out)
    report(j.get("JobState") == "COMPLETED" and j.get("ExitCode") == "0:0" and j.get("Restarts") == "1" and ok_v
           and same(ref, results(out)),
           f"job {jid} restarted and finished: {j.get('JobState')} exit {j.get('ExitCode')}, restarts "
           f"{j.get('Restarts')}, {msg}, results identical to an uninterrupted run ({time.time() - t0:.0f}s in all)"
           + ("" if ok_v else show(text)))
    want = [("the warning", r"received SIGUSR1: asking ctsweep"),
            ("ctsweep's stop", r"sweep stopped by a signal: .* run again with --resume \(exit 75\)"),
            ("the checkpoint", r"ctsweep checkpointed and stopped \(exit 75"),
            ("the requeue", rf"requeueing job {jid} \(restart 1 of at most 20\) after the warning signal"),
            ("the restart", rf"restart 1 of job {jid}: continuing the sweep in .* with --resume"),
            ("the resume from the checkpoint", r"resume: run \d+ continues from its checkpoint at epoch \d+"),
            ("the end", r"sweep done: 4 done, 0 failed")]
    missing = [w for w, rx in want if not re.search(rx, text)]
    ordered = [m.start() for m in (re.search(rx, text) for _, rx in want) if m]
    report(not missing and ordered == sorted(ordered),
           "the job log (appended across both runs) shows, in order: " + ", ".join(w for w, _ in want) +
           (f"; missing {missing}" + show(text, 40) if missing else ""))
    for line in text.splitlines():
        if re.search(r"received SIGUSR1|exit 75|requeueing|restart 1 of|continues from its checkpoint", line):
            print("    " + line, flush=True)


def case_badconfig(ctsweep, repo, work, cluster):
    bad = write_config(work, "bad.yaml", CONFIG.replace("batch_size: [8]", "batch_size: [8]\n  batchsize: [8]"))
    line = [i + 1 for i, l in enumerate(open(bad).read().splitlines()) if "batchsize" in l][0]
    out = os.path.join(work, "bad_out")
    shutil.rmtree(out, ignore_errors=True)
    t = time.time()
    jid, log = submit_cpu(cluster, repo, work, "badconfig", [bad, out], {"CTSWEEP": ctsweep})
    j = cluster.wait_job(jid, final, 120)
    took = time.time() - t
    time.sleep(2)  # a requeue would show now
    j = cluster.job(jid)
    text = read_log(log)
    errors = [l for l in text.splitlines() if "ctsweep: error:" in l]
    report(j.get("JobState") == "FAILED" and j.get("ExitCode") == "1:0" and j.get("Restarts") == "0"
           and took < 60 and len(errors) == 1 and f"bad.yaml:{line}: grid.batchsize" in errors[0]
           and "requeueing" not in text and not os.path.exists(os.path.join(out, "sweep.h5")),
           f"bad config: job {jid} {j.get('JobState')} exit {j.get('ExitCode')} after {took:.0f}s, restarts "
           f"{j.get('Restarts')}, not requeued; log: {errors[0] if errors else show(text)}")
    missing = os.path.join(work, "no-such.yaml")
    jid, log = submit_cpu(cluster, repo, work, "noconfig", [missing, out], {"CTSWEEP": ctsweep})
    j = cluster.wait_job(jid, final, 60)
    text = read_log(log)
    report(j.get("JobState") == "FAILED" and j.get("Restarts") == "0" and f"cannot read the configuration '{missing}'" in text,
           f"missing config: job {jid} {j.get('JobState')} exit {j.get('ExitCode')}; log: "
           f"{text.strip().splitlines()[-1] if text.strip() else '-'}")


def case_cancel(ctsweep, repo, work, cluster):
    """scancel mid-run: Slurm ends the job; the script does not requeue it."""
    cfg = write_config(work, "sweep.yaml")
    out = os.path.join(work, "cancel")
    shutil.rmtree(out, ignore_errors=True)
    jid, log = submit_cpu(cluster, repo, work, "cancel", [cfg, out], {"CTSWEEP": ctsweep})
    t = time.time()
    while time.time() - t < 300 and epochs_in_flight(out) < 1 and not final(cluster.job(jid)):
        time.sleep(0.2)
    run(["scancel", jid], env=cluster.env)
    j = cluster.wait_job(jid, final, 120)
    time.sleep(2)  # a requeue would show now
    j = cluster.job(jid)
    text = read_log(log)
    ok_v, msg = validate(ctsweep, out)
    state = "-"
    if ok_v:
        with h5py.File(os.path.join(out, "sweep.h5"), "r") as h:
            state = h.attrs["state"]
    report(j.get("JobState") == "CANCELLED" and j.get("Restarts") == "0" and "received SIGTERM" in text
           and "requeueing" not in text and ok_v,
           f"scancel: job {jid} {j.get('JobState')}, restarts {j.get('Restarts')}, not requeued, {msg}, "
           f"manifest state {state}" +
           ("" if ok_v and "received SIGTERM" in text else show(text)))


def case_unwritable(ctsweep, repo, work, cluster):
    cfg = write_config(work, "sweep.yaml")
    mnt = os.path.join(work, "unwritable_mnt")
    os.makedirs(mnt, exist_ok=True)
    subprocess.run(["umount", mnt], capture_output=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", mnt], capture_output=True, text=True)
    if r.returncode != 0:
        report(False, f"cannot mount a tmpfs at {mnt} (this case needs root): {r.stderr.strip()}")
        return
    try:
        out = os.path.join(mnt, "out")
        jid, log = submit_cpu(cluster, repo, work, "unwritable", [cfg, out], {"CTSWEEP": ctsweep})
        t = time.time()
        while time.time() - t < 300 and epochs_in_flight(out) < 2 and not final(cluster.job(jid)):
            time.sleep(0.2)
        # A file open for writing makes a read-only remount fail (EBUSY):
        # retry until the master is between writes.
        t = time.time()
        while subprocess.run(["mount", "-o", "remount,ro", mnt], capture_output=True).returncode != 0:
            if time.time() - t > 30:
                raise RuntimeError(f"cannot remount {mnt} read-only")
            time.sleep(0.02)
        j = cluster.wait_job(jid, final, 120)
        time.sleep(2)  # a requeue would show now
        j = cluster.job(jid)
        text = read_log(log)
        errors = [l for l in text.splitlines() if "ctsweep: error:" in l]
        said = [l for l in text.splitlines() if "cannot be written (exit 74" in l]
        report(j.get("JobState") == "FAILED" and j.get("ExitCode") == "74:0" and j.get("Restarts") == "0"
               and errors and "Read-only file system" in errors[0] and said and "requeueing" not in text,
               f"results made read-only: job {jid} {j.get('JobState')} exit {j.get('ExitCode')}, restarts "
               f"{j.get('Restarts')}, not requeued; log: {said[0].split(': ', 1)[-1] if said else show(text)}")
        ok_v, msg = validate(ctsweep, out)
        report(ok_v, f"the results stayed valid: {msg}")
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)
    # The warning signal once the job has been requeued as often as allowed.
    out = os.path.join(work, "maxrequeue")
    shutil.rmtree(out, ignore_errors=True)
    jid, log = submit_cpu(cluster, repo, work, "maxrequeue", [cfg, out], {"CTSWEEP": ctsweep, "CTSWEEP_MAX_REQUEUE": "0"})
    t = time.time()
    while time.time() - t < 300 and epochs_in_flight(out) < 1 and not final(cluster.job(jid)):
        time.sleep(0.2)
    run(["scancel", "--signal=USR1", "--batch", jid], env=cluster.env)
    j = cluster.wait_job(jid, final, 120)
    time.sleep(2)
    j = cluster.job(jid)
    text = read_log(log)
    said = [l for l in text.splitlines() if "CTSWEEP_MAX_REQUEUE=0" in l]
    report(j.get("JobState") == "FAILED" and j.get("ExitCode") == "75:0" and j.get("Restarts") == "0" and said
           and "requeueing" not in text,
           f"CTSWEEP_MAX_REQUEUE=0: job {jid} {j.get('JobState')} exit {j.get('ExitCode')}, not requeued; log: "
           f"{said[0].split(': ', 1)[-1] if said else show(text)}")


def case_gpu(ctsweep, repo, work, cluster):
    cfg = write_config(work, "sweep.yaml")
    ref = reference(ctsweep, work, cfg)
    out = os.path.join(work, "gpu")
    shutil.rmtree(out, ignore_errors=True)
    t = time.time()
    jid, log = submit_cpu(cluster, repo, work, "gpu", [cfg, out], {"CTSWEEP": ctsweep}, script="ctsweep.sbatch",
                          extra=["--ntasks-per-node=2", "--gres=gpu:1"])
    j = cluster.wait_job(jid, final, 300)
    text = read_log(log)
    ok_v, msg = validate(ctsweep, out)
    tres = j.get("TresPerNode", "") or j.get("TRES", "")
    report(j.get("JobState") == "COMPLETED" and "gpu" in tres and "GPUs 0" in text and ok_v and same(ref, results(out)),
           f"ctsweep.sbatch job {jid} with {tres} (CUDA_VISIBLE_DEVICES=0 in the job): {j.get('JobState')} exit {j.get('ExitCode')} in "
           f"{time.time() - t:.0f}s, {msg}, results equal to the direct run" + ("" if ok_v else show(text)))


def case_array(ctsweep, repo, work, cluster):
    cfg = write_config(work, "sweep.yaml")
    ref = reference(ctsweep, work, cfg)
    out = os.path.join(work, "array")
    shutil.rmtree(out, ignore_errors=True)
    for f in glob.glob(os.path.join(work, "array-*.log")):
        os.remove(f)
    t = time.time()
    jid = cluster.sbatch([f"--output={work}/array-%a.log", "--job-name=array", "--ntasks=2", "--cpus-per-task=1",
                          "--time=00:15:00", f"--chdir={work}", "--array=0-2",
                          os.path.join(repo, "slurm", "ctsweep-cpu.sbatch"), cfg, out], env={"CTSWEEP": ctsweep})

    def tasks():
        r = run(["scontrol", "-o", "show", "job", jid], env=cluster.env)
        return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in r.stdout.splitlines() if line.strip()]
    while time.time() - t < 600:
        ts = tasks()
        if len(ts) == 3 and all(final(j) for j in ts):
            break
        time.sleep(1)
    ts = sorted(tasks(), key=lambda j: j.get("ArrayTaskId", ""))
    states = [(j.get("ArrayTaskId"), j.get("JobState"), j.get("ExitCode")) for j in ts]
    report(len(ts) == 3 and all(j.get("JobState") == "COMPLETED" and j.get("ExitCode") == "0:0" for j in ts),
           f"array job {jid}: tasks {states} in {time.time() - t:.0f}s")
    held = {}
    for i in range(3):
        d = os.path.join(out, "slices", f"{i}-of-3")
        ok_v, msg = validate(ctsweep, d)
        res = results(d) if ok_v else {}
        held[i] = sorted(res)
        text = read_log(os.path.join(work, f"array-{i}.log"))
        report(ok_v and f"slice {i}/3 of the grid" in text and all(v[-1] == "done" for v in res.values()) and
               all(same({k: v}, {k: ref[k]}) for k, v in res.items()),
               f"array task {i}: {msg}, {len(res)} trial(s) done, equal to the direct run's" + ("" if ok_v else show(text)))
    ids = [k for v in held.values() for k in v]
    report(sorted(ids) == sorted(ref) and len(set(ids)) == len(ids),
           f"the slices hold each of the {len(ref)} trials once ({[len(v) for v in held.values()]})")
    ok_v, msg = validate(ctsweep, out)
    state = "-"
    if ok_v:
        with h5py.File(os.path.join(out, "sweep.h5"), "r") as h:
            state = h.attrs["state"]
    logs = "".join(read_log(os.path.join(work, f"array-{i}.log")) for i in range(3))
    report(ok_v and state == "done" and same(ref, results(out)) and "every slice is in" in logs,
           f"merged by the last task: {out}: {msg}, state {state}, results equal to the direct mpirun run")
    for line in logs.splitlines():
        if re.search(r"array task|merge:|every slice|merged the slices", line):
            print("    " + line, flush=True)


def case_srun(ctsweep, repo, work, cluster):
    r = run(["srun", "--mpi=list"], env=cluster.env)
    info = run(["ompi_info"]).stdout if shutil.which("ompi_info") else ""
    if "pmix" not in (r.stdout + r.stderr) or "MCA pmix" not in info:
        print(f"srun --mpi=pmix unavailable here: skipped ({(r.stdout + r.stderr).strip()[:200]})", flush=True)
        return
    # The preemption case again, with srun forwarding the signal to the ranks.
    case_preempt(ctsweep, repo, work, cluster, "srun", {"CTSWEEP_LAUNCHER": "srun"})
    report("launcher srun" in read_log(os.path.join(work, "srun.log")), "the job ran under srun --mpi=pmix")


def main():
    ctsweep, repo, work, case = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3], sys.argv[4]
    work = os.path.abspath(work)
    os.makedirs(work, exist_ok=True)
    cases = {"submit": case_submit, "preempt": case_preempt, "badconfig": case_badconfig, "cancel": case_cancel,
             "gpu": case_gpu, "array": case_array, "unwritable": case_unwritable,
             "srun": case_srun}
    if case == "scripts":
        case_scripts(ctsweep, repo, work)
    else:
        for tool in ("munged", "slurmctld", "slurmd", "sbatch", "mpirun"):
            if not shutil.which(tool):
                print(f"{tool} not found: install slurm-wlm, munge and openmpi-bin (scripts/bootstrap)")
                sys.exit(1)
        cluster = Cluster(os.path.join(work, "cluster-" + case), gpus=1 if case == "gpu" else 0)
        atexit.register(cluster.stop)

        def on_signal(sig, frame):
            raise SystemExit(128 + sig)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
            signal.signal(sig, on_signal)
        # Stop well before ctest's TIMEOUT would kill this script outright.
        signal.alarm(int(os.environ.get("CTSWEEP_SLURM_DEADLINE", "780")))
        try:
            t = time.time()
            cpus = cluster.start()
            print(f"slurm up in {time.time() - t:.1f}s: node {cluster.host}, {cpus} CPUs, {mem_mib()} MiB, "
                  f"SLURM_CONF={cluster.conf}", flush=True)
            cases[case](ctsweep, repo, work, cluster)
        except Exception as e:
            report(False, f"{type(e).__name__}: {e}")
        finally:
            cluster.stop()
            alive = [n for n, p in cluster.procs if p.poll() is None]
            time.sleep(0.5)
            rest = cluster.leftovers()
            report(not alive and not rest, "slurm stopped: munged, slurmctld and slurmd exited, no process of its jobs "
                                           f"left{'; alive: ' + str(alive) if alive else ''}{'; left: ' + str(rest) if rest else ''}")
    print(f"{PASSED} passed, {FAILED} failed")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
