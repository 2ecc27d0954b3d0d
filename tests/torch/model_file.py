"""Writes model files in the format of `ctsweep export` (src/train/model_file.h)
from a torchvision model with seeded random weights and a random head, and
keeps the same model in PyTorch as the reference for `ctsweep predict`.

The file: every tensor F32; the backbone under torchvision's state_dict names
(no classifier/fc); head.<i>.weight [out, in] and head.<i>.bias [out] for
each linear layer; head.standardize.mean|std [in] when standardisation is
on; __metadata__ strings format=ctsweep-model/1, model, image_size,
normalize, classes, threshold, epoch, epoch_kind, trial_id,
dataset_fingerprint, software_version, unfreeze, head, feature_store.

    ref = make("vgg16", path, size=64, hidden=[32, 16], standardize=True,
               unfreeze=1, calib=x)   # x: inputs whose features set the statistics
    prob = ref.prob(x); cam = ref.gradcam(x)
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "lib"))
import reference  # noqa: E402
import safetensors_io  # noqa: E402

CLASSES = ["NonCOVID", "COVID"]


def last_stage(m, name):
    """The modules of the last stage, as the registry names it (VGG block5, ResNet layer4)."""
    if name.startswith("vgg"):
        feats = list(m.features)
        pools = [i for i, f in enumerate(feats) if isinstance(f, torch.nn.MaxPool2d)]
        return feats[pools[-2] + 1:]
    return [m.layer4]


def target_module(m, name):
    """Grad-CAM's target: VGG's last ReLU (before the last max pool), ResNet's layer4."""
    if name.startswith("vgg"):
        return [f for f in m.features if isinstance(f, torch.nn.ReLU)][-1]
    return m.layer4


class Reference:
    def __init__(self, name, m, head, mean, std):
        self.name, self.m, self.head = name, m, head
        self.mean = None if mean is None else torch.from_numpy(mean)
        self.inv = None if std is None else torch.from_numpy((np.float32(1) / std).astype(np.float32))

    def logits(self, x):
        t = torch.as_tensor(x)
        if self.name.startswith("vgg"):
            f = torch.flatten(self.m.avgpool(self.m.features(t)), 1)
        elif self.name.startswith("densenet"):
            f = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(torch.relu(self.m.features(t)), 1), 1)
        else:
            m = self.m
            y = m.maxpool(m.relu(m.bn1(m.conv1(t))))
            f = torch.flatten(m.avgpool(m.layer4(m.layer3(m.layer2(m.layer1(y))))), 1)
        if self.mean is not None:
            f = (f - self.mean) * self.inv
        return self.head(f)

    @torch.no_grad()
    def prob(self, x):
        return torch.softmax(self.logits(x), 1)[:, 1].numpy()

    def gradcam(self, x):
        """PyTorch hooks: the target module's output A, d (positive logit) / d A."""
        kept = {}
        h = target_module(self.m, self.name).register_forward_hook(lambda mod, i, o: kept.__setitem__("A", o))
        try:
            logits = self.logits(x)
            A = kept["A"]
            (g,) = torch.autograd.grad(logits[:, 1].sum(), A)
        finally:
            h.remove()
        alpha = g.mean(dim=(2, 3), keepdim=True)
        return torch.relu((alpha * A).sum(1)).detach().numpy()


def features(m, name, x):
    """The head's input (the backbone's pooled output) as a numpy array."""
    with torch.no_grad():
        return reference.features(m, name, x).reshape(len(x), -1)


def make(name, path, size, hidden, dropout=0.5, standardize=True, unfreeze=0, calib=None, seed=7,
         threshold=0.4375, normalize="imagenet", feature_store="fp32", finetune=False, conv_algo="direct"):
    torch.manual_seed(seed)
    m = reference.build_model(name, seed)
    for mod in m.modules():  # hooks and autograd see every ReLU's own output
        if isinstance(mod, torch.nn.ReLU):
            mod.inplace = False
    if finetune:  # a fine-tuned last stage: weights moved away from their initialisation
        g = torch.Generator().manual_seed(seed + 2)
        with torch.no_grad():
            for mod in last_stage(m, name):
                for p in mod.parameters():
                    p.mul_(1 + 0.2 * torch.randn(p.shape, generator=g))
    f = features(m, name, calib)
    dims = [f.shape[1]] + list(hidden) + [2]
    layers = []
    for i in range(len(dims) - 1):
        layers.append(torch.nn.Linear(dims[i], dims[i + 1]))
        if i + 2 < len(dims):
            layers += [torch.nn.ReLU(), torch.nn.Dropout(dropout)]
    head = torch.nn.Sequential(*layers).eval()
    mean = std = None
    if standardize:
        mean = f.mean(0).astype(np.float32)
        std = (f.std(0) + 0.1 * f.std() + 1e-3).astype(np.float32)
    else:  # keep the logits moderate on unstandardised random features
        with torch.no_grad():
            head[0].weight.mul_(float(1.0 / (np.abs(f).mean() + 1e-6)))
    ref = Reference(name, m, head, mean, std)
    with torch.no_grad():  # spread the probabilities: logit differences of about 2 across the images
        lg = ref.logits(calib)
        spread = float((lg[:, 1] - lg[:, 0]).std()) if len(calib) > 1 else 0.0
        if spread > 0:
            head[-1].weight.mul_(2.0 / spread)
    tensors = {}
    for k, v in m.state_dict().items():
        if k.startswith("classifier.") or k.startswith("fc.") or v.dtype == torch.int64:
            continue
        tensors[k] = v.detach().numpy().astype(np.float32)
    lin = [l for l in head if isinstance(l, torch.nn.Linear)]
    for i, l in enumerate(lin):
        tensors[f"head.{i}.weight"] = l.weight.detach().numpy().astype(np.float32)
        tensors[f"head.{i}.bias"] = l.bias.detach().numpy().astype(np.float32)
    if standardize:
        tensors["head.standardize.mean"] = mean
        tensors["head.standardize.std"] = std
    meta = {
        "format": "ctsweep-model/1",
        "model": name,
        "image_size": str(size),
        "normalize": normalize,
        "classes": json.dumps(CLASSES),
        "threshold": "%.9g" % threshold,
        "epoch": "3",
        "epoch_kind": "selected",
        "trial_id": f"test-{name}-{seed}",
        "dataset_fingerprint": "0" * 64,
        "software_version": "test",
        "unfreeze": str(unfreeze),
        "head": json.dumps({"hidden": list(hidden), "dropout": dropout, "standardize": bool(standardize)}),
        "feature_store": feature_store,
        # oneDNN's direct kernels: torchvision's numbers to ~1e-6 (auto's
        # Winograd is ~1e-5 relative away in the features)
        "precision": "fp32",
        "conv_algo": conv_algo,
    }
    safetensors_io.save_file(tensors, path, metadata=meta)
    return ref


def rewrite(src, dst, drop=(), meta_update=None):
    """A copy of a model file without the tensors in drop, metadata updated."""
    tensors = safetensors_io.load_file(src)
    meta = safetensors_io.load_metadata(src)
    for k in drop:
        del tensors[k]
    meta.update(meta_update or {})
    safetensors_io.save_file(tensors, dst, metadata=meta)
