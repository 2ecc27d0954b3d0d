"""Reference data for the backbone tests, made at test time with torchvision.

Writes, into a work directory:
  <model>.safetensors      torchvision's randomly initialised model, BatchNorm
                           running statistics set to non-trivial values, plus
                           one classifier tensor that the reader must ignore;
  images/                  symlinks to a handful of real COVID-CT images of
                           every kind (RGB, RGBA and grey PNG, RGB and grey
                           JPEG, JPEG data named .png), picked by content;
  <model>_<size>.npy       torchvision's features of those images after PIL
                           preprocessing (convert('RGB'), resize BILINEAR,
                           ToTensor, ImageNet Normalize).
"""
import os
import sys

import numpy as np
import torch
import torchvision
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "lib"))
import safetensors_io  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def sniff(path):
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x89PNG"):
        return "png"
    if head.startswith(b"\xff\xd8"):
        return "jpeg"
    return "other"


def pick_images(covid_root, per_kind=1):
    """One or more images of each kind, chosen by content, deterministic order."""
    kinds = {}
    for cls in ("CT_COVID", "CT_NonCOVID"):
        d = os.path.join(covid_root, cls)
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            fmt = sniff(p)
            with Image.open(p) as im:
                mode = im.mode
            kind = f"{fmt}-{mode}"
            if fmt == "jpeg" and name.endswith(".png"):
                kind = "jpeg-named-png-" + mode
            if len(kinds.setdefault(kind, [])) < per_kind:
                kinds[kind].append(p)
    out = []
    for k in sorted(kinds):
        out.extend(kinds[k])
    return out, sorted(kinds)


def preprocess(path, size, normalize="imagenet"):
    with Image.open(path) as im:
        rgb = im.convert("RGB").resize((size, size), Image.BILINEAR)
    x = np.asarray(rgb, dtype=np.float32) / 255.0
    if normalize == "imagenet":
        x = (x - MEAN) / STD
    return x.transpose(2, 0, 1).copy()


def build_model(name, seed):
    torch.manual_seed(seed)
    m = getattr(torchvision.models, name)(weights=None)
    g = torch.Generator().manual_seed(seed + 1)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
            mod.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
            mod.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(c, generator=g) * 0.2)
    return m.eval()


def save_weights(m, name, path):
    sd = m.state_dict()
    keep = {}
    for k, v in sd.items():
        if k.startswith("features.") or not (k.startswith("classifier.") or k.startswith("fc.")):
            if v.dtype == torch.int64:  # num_batches_tracked
                continue
            keep[k] = v.numpy()
    # One head tensor the reader must ignore.
    head = ("classifier.6.weight" if name.startswith("vgg") else "classifier.weight" if name.startswith("densenet")
            else "fc.weight")
    keep[head] = sd[head].numpy()
    safetensors_io.save_file(keep, path, metadata={"model": name, "origin": "torchvision random init"})


@torch.no_grad()
def features(m, name, x):
    t = torch.from_numpy(x)
    if name.startswith("vgg"):
        return m.avgpool(m.features(t)).numpy()
    if name.startswith("densenet"):  # DenseNet.forward without its classifier
        y = torch.nn.functional.relu(m.features(t))
        return torch.flatten(torch.nn.functional.adaptive_avg_pool2d(y, (1, 1)), 1).numpy()
    y = m.maxpool(m.relu(m.bn1(m.conv1(t))))
    y = m.layer4(m.layer3(m.layer2(m.layer1(y))))
    return torch.flatten(m.avgpool(y), 1).numpy()


def main():
    work, covid_root, name = sys.argv[1], sys.argv[2], sys.argv[3]
    sizes = [int(s) for s in sys.argv[4].split(",")]
    torch.set_num_threads(2)
    os.makedirs(work, exist_ok=True)
    images, kinds = pick_images(covid_root)
    with open(os.path.join(work, "images.txt"), "w") as f:
        f.write("\n".join(images) + "\n")
    m = build_model(name, seed=1234)
    save_weights(m, name, os.path.join(work, f"{name}.safetensors"))
    for s in sizes:
        x = np.stack([preprocess(p, s) for p in images])
        np.save(os.path.join(work, f"{name}_{s}.npy"), features(m, name, x))
    print(f"reference: {name}, {len(images)} images of kinds {', '.join(kinds)}, sizes {sizes}")


if __name__ == "__main__":
    main()
