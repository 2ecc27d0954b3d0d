"""The learning-rate rebuild used to check /lr_trace, against PyTorch itself:
torch.optim.lr_scheduler.CyclicLR (cycle_momentum=False), StepLR and
CosineAnnealingLR, stepped once per iteration. Needs Debian's python3-torch
(listed among the test dependencies); without it the test fails."""
import numpy as np
import pytest
import torch  # a missing torch is an error, not a skip

from analysis import schedules


def torch_trace(make, n, lr0):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr0)
    sched = make(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


@pytest.mark.parametrize("mode,step,gamma", [("triangular", 6, 1.0), ("triangular2", 5, 1.0),
                                             ("exp_range", 8, 0.999), ("exp_range", 3, 0.99),
                                             ("triangular", 2.5, 1.0)])
def test_cyclic_equals_torch(mode, step, gamma):
    n = 97
    ref = torch_trace(lambda o: torch.optim.lr_scheduler.CyclicLR(
        o, base_lr=1e-4, max_lr=1e-3, step_size_up=step, mode=mode, gamma=gamma, cycle_momentum=False), n, 1e-4)
    got = schedules.lr_trace(mode, 1e-4, 1e-3, step, gamma, n)
    assert np.allclose(got, ref, rtol=1e-12, atol=0), np.max(np.abs(got - ref))


@pytest.mark.parametrize("mode,up,down,gamma", [("triangular", 6, 2, 1.0), ("triangular2", 3, 7, 1.0),
                                                ("exp_range", 5, 9, 0.995)])
def test_asymmetric_cycle_equals_torch(mode, up, down, gamma):
    n = 101
    ref = torch_trace(lambda o: torch.optim.lr_scheduler.CyclicLR(
        o, base_lr=1e-4, max_lr=1e-3, step_size_up=up, step_size_down=down, mode=mode, gamma=gamma,
        cycle_momentum=False), n, 1e-4)
    got = schedules.lr_trace(mode, 1e-4, 1e-3, up, gamma, n, step_size_down=down)
    assert np.allclose(got, ref, rtol=1e-12, atol=0), np.max(np.abs(got - ref))


def test_step_cosine_constant_equal_torch():
    n = 40
    ref = torch_trace(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5), n, 1e-3)
    assert np.allclose(schedules.lr_trace("step", 1e-4, 1e-3, 7, 0.5, n), ref, rtol=1e-12)
    ref = torch_trace(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=n, eta_min=1e-4), n, 1e-3)
    assert np.allclose(schedules.lr_trace("cosine", 1e-4, 1e-3, 0, 1.0, n, total_iters=n), ref, rtol=1e-10)
    assert np.all(schedules.lr_trace("constant", 3e-4, 1e-3, 0, 1.0, 5) == 3e-4)
