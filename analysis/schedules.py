"""The learning rate of every iteration rebuilt from a trial's recorded
schedule settings, as PyTorch computes it:

- triangular, triangular2, exp_range: torch.optim.lr_scheduler.CyclicLR
  (cycle_momentum=False, scale_mode as each mode defines it, step_size_up
  = u = the recorded half-cycle in iterations: step_size, or
  step_size_epochs x iters_per_epoch; step_size_down = d = the recorded
  step_size_down, or u when it is 0). For iteration i (0-based):
      cycle = floor(1 + i / (u + d)),  x = 1 + i / (u + d) - cycle
      r = u / (u + d),  scale = x / r if x <= r else (x - 1) / (r - 1)
      lr = base + (max - base) * scale * f,  f = 1, 1 / 2^(cycle - 1), gamma^i
- constant: base_lr; cosine: CosineAnnealingLR from max_lr to base_lr over
  the run; step: StepLR, max_lr * gamma^floor(i / step_size).

Trial files store the trace itself (/lr_trace, one value per iteration);
the report draws that and uses this rebuild to check it.
"""
import math

import numpy as np


def lr_trace(mode, base_lr, max_lr, step_size, gamma, n_iters, total_iters=None, step_size_down=0):
    i = np.arange(n_iters, dtype=np.float64)
    if mode == "constant":
        return np.full(n_iters, float(base_lr))
    if mode == "cosine":
        t = float(total_iters or n_iters) or 1.0
        return base_lr + (max_lr - base_lr) * (1.0 + np.cos(math.pi * i / t)) / 2.0
    if mode == "step":
        return max_lr * np.power(gamma, np.floor(i / math.floor(step_size)))
    if mode not in ("triangular", "triangular2", "exp_range"):
        raise ValueError(f"unknown schedule '{mode}'")
    up = float(step_size)
    total = up + (float(step_size_down) if step_size_down and step_size_down > 0 else up)
    ratio = up / total
    cycle = np.floor(1.0 + i / total)
    x = 1.0 + i / total - cycle
    scale = np.where(x <= ratio, x / ratio, (x - 1.0) / (ratio - 1.0))
    height = (max_lr - base_lr) * scale
    if mode == "triangular":
        f = 1.0
    elif mode == "triangular2":
        f = 1.0 / np.power(2.0, cycle - 1.0)
    else:
        f = np.power(gamma, i)
    return base_lr + height * f


def trial_lr_trace(t):
    """Rebuilt trace of a results.Trial over its recorded iterations."""
    n = t.epochs_done * t.iters_per_epoch
    return lr_trace(t.clr_mode, t.base_lr, t.max_lr, t.step_iters, t.gamma, n,
                    total_iters=t.epochs * t.iters_per_epoch, step_size_down=t.step_size_down)


def check_trace(t, rtol=1e-9):
    """(ok, worst relative difference) of the stored trace against the rebuild;
    (None, nan) when there is nothing to compare."""
    n = t.epochs_done * t.iters_per_epoch
    if n == 0 or len(t.lr_trace) == 0:
        return None, float("nan")
    if len(t.lr_trace) != n:
        return False, float("inf")
    ref = trial_lr_trace(t)
    rel = np.abs(t.lr_trace - ref) / np.maximum(np.abs(ref), 1e-300)
    worst = float(np.max(rel))
    return worst <= rtol, worst
