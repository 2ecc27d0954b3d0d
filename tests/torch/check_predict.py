"""`ctsweep predict` against PyTorch (label torch), with model files written
by model_file.py in the format of `ctsweep export`.

usage: check_predict.py CTSWEEP WORK COVID_ROOT [cuda]

For VGG16 (64 px) and ResNet-34 (96 px), each with a frozen file (unfreeze 0)
and a fine-tuned one (unfreeze 1, last stage moved away from its random
initialisation), standardisation on in one and off in the other:
  - probabilities equal torchvision + an nn.Sequential head on our own
    preprocessed input (`ctsweep features --model identity`), |diff| <= 1e-5;
  - bit for bit the same CSV with --batch 1, 7 and the default 32, and with
    one thread;
  - labels by the model's threshold, and by --threshold;
  - /cam of saliency.h5 equals Grad-CAM with PyTorch hooks (forward hook on
    VGG's last ReLU / ResNet's layer4, torch.autograd.grad of the positive
    logit): max|diff| <= 1e-4 * max|ref|; /paths the images in order;
  - one PNG per image that PIL decodes at the input's height, with the
    colour bar (jet(1) at its top, jet(0) at its bottom) at the right.
Bad inputs: a truncated file, a file missing a head tensor, bad metadata, a
missing file (exit 1, exactly one line, nothing written, an existing CSV
untouched), a non-image among good images (exit 3, one line naming it, the
others predicted with the same bits), DenseNet's Grad-CAM refused in one line.
VGG19, ResNet-18 and ResNet-50: probabilities and Grad-CAM of a fine-tuned file.
feature_store fp16 and bf16: probabilities from our backbone's output rounded
by numpy, within 1e-6.

With `cuda`: `predict --backend cuda` against the CPU (label gpu):
probabilities within 1e-4 absolute, CAMs within 1e-3 * max|CPU| (cuDNN's and
oneDNN's float32 convolutions sum in different orders); exits 77 with
"SKIP: ..." when no CUDA device is visible or the build has no CUDA backend.
"""
import csv
import glob
import os
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import model_file  # noqa: E402
import reference  # noqa: E402

PROB_ATOL, CAM_RTOL = 1e-5, 1e-4
GPU_PROB_ATOL, GPU_CAM_RTOL = 1e-4, 1e-3
SKIP = 77
FAILED = []

CASES = [  # name, size, unfreeze, standardize, fine-tuned
    ("vgg16", 64, 0, True, False),
    ("vgg16", 64, 1, False, True),
    ("resnet34", 96, 0, False, False),
    ("resnet34", 96, 1, True, True),
]


def check(ok, what):
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        FAILED.append(what)
    return ok


def run(cmd, expect=0):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != expect:
        sys.stderr.write(r.stderr)
        raise SystemExit(f"FAILED: {' '.join(cmd)} exited {r.returncode}, expected {expect}")
    return r


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["path", "prob", "label"], rows[0]
    return [r[0] for r in rows[1:]], np.array([float(r[1]) for r in rows[1:]]), [r[2] for r in rows[1:]]


def compare(label, ours, ref, atol=0.0, rtol=0.0):
    if ours.shape != ref.shape:
        return check(False, f"{label}: shape {ours.shape}, reference {ref.shape}")
    diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    scale = float(np.abs(ref).max())
    bound = atol + rtol * scale
    return check(bool(diff.max() <= bound),
                 f"{label}: max|diff| {diff.max():.3g} at {tuple(int(i) for i in worst)} (ours {ours[worst]:.7g}, "
                 f"ref {ref[worst]:.7g}), bound {bound:.3g}, rel {diff.max() / max(scale, 1e-30):.2e}")


def jet(v):
    return tuple(int(round(255 * min(1.0, max(0.0, 1.5 - abs(4 * v - c))))) for c in (3, 2, 1))


def picture_width(s):
    return s + 2 * max(2, s // 32) + max(6, s // 16) + max(3, s // 64)


def inputs(ctsweep, work, images, size):
    """Our own preprocessed input, so both sides see the same tensors."""
    out = os.path.join(work, f"input_{size}.h5")
    run([ctsweep, "features", "--model", "identity", "--image-size", str(size), "-o", out] + images)
    with h5py.File(out, "r") as f:
        return f["features"][:]


def check_pngs(label, sal, images, size):
    pngs = sorted(glob.glob(os.path.join(sal, "*.png")))
    check(len(pngs) == len(images), f"{label}: {len(pngs)} PNGs for {len(images)} images")
    w = picture_width(size)
    bar_x = size + max(2, size // 32) + max(6, size // 16) // 2
    for i, (p, img) in enumerate(zip(pngs, images)):
        stem = os.path.splitext(os.path.basename(img))[0]
        with Image.open(p) as im:
            im.verify()  # every chunk's CRC
        with Image.open(p) as im:
            im.load()
            good = (im.size == (w, size) and im.mode == "RGB" and os.path.basename(p).endswith(f"_{stem}.png")
                    and im.getpixel((bar_x, 0)) == jet(1.0) and im.getpixel((bar_x, size - 1)) == jet(0.0))
        if not check(good, f"{label}: {os.path.basename(p)} {im.size} {im.mode}, colour bar top "
                           f"{im.getpixel((bar_x, 0))} bottom {im.getpixel((bar_x, size - 1))}"):
            break


def check_case(ctsweep, work, images, case):
    name, size, unfreeze, std, ft = case
    label = f"{name} {size}px unfreeze {unfreeze} standardize {std}{' fine-tuned' if ft else ''}"
    d = os.path.join(work, f"{name}_u{unfreeze}")
    os.makedirs(d, exist_ok=True)
    x = inputs(ctsweep, d, images, size)
    path = os.path.join(d, "model.safetensors")
    ref = model_file.make(name, path, size, hidden=[32, 16], standardize=std, unfreeze=unfreeze, calib=x,
                          finetune=ft)
    pref = ref.prob(x)
    # The model's threshold between the probabilities, so both labels occur.
    ps = np.sort(pref)
    thr = float((ps[len(ps) // 2 - 1] + ps[len(ps) // 2]) / 2)
    model_file.rewrite(path, path, meta_update={"threshold": "%.9g" % thr})
    sal = os.path.join(d, "saliency")
    shutil.rmtree(sal, ignore_errors=True)
    out = os.path.join(d, "out.csv")
    run([ctsweep, "predict", path, *images, "-o", out, "--saliency", sal])
    paths, prob, labels = read_csv(out)
    check(paths == images, f"{label}: CSV paths are the images in order")
    compare(f"{label}: prob vs torchvision", prob, pref, atol=PROB_ATOL)
    want = [model_file.CLASSES[int(p >= np.float32(thr))] for p in prob.astype(np.float32)]
    check(labels == want and len(set(labels)) == 2, f"{label}: labels by the model's threshold {thr:.4f}: {labels}")
    for t in (0.0, 1.0, 0.5):
        o = os.path.join(d, f"thr{t}.csv")
        run([ctsweep, "predict", path, *images, "-o", o, "--threshold", str(t)])
        _, p2, l2 = read_csv(o)
        check(l2 == [model_file.CLASSES[int(p >= t)] for p in p2.astype(np.float32)],
              f"{label}: labels by --threshold {t}")
    with open(out, "rb") as f:
        base = f.read()
    for flags in (["--batch", "1"], ["--batch", "7"], ["--threads", "1"]):
        o = os.path.join(d, f"{flags[0][2:]}{flags[1]}.csv")
        run([ctsweep, "predict", path, *images, "-o", o, *flags])
        with open(o, "rb") as f:
            check(f.read() == base, f"{label}: {' '.join(flags)} gives the default's CSV bit for bit")
    with h5py.File(os.path.join(sal, "saliency.h5"), "r") as f:
        cam = f["cam"][:]
        spaths = [p.decode() if isinstance(p, bytes) else p for p in f["paths"][:]]
    check(spaths == images, f"{label}: saliency.h5 /paths")
    compare(f"{label}: Grad-CAM vs PyTorch hooks {cam.shape}", cam, ref.gradcam(x), rtol=CAM_RTOL)
    check_pngs(label, sal, images, size)
    return path, base


def one_line(r):
    return [l for l in r.stderr.splitlines() if l.strip()]


def check_bad_inputs(ctsweep, work, images, model, base_csv):
    d = os.path.join(work, "bad")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    out = os.path.join(d, "out.csv")
    with open(out, "w") as f:
        f.write("an earlier result\n")

    def refused(what, mpath, pattern, extra=()):
        r = run([ctsweep, "predict", mpath, *images, "-o", out, *extra], expect=1)
        lines = one_line(r)
        ok = len(lines) == 1 and re.fullmatch(pattern, lines[0]) is not None
        check(ok, f"{what}: exit 1, one line: {lines}")
        with open(out) as f:
            check(f.read() == "an earlier result\n", f"{what}: the existing CSV is untouched")
        check(not [x for x in os.listdir(d) if ".tmp." in x], f"{what}: no temporary file left")

    size = os.path.getsize(model)
    trunc = os.path.join(d, "truncated.safetensors")
    with open(model, "rb") as f, open(trunc, "wb") as g:
        g.write(f.read(size // 2))
    refused("truncated file", trunc,
            re.escape(f"ctsweep: error: {trunc}: ") + r"tensor '[^']+': data_offsets \[\d+,\d+\] are outside the "
            r"data section of \d+ bytes")
    nohead = os.path.join(d, "nohead.safetensors")
    model_file.rewrite(model, nohead, drop=["head.1.bias"])
    refused("missing head tensor", nohead,
            re.escape(f"ctsweep: error: {nohead}: head tensor 'head.1.bias' is missing"))
    badfmt = os.path.join(d, "format.safetensors")
    model_file.rewrite(model, badfmt, meta_update={"format": "pt"})
    refused("wrong format", badfmt,
            re.escape(f"ctsweep: error: {badfmt}: metadata 'format' = 'pt': expected ctsweep-model/1"))
    badmodel = os.path.join(d, "model.safetensors")
    model_file.rewrite(model, badmodel, meta_update={"model": "alexnet"})
    refused("unknown model", badmodel,
            re.escape(f"ctsweep: error: {badmodel}: metadata 'model' = 'alexnet': expected ") + ".*vgg16.*")
    shape = os.path.join(d, "shape.safetensors")
    t = model_file.safetensors_io.load_file(model)
    t["head.0.weight"] = np.ascontiguousarray(t["head.0.weight"].T)
    model_file.safetensors_io.save_file(t, shape, metadata=model_file.safetensors_io.load_metadata(model))
    rows, cols = t["head.0.weight"].shape
    refused("head tensor of the wrong shape", shape,
            re.escape(f"ctsweep: error: {shape}: head tensor 'head.0.weight' is F32 [{rows},{cols}], "
                      f"expected F32 [{cols},{rows}]"))
    for key, value, expected in (("unfreeze", "6", "an integer from 0 to 5 (the stages of vgg16)"),
                                 ("classes", '["COVID"]', "a JSON list of two distinct names"),
                                 ("threshold", "1.5", "a probability in [0, 1]"),
                                 ("head", '{"hidden":[32,16],"dropout":0.5}',
                                  '{"hidden":[...],"dropout":p,"standardize":true|false}'),
                                 ("feature_store", "fp8", "fp32, fp16 or bf16"),
                                 ("precision", "fp64", "fp32, bf16, tf32 or fp16"),
                                 ("conv_algo", "fft", "auto, direct or winograd")):
        bad_meta = os.path.join(d, f"meta_{key}.safetensors")
        model_file.rewrite(model, bad_meta, meta_update={key: value})
        refused(f"metadata {key}", bad_meta,
                re.escape(f"ctsweep: error: {bad_meta}: metadata '{key}' = '{value}': expected {expected}"))
    missing = os.path.join(d, "missing.safetensors")
    refused("missing model file", missing,
            re.escape(f"ctsweep: error: {missing}: cannot open: No such file or directory"),
            extra=("--saliency", os.path.join(d, "sal")))
    check(not os.path.exists(os.path.join(d, "sal")), "missing model file: no saliency folder made")

    # A non-image among good ones: one line naming it, the others predicted
    # with the same bits as without it, exit 3.
    bad = os.path.join(d, "notes.png")
    with open(bad, "w") as f:
        f.write("not an image\n")
    mixed = images[:2] + [bad] + images[2:]
    sal = os.path.join(d, "saliency")
    r = run([ctsweep, "predict", model, *mixed, "-o", out, "--saliency", sal], expect=3)
    named = [l for l in one_line(r) if bad in l]
    check(named == [f"ctsweep: warning: skipping bad image: {bad}: not a PNG or JPEG image"],
          f"non-image: exit 3, one line naming it: {named}")
    with open(out, "rb") as f:
        check(f.read() == base_csv, "non-image: the other images' CSV rows, bit for bit")
    with h5py.File(os.path.join(sal, "saliency.h5"), "r") as f:
        check(f["cam"].shape[0] == len(images) and len(f["paths"]) == len(images),
              "non-image: saliency.h5 holds the good images only")


def check_constant_feature(ctsweep, work, images, model):
    """A feature that was constant in training (std +inf, or inv_std 0 in a
    file that has inv_std, as `ctsweep export` writes for it) contributes
    nothing: the same bits as zeroing its column of the first weight."""
    io = model_file.safetensors_io
    d = os.path.join(work, "constant")
    os.makedirs(d, exist_ok=True)
    t, meta = io.load_file(model), io.load_metadata(model)
    std = t["head.standardize.std"]
    a, b, c = dict(t), dict(t), dict(t)
    a["head.standardize.std"] = std.copy()
    a["head.standardize.std"][:5] = np.inf
    b["head.standardize.inv_std"] = (np.float32(1) / std).astype(np.float32)
    b["head.standardize.inv_std"][:5] = 0
    c["head.0.weight"] = t["head.0.weight"].copy()
    c["head.0.weight"][:, :5] = 0
    probs = {}
    for tag, tensors in (("std_inf", a), ("inv_std_0", b), ("column_0", c)):
        path = os.path.join(d, f"{tag}.safetensors")
        io.save_file(tensors, path, metadata=meta)
        out = os.path.join(d, f"{tag}.csv")
        run([ctsweep, "predict", path, *images, "-o", out])
        probs[tag] = read_csv(out)[1]
    base = read_csv(os.path.join(os.path.dirname(model), "out.csv"))[1]
    check(np.array_equal(probs["std_inf"], probs["column_0"]) and np.array_equal(probs["inv_std_0"], probs["column_0"])
          and not np.array_equal(probs["column_0"], base),
          "constant features (std inf, inv_std 0): the bits of a zeroed weight column, and not the full model's")


def check_densenet(ctsweep, work, images):
    d = os.path.join(work, "densenet121")
    os.makedirs(d, exist_ok=True)
    x = inputs(ctsweep, d, images, 32)
    path = os.path.join(d, "model.safetensors")
    ref = model_file.make("densenet121", path, 32, hidden=[16], standardize=True, calib=x)
    out = os.path.join(d, "out.csv")
    run([ctsweep, "predict", path, *images, "-o", out])
    compare("densenet121 32px: prob vs torchvision", read_csv(out)[1], ref.prob(x), atol=PROB_ATOL)
    r = run([ctsweep, "predict", path, *images, "-o", os.path.join(d, "cam.csv"), "--saliency",
             os.path.join(d, "sal")], expect=1)
    lines = one_line(r)
    check(len(lines) == 1 and lines[0].startswith(f"ctsweep: error: {path}: densenet121: Grad-CAM needs a backbone "
                                                  "that ends in a convolution")
          and not os.path.exists(os.path.join(d, "cam.csv")), f"densenet121: Grad-CAM refused in one line: {lines}")


def check_more_models(ctsweep, work, images):
    """VGG19, ResNet-18 and ResNet-50 (bottleneck blocks): probabilities and
    Grad-CAM of a fine-tuned file, on a few images."""
    for name in ("vgg19", "resnet18", "resnet50"):
        d = os.path.join(work, name)
        os.makedirs(d, exist_ok=True)
        x = inputs(ctsweep, d, images, 64)
        path = os.path.join(d, "model.safetensors")
        ref = model_file.make(name, path, 64, hidden=[16], standardize=True, unfreeze=1, calib=x, finetune=True)
        sal = os.path.join(d, "saliency")
        shutil.rmtree(sal, ignore_errors=True)
        out = os.path.join(d, "out.csv")
        run([ctsweep, "predict", path, *images, "-o", out, "--saliency", sal])
        compare(f"{name} 64px unfreeze 1: prob vs torchvision", read_csv(out)[1], ref.prob(x), atol=PROB_ATOL)
        with h5py.File(os.path.join(sal, "saliency.h5"), "r") as f:
            compare(f"{name} 64px unfreeze 1: Grad-CAM vs PyTorch hooks", f["cam"][:], ref.gradcam(x), rtol=CAM_RTOL)


def check_feature_store(ctsweep, work, images):
    """feature_store fp16 / bf16: the sweep kept the backbone's output at that
    precision, so predict rounds it the same way. Reference: our own features
    (`ctsweep features` with the model file as weights) rounded by numpy
    (round to nearest even), then PyTorch's head; and the rounding must show."""
    d = os.path.join(work, "store")
    os.makedirs(d, exist_ok=True)
    x = inputs(ctsweep, d, images, 96)
    path = os.path.join(d, "fp32.safetensors")
    ref = model_file.make("resnet34", path, 96, hidden=[32, 16], standardize=True, calib=x)
    feats = os.path.join(d, "features.h5")
    run([ctsweep, "features", "--model", "resnet34", "--weights", path, "--image-size", "96", "--conv-algo", "direct",
         "-o", feats] + images)
    with h5py.File(feats, "r") as f:
        ours = f["features"][:].reshape(len(images), -1)
    out = os.path.join(d, "fp32.csv")
    run([ctsweep, "predict", path, *images, "-o", out])
    p32 = read_csv(out)[1]
    rounders = {"fp16": lambda a: a.astype(np.float16).astype(np.float32),
                "bf16": lambda a: model_file.safetensors_io.bf16_bits_to_float32(
                    model_file.safetensors_io.float32_to_bf16_bits(a))}
    for store, rnd in rounders.items():
        sp = os.path.join(d, f"{store}.safetensors")
        model_file.rewrite(path, sp, meta_update={"feature_store": store})
        out = os.path.join(d, f"{store}.csv")
        run([ctsweep, "predict", sp, *images, "-o", out])
        p = read_csv(out)[1]
        with torch.no_grad():
            z = (torch.from_numpy(rnd(ours)) - ref.mean) * ref.inv
            pref = torch.softmax(ref.head(z), 1)[:, 1].numpy()
        compare(f"feature_store {store}: prob vs our features rounded by numpy + PyTorch's head", p, pref, atol=1e-6)
        check(np.abs(p - p32).max() > 1e-6, f"feature_store {store}: the rounding changes the probabilities "
                                             f"(max|{store} - fp32| {np.abs(p - p32).max():.2e})")


def check_cuda(ctsweep, work, images):
    for case in (CASES[0], CASES[3]):
        name, size, unfreeze, std, ft = case
        d = os.path.join(work, f"cuda_{name}_u{unfreeze}")
        os.makedirs(d, exist_ok=True)
        x = inputs(ctsweep, d, images, size)
        path = os.path.join(d, "model.safetensors")
        model_file.make(name, path, size, hidden=[32, 16], standardize=std, unfreeze=unfreeze, calib=x, finetune=ft)
        res = {}
        for be in ("cpu", "cuda"):
            sal = os.path.join(d, f"sal_{be}")
            r = subprocess.run([ctsweep, "predict", path, *images, "-o", os.path.join(d, f"{be}.csv"), "--saliency",
                                sal, "--backend", be], capture_output=True, text=True)
            if be == "cuda" and r.returncode != 0 and ("no CUDA device" in r.stderr or
                                                       "built without the CUDA backend" in r.stderr):
                print(f"SKIP: {r.stderr.strip()}")
                raise SystemExit(SKIP)
            if r.returncode != 0:
                sys.stderr.write(r.stderr)
                raise SystemExit(f"FAILED: predict --backend {be} exited {r.returncode}")
            with h5py.File(os.path.join(sal, "saliency.h5"), "r") as f:
                res[be] = (read_csv(os.path.join(d, f"{be}.csv"))[1], f["cam"][:])
        label = f"{name} {size}px unfreeze {unfreeze}"
        compare(f"{label}: cuda prob vs cpu", res["cuda"][0], res["cpu"][0], atol=GPU_PROB_ATOL)
        compare(f"{label}: cuda Grad-CAM vs cpu", res["cuda"][1], res["cpu"][1], rtol=GPU_CAM_RTOL)


def main():
    ctsweep, work, covid_root = sys.argv[1:4]
    mode = sys.argv[4] if len(sys.argv) > 4 else "cpu"
    torch.set_num_threads(2)
    os.makedirs(work, exist_ok=True)
    images, kinds = reference.pick_images(covid_root, per_kind=2)
    images = images[:9]  # 7 + 2: --batch 7 splits them unevenly
    print(f"{len(images)} images of kinds {', '.join(kinds)}")
    if mode == "cuda":
        check_cuda(ctsweep, os.path.join(work, "cuda"), images)
    else:
        first = None
        for case in CASES:
            got = check_case(ctsweep, work, images, case)
            first = first or got
        check_bad_inputs(ctsweep, work, images, *first)
        check_constant_feature(ctsweep, work, images, first[0])
        check_densenet(ctsweep, work, images)
        check_more_models(ctsweep, work, images[:4])
        check_feature_store(ctsweep, work, images)
    if FAILED:
        print(f"{len(FAILED)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
