"""The error per layer with every 3x3 stride-1 convolution through Winograd
(`--conv-algo winograd`: ctsweep's own F(4,3) on AVX2, oneDNN's on AVX-512),
against torchvision, on one real COVID-CT image of every kind.

usage: check_winograd_layers.py LAYERS_DRIVER CTSWEEP WORK COVID_ROOT MODEL SIZES

For every convolution (its post-ops included: residual, ReLU; the last one's
through the final pool, i.e. the features) the stack up to it is run by layers_driver.c and compared with torchvision's activation at the
same point; a line per layer prints max |ours - ref| / max |ref| (marked `W`
for the Winograd layers). Bound at every layer, as for the features:
max |ours - ref| <= 1e-4 * max |ref| + 1e-5. Below AVX2 (oneDNN's ISA printed
by `ctsweep --version`) there is no Winograd kernel: prints `skipped: needs
AVX2` and exits 77.
"""
import os
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
SKIP = 77


@torch.no_grad()
def torch_layers(m, name, x):
    """torchvision's activation after every convolution (and its post-ops),
    keyed by our layer names (the weights' prefixes)."""
    acts, hooks = {}, []

    def keep(key):
        def hook(_mod, _inp, out):
            k = key() if callable(key) else key
            acts[k] = out.detach().clone().numpy()
        return hook

    if name.startswith("vgg"):
        for i, mod in enumerate(m.features):
            if isinstance(mod, torch.nn.Conv2d):
                hooks.append(m.features[i + 1].register_forward_hook(keep(f"features.{i}")))
        m.features(torch.from_numpy(x))
    else:
        hooks.append(m.relu.register_forward_hook(keep("conv1")))
        for L in range(1, 5):
            for B, blk in enumerate(getattr(m, f"layer{L}")):
                calls = [0]

                def which(L=L, B=B, calls=calls):
                    calls[0] += 1
                    return f"layer{L}.{B}.conv{calls[0]}"
                hooks.append(blk.relu.register_forward_hook(keep(which)))
                if blk.downsample is not None:
                    hooks.append(blk.downsample.register_forward_hook(keep(f"layer{L}.{B}.downsample.0")))
        reference.features(m, name, x)
    for h in hooks:
        h.remove()
    return acts


def main():
    driver, ctsweep, work, covid_root, name = sys.argv[1:6]
    sizes = [int(s) for s in sys.argv[6].split(",")]
    isa = subprocess.run([ctsweep, "--version"], capture_output=True, text=True, check=True).stdout
    isa = isa.split("ISA ")[1].split(")")[0].strip()
    print(f"oneDNN ISA: {isa} (ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', 'unset')})")
    if not (isa.startswith("avx2") or isa.startswith("avx512")):
        print(f"skipped: needs AVX2 (oneDNN ISA here: {isa})")
        sys.exit(SKIP)
    work = os.path.join(work, name)
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(2)
    m = reference.build_model(name, seed=1234)
    weights = os.path.join(work, f"{name}.safetensors")
    reference.save_weights(m, name, weights)
    images, kinds = reference.pick_images(covid_root)
    print(f"{name}: {len(images)} images of kinds {', '.join(kinds)}")
    failed = 0
    for s in sizes:
        x = np.stack([reference.preprocess(p, s) for p in images]).astype(np.float32)
        x.tofile(os.path.join(work, "images.f32"))
        out = os.path.join(work, f"layers_{s}")
        os.makedirs(out, exist_ok=True)
        r = subprocess.run([driver, name, weights, str(s), "winograd", os.path.join(work, "images.f32"),
                            str(len(images)), out], capture_output=True, text=True)
        if r.returncode != 0:
            sys.stderr.write(r.stderr)
            raise SystemExit(f"FAILED: layers_driver {name} {s} exited {r.returncode}")
        ref = torch_layers(m, name, x)
        worst = 0.0
        n_wino = 0
        for line in r.stdout.split("\n"):
            if not line:
                continue
            i, lname, k, stride, c, h, w = line.split()[:7]
            pooled = line.endswith(" pooled")
            wino = k == "3" and stride == "1"
            n_wino += wino
            ours = np.fromfile(os.path.join(out, f"{i}.f32"), dtype=np.float32).reshape(len(images), int(c), int(h),
                                                                                        int(w))
            want = reference.features(m, name, x).reshape(ours.shape) if pooled else ref[lname]
            diff = np.abs(ours.astype(np.float64) - want)
            bound = RTOL * np.abs(want).max() + ATOL
            rel = diff.max() / max(np.abs(want).max(), 1e-30)
            ok = diff.max() <= bound
            failed += not ok
            worst = max(worst, rel)
            print(f"{'ok  ' if ok else 'FAIL'} {name} {s}px {lname:24s} {'W' if wino else ' '} {c:>4}x{h}x{w}{' pooled' if pooled else ''}: "
                  f"max|diff| {diff.max():.3g}, rel {rel:.2e} (bound {bound:.3g})")
        print(f"{name} {s}px: {n_wino} Winograd layers, worst relative error {worst:.2e}")
    print(f"{name}: {'all layers within bound' if not failed else f'{failed} layers past the bound'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
