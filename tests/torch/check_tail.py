"""The trainable tail's gradients and Adam steps against PyTorch.

For VGG16 with block5 unfrozen and ResNet-34 with layer4 unfrozen
(torchvision's initialisation, BatchNorm affine and running statistics
randomised, written to safetensors), a small head (feat -> 16 -> ReLU -> 2),
the model in eval() mode and cross-entropy over the batch:

1. Gradients, at 64 and 224 px input size (and at 64 px for VGG16's head
   alone, unfreeze 0, ResNet-34's layer3 + layer4, and whole networks from
   the image: ResNet-34 at 64 px, VGG16 at 32 px; ResNet-50's layer4 at 64
   px), from random non-negative activations at the cut: the gradient of every tail and head parameter and
   of the cut input equals PyTorch autograd's to max|ours - torch| <= 1e-4 *
   max|torch| over each tensor (float32 sums in another order differ by
   ~1e-6 relative); the worst element is printed.
2. Determinism: the same run on 1 and 2 threads gives the same bits in every
   output (batch of 3, so the threads' shares differ), and ResNet-34's layer4
   at 32 px with a batch of 19 on 1, 2 and 3 threads (weight gradients in
   chunks of 8, 8 and 3, the last padded with zero images).
3. Steps: 20 Adam steps of tail + head (tail at a tenth of the head's
   learning rate, as train.backbone_lr_scale does by default) from the same
   weights and batches as torch.optim.Adam with two parameter groups, run in
   float64: losses within 1e-5 relative; in each parameter tensor all but
   0.1% of the elements within 1e-5 * max|param| + 1e-3 * lr * steps and
   every one within 2 * lr * steps. The reference is
   float64 because Adam's first steps move a parameter by about lr whatever
   its gradient's size, so a float32 run's rounding flips the sign of a few
   tiny gradients and the trajectory departs: torch float32 itself is 6e-4
   relative away from float64 in loss after 20 VGG16 steps (printed), ours
   stays within 1e-6. The few parameters off are those whose gradient is
   about Adam's eps (1e-8), where float32 rounding is of the gradient's size.

usage: check_tail.py TAIL_DRIVER WORKDIR
"""
import os
import subprocess
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import reference  # noqa: E402
import safetensors_io  # noqa: E402  (reference.py put scripts/lib on the path)

HIDDEN = [16]
# Steps: parameters within PARAM_RTOL * max|param| + PARAM_LR_FRAC * lr * steps
# of torch's (lr * steps bounds how far Adam can move a parameter).
# for all but PARAM_OVER_FRAC of each tensor's elements, and every element
# within 2 * lr * steps (those whose gradient is as small as Adam's eps move by
# about lr per step on rounding alone).
PARAM_RTOL, PARAM_LR_FRAC, PARAM_OVER_FRAC = 1e-5, 1e-3, 1e-3
PASSED = FAILED = 0


def report(ok, msg):
    global PASSED, FAILED
    PASSED += ok
    FAILED += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {msg}", flush=True)


def tail_of(m, name, unfreeze):
    """(frozen prefix, trainable tail up to the flattened pool) as torch modules."""
    if name.startswith("vgg"):
        pools = [i for i, mod in enumerate(m.features) if isinstance(mod, torch.nn.MaxPool2d)]
        start = 0 if unfreeze == len(pools) else pools[-unfreeze - 1] + 1
        return m.features[:start], torch.nn.Sequential(m.features[start:], m.avgpool, torch.nn.Flatten(1))
    stages = [torch.nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool), m.layer1, m.layer2, m.layer3, m.layer4]
    k = len(stages) - unfreeze
    return torch.nn.Sequential(*stages[:k]), torch.nn.Sequential(*stages[k:], m.avgpool, torch.nn.Flatten(1))


def make_case(name, unfreeze, size, work):
    m = reference.build_model(name, seed=77)
    prefix, tail = tail_of(m, name, unfreeze)
    with torch.no_grad():
        cut = prefix(torch.zeros(1, 3, size, size)).shape[1:]
        feat = tail(torch.zeros(1, *cut)).shape[1]
    torch.manual_seed(5)
    layers, d = [], feat
    for h in HIDDEN:
        layers += [torch.nn.Linear(d, h), torch.nn.ReLU()]
        d = h
    layers.append(torch.nn.Linear(d, 2))
    head = torch.nn.Sequential(*layers)
    tensors = {k: v.numpy() for k, v in m.state_dict().items()
               if v.dtype != torch.int64 and not k.startswith(("classifier.", "fc."))}
    lins = [mod for mod in head if isinstance(mod, torch.nn.Linear)]
    for i, lin in enumerate(lins):
        tensors[f"head.{i}.weight"] = lin.weight.detach().numpy()
        tensors[f"head.{i}.bias"] = lin.bias.detach().numpy()
    path = os.path.join(work, f"{name}_u{unfreeze}_{size}.safetensors")
    safetensors_io.save_file(tensors, path)
    # Named trainable parameters, ctsweep's names.
    params = {}
    for k, p in m.named_parameters():
        params[k] = p
    for i, lin in enumerate(lins):
        params[f"head.{i}.weight"], params[f"head.{i}.bias"] = lin.weight, lin.bias
    model = torch.nn.Sequential(tail, head).eval()
    return model, params, tuple(cut), path


def run_driver(driver, mode, attrs, data, work, tag, threads=None):
    fin, fout = os.path.join(work, f"{tag}_in.h5"), os.path.join(work, f"{tag}_out.h5")
    with h5py.File(fin, "w") as f:
        for k, v in attrs.items():
            f.attrs[k] = v
        for k, v in data.items():
            f[k] = v
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    subprocess.run([driver, mode, fin, fout], check=True, env=env)
    with h5py.File(fout, "r") as f:
        return {k: f[k][...] for k in f}


def rel_err(name, ours, ref):
    ours, ref = np.asarray(ours, np.float64).ravel(), np.asarray(ref, np.float64).ravel()
    diff = np.abs(ours - ref)
    i = int(np.argmax(diff))
    scale = max(np.abs(ref).max(), 1e-30)
    return diff[i] / scale, f"{name}: max rel err {diff[i] / scale:.1e} at [{i}] ours {ours[i]:.7e} torch {ref[i]:.7e}"


def check_grads(driver, work, name, unfreeze, size, n, algo="direct"):
    model, params, cut, path = make_case(name, unfreeze, size, work)
    rng = np.random.default_rng(size + unfreeze)
    x = np.abs(rng.standard_normal((n, *cut))).astype(np.float32)
    y = np.array([i % 2 for i in range(n)], np.uint8)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    for p in params.values():
        p.grad = None
    loss = torch.nn.functional.cross_entropy(model(xt), torch.from_numpy(y.astype(np.int64)))
    loss.backward()
    attrs = dict(model=name, weights=path, size=float(size), unfreeze=float(unfreeze), batch=float(n),
                 conv_algo=algo)
    data = dict(x=x.reshape(n, -1), y=y, hidden=np.array(HIDDEN, np.int32))
    tag = f"grads_{name}_u{unfreeze}_{size}_{algo}_{n}"
    name = f"{name} ({algo})" if algo != "direct" else name
    out = run_driver(driver, "grads", attrs, data, work, tag)
    worst, worst_msg, count = 0.0, "", 0
    ok = abs(out["loss"][0] - loss.item()) <= 1e-5 * abs(loss.item())
    report(ok, f"{name} unfreeze {unfreeze} {size} px: loss ours {out['loss'][0]:.7f} torch {loss.item():.7f}")
    for k, v in out.items():
        if k in ("loss", "logits"):
            continue
        ref = xt.grad.numpy() if k == "dx" else params[k].grad
        if ref is None:
            report(False, f"{name}: {k} has no gradient in torch (not a tail parameter?)")
            continue
        e, msg = rel_err(k, v, ref.numpy() if torch.is_tensor(ref) else ref)
        count += 1
        if e > 1e-4:
            report(False, f"{name} {size} px {msg}")
        if e >= worst:
            worst, worst_msg = e, msg
    trained = [k for k, p in params.items() if p.grad is not None]
    missing = sorted(set(trained) - set(out))
    report(not missing, f"{name} {size} px: every torch gradient has ours ({len(trained)} tensors"
                        f"{', missing ' + ', '.join(missing) if missing else ''})")
    report(worst <= 1e-4, f"{name} unfreeze {unfreeze} {size} px: {count} gradients (cut input {cut}); "
                          f"worst {worst_msg}")
    return attrs, data, tag


def check_subbatch(driver, work, attrs, data, tag, m):
    """The first m images alone give the logits they had in the whole batch, bit for bit."""
    whole = run_driver(driver, "grads", attrs, data, work, tag + "_whole")
    part = run_driver(driver, "grads", dict(attrs, batch=float(m)), dict(data, x=data["x"][:m], y=data["y"][:m]),
                      work, tag + f"_first{m}")
    n = int(attrs["batch"])
    same = np.array_equal(whole["logits"].reshape(n, -1)[:m].view(np.uint8), part["logits"].reshape(m, -1).view(np.uint8))
    report(same, f"{attrs['model']} {attrs.get('conv_algo', 'direct')} {int(attrs['size'])} px: the first {m} images' "
                 f"logits in a batch of {int(attrs['batch'])} and alone bit-identical")


def check_threads(driver, work, attrs, data, tag, counts=(2,)):
    one = run_driver(driver, "grads", attrs, data, work, tag + "_t1", threads=1)
    for t in counts:
        other = run_driver(driver, "grads", attrs, data, work, tag + f"_t{t}", threads=t)
        same = [k for k in one if np.array_equal(one[k].view(np.uint8), other[k].view(np.uint8))]
        report(len(same) == len(one), f"{attrs['model']} {int(attrs['size'])} px batch {int(attrs['batch'])}: 1 vs "
                                      f"{t} threads bit-identical in {len(same)} of {len(one)} outputs")


def torch_steps(name, unfreeze, size, work, x, y, order, lr_tail, lr_head, dtype):
    """Adam steps in torch at dtype; returns (losses, named final parameters, path, tail names, head names)."""
    model, params, cut, path = make_case(name, unfreeze, size, work)
    model = model.to(dtype)
    head_names = [k for k in params if k.startswith("head.")]
    # The tail's parameters: those the forward reaches (the prefix is not run).
    model(torch.from_numpy(x[:1]).to(dtype)).sum().backward()
    tail_names = [k for k, p in params.items() if p.grad is not None and not k.startswith("head.")]
    for p in params.values():
        p.grad = None
    opt = torch.optim.Adam([{"params": [params[k] for k in tail_names], "lr": lr_tail},
                            {"params": [params[k] for k in head_names], "lr": lr_head}])
    losses = []
    for s in range(len(order)):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x[order[s]]).to(dtype)),
                                                 torch.from_numpy(y[order[s]].astype(np.int64)))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    final = {k: params[k].detach().double().numpy() for k in tail_names + head_names}
    return np.array(losses), final, path, tail_names, head_names


def check_steps(driver, work, name, unfreeze, size, steps=20, B=4, rows=16, algo="direct"):
    _, _, cut, _ = make_case(name, unfreeze, size, work)
    rng = np.random.default_rng(99)
    x = np.abs(rng.standard_normal((rows, *cut))).astype(np.float32)
    y = (np.arange(rows) % 2).astype(np.uint8)
    order = np.stack([rng.permutation(rows)[:B] for _ in range(steps)]).astype(np.int32)
    lr_head, lr_tail = 1e-3, 1e-4
    args = (name, unfreeze, size, work, x, y, order, lr_tail, lr_head)
    losses, ref, path, tail_names, head_names = torch_steps(*args, torch.float64)
    losses32, _, _, _, _ = torch_steps(*args, torch.float32)
    attrs = dict(model=name, weights=path, size=float(size), unfreeze=float(unfreeze), batch=float(B),
                 lr_tail=lr_tail, lr_head=lr_head, weight_decay=0.0, adamw=0.0, conv_algo=algo)
    data = dict(x=x.reshape(rows, -1), y=y, hidden=np.array(HIDDEN, np.int32), order=order.ravel())
    out = run_driver(driver, "steps", attrs, data, work, f"steps_{name}_u{unfreeze}_{size}_{algo}")
    name = f"{name} ({algo})" if algo != "direct" else name
    lrel = float(np.max(np.abs(out["loss"] - losses) / np.abs(losses)))
    lrel32 = float(np.max(np.abs(losses32 - losses) / np.abs(losses)))
    worst, worst_msg, bad, n_over, n_all = 0.0, "", [], 0, 0
    for k in tail_names + head_names:
        lr = lr_head if k.startswith("head.") else lr_tail
        diff = np.abs(out[k].astype(np.float64) - ref[k].ravel())
        bound = PARAM_RTOL * np.abs(ref[k]).max() + PARAM_LR_FRAC * lr * steps
        over = int(np.count_nonzero(diff > bound))
        n_over, n_all = n_over + over, n_all + diff.size
        if over > PARAM_OVER_FRAC * diff.size or diff.max() > 2 * lr * steps:
            bad.append(f"{k} ({over} of {diff.size} over {bound:.1e}, max {diff.max():.1e})")
        q = np.quantile(diff, 1 - PARAM_OVER_FRAC)
        if q / bound >= worst:
            worst, worst_msg = q / bound, f"{k} {100 * (1 - PARAM_OVER_FRAC):g}th percentile |diff| {q:.1e} " \
                                          f"(bound {bound:.1e}, max {diff.max():.1e})"
    report(lrel <= 1e-5 and not bad and losses[-1] < losses[0],
           f"{name} unfreeze {unfreeze} {size} px: {steps} Adam steps vs torch float64, loss {losses[0]:.4f} -> "
           f"{losses[-1]:.4f}, max loss rel err {lrel:.1e} (torch float32 vs float64: {lrel32:.1e}); parameters "
           f"over their bound: {n_over} of {n_all}; closest: {worst_msg}" + (f"; over: {bad}" if bad else ""))


def main():
    driver, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(2)
    cases = [("vgg16", 1), ("resnet34", 1)]
    for name, unfreeze in cases:
        for size in (64, 224):
            attrs, data, tag = check_grads(driver, work, name, unfreeze, size, n=3 if size == 64 else 2)
            if size == 64:
                check_threads(driver, work, attrs, data, tag)
        check_steps(driver, work, name, unfreeze, 64)
    # Other cuts, gradients only: the head alone (the cut at the final pool)
    # and two ResNet stages (a cut input read by a downsample and a conv).
    check_grads(driver, work, "vgg16", 0, 64, n=3)
    check_grads(driver, work, "resnet34", 2, 64, n=3)
    # A batch of 19: weight gradients in chunks of 8, 8 and 3 (padded with
    # zero images), handed to 1, 2 or 3 threads.
    attrs, data, tag = check_grads(driver, work, "resnet34", 1, 32, n=19)
    check_threads(driver, work, attrs, data, tag, counts=(2, 3))
    # ResNet-50's bottleneck stage: 1x1 convolutions, the stride on the 3x3.
    check_grads(driver, work, "resnet50", 1, 64, n=2)
    # Every stage (the cut at the image): ResNet's 7x7 stride-2 stem and its
    # padded 3x3 max pool, VGG's 3-channel first convolution.
    check_grads(driver, work, "resnet34", 5, 64, n=2)
    check_grads(driver, work, "vgg16", 5, 32, n=2)
    # Winograd in the tail (train.conv_algo auto or winograd on an AVX2 CPU):
    # forward and backward data of the 3x3 stride-1 layers with channels in
    # multiples of 8, several images' tiles per call. The same bounds; the
    # grouping of images (8 a call for ResNet-34's layer4 at 32 px, 3 at 64)
    # must change no bit: threads and sub-batches.
    for name, size, n in (("vgg16", 64, 3), ("resnet34", 64, 3), ("vgg16", 224, 2), ("resnet34", 224, 2)):
        check_grads(driver, work, name, 1, size, n=n, algo="winograd")
    check_steps(driver, work, "resnet34", 1, 64, algo="winograd")
    attrs, data, tag = check_grads(driver, work, "resnet34", 1, 32, n=19, algo="winograd")
    check_threads(driver, work, attrs, data, tag, counts=(2, 3))
    check_subbatch(driver, work, attrs, data, tag, 5)
    attrs, data, tag = check_grads(driver, work, "resnet34", 2, 64, n=7, algo="winograd")
    check_threads(driver, work, attrs, data, tag, counts=(2,))
    check_subbatch(driver, work, attrs, data, tag, 4)
    print(f"{PASSED} passed, {FAILED} failed")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
