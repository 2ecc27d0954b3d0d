"""PyTorch's side of bench/backbone: images/s of a torchvision backbone's
convolutional part (the same work ctsweep's features do), torch.no_grad(),
channels_last, the same batch and input size; on the CPU with the same
thread count, on the GPU with the same precision as ctsweep's cuda backend
(fp32 without TF32, tf32, or fp16/bf16 storage), timing what ctsweep's
backend does per batch: input from host memory to the GPU, the forward
pass, the features back to host memory.

usage: torch_backbone.py MODEL BATCH SIZE THREADS ITERS [fp32|bf16|tf32|fp16] [cpu|cuda]
Prints one line of key=value pairs.
"""
import resource
import sys
import time

import torch

try:
    import torchvision
except ImportError:  # a GPU machine with PyTorch's wheel only: the same layers, built here
    torchvision = None

VGG_CFG = {"vgg16": [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0],
           "vgg19": [64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0]}


RESNETS = {"resnet18": ((2, 2, 2, 2), False), "resnet34": ((3, 4, 6, 3), False), "resnet50": ((3, 4, 6, 3), True)}
DENSENETS = {"densenet121": (6, 12, 24, 16), "densenet169": (6, 12, 32, 32)}


def build_plain(name):
    """torchvision's VGG features + avgpool, a ResNet up to its avgpool, or a
    DenseNet's features + ReLU + avgpool, layer for layer."""
    nn = torch.nn
    if name in VGG_CFG:
        layers, c = [], 3
        for v in VGG_CFG[name]:
            layers += [nn.MaxPool2d(2, 2)] if v == 0 else [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
            c = v or c
        return nn.Sequential(nn.Sequential(*layers), nn.AdaptiveAvgPool2d((7, 7))).eval()

    def conv_bn(cin, cout, k, stride=1):
        return [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]

    stem = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    if name in DENSENETS:
        class Dense(nn.Module):
            def __init__(self, cin):
                super().__init__()
                self.f = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, 128, 1, bias=False),
                                       nn.BatchNorm2d(128), nn.ReLU(), nn.Conv2d(128, 32, 3, 1, 1, bias=False))

            def forward(self, x):
                return torch.cat([x, self.f(x)], 1)

        layers, c = list(stem), 64
        for i, n in enumerate(DENSENETS[name]):
            for _ in range(n):
                layers.append(Dense(c))
                c += 32
            if i < 3:
                layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2, 2)]
                c //= 2
        return nn.Sequential(*layers, nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1))).eval()

    class Block(nn.Module):
        def __init__(self, cin, width, stride, bottleneck):
            super().__init__()
            out = width * (4 if bottleneck else 1)
            if bottleneck:  # torchvision's v1.5: the stride on the 3x3
                body = conv_bn(cin, width, 1) + [nn.ReLU()] + conv_bn(width, width, 3, stride) + [nn.ReLU()] + \
                    conv_bn(width, out, 1)
            else:
                body = conv_bn(cin, width, 3, stride) + [nn.ReLU()] + conv_bn(width, width, 3)
            self.body = nn.Sequential(*body)
            self.down = None
            if stride != 1 or cin != out:
                self.down = nn.Sequential(*conv_bn(cin, out, 1, stride))

        def forward(self, x):
            return torch.relu(self.body(x) + (x if self.down is None else self.down(x)))

    depths, bottleneck = RESNETS[name]
    blocks, c = [], 64
    for width, count in zip((64, 128, 256, 512), depths):
        for b in range(count):
            blocks.append(Block(c, width, 2 if (b == 0 and width != 64) else 1, bottleneck))
            c = width * (4 if bottleneck else 1)
    return nn.Sequential(*stem, *blocks, nn.AdaptiveAvgPool2d((1, 1))).eval()


def build(name):
    torch.manual_seed(0)
    if torchvision is None:
        return build_plain(name)
    m = getattr(torchvision.models, name)(weights=None).eval()
    if name.startswith("vgg"):
        return torch.nn.Sequential(m.features, m.avgpool)
    if name.startswith("densenet"):  # DenseNet.forward without its classifier
        return torch.nn.Sequential(m.features, torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d((1, 1)))
    return torch.nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3, m.layer4,
                               m.avgpool)


def time_iters(step, iters):
    step()  # warm-up
    total, best = 0.0, 1e30
    for _ in range(iters):
        t = time.perf_counter()
        step()
        t = time.perf_counter() - t
        total += t
        best = min(best, t)
    return total, best


def main():
    name, batch, size, threads, iters = sys.argv[1], *map(int, sys.argv[2:6])
    precision = sys.argv[6] if len(sys.argv) > 6 else "fp32"
    device = sys.argv[7] if len(sys.argv) > 7 else "cpu"
    torch.set_num_threads(threads)
    net = build(name)
    x = torch.randn(batch, 3, size, size)
    extra = ""
    if device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("torch_backbone.py: torch sees no CUDA device")
        torch.backends.cudnn.benchmark = True
        tf32 = precision != "fp32"
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)
        net = net.to("cuda", dtype).to(memory_format=torch.channels_last)

        def step():
            xg = x.to("cuda").to(dtype).contiguous(memory_format=torch.channels_last)
            return net(xg).float().cpu()

        with torch.no_grad():
            step()  # cuDNN's benchmark mode picks its algorithms here
            total, best = time_iters(step, iters)
        extra = (f" device={torch.cuda.get_device_name().replace(' ', '_')}"
                 f" gpu_peak_mib={torch.cuda.max_memory_allocated() / 1048576:.1f}")
    else:
        net = net.to(memory_format=torch.channels_last)
        xc = x.to(memory_format=torch.channels_last)
        dtype = torch.bfloat16 if precision == "bf16" else None
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
            total, best = time_iters(lambda: net(xc), iters)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"model={name} torch={torch.__version__} precision={precision} batch={batch} size={size} "
          f"threads={threads} images_per_s={batch / (total / iters):.3f} best_images_per_s={batch / best:.3f} "
          f"peak_rss_mib={rss:.1f}{extra}")


if __name__ == "__main__":
    main()
