"""ModelEMA: the running average of the weights the trainer validates and saves."""

from __future__ import annotations

import torch

from trainer_engine.utils.torch_utils import ModelEMA


def test_ema_follows_the_formula_for_weights_and_norm_buffers() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    ema = ModelEMA(model, tau=2.0)
    expected = {k: v.clone() for k, v in model.state_dict().items() if v.dtype.is_floating_point}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(1, 6):
        (model(torch.randn(8, 4)) ** 2).sum().backward()
        opt.step()
        opt.zero_grad()
        ema.update(model)
        d = ema.decay(step)
        for k, v in model.state_dict().items():
            if k in expected:
                expected[k] = expected[k] * d + v * (1 - d)
    got = ema.state_dict()
    assert all(torch.allclose(got[k], v, atol=1e-6) for k, v in expected.items())
    assert not torch.allclose(got["0.weight"], model.state_dict()["0.weight"])  # an average, not a copy
