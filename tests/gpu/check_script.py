#!/usr/bin/env python3
"""tests/gpu/check.sh on a machine without a GPU (label unit, so CPU-only CI
covers what the GPU slot depends on):

  skip      with no CUDA device visible it exits 77 within 60 s, printing the one
            line "SKIP: no CUDA device visible (REASON)" and writing it to
            $OUT/summary.txt;
  deadline  with a stand-in driver that reports one device and a stand-in
            python whose machine description never ends, --deadline 12 cuts
            step 1 to 7 s and leaves no time for the rest: it finishes within
            the deadline, each later step NOT RUN for the deadline, every
            step's verdict and log in $OUT/logs, the stand-in's process gone;
  kill      the same run killed by SIGTERM during step 1: it exits 143 at once,
            $OUT/summary.txt says where it was killed and what passed before,
            the step's partial log and verdict are in $OUT/logs, the step's
            command is stopped;
  libs      --libs-only with a cuDNN and an NCCL built for the CUDA major below
            the runtime's (12 beside 13) placed first on CTSWEEP_GPU_LIB_PATH: each is refused in one line naming both
            versions, and the toolkit's own are used (needs the CUDA toolkit).

usage: check_script.py ROOT WORK CASE
"""
import os
import re
import signal
import subprocess
import sys
import time

ROOT, WORK, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
CHECK_SH = os.path.join(ROOT, "tests", "gpu", "check.sh")
failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)


def cc(out, source, *flags):
    src = out + ".c"
    with open(src, "w") as f:
        f.write(source)
    subprocess.run(["cc", "-O1", *flags, "-o", out, src], check=True)


def fresh(name):
    d = os.path.join(WORK, name)
    subprocess.run(["rm", "-rf", d], check=True)
    os.makedirs(d)
    return d


def base_env(d):
    env = dict(os.environ)
    env["OUT"] = os.path.join(d, "out")
    env["CTSWEEP_GPU_WORK"] = os.path.join(d, "work")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


# A libcuda.so.1 that reports one device, and a python that says it has
# torch but never finishes describing it (its pid in a file).
def stand_ins(d, env):
    fake = os.path.join(d, "fake")
    os.makedirs(fake)
    cc(os.path.join(fake, "libcuda.so.1"),
       "int cuInit(unsigned f) { (void)f; return 0; }\n"
       "int cuDeviceGetCount(int *n) { *n = 1; return 0; }\n"
       "int cuDriverGetVersion(int *v) { *v = 13000; return 0; }\n", "-shared", "-fPIC")
    pidfile = os.path.join(d, "python.pid")
    py = os.path.join(fake, "python")
    with open(py, "w") as f:
        f.write("#!/bin/sh\n"
                "# -c: the torch import and site-packages queries succeed at once;\n"
                "# -: the machine description never ends.\n"
                f'[ "$1" = - ] && {{ echo $$ > {pidfile}; exec sleep 300; }}\n'
                "exit 0\n")
    os.chmod(py, 0o755)
    env["LD_LIBRARY_PATH"] = fake + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    env["CTSWEEP_PYTHON"] = py
    return pidfile


def alive(pidfile):
    try:
        pid = int(open(pidfile).read())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose.
    try:
        return open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    except OSError:
        return False


def read(path):
    try:
        return open(path).read()
    except OSError:
        return ""


def case_skip():
    d = fresh("skip")
    env = base_env(d)
    env["CUDA_VISIBLE_DEVICES"] = ""  # no device, even on a machine that has one
    t0 = time.time()
    p = subprocess.run([CHECK_SH], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    took = time.time() - t0
    check(p.returncode == 77, f"exit status {p.returncode}, expected 77 (stderr: {p.stderr.strip()[:300]})")
    check(took < 60, f"took {took:.1f} s, must be under 60 s")
    lines = p.stdout.splitlines()
    check(len(lines) == 1, f"{len(lines)} lines on stdout, expected one: {p.stdout[:500]!r}")
    line = lines[0] if lines else ""
    check(re.fullmatch(r"SKIP: no CUDA device visible \(.+\)", line) is not None, f"the line: {line!r}")
    summary = read(os.path.join(env["OUT"], "summary.txt"))
    check(summary == line + "\n", f"summary.txt {summary!r} differs from the line")


def case_deadline():
    d = fresh("deadline")
    env = base_env(d)
    pidfile = stand_ins(d, env)
    t0 = time.time()
    p = subprocess.run([CHECK_SH, "--deadline", "12"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120)
    took = time.time() - t0
    out = p.stdout
    check(took < 12 + 5, f"took {took:.1f} s with --deadline 12")
    # 12 s less the 5 s kept for the summary, less what steps 0 and 1 took to start.
    m = re.search(r"^==== 1\. the machine .* limit (\d+) s \(cut from 60 s by the 12 s deadline\)$", out, re.M)
    check(m is not None and 4 <= int(m.group(1)) <= 7, "step 1's limit is cut to the deadline")
    summary = read(os.path.join(env["OUT"], "summary.txt"))
    check(re.search(r"^PASS +GPU visible +1 device", summary, re.M) is not None, "step 0 passed (stand-in driver)")
    check(re.search(r"^FAIL +machine +.*did not finish", summary, re.M) is not None, "step 1 failed at its limit")
    not_run = re.findall(r"^NOT RUN .*no time left before the 12 s deadline$", summary, re.M)
    check(len(not_run) == 8, f"{len(not_run)} steps NOT RUN for the deadline, expected 8 (steps 2 to 9)")
    check(re.search(r"^FINISHED in \d+ s \(deadline 12 s\): 1 of 10 checks passed", summary, re.M) is not None,
          "summary.txt ends with the FINISHED line")
    check(len(re.findall(r"expected +\d+ s, took +\d+ s, limit +\d+ s", summary)) == 10, "a budget line per step")
    check(p.returncode == 9, f"exit status {p.returncode}, expected 9 (failed checks)")
    logs = sorted(os.listdir(os.path.join(env["OUT"], "logs")))
    verdicts = [f for f in logs if f.endswith(".verdict")]
    check(len(verdicts) == 10, f"{len(verdicts)} verdict files in $OUT/logs, expected 10: {logs}")
    check(any(f.startswith("01-") and f.endswith("machine.log") for f in logs), "step 1's log copied to $OUT/logs")
    for f in verdicts:
        lines = read(os.path.join(env["OUT"], "logs", f)).splitlines()
        check(len(lines) == 1 and re.match(r"(PASS|FAIL|NOT RUN) +\d\. ", lines[0]) is not None,
              f"{f}: one verdict line: {lines!r}")
    time.sleep(1)
    check(os.path.exists(pidfile) and not alive(pidfile), "the step's command was stopped at the limit")


def case_kill():
    d = fresh("kill")
    env = base_env(d)
    pidfile = stand_ins(d, env)
    summary_path = os.path.join(env["OUT"], "summary.txt")
    p = subprocess.Popen([CHECK_SH, "--deadline", "300"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    t0 = time.time()
    while time.time() - t0 < 60 and not (os.path.exists(pidfile) and "RUNNING step 1" in read(summary_path)):
        time.sleep(0.1)
    check("RUNNING step 1" in read(summary_path), "summary.txt says step 1 is running while it runs")
    time.sleep(0.5)
    t1 = time.time()
    p.send_signal(signal.SIGTERM)
    try:
        out, _ = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    took = time.time() - t1
    check(p.returncode == 143, f"exit status {p.returncode}, expected 143")
    check(took < 5, f"exited {took:.1f} s after SIGTERM")
    check("==== summary (killed)" in out, "the summary is printed when killed")
    summary = read(summary_path)
    check(re.search(r"^KILLED by SIGTERM during step 1 \(the machine\) at t=\d+s: 1 of 2 checks passed so far$",
                    summary, re.M) is not None, f"summary.txt's last line: {summary.splitlines()[-1:]}")
    check(re.search(r"^PASS +GPU visible", summary, re.M) is not None, "step 0's verdict kept")
    logs = os.listdir(os.path.join(env["OUT"], "logs"))
    v1 = [f for f in logs if f.startswith("01-") and f.endswith(".verdict")]
    check(len(v1) == 1 and "killed by SIGTERM" in read(os.path.join(env["OUT"], "logs", v1[0]) if v1 else ""),
          f"step 1's verdict says it was killed: {logs}")
    check(any(f.startswith("01-") and f.endswith("machine.log") for f in logs), "step 1's partial log kept")
    time.sleep(1)
    check(not alive(pidfile), "the running step's command was stopped")


def libs_only(env):
    p = subprocess.run([CHECK_SH, "--libs-only"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=120)
    print(p.stdout)
    return p


def case_libs():
    d = fresh("libs")
    env = base_env(d)
    m = re.search(r"^CUDA runtime: (\d+)\.(\d+)", libs_only(env).stdout, re.M)
    check(m is not None, "the runtime's version is reported")
    if not m:
        return
    rt = f"{m.group(1)}.{m.group(2)}"
    # Libraries for the major below the runtime's (CUDA 12 beside 13).
    other = int(m.group(1)) - 1
    fake = os.path.join(d, f"cu{other}")
    os.makedirs(fake)
    cc(os.path.join(fake, "libcudnn.so.9"),
       "#include <stddef.h>\n"
       "size_t cudnnGetVersion(void) { return 90100; }\n"
       f"size_t cudnnGetCudartVersion(void) {{ return {other * 1000 + 80}; }}\n", "-shared", "-fPIC")
    cc(os.path.join(fake, "libnccl.so.2"),
       f'const char nccl_banner[] = "NCCL version 2.21.5+cuda{other}.4";\n'
       "int ncclGetVersion(int *v) { *v = 22105; return 0; }\n", "-shared", "-fPIC")
    env["CTSWEEP_GPU_LIB_PATH"] = fake
    p = libs_only(env)
    out = p.stdout
    check(f"cuDNN 9.1.0 at {fake}/libcudnn.so.9 was built for CUDA {other}.8, the CUDA runtime is {rt}: refused"
          in out, "the other major's cuDNN is refused in one line naming both versions")
    check(f"NCCL 2.21.5 at {fake}/libnccl.so.2 was built for CUDA {other}.4, the CUDA runtime is {rt}: refused"
          in out, "the other major's NCCL is refused in one line naming both versions")
    used = re.findall(r"^(cuDNN|NCCL) \S+ at (\S+), built for CUDA (\d+)\.\d+: used$", out, re.M)
    check(len(used) == 2 and all(not u[1].startswith(fake) and u[2] == m.group(1) for u in used) if m else False,
          f"the toolkit's cuDNN and NCCL are used instead: {used}")
    check(p.returncode == 0, f"exit status {p.returncode}")


{"skip": case_skip, "deadline": case_deadline, "kill": case_kill, "libs": case_libs}[CASE]()
print(f"{'FAILED' if failures else 'passed'}: {CASE} ({len(failures)} failures)")
sys.exit(1 if failures else 0)
