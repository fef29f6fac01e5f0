"""Chapter 7's tools: path counts, block deletion, loss-surface directions, the race."""
import math

import pytest
import torch
from torch import nn

from deepres.course.budget import get_budget
from deepres.course.experiments import race_networks
from deepres.landscape import filter_normalized_direction, loss_at
from deepres.lesion import (deletable_blocks, delete_blocks, path_length_counts,
                            random_lesions, single_lesions)
from deepres.measure import count_params
from deepres.models import PreActBlock
from deepres.models.cifar import plain, resnet_cifar


def test_path_counts_are_binomial_and_add_up_to_all_paths():
    for n in (0, 1, 5, 27):
        counts = path_length_counts(n)
        assert len(counts) == n + 1 and sum(counts) == 2 ** n
    assert path_length_counts(4) == [1, 4, 6, 4, 1]


def test_only_shape_keeping_blocks_can_be_deleted():
    model = resnet_cifar(56, widths=(4, 8, 16), in_channels=1)
    assert deletable_blocks(model) == [i for i in range(27) if i not in (9, 18)]
    with pytest.raises(ValueError, match="changes the shape"):
        delete_blocks(model, [9])


def test_deleting_a_residual_block_keeps_its_shortcut_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = resnet_cifar(20, widths=(4, 8, 16), in_channels=1).eval()
    before = repr(model)
    lesioned = delete_blocks(model, [1])
    assert repr(model) == before and isinstance(lesioned.blocks[1], nn.Identity)
    x = torch.randn(2, 1, 12, 12)
    stem = torch.relu(model.bn(model.conv(x)))
    expected = model.fc(model.blocks[2:](model.blocks[0](stem)).mean((2, 3)))
    assert torch.allclose(lesioned(x), expected, atol=1e-6)


def test_lesion_studies_return_an_error_per_block_and_per_draw():
    torch.manual_seed(0)
    model = plain(14, widths=(4, 8, 16), in_channels=1).eval()
    x, y = torch.randn(20, 1, 12, 12), torch.randint(0, 10, (20,))
    single = single_lesions(model, x, y)
    assert list(single) == deletable_blocks(model)
    assert all(0 <= e <= 1 for e in single.values())
    draws = random_lesions(model, [0, 2], x, y, draws=3)
    assert len(draws[0]) == 1 and len(draws[2]) == 3
    assert random_lesions(model, [0, 2], x, y, draws=3) == draws  # seeded


def test_a_filter_normalised_direction_has_the_filters_norms():
    torch.manual_seed(0)
    model = resnet_cifar(8, widths=(4, 8, 16), in_channels=1)
    d = filter_normalized_direction(model, torch.Generator().manual_seed(1))
    for name, p in model.named_parameters():
        if p.dim() == 1:
            assert not d[name].any(), name
        else:
            assert torch.allclose(d[name].flatten(1).norm(dim=1),
                                  p.detach().flatten(1).norm(dim=1), rtol=1e-4), name
    again = filter_normalized_direction(model, torch.Generator().manual_seed(1))
    assert all(torch.equal(d[k], again[k]) for k in d)


def test_loss_at_the_origin_is_the_loss_and_the_weights_come_back():
    torch.manual_seed(0)
    model = resnet_cifar(8, widths=(4, 8, 16), in_channels=1).eval()
    x, y = torch.randn(16, 1, 12, 12), torch.randint(0, 10, (16,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    d = filter_normalized_direction(model, torch.Generator().manual_seed(0))
    losses = loss_at(model, [d, d], [(0, 0), (1, 0), (0.5, 0.5)], x, y)
    with torch.no_grad():
        assert math.isclose(losses[0], nn.functional.cross_entropy(model(x), y).item(),
                            rel_tol=1e-6)
    assert math.isclose(losses[1], losses[2], rel_tol=1e-5)   # the same point
    assert losses[1] != losses[0]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_pre_activation_shortcut_passes_the_gradient_unchanged():
    block = PreActBlock(8, 8)
    nn.init.zeros_(block.conv2.weight)
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    upstream = torch.randn(2, 8, 6, 6)
    (grad,) = torch.autograd.grad(block(x), x, upstream)
    assert torch.equal(grad, upstream)


class _Data:
    def __init__(self, channels):
        self.shape, self.classes = (channels, 14, 14), tuple(range(10))


@pytest.mark.parametrize("budget, channels", [("laptop", 1), ("gpu", 3)])
def test_the_race_is_matched_within_5_percent(budget, channels):
    nets = race_networks(get_budget(budget, verbose=False), _Data(channels))
    assert len(nets) == 7
    counts = {name: count_params(make()) for name, make in nets.items()}
    target = counts["ResNet-14"]
    worst = max(abs(n / target - 1) for n in counts.values())
    print(f"{budget}: largest deviation from ResNet-14's parameters {worst:.1%}")
    assert worst <= 0.05, counts


def test_branch_ratios_measure_what_a_block_adds_against_its_input():
    from deepres.lesion import branch_ratios
    torch.manual_seed(0)
    model = resnet_cifar(20, widths=(4, 8, 16), in_channels=1).eval()
    x = torch.randn(8, 1, 14, 14)
    ratios = branch_ratios(model, x)
    assert sorted(ratios) == deletable_blocks(model)
    block = model.blocks[1]
    inputs = {}
    hook = block.register_forward_pre_hook(lambda m, i: inputs.setdefault("x", i[0]))
    with torch.no_grad():
        model(x)
        hook.remove()
        branch = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(inputs["x"])))))
    assert ratios[1] == pytest.approx((branch.norm() / inputs["x"].norm()).item(), rel=1e-5)
    nn.init.zeros_(block.last_bn().weight)
    nn.init.zeros_(block.last_bn().bias)
    model.train()
    assert branch_ratios(model, x)[1] == 0    # a silenced branch adds nothing
    assert model.training                      # measured on a copy in evaluation mode
