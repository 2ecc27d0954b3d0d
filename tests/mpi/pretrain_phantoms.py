"""A stand-in for an ImageNet-pretrained backbone, trained on a source task:
torchvision's ResNet (weights=None, BatchNorm in training mode) trained with
Adam to classify phantoms of another seed than the target sweep's, then its
backbone written as safetensors under torchvision's names (fc dropped), the
format `weights.<model>` takes. Pretrained weights cannot be downloaded here;
this gives the fine-tuning test a backbone whose features carry the task, as
a real transfer-learning run has.

usage: pretrain_phantoms.py SRC_DIR MODEL EPOCHS SIZE OUT.safetensors
SRC_DIR holds CT_COVID/ and CT_NonCOVID/ (`ctsweep phantoms`); images are
preprocessed as the backbone tests do (tests/torch/reference.py: RGB,
resized to SIZE, ImageNet's normalisation).
Prints the training loss and accuracy of each epoch.
"""
import os
import sys
import time

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch"))
import reference  # noqa: E402  (the backbone tests' PIL preprocessing; puts scripts/lib on the path)
import safetensors_io  # noqa: E402


def load(src, size):
    xs, ys = [], []
    for label, cls in ((1, "CT_COVID"), (0, "CT_NonCOVID")):
        for f in sorted(os.listdir(os.path.join(src, cls))):
            xs.append(reference.preprocess(os.path.join(src, cls, f), size))
            ys.append(label)
    return torch.from_numpy(np.stack(xs)), torch.tensor(ys)


def main():
    src, model, epochs, size, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    torch.manual_seed(0)
    torch.set_num_threads(2)
    x, y = load(src, size)
    m = getattr(torchvision.models, model)(weights=None, num_classes=2)
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    t0 = time.time()
    m.train()
    for e in range(epochs):
        perm = torch.randperm(len(y))
        total, right = 0.0, 0
        for i in range(0, len(y), 32):
            idx = perm[i:i + 32]
            logits = m(x[idx])
            loss = torch.nn.functional.cross_entropy(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            right += int((logits.argmax(1) == y[idx]).sum())
        print(f"pretraining {model} epoch {e + 1}/{epochs}: loss {total / len(y):.3f}, "
              f"accuracy {right / len(y):.3f} ({time.time() - t0:.0f} s)", flush=True)
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in m.state_dict().items()
          if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    safetensors_io.save_file(sd, out)


if __name__ == "__main__":
    main()
