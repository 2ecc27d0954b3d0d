"""PyTorch's side of bench/trial: the reference workflow's naive training
loop for one trial on COVID-CT's official split, timed end to end.

What it does, per epoch: for each batch of the shuffled training set (last
partial batch kept) augment each image when on, run the frozen backbone
under torch.no_grad(), then the head forward/backward and Adam, with
CyclicLR (triangular, base 1e-4, max 1e-3, step_size_up 2 epochs) stepped
per iteration; then val and test through the backbone again and the head
in eval mode. Every image passes the backbone every epoch: epochs * 746
forwards.

Deliberate choices, noted where they bias the comparison:
- Images are decoded with PIL once, up front, into memory at the target
  size (convert("RGB"), resize BILINEAR). This favours PyTorch: the naive
  workflow decodes each image every epoch through a DataLoader; here decode
  is paid once, as ctsweep's image cache pays it.
- The head has no input standardisation (ctsweep's side z-scores features
  with training statistics, which costs one pass over them). Its accuracy on
  a random backbone therefore stays near chance; the timing is unaffected.
- Augmentation (when on), per image, on a float tensor in [0, 1]:
  RandomApply([RandomRotation(15)], p=.5), RandomHorizontalFlip(.5),
  RandomApply([RandomAffine(0, scale=(0.9, 1.1))], p=.5), Gaussian noise
  std .01 with p .5, then ImageNet normalisation.
- nn.Linear runs on whatever libblas.so.3 torch finds: on Debian with
  only libblas3 installed that is netlib's unoptimised reference BLAS,
  which makes the head slow (bench/trial --torch-blas points it at
  OpenBLAS instead). The line printed names the library (blas=).
- The backbone is torchvision's model with weights=None, eval(),
  channels_last, as bench/torch_backbone.py runs it.

Fine-tuning (UNFREEZE N > 0), done naively: the backbone is cut before its
last N stages (VGG: the blocks ending at each max pool, block5 first;
ResNet: layer4, layer3, ...). Per batch, the frozen prefix runs under
torch.no_grad(), then the unfrozen stages and the head forward and backward
with requires_grad; the model stays in eval() (BatchNorm running statistics
frozen, its weight and bias train). Adam has two parameter groups, the
unfrozen stages at lr * BACKBONE_LR_SCALE (default 0.1) and the head at lr,
and CyclicLR scales both (base and max lists) stepped per iteration. Val
and test pass the whole model every epoch. The weights are torchvision's
random initialisation (weights=None), as ctsweep's side uses a seeded
random backbone: the timing is what is compared, not the accuracy.

usage: torch_trial.py MODEL SIZE EPOCHS BATCH on|off THREADS ROOT [UNFREEZE [BACKBONE_LR_SCALE]]
       torch_trial.py MODEL --head-only BATCH ITERS THREADS
       torch_trial.py MODEL --tail-only SIZE UNFREEZE BATCH ITERS THREADS
Prints one line of key=value pairs (epoch_seconds comma-separated).
"""
import os
import resource
import sys
import time

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms as T

CLASSES = (("CT_NonCOVID", 0), ("CT_COVID", 1))
SPLITS = ("train", "val", "test")


def cpu_seconds():
    """User + system CPU of this process (imports included, as bench/trial's wall clock is)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def blas_library():
    """The BLAS library torch's nn.Linear runs on: Debian's torch links the
    generic libblas.so.3, which is netlib's reference BLAS unless another
    implementation is selected (update-alternatives, or LD_LIBRARY_PATH)."""
    with open("/proc/self/maps", encoding="utf-8") as f:
        for line in f:
            path = line.split()[-1]
            if "blas" in os.path.basename(path):
                return os.path.realpath(path)
    return "none"


def read_split(root):
    """Paths and labels per split from the official split files."""
    out = {s: ([], []) for s in SPLITS}
    for s in SPLITS:
        for folder, label in CLASSES:
            with open(os.path.join(root, "splits", f"{s}{folder}.txt"), encoding="utf-8") as f:
                for line in f:
                    name = line.strip()
                    if name:
                        out[s][0].append(os.path.join(root, folder, name))
                        out[s][1].append(label)
    return out


def decode_all(paths, size):
    """uint8 (n, 3, S, S): PIL decode + RGB + bilinear resize, once."""
    x = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, p in enumerate(paths):
        with Image.open(p) as im:
            x[i] = np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR))
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


def backbone(name, unfreeze=0):
    """(frozen prefix, trainable tail): the tail is the last `unfreeze`
    stages plus the final pool (None when unfreeze is 0, the prefix then
    being the whole backbone). Both in eval() (BatchNorm frozen),
    channels_last; only the tail's parameters require gradients."""
    m = getattr(torchvision.models, name)(weights=None).eval()
    if name.startswith("vgg"):
        feats = list(m.features)
        ends = [i + 1 for i, layer in enumerate(feats) if isinstance(layer, torch.nn.MaxPool2d)]  # block ends
        if unfreeze > len(ends):
            sys.exit(f"torch_trial.py: {name} has {len(ends)} stages, unfreeze {unfreeze}")
        cut = ends[len(ends) - unfreeze - 1] if unfreeze else len(feats)
        stages, final = feats[:cut], feats[cut:] + [m.avgpool, torch.nn.Flatten()]
    else:
        layers = [m.layer1, m.layer2, m.layer3, m.layer4]
        if unfreeze > len(layers):
            sys.exit(f"torch_trial.py: {name} has {len(layers)} stages, unfreeze {unfreeze}")
        cut = len(layers) - unfreeze
        stages = [m.conv1, m.bn1, m.relu, m.maxpool] + layers[:cut]
        final = layers[cut:] + [m.avgpool, torch.nn.Flatten()]
    if not unfreeze:
        stages, final = stages + final, []
    prefix = torch.nn.Sequential(*stages).to(memory_format=torch.channels_last)
    for p in prefix.parameters():
        p.requires_grad_(False)
    if not final:
        return prefix, None
    return prefix, torch.nn.Sequential(*final).to(memory_format=torch.channels_last)


def head(name):
    """The reference head: VGG 25088-512-256-128-2, dropout .5; ResNet 512-256-128-2."""
    if name.startswith("vgg"):
        dims, p = [512 * 7 * 7, 512, 256, 128], 0.5
    else:
        dims, p = [512, 256, 128], 0.0
    layers = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
        if p > 0:
            layers.append(torch.nn.Dropout(p))
    layers.append(torch.nn.Linear(dims[-1], 2))
    return torch.nn.Sequential(*layers)


class GaussianNoise:
    def __init__(self, std):
        self.std = std

    def __call__(self, x):
        return x + self.std * torch.randn_like(x)


NORMALIZE = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
AUGMENT = T.Compose([
    T.RandomApply([T.RandomRotation(15)], p=0.5),
    T.RandomHorizontalFlip(0.5),
    T.RandomApply([T.RandomAffine(0, scale=(0.9, 1.1))], p=0.5),
    T.RandomApply([GaussianNoise(0.01)], p=0.5),
])


def batch_input(imgs_u8, aug):
    x = imgs_u8.float().div_(255.0)
    if aug:
        x = torch.stack([AUGMENT(xi) for xi in x])
    return NORMALIZE(x).contiguous(memory_format=torch.channels_last)


def evaluate(net, tail, hd, imgs, y, batch):
    hd.eval()
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for r0 in range(0, len(y), batch):
            f = net(batch_input(imgs[r0:r0 + batch], False))
            if tail is not None:
                f = tail(f)
            logits = hd(f)
            loss_sum += torch.nn.functional.cross_entropy(logits, y[r0:r0 + batch], reduction="sum").item()
            correct += (logits.argmax(1) == y[r0:r0 + batch]).sum().item()
    return loss_sum / len(y), correct / len(y)


def trial(name, size, epochs, batch, aug, threads, root, unfreeze=0, lr_scale=0.1):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    t_start = time.perf_counter()
    split = read_split(root)
    imgs, ys = {}, {}
    for s in SPLITS:
        imgs[s] = decode_all(split[s][0], size)
        ys[s] = torch.tensor(split[s][1], dtype=torch.long)
    t_decode = time.perf_counter() - t_start
    net, tail = backbone(name, unfreeze)
    hd = head(name)
    n_train = len(ys["train"])
    ipe = (n_train + batch - 1) // batch
    if tail is None:
        opt = torch.optim.Adam(hd.parameters(), lr=1e-4)
        base, top = 1e-4, 1e-3
    else:
        opt = torch.optim.Adam([{"params": tail.parameters(), "lr": 1e-4 * lr_scale},
                                {"params": hd.parameters(), "lr": 1e-4}])
        base, top = [1e-4 * lr_scale, 1e-4], [1e-3 * lr_scale, 1e-3]
    sched = torch.optim.lr_scheduler.CyclicLR(opt, base_lr=base, max_lr=top, step_size_up=2 * ipe,
                                              mode="triangular", cycle_momentum=False)
    forwards = 0
    epoch_s = []
    val_acc = test_acc = 0.0
    for _ in range(epochs):
        t0 = time.perf_counter()
        hd.train()
        perm = torch.randperm(n_train)
        for r0 in range(0, n_train, batch):
            idx = perm[r0:r0 + batch]
            with torch.no_grad():
                f = net(batch_input(imgs["train"][idx], aug))
            if tail is not None:
                f = tail(f)  # eval(): BatchNorm uses its running statistics, but its weight and bias get gradients
            loss = torch.nn.functional.cross_entropy(hd(f), ys["train"][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            forwards += len(idx)
        _, val_acc = evaluate(net, tail, hd, imgs["val"], ys["val"], batch)
        _, test_acc = evaluate(net, tail, hd, imgs["test"], ys["test"], batch)
        forwards += len(ys["val"]) + len(ys["test"])
        epoch_s.append(time.perf_counter() - t0)
        print(f"torch_trial: epoch {len(epoch_s)} val acc {val_acc:.3f} {epoch_s[-1]:.2f} s", file=sys.stderr)
    total = time.perf_counter() - t_start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steady = sum(epoch_s[1:]) / (len(epoch_s) - 1) if len(epoch_s) > 1 else 0.0
    print(f"mode=trial model={name} torch={torch.__version__} blas={blas_library()} size={size} epochs={epochs} batch={batch} "
          f"aug={'on' if aug else 'off'} unfreeze={unfreeze} backbone_lr_scale={lr_scale:g} threads={threads} "
          f"seconds_total={total:.2f} seconds_decode={t_decode:.2f} "
          f"forwards={forwards} epoch_seconds={','.join(f'{s:.2f}' for s in epoch_s)} "
          f"first_epoch_seconds={epoch_s[0]:.2f} steady_epoch_seconds={steady:.2f} "
          f"val_acc={val_acc:.4f} test_acc={test_acc:.4f} peak_rss_mib={rss:.1f} cpu_seconds={cpu_seconds():.2f}")


def head_only(name, batch, iters, threads):
    """Head forward + backward + Adam on random features, samples/s."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dim = 512 * 7 * 7 if name.startswith("vgg") else 512
    rows = 425
    x = torch.randn(rows, dim)
    y = torch.randint(0, 2, (rows,))
    hd = head(name).train()
    opt = torch.optim.Adam(hd.parameters(), lr=1e-4)
    warmup = 3
    r0 = 0
    t0 = 0.0
    for it in range(-warmup, iters):
        if it == 0:
            t0 = time.perf_counter()
        if r0 + batch > rows:
            r0 = 0
        loss = torch.nn.functional.cross_entropy(hd(x[r0:r0 + batch]), y[r0:r0 + batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        r0 += batch
    t = time.perf_counter() - t0
    n_params = sum(p.numel() for p in hd.parameters())
    print(f"mode=head_only model={name} torch={torch.__version__} blas={blas_library()} dim={dim} batch={batch} threads={threads} "
          f"iters={iters} params={n_params} seconds={t:.3f} samples_per_s={iters * batch / t:.1f} "
          f"cpu_seconds={cpu_seconds():.2f}")


def tail_only(name, size, unfreeze, batch, iters, threads):
    """The tail's forward + backward + Adam on random post-ReLU activations
    at the cut (rows cycling through 425), as bench_trial --tail-only."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    prefix, tail = backbone(name, unfreeze)
    with torch.no_grad():
        shape = prefix(torch.zeros(1, 3, size, size).to(memory_format=torch.channels_last)).shape[1:]
    del prefix
    rows = 425
    x = torch.relu(torch.randn(rows, *shape)).to(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (rows,))
    hd = head(name).train()
    opt = torch.optim.Adam([{"params": tail.parameters(), "lr": 1e-5}, {"params": hd.parameters(), "lr": 1e-4}])
    warmup = 2
    r0 = 0
    t0 = c0 = 0.0
    for it in range(-warmup, iters):
        if it == 0:
            t0, c0 = time.perf_counter(), cpu_seconds()
        if r0 + batch > rows:
            r0 = 0
        loss = torch.nn.functional.cross_entropy(hd(tail(x[r0:r0 + batch])), y[r0:r0 + batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        r0 += batch
    t = time.perf_counter() - t0
    n_params = sum(p.numel() for p in tail.parameters()) + sum(p.numel() for p in hd.parameters())
    print(f"mode=tail_only model={name} torch={torch.__version__} size={size} unfreeze={unfreeze} batch={batch} "
          f"threads={threads} iters={iters} params={n_params} seconds={t:.3f} images_per_s={iters * batch / t:.2f} "
          f"cpu_seconds={cpu_seconds() - c0:.2f}")


def main():
    a = sys.argv[1:]
    if len(a) == 5 and a[1] == "--head-only":
        head_only(a[0], int(a[2]), int(a[3]), int(a[4]))
    elif len(a) == 7 and a[1] == "--tail-only":
        tail_only(a[0], int(a[2]), int(a[3]), int(a[4]), int(a[5]), int(a[6]))
    elif 7 <= len(a) <= 9 and a[4] in ("on", "off"):
        trial(a[0], int(a[1]), int(a[2]), int(a[3]), a[4] == "on", int(a[5]), a[6],
              int(a[7]) if len(a) > 7 else 0, float(a[8]) if len(a) > 8 else 0.1)
    else:
        sys.exit("usage: torch_trial.py MODEL SIZE EPOCHS BATCH on|off THREADS ROOT [UNFREEZE [BACKBONE_LR_SCALE]]\n"
                 "       torch_trial.py MODEL --head-only BATCH ITERS THREADS\n"
                 "       torch_trial.py MODEL --tail-only SIZE UNFREEZE BATCH ITERS THREADS")


if __name__ == "__main__":
    main()
