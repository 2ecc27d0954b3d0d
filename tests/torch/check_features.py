"""Runs `ctsweep features` on real COVID-CT images and compares with
torchvision (see reference.py), and checks `--model identity` against PIL.

usage: check_features.py CTSWEEP WORK COVID_ROOT MODEL SIZES [MODE]

MODE is `auto` (default: --conv-algo auto, fp32), `winograd` (every 3x3
stride-1 convolution through Winograd: oneDNN's on AVX-512, ctsweep's own
F(4,3) on AVX2, e.g. under ONEDNN_MAX_CPU_ISA=AVX2) or `bf16` (--precision
bf16). bf16 kernels of oneDNN 2.6 exist only on AVX-512 CPUs, Winograd
kernels only from AVX2 up: where oneDNN's ISA (printed first) lacks them,
those modes check that the tool refuses them with its one-line message,
print `skipped: needs ...` and exit 77 (ctest's SKIP_RETURN_CODE), so they
never pass silently. Where it runs, the winograd mode checks that
`--verbose`'s plan names the kernel it promises on that ISA for every 3x3
stride-1 convolution, and that ONEDNN_MAX_CPU_ISA=SSE41 gets the refusal.

Tolerance: max |ours - ref| <= 1e-4 * max |ref| + 1e-5 over each output
(float32 accumulation in a different order across 13-36 layers; BatchNorm
is folded into the convolutions, which changes rounding a little more).
Winograd keeps that bound. bf16 (8-bit mantissa activations and weights,
fp32 accumulation) is held to 5e-2 * max |ref|.

Every mode also checks, bit for bit, that an image's features do not depend
on the batch: batch 3 against batch 4 in reversed order, and 1 thread
against 2 threads.
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
MODES = {
    "auto": ([], RTOL),
    "winograd": (["--conv-algo", "winograd"], RTOL),
    "bf16": (["--precision", "bf16"], 5e-2),
}
SKIP = 77


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        raise SystemExit(f"FAILED: {' '.join(cmd)} exited {r.returncode}")
    return r


def oneDNN_isa(ctsweep):
    """The ISA oneDNN dispatches to here, from `ctsweep --version`."""
    out = run([ctsweep, "--version"]).stdout
    return out.split("ISA ")[1].split(")")[0].strip()


def compare(label, ours, ref, rtol=RTOL):
    if ours.shape != ref.shape:
        print(f"FAIL {label}: shape {ours.shape}, reference {ref.shape}")
        return False
    diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    bound = rtol * np.abs(ref).max() + ATOL
    ok = bool(diff.max() <= bound)
    print(f"{'ok  ' if ok else 'FAIL'} {label}: max|diff| {diff.max():.3g} at {tuple(int(i) for i in worst)} "
          f"(ours {ours[worst]:.6g}, ref {ref[worst]:.6g}), bound {bound:.3g}, max|ref| {np.abs(ref).max():.4g}, "
          f"rel {diff.max() / max(np.abs(ref).max(), 1e-30):.2e}")
    return ok


def main():
    ctsweep, work, covid_root, name = sys.argv[1:5]
    sizes = [int(s) for s in sys.argv[5].split(",")]
    mode = sys.argv[6] if len(sys.argv) > 6 else "auto"
    flags, rtol = MODES[mode]
    isa = oneDNN_isa(ctsweep)
    print(f"oneDNN ISA: {isa} (ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', 'unset')}); mode {mode}")
    work = os.path.join(work, name if mode == "auto" else f"{name}-{mode}")
    needs = {"winograd": "AVX2", "bf16": "AVX-512"}.get(mode)
    if needs and not (isa.startswith("avx512") or (needs == "AVX2" and isa.startswith("avx2"))):
        # The refusal itself is checked: one line that says why.
        os.makedirs(work, exist_ok=True)
        img = reference.pick_images(covid_root)[0][0]
        r = subprocess.run([ctsweep, "features", "--model", name, "--image-size", "32", "-o",
                            os.path.join(work, "refused.h5")] + flags + [img], capture_output=True, text=True)
        lines = r.stderr.strip().splitlines()
        expect = "no Winograd convolution for this CPU" if mode == "winograd" else "oneDNN needs AVX-512"
        refused = r.returncode == 1 and any(expect in ln for ln in lines) and \
            not os.path.exists(os.path.join(work, "refused.h5"))
        print(f"{'ok  ' if refused else 'FAIL'} {name} {mode} refused on {isa}: exit {r.returncode}: "
              f"{lines[-1] if lines else '(no message)'}")
        if not refused:
            sys.exit(1)
        print(f"skipped: needs {needs} (oneDNN ISA here: {isa})")
        sys.exit(SKIP)
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
            weights = os.path.join(work, f"{name}.safetensors")

            def features(path, extra, imgs):
                run([ctsweep, "features", "--model", name, "--weights", weights, "--image-size", str(s),
                     "-o", path] + flags + extra + imgs)
                with h5py.File(path, "r") as f:
                    return f["features"][...]

            ours = features(out, ["--batch", "3", "--threads", "2"], images)
            ref = np.load(os.path.join(work, f"{name}_{s}.npy"))
            ok = compare(f"{name} {s}px {mode} ({len(images)} images)", ours, ref, rtol)
            if s == min(sizes) and mode == "winograd":
                # Every 3x3 stride-1 convolution of the plan is a Winograd
                # one, and on AVX2 ours (the plan printed by --verbose).
                r = run([ctsweep, "features", "--model", name, "--weights", weights, "--image-size", str(s),
                         "--verbose", "-o", os.path.join(work, "plan.h5")] + flags + images[:1])
                convs = [ln for ln in r.stderr.splitlines() if " 3x3 s1 " in ln]
                want = "ctsweep winograd" if isa.startswith("avx2") else "wino"
                wino = [ln for ln in convs if want in ln]
                planned = len(convs) > 0 and len(wino) == len(convs)
                print(f"{'ok  ' if planned else 'FAIL'} {name} {s}px plan: {len(wino)} of {len(convs)} 3x3 stride-1 "
                      f"convolutions through '{want}' on {isa}")
                # Below AVX2 (here by oneDNN's limit, which ours honours too)
                # there is no Winograd kernel: one line, nothing written.
                refused_h5 = os.path.join(work, "refused.h5")
                r = subprocess.run([ctsweep, "features", "--model", name, "--weights", weights, "--image-size",
                                    str(s), "-o", refused_h5] + flags + images[:1], capture_output=True, text=True,
                                   env=dict(os.environ, ONEDNN_MAX_CPU_ISA="SSE41"))
                lines = r.stderr.strip().splitlines()
                refused = r.returncode == 1 and any("no Winograd convolution for this CPU" in ln for ln in lines) \
                    and not os.path.exists(refused_h5)
                print(f"{'ok  ' if refused else 'FAIL'} {name} winograd refused under ONEDNN_MAX_CPU_ISA=SSE41: "
                      f"exit {r.returncode}: {lines[-1] if lines else '(no message)'}")
                ok = ok and planned and refused
            if s == min(sizes):
                # An image's features must not depend on the batch it ran in
                # (size, companions, position) nor on the thread count.
                for label, extra, imgs, back in (
                        ("batch 3 vs batch 4, reversed order", ["--batch", "4", "--threads", "2"], images[::-1],
                         True),
                        ("2 threads vs 1 thread, batch 5", ["--batch", "5", "--threads", "1"], images, False)):
                    other = features(os.path.join(work, f"ours_{s}_other.h5"), extra, imgs)
                    if back:
                        other = other[::-1]
                    same = bool(np.array_equal(ours, other))
                    print(f"{'ok  ' if same else 'FAIL'} {name} {s}px {mode}: {label}: "
                          f"{'bit-identical' if same else 'differ, max ' + str(np.abs(ours - other).max())}")
                    ok = ok and same
        passed += ok
        failed += not ok
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
