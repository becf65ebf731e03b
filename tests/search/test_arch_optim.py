"""SharedScaleAdam: one gradient scale for every architecture logit, so logits move in proportion
to their gradients (Adam moves each by about lr whatever its gradient), capped per element, and
its state survives a checkpoint."""

import torch

from search.sr.dnas.arch_optim import SharedScaleAdam

GRAD = torch.tensor([1.0, 2.0, 0.1, -0.5])


def run(opt_cls, steps=5, **kw):
    p = torch.nn.Parameter(torch.zeros(4))
    opt = opt_cls([p], **kw)
    for _ in range(steps):
        opt.zero_grad()
        (p * GRAD).sum().backward()
        opt.step()
    return p.detach(), opt


def test_steps_keep_the_gradients_relative_sizes_where_adam_equalises_them():
    shared, _ = run(SharedScaleAdam, lr=0.1, betas=(0.5, 0.999))
    adam, _ = run(torch.optim.Adam, lr=0.1, betas=(0.5, 0.999))
    assert torch.allclose(shared / shared[0], GRAD / GRAD[0], rtol=1e-4)  # proportional to the gradient
    assert torch.allclose(adam.abs(), torch.full((4,), 0.5), rtol=1e-3)   # Adam: every logit moves lr per step
    assert (torch.sign(shared) == -torch.sign(GRAD)).all()


def test_one_dominant_gradient_is_capped():
    p = torch.nn.Parameter(torch.zeros(101))
    opt = SharedScaleAdam([p], lr=0.1, max_step=3.0)
    p.grad = torch.cat([torch.tensor([100.0]), torch.full((100,), 0.01)])
    opt.step()
    assert abs(float(p[0]) + 0.3) < 1e-6  # 3 x lr, not the ~10 x lr its share of the scale would give


def test_state_dict_round_trip_continues_the_same_trajectory():
    a, opt = run(SharedScaleAdam, steps=3, lr=0.05)
    p = torch.nn.Parameter(a.clone())
    again = SharedScaleAdam([p], lr=0.05)
    again.load_state_dict(opt.state_dict())
    for o, q in ((opt, opt.param_groups[0]["params"][0]), (again, p)):
        o.zero_grad()
        (q * GRAD).sum().backward()
        o.step()
    assert torch.equal(opt.param_groups[0]["params"][0].detach(), p.detach())
    assert again.param_groups[0]["shared_step"] == 4
