"""ctsweep's AUC against sklearn, schedules and head training steps against PyTorch.

0. AUC equals sklearn.metrics.roc_auc_score on random data, with and without ties.
1. Learning rates: every CyclicLR mode (cycle_momentum=False) over 2000
   iterations for several step sizes, including a fractional one from an odd
   iterations-per-epoch, and StepLR / CosineAnnealingLR: relative error <= 1e-7.
2. 30 Adam steps of a head (dropout 0, identical initial weights and batch
   order) for each CLR mode, weight decay on and off, Adam and AdamW: losses
   and final parameters within the tolerance below. float32 GEMMs summed in a
   different order differ by ~1e-7 relative per step; Adam divides by
   sqrt(v) + eps, which amplifies that for parameters whose gradients are
   near zero, so parameters are compared as max|diff| <= 2e-5 * max|param| +
   1e-6 and losses to 1e-5 relative.

usage: check_training.py TRAIN_DRIVER WORKDIR
"""
import os
import subprocess
import sys

import h5py
import numpy as np
import torch

PASSED = FAILED = 0


def report(ok, msg):
    global PASSED, FAILED
    PASSED += ok
    FAILED += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {msg}")


def run_driver(driver, mode, attrs, data, work, tag):
    fin, fout = os.path.join(work, f"{tag}_in.h5"), os.path.join(work, f"{tag}_out.h5")
    with h5py.File(fin, "w") as f:
        for k, v in attrs.items():
            f.attrs[k] = v
        for k, v in data.items():
            f[k] = v
    subprocess.run([driver, mode, fin, fout], check=True)
    with h5py.File(fout, "r") as f:
        return {k: f[k][...] for k in f}


def torch_lrs(mode, base, top, step, gamma, total):
    p = torch.nn.Parameter(torch.zeros(1))
    if mode in ("triangular", "triangular2", "exp_range"):
        opt = torch.optim.Adam([p], lr=base)
        sch = torch.optim.lr_scheduler.CyclicLR(opt, base_lr=base, max_lr=top, step_size_up=step, mode=mode,
                                                gamma=gamma, cycle_momentum=False)
    elif mode == "step":
        opt = torch.optim.Adam([p], lr=top)
        sch = torch.optim.lr_scheduler.StepLR(opt, step_size=int(step), gamma=gamma)
    elif mode == "cosine":
        opt = torch.optim.Adam([p], lr=top)
        sch = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=base)
    else:
        opt = torch.optim.Adam([p], lr=base)
        sch = None
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if sch:
            sch.step()
    return np.array(out), opt, sch


def check_lr(driver, work):
    iters_per_epoch = 13  # odd: a fractional step size in iterations
    cases = []
    for mode in ("triangular", "triangular2", "exp_range"):
        for step in (4, 100, 2.5 * iters_per_epoch, 8 * iters_per_epoch):
            cases.append((mode, 1e-5, 1e-3, step, 0.9993))
    cases += [("constant", 3e-4, 3e-4, 1, 1.0), ("step", 1e-5, 1e-3, 130, 0.5), ("cosine", 1e-6, 1e-3, 1, 1.0)]
    total = 2000
    for i, (mode, base, top, step, gamma) in enumerate(cases):
        ref, _, _ = torch_lrs(mode, base, top, step, gamma, total)
        ours = run_driver(driver, "lr", dict(mode=mode, base_lr=base, max_lr=top, step_size=float(step),
                                             gamma=gamma, total=float(total)), {}, work, f"lr{i}")["lr"]
        rel = np.max(np.abs(ours - ref) / np.abs(ref))
        report(rel <= 1e-7, f"lr {mode:11s} step {step:7.2f}: max rel err {rel:.2e} over {total} iterations")


def head_torch(D, hidden):
    layers, d = [], D
    for hdim in hidden:
        layers += [torch.nn.Linear(d, hdim), torch.nn.ReLU()]
        d = hdim
    layers.append(torch.nn.Linear(d, 2))
    return torch.nn.Sequential(*layers)


def flat_params(m):
    return np.concatenate([p.detach().numpy().ravel() for p in m.parameters()]).astype(np.float32)


def check_steps(driver, work):
    rng = np.random.default_rng(3)
    n, D, B, steps, hidden = 200, 96, 16, 30, [64, 32]
    x = rng.standard_normal((n, D)).astype(np.float32) * 2
    y = (x[:, :4].sum(1) + rng.standard_normal(n) > 0).astype(np.uint8)
    order = np.stack([rng.permutation(n)[:B] for _ in range(steps)]).astype(np.int32)
    for mode in ("triangular", "triangular2", "exp_range", "constant"):
        for wd, adamw in ((0.0, 0), (1e-2, 0), (1e-2, 1)):
            torch.manual_seed(11)
            m = head_torch(D, hidden)
            p0 = flat_params(m)
            base, top, step, gamma = 1e-4, 3e-3, 7.0, 0.99
            opt_cls = torch.optim.AdamW if adamw else torch.optim.Adam
            opt = opt_cls(m.parameters(), lr=base if mode != "cosine" else top, weight_decay=wd)
            sch = None
            if mode != "constant":
                sch = torch.optim.lr_scheduler.CyclicLR(opt, base_lr=base, max_lr=top, step_size_up=step, mode=mode,
                                                        gamma=gamma, cycle_momentum=False)
            losses = []
            lossf = torch.nn.CrossEntropyLoss()
            for s in range(steps):
                xb, yb = torch.from_numpy(x[order[s]]), torch.from_numpy(y[order[s]].astype(np.int64))
                opt.zero_grad()
                loss = lossf(m(xb), yb)
                loss.backward()
                opt.step()
                if sch:
                    sch.step()
                losses.append(loss.item())
            ref_p = flat_params(m)
            out = run_driver(driver, "steps",
                             dict(mode=mode, base_lr=base, max_lr=top, step_size=step, gamma=gamma, dim=float(D),
                                  batch=float(B), weight_decay=wd, adamw=float(adamw)),
                             dict(x=x, y=y, order=order.ravel(), params=p0, hidden=np.array(hidden, np.int32)),
                             work, f"steps_{mode}_{wd}_{adamw}")
            lrel = np.max(np.abs(out["loss"] - losses) / np.abs(losses))
            pdiff = np.max(np.abs(out["params"] - ref_p))
            bound = 2e-5 * np.abs(ref_p).max() + 1e-6
            ok = lrel <= 1e-5 and pdiff <= bound and losses[-1] < losses[0]
            report(ok, f"30 steps {mode:11s} wd {wd:g} {'adamw' if adamw else 'adam '}: loss {losses[0]:.4f} -> "
                       f"{losses[-1]:.4f}, max loss rel err {lrel:.1e}, max|param diff| {pdiff:.1e} (bound {bound:.1e})")


def check_auc(driver, work):
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(9)
    for i, (n, levels) in enumerate(((50, None), (74, 5), (203, 20), (1000, 3), (7, 2))):
        y = (rng.random(n) < 0.45).astype(np.uint8)
        y[0], y[1] = 0, 1
        p = rng.random(n).astype(np.float32)
        if levels:  # heavy ties
            p = (np.round(p * (levels - 1)) / (levels - 1)).astype(np.float32)
        ref = roc_auc_score(y, p)
        ours = run_driver(driver, "auc", {}, dict(p=p, y=y), work, f"auc{i}")["auc"][0]
        report(abs(ours - ref) <= 1e-12, f"auc n={n} {'ties ' + str(levels) + ' levels' if levels else 'no ties'}: "
                                         f"ours {ours:.15f} sklearn {ref:.15f}")


def main():
    driver, work = sys.argv[1], sys.argv[2]
    isa = subprocess.run([driver, "isa"], capture_output=True, text=True).stdout.strip()
    print(f"oneDNN ISA: {isa} (ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', 'unset')})")
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(1)
    check_auc(driver, work)
    check_lr(driver, work)
    check_steps(driver, work)
    print(f"{PASSED} passed, {FAILED} failed")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
