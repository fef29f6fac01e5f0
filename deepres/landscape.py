"""Filter-normalised slices of the loss surface (Li et al., 2018).

A random direction in weight space means little on its own: a network with BatchNorm
computes the same function if a filter's weights are scaled, so a step of fixed size
is large for a small filter and small for a large one. Li et al. therefore scale each
filter of a random Gaussian direction to the norm of the same filter in the trained
weights; one-dimensional parameters (biases, BatchNorm's) are left unperturbed. The loss
is then evaluated at theta + a d (1D) or theta + a d1 + b d2 (2D).
"""
import torch
import torch.nn.functional as F

from .measure import on_model_device


def filter_normalized_direction(model, generator=None):
    """{parameter name: direction tensor}: Gaussian noise, each filter (a slice along
    the first dimension: an output channel, or a row of a linear layer) rescaled to the
    norm of the same filter of ``model``; zero for one-dimensional parameters."""
    direction = {}
    for name, p in model.named_parameters():
        if p.dim() <= 1:
            direction[name] = torch.zeros_like(p)
            continue
        d = torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
        d_norms = d.flatten(1).norm(dim=1)                # one norm per filter
        p_norms = p.detach().flatten(1).norm(dim=1)
        scale = p_norms / (d_norms + 1e-10)
        direction[name] = d * scale.view(-1, *[1] * (p.dim() - 1))
    return direction


@torch.no_grad()
def loss_at(model, directions, coordinates, x, y):
    """The cross-entropy of ``model`` on (x, y), in evaluation mode, at the weights
    theta + sum_i c_i * directions[i] for each tuple ``c`` in ``coordinates``; a list
    of floats. The model's weights are restored afterwards. ``x`` and ``y`` are moved to
    the model's device."""
    x, y = on_model_device(model, x, y)
    params = dict(model.named_parameters())
    theta = {name: p.detach().clone() for name, p in params.items()}
    model.eval()
    losses = []
    try:
        for c in coordinates:
            for name, p in params.items():
                p.copy_(theta[name] + sum(ci * d[name] for ci, d in zip(c, directions)))
            losses.append(F.cross_entropy(model(x), y).item())
    finally:
        for name, p in params.items():
            p.copy_(theta[name])
    return losses
