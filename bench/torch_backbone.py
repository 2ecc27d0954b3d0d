"""PyTorch's side of bench/backbone: images/s of a torchvision backbone's
convolutional part (the same work ctsweep's features do), torch.no_grad(),
channels_last, the same thread count, batch and input size.

usage: torch_backbone.py MODEL BATCH SIZE THREADS ITERS [fp32|bf16]
Prints one line of key=value pairs.
"""
import resource
import sys
import time

import torch
import torchvision


def main():
    name, batch, size, threads, iters = sys.argv[1], *map(int, sys.argv[2:6])
    precision = sys.argv[6] if len(sys.argv) > 6 else "fp32"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = getattr(torchvision.models, name)(weights=None).eval()
    if name.startswith("vgg"):
        net = torch.nn.Sequential(m.features, m.avgpool)
    else:
        net = torch.nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3, m.layer4,
                                  m.avgpool)
    net = net.to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, size, size).to(memory_format=torch.channels_last)
    dtype = torch.bfloat16 if precision == "bf16" else None
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
        net(x)  # warm-up
        total = 0.0
        best = 1e30
        for _ in range(iters):
            t = time.perf_counter()
            net(x)
            t = time.perf_counter() - t
            total += t
            best = min(best, t)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"model={name} torch={torch.__version__} precision={precision} batch={batch} size={size} "
          f"threads={threads} images_per_s={batch / (total / iters):.3f} best_images_per_s={batch / best:.3f} "
          f"peak_rss_mib={rss:.1f}")


if __name__ == "__main__":
    main()
