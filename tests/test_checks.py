"""Every checker accepts the reference answer and rejects wrong ones with a specific
message; broken learner code never crashes a checker."""
import contextlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from deepres.course.checks import CheckFailed
from deepres.course.checks import vgg as check


def rejects(checker, answer, *expected):
    with pytest.raises(CheckFailed) as error:
        checker(answer)
    message = str(error.value)
    for text in expected:
        assert text in message, message
    return message


def not_implemented(*args):
    raise NotImplementedError


# --- parameters of a stack ---------------------------------------------------------

def test_stack_params_accepts_the_answer(capsys):
    assert check.stack_params(lambda c, n, k: n * k * k * c * c) is None   # nothing shown after the report
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda c, n, k: n * (k * k * c * c + c), "counts the biases too"),
    (lambda c, n, k: k * k * c * c, "that is one layer"),
    (lambda c, n, k: n * k * c * c, "one k x k kernel"),
    (lambda c, n, k: 3 * 9 * c * c, "expected"),
    (lambda c, n, k: None, "returned None"),
])
def test_stack_params_rejects(wrong, message):
    rejects(check.stack_params, wrong, message)


# --- VGG from a table -------------------------------------------------------------

def features(config, c, conv=lambda i, o: nn.Conv2d(i, o, 3, padding=1), relu=True,
             pool=lambda: nn.MaxPool2d(2, 2), chain=True):
    layers, c_in = [], c
    for item in config:
        if item == "M":
            layers.append(pool())
        else:
            layers.append(conv(c_in if chain else c, item))
            if relu:
                layers.append(nn.ReLU())
            c_in = item
    return nn.Sequential(*layers)


def test_make_features_accepts_the_answer():
    check.make_features(features)


@pytest.mark.parametrize("wrong, message", [
    (lambda cfg, c: features(cfg, c, conv=lambda i, o: nn.Conv2d(i, o, 3)), "padding 1"),
    (lambda cfg, c: features(cfg, c, relu=False), "each convolution is followed by a ReLU"),
    (lambda cfg, c: features(cfg, c, chain=False), "parameters; expected"),
    (lambda cfg, c: features(cfg, c, pool=lambda: nn.MaxPool2d(3, 2)), "2x2 with stride 2"),
    (lambda cfg, c: features(cfg, c, conv=lambda i, o: nn.Conv2d(i, o, 5, padding=2)),
     "parameters; expected"),
    (lambda cfg, c: [nn.Conv2d(c, 4, 3)], "should be an nn.Module"),
])
def test_make_features_rejects(wrong, message):
    rejects(check.make_features, wrong, message)


# --- FLOPs of a convolution -------------------------------------------------------

def test_conv_flops_accepts_the_answer():
    check.conv_flops(lambda ci, co, k, h, w: 2 * ci * co * k * k * h * w)


@pytest.mark.parametrize("wrong, message", [
    (lambda ci, co, k, h, w: ci * co * k * k * h * w, "multiply-adds"),
    (lambda ci, co, k, h, w: 2 * ci * co * k * h * w, "flop_counter measures"),
    (lambda ci, co, k, h, w: 2 * ci * co * k * k * (h - k + 1) * (w - k + 1), "flop_counter measures"),
])
def test_conv_flops_rejects(wrong, message):
    rejects(check.conv_flops, wrong, message)


# --- chapter 2: the degradation problem ------------------------------------------

import torch
import torch.nn.functional as F

from deepres.course.checks import degradation, residual
from deepres.measure import layer_grad_norms
from deepres.models import BasicBlock, PadShortcut, PreActBlock, Transition, plain


def test_grad_norms_accepts_the_answer():
    degradation.grad_norms(layer_grad_norms)


def accumulating(model, x, y):  # forgets to zero the gradients
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.norm().item() for m in model.modules()
            if isinstance(m, (nn.Conv2d, nn.Linear))]


def squared(model, x, y):
    return [n ** 2 for n in layer_grad_norms(model, x, y)]


def with_biases(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [p.grad.norm().item() for p in model.parameters()]


@pytest.mark.parametrize("wrong, message", [
    (accumulating, "gradients accumulate"),
    (squared, "squared norms"),
    (with_biases, "one per layer weight"),
    (lambda m, x, y: layer_grad_norms(m, x, y)[::-1], "layer"),
    (lambda m, x, y: 3.0, "list of numbers"),
])
def test_grad_norms_rejects(wrong, message):
    rejects(degradation.grad_norms, wrong, message)


def test_plain_net_accepts_the_answer():
    degradation.plain_net(lambda n: plain(6 * n + 2))


@pytest.mark.parametrize("wrong, message", [
    (lambda n: plain(6 * n + 4 if n else 8), "6n+2"),  # depth wrong for every n
    (lambda n: plain(6 * n + 2, widths=(16, 32, 32)), "Table 6"),
    (lambda n: plain(6 * n + 2, batch_norm=False), "parameters; expected"),
    (lambda n: __import__("deepres").models.resnet_cifar(6 * n + 2), "output differs"),
])
def test_plain_net_rejects(wrong, message):
    rejects(degradation.plain_net, wrong, message)


# --- chapter 3: residual blocks --------------------------------------------------

def block_b(c_in, c_out, stride=1):
    return BasicBlock(c_in, c_out, stride, shortcut="B")


class NoShortcut(BasicBlock):
    def __init__(self, c_in, c_out, stride=1):
        super().__init__(c_in, c_out, stride, shortcut="B")

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class ReluBeforeAdd(BasicBlock):
    def __init__(self, c_in, c_out, stride=1):
        super().__init__(c_in, c_out, stride, shortcut="B")

    def forward(self, x):
        out = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return out + self.shortcut(x)


def test_basic_block_accepts_the_answer():
    residual.basic_block(block_b)


@pytest.mark.parametrize("wrong, message", [
    (NoShortcut, "output differs"),
    (ReluBeforeAdd, "output differs"),
    (lambda c_in, c_out, stride=1: BasicBlock(c_in, c_out, stride, shortcut="A"),
     "parameters; expected"),
    (lambda c_in, c_out, stride=1: BasicBlock(c_in, c_out, 1, shortcut="B"), "shape"),
    (lambda c_in, c_out, stride=1: BasicBlock(c_in, c_out, stride, shortcut="C"),
     "parameters; expected"),
])
def test_basic_block_rejects(wrong, message):
    rejects(residual.basic_block, wrong, message)


def test_option_a_accepts_the_answer():
    residual.option_a(lambda x, c, s: F.pad(x[:, :, ::s, ::s], (0, 0, 0, 0, 0, c - x.shape[1])))


def test_option_a_accepts_zeros_on_both_sides():
    def symmetric(x, c_out, stride):
        extra = c_out - x.shape[1]
        return F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, extra // 2, extra - extra // 2))
    residual.option_a(symmetric)


@pytest.mark.parametrize("wrong, message", [
    (lambda x, c, s: F.pad(F.avg_pool2d(x, s) if s > 1 else x, (0, 0, 0, 0, 0, c - x.shape[1])),
     "you averaged"),
    (lambda x, c, s: F.pad(x, (0, 0, 0, 0, 0, c - x.shape[1])), "has shape"),
    (lambda x, c, s: F.pad(x[:, :, ::s, ::s], (0, 0, 0, 0, 0, c - x.shape[1]), value=1.0),
     "must be zeros"),
    (lambda x, c, s: x[:, :, ::s, ::s].repeat(1, 2, 1, 1)[:, :c], "must be zeros"),
])
def test_option_a_rejects(wrong, message):
    rejects(residual.option_a, wrong, message)


def reference_resnet_params(n):
    convs = 9 * (3 * 16 + n * 2 * 16 * 16 + (16 * 32 + 32 * 32) + (2 * n - 2) * 32 * 32
                 + (32 * 64 + 64 * 64) + (2 * n - 2) * 64 * 64)
    bns = 2 * (16 + 2 * n * (16 + 32 + 64))
    return convs + bns + 64 * 10 + 10


def test_resnet_params_accepts_a_hand_computed_answer():
    residual.resnet_params(reference_resnet_params)


@pytest.mark.parametrize("wrong, message", [
    (lambda n: reference_resnet_params(n) - 2 * (16 + 2 * n * (16 + 32 + 64)), "BatchNorm"),
    (lambda n: reference_resnet_params(n) - 10, "10 biases"),
    (lambda n: 270_000, "expected"),
])
def test_resnet_params_rejects(wrong, message):
    rejects(residual.resnet_params, wrong, message)


# --- chapters 4-6: bottlenecks, ResNeXt, DenseNet ---------------------------------

from deepres.course.checks import bottleneck, densenet, resnext
from deepres.measure import count_params
from deepres.models import Bottleneck, DenseBlock


class ChannelsLastBottleneck(Bottleneck):
    """A right bottleneck that computes in channels_last: another memory layout, other
    rounding (relative differences about 1e-6 on gradients up to 100)."""
    def forward(self, x):
        return super().forward(x.contiguous(memory_format=torch.channels_last))


def test_bottleneck_block_accepts_the_answer():
    bottleneck.bottleneck_block(lambda c, p, s=1: Bottleneck(c, p, s, shortcut="B"))
    bottleneck.bottleneck_block(lambda c, p, s=1: ChannelsLastBottleneck(c, p, s, shortcut="B"))


@pytest.mark.parametrize("wrong, message", [
    (lambda c, p, s=1: Bottleneck(c, p, s, shortcut="C"), "parameters; expected"),
    (lambda c, p, s=1: Bottleneck(c, p, s, shortcut="B", stride_in_1x1=True), "output differs"),
    (lambda c, p, s=1: Bottleneck(c, p, s, shortcut=None), "parameters; expected"),
    (lambda c, p, s=1: Bottleneck(c, p, 1, shortcut="B"), "shape"),
])
def test_bottleneck_block_rejects(wrong, message):
    rejects(bottleneck.bottleneck_block, wrong, message)


def reference_bottleneck_params(c_in, planes, stride):
    total = c_in * planes + 9 * planes * planes + planes * 4 * planes + 2 * (6 * planes)
    if stride != 1 or c_in != 4 * planes:
        total += c_in * 4 * planes + 2 * 4 * planes
    return total


def test_bottleneck_params_accepts_a_hand_computed_answer():
    bottleneck.bottleneck_params(reference_bottleneck_params)


@pytest.mark.parametrize("wrong, message", [
    (lambda c, p, s: c * p + 9 * p * p + 4 * p * p + (c * 4 * p if s != 1 or c != 4 * p else 0),
     "BatchNorm"),
    (lambda c, p, s: c * p + 9 * p * p + 4 * p * p + 12 * p, "projection"),
    (lambda c, p, s: 70_000, "expected"),
])
def test_bottleneck_params_rejects(wrong, message):
    rejects(bottleneck.bottleneck_params, wrong, message)


def split_conv(x, conv):
    xs = torch.chunk(x, conv.groups, dim=1)
    ws = torch.chunk(conv.weight, conv.groups, dim=0)
    return torch.cat([F.conv2d(a, w, stride=conv.stride, padding=conv.padding)
                      for a, w in zip(xs, ws)], dim=1)


def test_grouped_conv_accepts_the_answer():
    resnext.grouped_conv(split_conv)


@pytest.mark.parametrize("wrong, message", [
    (lambda x, conv: F.conv2d(x, conv.weight.repeat(1, conv.groups, 1, 1),
                              stride=conv.stride, padding=conv.padding), "differs"),
    (lambda x, conv: torch.cat([F.conv2d(a, w, padding=conv.padding) for a, w in zip(
        torch.chunk(x, conv.groups, 1), torch.chunk(conv.weight, conv.groups, 0))], 1), "shape"),
    (lambda x, conv: torch.cat([F.conv2d(a, w, stride=conv.stride, padding=conv.padding)
                                for a, w in zip(torch.chunk(x, conv.groups, 1),
                                                torch.chunk(conv.weight, conv.groups, 0))][::-1], 1),
     "differs"),
])
def test_grouped_conv_rejects(wrong, message):
    rejects(resnext.grouped_conv, wrong, message)


def solve_width(c):
    import math
    target = 256 * 64 * 2 + 9 * 64 * 64
    return round((-512 * c + math.sqrt((512 * c) ** 2 + 36 * c * target)) / (18 * c))


def test_width_for_cardinality_accepts_the_answer():
    resnext.width_for_cardinality(solve_width)


@pytest.mark.parametrize("wrong, message", [
    (lambda c: 64 // c, "Table 2"),
    (lambda c: int(64 / c ** 0.5), "Table 2"),
    (lambda c: "4d", "return the number itself, not text"),
])
def test_width_for_cardinality_rejects(wrong, message):
    rejects(resnext.width_for_cardinality, wrong, message)


from deepres.course.checks.densenet import _OnTensor as LayerOnTensor  # the reference answer


class NoBottleneckLayer(nn.Module):  # DenseNet without B: BN-ReLU-Conv3x3 only
    def __init__(self, c_in, k):
        super().__init__()
        self.norm1, self.conv1 = nn.BatchNorm2d(c_in), nn.Conv2d(c_in, k, 3, padding=1, bias=False)

    def forward(self, x):
        return self.conv1(torch.relu(self.norm1(x)))


def test_dense_layer_accepts_the_answer():
    densenet.dense_layer(LayerOnTensor)


@pytest.mark.parametrize("wrong, message", [
    (NoBottleneckLayer, "parameters; expected"),
    (lambda c, k: nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, 4 * k, 1, bias=False),
                                nn.BatchNorm2d(4 * k), nn.ReLU(), nn.Conv2d(4 * k, k, 3, padding=1)),
     "parameters; expected"),
])
def test_dense_layer_rejects(wrong, message):
    rejects(densenet.dense_layer, wrong, message)


class ResidualNotDense(nn.Module):  # adds instead of concatenating
    def __init__(self, n, c_in, k):
        super().__init__()
        self.layers = nn.ModuleList(LayerOnTensor(c_in, c_in) for _ in range(n))

    def forward(self, x):
        for layer in self.layers:
            x = x + layer(x)
        return x


def _dense_layer(c_in, k):   # the chapter's helper
    return nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, 4 * k, 1, bias=False),
                         nn.BatchNorm2d(4 * k), nn.ReLU(),
                         nn.Conv2d(4 * k, k, 3, padding=1, bias=False))


class OwnDenseBlock(nn.Module):   # the chapter's solution (the library's is refused)
    def __init__(self, n_layers, c_in, k):
        super().__init__()
        self.layers = nn.ModuleList(_dense_layer(c_in + i * k, k) for i in range(n_layers))

    def features(self, x):
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return features

    def forward(self, x):
        return torch.cat(self.features(x), 1)


class LastOnly(OwnDenseBlock):  # concatenates only the input and the last layer's output
    def forward(self, x):
        features = self.features(x)
        return torch.cat([x, features[-1]], 1)


def test_dense_block_accepts_the_answer():
    densenet.dense_block(OwnDenseBlock)
    rejects(densenet.dense_block, DenseBlock, "`DenseBlock`", "write it yourself")


@pytest.mark.parametrize("wrong, message", [
    (ResidualNotDense, "c_in + n_layers * k"),
    (LastOnly, "c_in + n_layers * k"),
])
def test_dense_block_rejects(wrong, message):
    rejects(densenet.dense_block, wrong, message)


def test_transition_channels_accepts_the_answer():
    densenet.transition_channels(lambda c, n, k, t: int((c + n * k) * t))


@pytest.mark.parametrize("wrong, message", [
    (lambda c, n, k, t: int(c * t), "adds n_layers * k"),
    (lambda c, n, k, t: (c + n * k) * t, "round down"),
    (lambda c, n, k, t: c + n * k, "expected"),
])
def test_transition_channels_rejects(wrong, message):
    rejects(densenet.transition_channels, wrong, message)


# --- chapter 7: paths, lesions, directions ------------------------------------------

import copy  # noqa: E402

import torch  # noqa: E402

from deepres.course.checks import practice, why  # noqa: E402
from deepres.transfer import count_trainable, new_head  # noqa: E402


def test_grouped_conv_accepts_vmap_of_an_ungrouped_conv():
    """Each group's convolution batched with torch.vmap: ungrouped F.conv2d calls (vmap
    may run a grouped kernel inside, which is not the learner's call)."""
    import torch
    import torch.nn.functional as F
    from deepres.course.checks import resnext

    def by_vmap(x, conv):
        g = conv.groups
        xs = x.unflatten(1, (g, -1)).transpose(0, 1)           # (g, B, c_in/g, H, W)
        ws = conv.weight.unflatten(0, (g, -1))                 # (g, c_out/g, c_in/g, k, k)
        out = torch.vmap(lambda xg, wg: F.conv2d(xg, wg, stride=conv.stride,
                                                 padding=conv.padding))(xs, ws)
        return out.transpose(0, 1).flatten(1, 2)
    resnext.grouped_conv(by_vmap)


def test_path_counts_accepts_the_answer():
    why.path_counts(lambda n: [math.comb(n, k) for k in range(n + 1)])   # the chapter's
    import sympy   # any number type: sympy's integers too
    why.path_counts(lambda n: [sympy.binomial(n, k) for k in range(n + 1)])


@pytest.mark.parametrize("wrong, message", [
    (lambda n: [math.comb(n, k) for k in range(n)], "one for each k from 0"),
    (lambda n: [math.comb(n, k) / 2 ** n for k in range(n + 1)], "shares of the paths"),
    (lambda n: [1] * (n + 1), "add up to"),
    (lambda n: 2 ** n, "expected a list"),
    (lambda n: [k for k in range(n + 1)], "add up to"),
])
def test_path_counts_rejects(wrong, message):
    rejects(why.path_counts, wrong, message)


def _in_place(model, indices):
    for i in indices:
        model.blocks[i] = nn.Identity()
    return model


def _shifted(model, indices):
    model = copy.deepcopy(model)
    for i in indices:
        if i + 1 < len(model.blocks):
            model.blocks[i + 1] = nn.Identity()
    return model


def own_remove_blocks(model, indices):   # the chapter's solution (the library's is refused)
    lesioned = copy.deepcopy(model)
    for i in indices:
        lesioned.blocks[i] = nn.Identity()
    return lesioned


def _first_only(model, indices):
    return own_remove_blocks(model, indices[:1])


def test_remove_blocks_accepts_the_answer():
    why.remove_blocks(own_remove_blocks)


@pytest.mark.parametrize("wrong, message", [
    (_in_place, "changed the model it was given"),
    (lambda model, indices: model, "returned the model it was given"),
    (_shifted, "indices count from 0"),
    (_first_only, "computes something else"),
    (lambda model, indices: copy.deepcopy(model).blocks, "expected a copy of the whole model"),
    (lambda model, indices: None, "returned NoneType"),
])
def test_remove_blocks_rejects(wrong, message):
    rejects(why.remove_blocks, wrong, message)


def _whole_tensor_norm(model, generator):
    out = {}
    for name, p in model.named_parameters():
        d = torch.randn(p.shape, generator=generator)
        out[name] = torch.zeros_like(p) if p.dim() == 1 else d * p.norm() / d.norm()
    return out


def own_direction(model, generator):   # the chapter's solution (the library's is refused)
    direction = {}
    for name, p in model.named_parameters():
        if p.dim() == 1:
            direction[name] = torch.zeros_like(p)
        else:
            d = torch.randn(p.shape, generator=generator)
            for i in range(len(d)):
                d[i] *= p[i].norm() / d[i].norm()
            direction[name] = d.detach()
    return direction


def _bn_perturbed(model, generator):
    out = own_direction(model, generator)
    return {name: d + 1 if d.dim() == 1 else d for name, d in out.items()}


def _weights_themselves(model, generator):
    return {name: (p.detach().clone() if p.dim() > 1 else torch.zeros_like(p))
            for name, p in model.named_parameters()}


def _raw_noise(model, generator):
    return {name: (torch.randn(p.shape, generator=generator) if p.dim() > 1
                   else torch.zeros_like(p)) for name, p in model.named_parameters()}


def _perturbs_model(model, generator):
    out = own_direction(model, generator)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(out[name])
    return out


def test_random_direction_accepts_the_answer():
    why.random_direction(own_direction)


@pytest.mark.parametrize("wrong, message", [
    (_whole_tensor_norm, "filter by filter"),
    (_bn_perturbed, "leave one-dimensional parameters"),
    (_weights_themselves, "points along the weights themselves"),
    (_raw_noise, "are not those of the weight's filters"),
    (_perturbs_model, "changed the model's weights"),
    (lambda model, generator: list(model.parameters()), "expected a dict"),
    (lambda model, generator: {}, "has no tensor for"),
])
def test_random_direction_rejects(wrong, message):
    rejects(why.random_direction, wrong, message)


# --- what every checker must survive ----------------------------------------------

ALL_CHECKERS = [check.stack_params, check.make_features, check.conv_flops,
                degradation.grad_norms, degradation.plain_net, residual.basic_block,
                residual.option_a, residual.resnet_params, bottleneck.bottleneck_block,
                bottleneck.bottleneck_params, resnext.grouped_conv,
                resnext.width_for_cardinality, densenet.dense_layer, densenet.dense_block,
                densenet.transition_channels, residual.preact_block, densenet.transition_layer,
                why.path_counts, why.remove_blocks, why.random_direction,
                practice.param_counts, practice.replace_head, practice.freeze_up_to]


@pytest.mark.parametrize("checker", ALL_CHECKERS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_unsolved_stub_says_not_done_yet(checker):
    rejects(checker, not_implemented, "not done yet", "NotImplementedError")


@pytest.mark.parametrize("checker", ALL_CHECKERS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_crashing_code_is_reported_not_raised(checker):
    def broken(*args):
        return 1 / 0
    rejects(checker, broken, "ZeroDivisionError", "1 / 0")


@pytest.mark.parametrize("checker", ALL_CHECKERS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_a_value_instead_of_a_function(checker):
    rejects(checker, 42, "you wrote (its name, without parentheses)")


def test_a_failed_check_renders_as_feedback_without_a_traceback():
    """IPython shows _render_traceback_'s lines instead of a traceback (Jupyter, Colab)."""
    with pytest.raises(CheckFailed) as error:
        check.stack_params(lambda channels, n_layers, kernel_size: 0)
    lines = error.value._render_traceback_()
    assert lines[0].startswith("CheckFailed: Exercise")
    assert "Traceback" not in "\n".join(lines) and ".py" not in "\n".join(lines)
    assert lines[1:] == str(error.value).splitlines()[1:]


def test_option_a_computes_its_expectation_before_the_answer_runs():
    def in_place(x, c_out, stride):
        x.mul_(2)  # changes the caller's tensor, then returns a right-looking answer
        x = x[:, :, ::stride, ::stride]
        return torch.cat([x, x.new_zeros(x.shape[0], c_out - x.shape[1], *x.shape[2:])], 1)
    rejects(residual.option_a, in_place, "changed its input x in place")


def test_hints_come_in_tiers(capsys):
    """The first failure says what is wrong and how to ask for a nudge; check.hint() or
    a second failure gives the nudge; the nudge never gives the answer away."""
    from deepres.course.checks import core
    core._hints["failures"].clear()
    wrong = lambda channels, n_layers, kernel_size: 1  # noqa: E731
    first = rejects(check.stack_params, wrong, "For a nudge, run check.hint().")
    assert "A nudge" not in first
    check.hint()
    nudge = capsys.readouterr().out
    assert "parameters of a stack - a nudge:" in nudge
    second = rejects(check.stack_params, wrong, "A nudge: ")
    assert "check.hint()" not in second
    for text in (nudge, second):
        assert "kernel_size * kernel_size" not in text and "n_layers *" not in text


def test_an_endless_loop_is_stopped_with_a_message(monkeypatch):
    from deepres.course.checks import core
    monkeypatch.setattr(core, "TIME_LIMIT", 1)
    monkeypatch.setattr(core, "slowness", lambda: 1.0)   # the limit as written

    def endless(channels, n_layers, kernel_size):
        while True:
            pass
    rejects(check.stack_params, endless, "stopped after 1 s", "never ends")


def test_a_time_out_says_how_long_the_solution_takes_here(monkeypatch, tmp_path):
    """The message quotes the table's time for this check, scaled to this machine."""
    import json
    from deepres.course.checks import core
    monkeypatch.setattr(core, "TIME_LIMIT", 1)
    monkeypatch.setattr(core, "slowness", lambda: 2.0)
    table = tmp_path / "seconds.json"
    monkeypatch.setattr(core, "REFERENCE_SECONDS", table)

    def endless(model, x, y):
        while True:
            pass
    table.write_text(json.dumps({"Exercise: per-layer gradient norms": 0.3}))
    rejects(degradation.grad_norms, endless, "stopped after 2 s",
            "The course's solution passes this check in about 0.6 s here.")
    table.write_text(json.dumps({"Exercise: per-layer gradient norms": 0.01}))
    rejects(degradation.grad_norms, endless, "in under 0.1 s here")
    table.write_text("{}")   # a check the table lacks: the message says nothing of it
    assert "solution passes" not in rejects(degradation.grad_norms, endless, "stopped after")


def test_every_time_limited_check_has_its_solutions_time():
    """tools/check_seconds.py measured every check that has a time limit (all but the
    one that trains), and nothing else."""
    import json
    import re
    from deepres.course.checks import core
    sources = "".join(p.read_text() for p in Path(core.__file__).parent.glob("*.py"))
    exercises = set(re.findall(r'"(Exercise: [^"]+)"', sources))
    trains = {"Exercise: your block against the degradation",
              "Exercise: your block against the degradation: stopped while "}
    assert set(json.loads(core.REFERENCE_SECONDS.read_text())) == exercises - trains


def test_a_time_out_leaves_nothing_behind(monkeypatch):
    """After a check stopped the learner's endless loop: the alarm's handler, the tracer
    and every frame's own tracer are what they were, and a tracer set afterwards (a
    debugger, coverage) meets no leftover of the limit."""
    import signal
    from deepres.course.checks import core
    monkeypatch.setattr(core, "TIME_LIMIT", 1)
    monkeypatch.setattr(core, "slowness", lambda: 1.0)   # the limit as written

    def stack():
        frames, f = [], sys._getframe()
        while f is not None:
            frames.append((f, f.f_trace, f.f_trace_lines))
            f = f.f_back
        return frames

    def endless(channels, n_layers, kernel_size):
        while True:
            pass
    handler, tracing, before = signal.getsignal(signal.SIGALRM), sys.gettrace(), stack()
    rejects(check.stack_params, endless, "stopped after 1 s")
    assert signal.getsignal(signal.SIGALRM) is handler
    assert sys.gettrace() is tracing
    assert [(f.f_trace, f.f_trace_lines) for f, _, _ in before] == [
        (own, lines) for _, own, lines in before]
    seen = []
    sys.settrace(lambda frame, event, arg: seen.append(event))
    try:
        sum(range(3)).bit_length()
        (lambda: None)()
    finally:
        sys.settrace(tracing)
    assert "call" in seen


@pytest.mark.parametrize("sleeps", [True, False])
def test_a_bare_except_in_a_retry_loop_does_not_absorb_the_limit(monkeypatch, sleeps):
    """What stop_after promises: one bare ``except:`` however it loops. (Two nested ones
    that both swallow the limit can absorb it: its docstring says so.) The answer gives
    up by itself after many absorbed raises, so that the test ends either way, and then
    returns a wrong number, which would say 'not yet'."""
    import time
    from deepres.course.checks import core
    monkeypatch.setattr(core, "TIME_LIMIT", 1)
    monkeypatch.setattr(core, "slowness", lambda: 1.0)   # the limit as written

    def retries(channels, n_layers, kernel_size):
        for _ in range(2000):
            try:
                while True:
                    if sleeps:
                        time.sleep(0.01)
            except:  # noqa: E722  (the confused learner's handler)
                pass
        return -1
    message = rejects(check.stack_params, retries, "stopped after 1 s", "slowness, 1.0")
    assert "not yet" not in message


def test_inference_mode_left_on_is_named_not_mistaken_for_autograd(capsys):
    import torch
    kept = []

    def enters(channels, n_layers, kernel_size):
        if not kept:
            kept.append(torch.inference_mode())
            kept[0].__enter__()
        return n_layers * kernel_size ** 2 * channels ** 2
    try:
        message = rejects(check.stack_params, enters, "inference_mode() switched on")
        assert "set_grad_enabled" not in message
    finally:
        kept[0].__exit__(None, None, None)
    assert not torch.is_inference_mode_enabled()


def test_a_changed_default_device_is_named_and_put_back():
    import torch

    def moves(channels, n_layers, kernel_size):
        torch.set_default_device("meta")
        return n_layers * kernel_size ** 2 * channels ** 2
    rejects(check.stack_params, moves, "default device to meta")
    assert torch.get_default_device() == torch.device("cpu")


def test_sys_exit_in_an_answer_is_reported_not_raised():
    def quits(channels, n_layers, kernel_size):
        sys.exit()
    rejects(check.stack_params, quits, "called sys.exit()")


def test_an_arithmetic_exercise_refuses_a_built_network():
    def by_building(channels, n_layers, kernel_size):
        return sum(p.numel() for _ in range(n_layers)
                   for p in nn.Conv2d(channels, channels, kernel_size, bias=False).parameters())
    rejects(check.stack_params, by_building, "asks for arithmetic", "built a Conv2d")


def test_the_seed_repeats_the_cases():
    wrong = lambda channels, n_layers, kernel_size: 0  # noqa: E731
    first = rejects(check.stack_params, wrong, "seed")
    seed = int(first.split("seed=")[1].split(" ")[0])
    again = rejects(lambda fn: check.stack_params(fn, seed=seed), wrong)
    assert again.splitlines()[1:-1] == first.splitlines()[1:-1]


# --- kinds of wrong answers that used to pass, and right ones that used to fail ----

class WithDropout(BasicBlock):
    """Right in evaluation mode; dropout makes it differ while training."""

    def __init__(self, c_in, c_out, stride=1):
        super().__init__(c_in, c_out, stride, shortcut="B")
        self.drop = nn.Dropout(0.2)

    def forward(self, x):
        return self.drop(super().forward(x))


class ShortcutFirst(nn.Module):
    """A right block whose shortcut is created before its branch (other order of names)."""

    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, padding="same" if stride == 1 else 1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding="same", bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()  # one instance, used twice

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Counting(BasicBlock):
    """Changes its state at every call."""

    def __init__(self, c_in, c_out, stride=1):
        super().__init__(c_in, c_out, stride, shortcut="B")
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return super().forward(x) * (1 + 0.1 * (self.calls > 2))


class EvalOnlyBug(BasicBlock):
    def __init__(self, c_in, c_out, stride=1):
        super().__init__(c_in, c_out, stride, shortcut="B")

    def forward(self, x):
        if not self.training:
            raise RuntimeError("only in evaluation mode")
        return super().forward(x)


class Misspelled(BasicBlock):
    forward = nn.Module.forward  # as if `def foward` had been written

    def __init__(self, c_in, c_out, stride=1):
        super().__init__(c_in, c_out, stride, shortcut="B")


@pytest.mark.parametrize("wrong, message", [
    (WithDropout, "in training mode differs"),
    (Counting, "called a second time"),
    (EvalOnlyBug, "only in evaluation mode"),
    (Misspelled, "no method named forward"),
    (lambda c_in, c_out, stride=1: _spoil(block_b(c_in, c_out, stride), lambda o: o.detach()),
     "not connected to the input by autograd"),
    (lambda c_in, c_out, stride=1: _spoil(block_b(c_in, c_out, stride), lambda o: o.double()),
     "torch.float64; expected torch.float32"),
    (lambda c_in, c_out, stride=1: _spoil(block_b(c_in, c_out, stride), lambda o: (o, o)),
     "a tuple of 2 items; expected one tensor"),
    (block_b(8, 8), "not an instance of it"),
])
def test_the_basic_block_check_catches(wrong, message):
    rejects(residual.basic_block, wrong, message)


class _Spoiled(nn.Module):
    def __init__(self, inner, spoil):
        super().__init__()
        self.inner, self.spoil = inner, spoil

    def forward(self, x):
        return self.spoil(self.inner(x))


def _spoil(module, spoil):
    return _Spoiled(module, spoil)


def test_a_right_block_in_another_order_with_same_padding_and_one_relu_passes():
    residual.basic_block(ShortcutFirst)


def test_a_bottleneck_with_its_stride_on_the_last_1x1_is_caught():
    class StrideLast(Bottleneck):
        def __init__(self, c, p, s=1):
            super().__init__(c, p, 1, shortcut="B")
            self.conv3 = nn.Conv2d(self.conv3.in_channels, self.conv3.out_channels, 1, s,
                                   bias=False)
            if s != 1:
                self.shortcut = nn.Sequential(nn.Conv2d(c, 4 * p, 1, s, bias=False),
                                              nn.BatchNorm2d(4 * p))
    rejects(bottleneck.bottleneck_block, StrideLast, "differs by up to")


@pytest.mark.parametrize("kind", ["numpy", "0-d tensor", "whole float"])
def test_numbers_of_other_types_count(kind):
    wrap = {"numpy": np.int64, "0-d tensor": torch.tensor, "whole float": float}[kind]
    check.stack_params(lambda c, n, k: wrap(n * k * k * c * c))


def test_grouped_conv_must_not_call_the_grouped_convolution():
    rejects(resnext.grouped_conv, lambda x, conv: conv(x), "you called the grouped convolution")
    rejects(resnext.grouped_conv,
            lambda x, conv: F.conv2d(x, conv.weight, stride=conv.stride, padding=conv.padding,
                                     groups=conv.groups), "groups=")


@pytest.mark.parametrize("wrong, message", [
    (lambda c: math.ceil((-512 * c + math.sqrt((512 * c) ** 2 + 36 * c * 69632)) / (18 * c)),
     "round it to the nearest whole number"),
    (lambda c: (-512 * c + math.sqrt((512 * c) ** 2 + 36 * c * 69632)) / (18 * c),
     "not a whole number"),
    (lambda c: {1: 64, 2: 40, 4: 24, 8: 14, 32: 4}.get(c, 0), "expected a positive width"),
])
def test_width_for_cardinality_needs_the_rounded_solution_for_any_cardinality(wrong, message):
    rejects(resnext.width_for_cardinality, wrong, message)


def test_a_lookup_table_of_the_old_cases_fails():
    table = {(64, 1, 3): 36864, (64, 2, 3): 73728, (64, 3, 3): 110592, (512, 3, 3): 7077888,
             (64, 1, 7): 200704, (32, 1, 5): 25600, (8, 4, 5): 6400}
    rejects(check.stack_params, lambda c, n, k: table.get((c, n, k)), "returned None")


# --- the pre-activation block, the transition layer, the block in the experiment ------

class PostAddRelu(PreActBlock):
    def forward(self, x):
        return F.relu(super().forward(x))


class ConvBeforeBN(PreActBlock):  # the original order: the convolution first
    def forward(self, x):
        out = self.conv2(F.relu(self.bn2(self.conv1(x))))
        return out + self.shortcut(x)


class ProjectionWithBN(nn.Module):
    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.inner = PreActBlock(c_in, c_out, stride)
        if stride != 1 or c_in != c_out:
            self.inner.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                                nn.BatchNorm2d(c_out))

    def forward(self, x):
        return self.inner(x)


class OwnPreActBlock(nn.Module):   # the chapter's solution (the library's is refused)
    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x):
        out = self.conv1(torch.relu(self.bn1(x)))
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + self.shortcut(x)


def test_preact_block_accepts_the_answer():
    residual.preact_block(OwnPreActBlock)


@pytest.mark.parametrize("wrong, message", [
    (PostAddRelu, "does anything come after the addition?"),
    (ConvBeforeBN, "differs by up to"),
    (ProjectionWithBN, "parameters; expected"),
    (lambda c_in, c_out, stride=1: PreActBlock(c_in, c_out, 1), "shape"),
])
def test_preact_block_rejects(wrong, message):
    rejects(residual.preact_block, wrong, message)


class MaxPoolTransition(Transition):
    def __init__(self, c_in, c_out):
        super().__init__(c_in, c_out)
        self.pool = nn.MaxPool2d(2, stride=2)


def test_transition_layer_accepts_the_answer():
    densenet.transition_layer(Transition)
    # pooling before the 1x1 convolution computes the same function: accepted too
    densenet.transition_layer(lambda c_in, c_out: nn.Sequential(
        nn.BatchNorm2d(c_in), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(c_in, c_out, 1, bias=False)))


@pytest.mark.parametrize("wrong, message", [
    (MaxPoolTransition, "differs by up to"),
    (lambda c_in, c_out: nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False),
                                       nn.BatchNorm2d(c_in), nn.AvgPool2d(2)), "weights"),
    (lambda c_in, c_out: nn.Sequential(nn.BatchNorm2d(c_in), nn.Conv2d(c_in, c_out, 1, bias=False),
                                       nn.AvgPool2d(2)), "differs by up to"),
])
def test_transition_layer_rejects(wrong, message):
    rejects(densenet.transition_layer, wrong, message)


@pytest.fixture(scope="module")
def experiment_runs(tmp_path_factory):
    from deepres.course.budget import get_budget
    from deepres.course.experiments import cifar_run
    from devtools.testing import synthetic_data
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPRES_CACHE", str(tmp_path_factory.mktemp("runs")))
        budget, data = get_budget("smoke", verbose=False, steps=4, eval_every=2), synthetic_data()
        yield budget, {kind: cifar_run("plain" if kind == "plain" else "resnet", 56, 0, data,
                                       budget, "cpu", block=block)
                       for kind, block in (("plain", None), ("basic", None),
                                           ("preact", PreActBlock))}


def test_the_experiment_check_accepts_a_run_of_your_blocks(experiment_runs, capsys):
    budget, runs = experiment_runs
    residual.block_in_experiment(lambda: runs["preact"], runs["plain"], budget,
                                        PreActBlock)
    assert "too short to compare" in capsys.readouterr().out


def test_the_experiment_check_needs_your_blocks_and_a_run(experiment_runs):
    budget, runs = experiment_runs
    rejects(lambda cls: residual.block_in_experiment(lambda: runs["basic"], runs["plain"],
                                                     budget, cls), PreActBlock, "27 of your blocks")
    rejects(lambda cls: residual.block_in_experiment(lambda: None, runs["plain"], budget, cls),
            PreActBlock, "should return the Run")
    rejects(lambda cls: residual.block_in_experiment(not_implemented, runs["plain"], budget,
                                                     cls), PreActBlock, "not done yet")


def test_the_experiment_check_judges_the_outcome_when_the_budget_can_tell(experiment_runs):
    import dataclasses
    budget, runs = experiment_runs
    long = dataclasses.replace(budget, steps=1000)

    def with_error(run, error):
        return dataclasses.replace(run, history={**run.history, "train_error": [error]})

    mine, plain_run = with_error(runs["preact"], 0.30), with_error(runs["plain"], 0.31)
    rejects(lambda cls: residual.block_in_experiment(lambda: mine, plain_run, long, cls),
            PreActBlock, "not clearly below plain-56's")
    better = with_error(runs["preact"], 0.12)
    residual.block_in_experiment(lambda: better, plain_run, long, PreActBlock)


# --- chapter 8: counting, heads, freezing ---------------------------------------------


def test_param_counts_accepts_the_answer():
    practice.param_counts(count_trainable)


@pytest.mark.parametrize("wrong, message", [
    (lambda m: tuple(reversed(count_trainable(m))), "in that order"),
    (lambda m: (count_trainable(m)[0], count_trainable(m)[0]), "count only parameters"),
    (lambda m: (len(list(m.parameters())), 0), "count their elements"),
    (lambda m: count_trainable(m)[0], "expected a pair"),
])
def test_param_counts_rejects(wrong, message):
    rejects(practice.param_counts, wrong, message)


def _head_512(model, n):
    model.fc = nn.Linear(512, n)
    return model


def _head_no_return(model, n):
    model.fc = nn.Linear(model.fc.in_features, n)


def _head_reinit_all(model, n):
    for m in model.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return new_head(model, n)


def test_replace_head_accepts_the_answer():
    practice.replace_head(new_head)


@pytest.mark.parametrize("wrong, message", [
    (_head_512, "takes 512 inputs"),
    (_head_no_return, "returned NoneType"),
    (lambda m, n: new_head(m, n + 1), "outputs; expected"),
    (_head_reinit_all, "changed weights other than the head's"),
    (lambda m, n: nn.Linear(m.fc.in_features, n), "returned the new head itself"),
])
def test_replace_head_rejects(wrong, message):
    rejects(practice.replace_head, wrong, message)


def _freeze(model, up_to, stem=True, include_last=True, head=False):
    last = int(up_to[-1]) + (0 if include_last else -1)
    frozen = (["conv1", "bn1"] if stem else []) + [f"layer{i}" for i in range(1, last + 1)]
    frozen += ["fc"] if head else []
    for name, p in model.named_parameters():
        p.requires_grad_(name.split(".")[0] not in frozen)
    return model


def test_freeze_up_to_accepts_the_answer():
    practice.freeze_up_to(_freeze)


def test_freeze_up_to_accepts_changing_the_model_in_place_without_a_return():
    def in_place(model, up_to):
        _freeze(model, up_to)
    practice.freeze_up_to(in_place)


@pytest.mark.parametrize("wrong, message", [
    (lambda m, u: _freeze(m, u, stem=False), "conv1, bn1 still train"),
    (lambda m, u: _freeze(m, u, include_last=False), "still train"),
    (lambda m, u: _freeze(m, u, head=True), "fc is frozen too"),
    (lambda m, u: m.eval(), "still train"),
    (lambda m, u: _freeze(m, "layer4"), "frozen too"),
])
def test_freeze_up_to_rejects(wrong, message):
    rejects(practice.freeze_up_to, wrong, message)


# --- issue 22: right answers in other forms, feedback that names the mistake ------------

def test_numpy_arrays_are_accepted_where_a_tensor_of_the_same_values_is():
    from deepres.course.checks import degradation, why
    from deepres.measure import layer_grad_norms
    why.path_counts(lambda n: np.array([math.comb(n, k) for k in range(n + 1)]))
    degradation.grad_norms(lambda model, x, y: np.array(layer_grad_norms(model, x, y)))
    why.random_direction(lambda model, g: {   # float64: any float dtype is fine
        name: d.double() for name, d in own_direction(model, g).items()})


def test_the_arithmetic_exercises_state_that_building_layers_is_refused():
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "chapters"
    vgg_text, dense_text = (root / "01_vgg.md").read_text(), (root / "06_densenet.md").read_text()
    import re
    rule = re.compile(r"the\s+check\s+refuses")
    assert len(rule.findall(vgg_text)) >= 2 and rule.search(dense_text)
    message = rejects(check.stack_params, lambda c, n, k: sum(
        p.numel() for p in nn.Conv2d(c, c, k, bias=False).parameters()) * n)
    assert "asks for arithmetic" in message


def test_a_built_module_passed_to_a_function_checker_is_named_as_such():
    from deepres.course.checks import degradation
    from deepres.models import plain
    message = rejects(check.make_features, features([4, "M"], 3), "pass the function you wrote")
    assert "class itself" not in message
    rejects(degradation.plain_net, plain(8), "pass the function you wrote")


def test_a_not_implemented_error_from_torch_is_not_read_as_not_done_yet():
    import torch

    # raised from a frame of torch's own code
    code = compile("def raising(*a):\n    raise NotImplementedError('no kernel for this')\n",
                   torch.__file__, "exec")
    namespace = {}
    exec(code, namespace)
    message = rejects(check.stack_params, namespace["raising"], "PyTorch raised NotImplementedError")
    assert "not done yet" not in message
    assert "not done yet" in rejects(check.stack_params, not_implemented)


def test_a_change_of_torchs_global_settings_is_undone_and_named():
    import torch

    def sets_float64(c, n, k):
        torch.set_default_dtype(torch.float64)
        return n * k * k * c * c

    def turns_autograd_off(c, n, k):
        torch.set_grad_enabled(False)
        return n * k * k * c * c

    rejects(check.stack_params, sets_float64, "default dtype to torch.float64", "set it back")
    assert torch.get_default_dtype() == torch.float32
    rejects(check.stack_params, turns_autograd_off, "turned autograd off")
    assert torch.is_grad_enabled()


def test_remove_blocks_judges_an_answer_that_changed_the_given_model():
    import copy

    from deepres.course.checks import why

    def in_place(model, indices):   # changes the model it was given, returns it
        for i in indices:
            model.blocks[i] = nn.Identity()
        return model

    message = rejects(why.remove_blocks, in_place, "changed the model it was given")
    assert "could not use" not in message and "Error" not in message

    def shifted_down(model, indices):
        copied = copy.deepcopy(model)
        for i in indices:
            if i >= 1:
                copied.blocks[i - 1] = nn.Identity()
        return copied

    rejects(why.remove_blocks, shifted_down, "use them as they are")


def test_the_experiment_check_trains_without_a_time_limit_and_wants_a_real_run(
        experiment_runs, monkeypatch):
    """A training run is not time-limited (a slow CPU is not an endless loop); stopped
    by the learner, the check says the run resumes from its checkpoint."""
    from deepres.course.checks import core, residual
    from deepres.models import PreActBlock
    budget, runs = experiment_runs

    class Run:   # a class named Run, not the library's
        model = runs["preact"].model
        train_error = 0.0

    rejects(lambda cls: residual.block_in_experiment(lambda: Run(), runs["plain"], budget, cls),
            PreActBlock, "should return the Run")
    limits = []
    monkeypatch.setattr(residual, "run_checks", lambda *a, limit, **k: limits.append(limit)
                        or core.run_checks(*a, limit=limit, **k))
    residual.block_in_experiment(lambda: runs["preact"], runs["plain"], budget, PreActBlock)
    assert limits == [False]

    def interrupted():
        raise KeyboardInterrupt
    rejects(lambda cls: residual.block_in_experiment(interrupted, runs["plain"], budget, cls),
            PreActBlock, "run this cell again to resume")


def test_the_experiment_check_compares_on_the_laptop_budget(experiment_runs):
    import dataclasses
    budget, runs = experiment_runs
    laptop = dataclasses.replace(budget, name="laptop", steps=750)
    worse = dataclasses.replace(runs["preact"], history={**runs["preact"].history,
                                                         "train_error": [0.60]})
    plain_run = dataclasses.replace(runs["plain"], history={**runs["plain"].history,
                                                            "train_error": [0.34]})
    from deepres.course.checks import residual
    from deepres.models import PreActBlock
    message = rejects(lambda cls: residual.block_in_experiment(lambda: worse, plain_run, laptop,
                                                               cls),
                      PreActBlock, "not clearly below plain-56's")
    assert "pass seed=" not in message and "laptop budget" not in message


# --- the course's own code handed in as an answer (issue 24) -------------------------

def test_the_librarys_own_code_is_turned_away_as_an_answer():
    """The page used the library's delete_blocks, filter_normalized_direction,
    PadShortcut; an answer that is it, or calls it, is refused, by name."""
    from deepres.course.checks import residual, why
    from deepres.landscape import filter_normalized_direction
    from deepres.lesion import delete_blocks
    from deepres.models import PadShortcut, PreActBlock
    rejects(why.remove_blocks, delete_blocks, "`delete_blocks`", "write it yourself")
    rejects(why.remove_blocks, lambda model, indices: delete_blocks(model, indices),
            "`delete_blocks`")
    rejects(why.random_direction, filter_normalized_direction, "`filter_normalized_direction`")
    rejects(residual.option_a, lambda x, c_out, stride: PadShortcut(x.shape[1], c_out, stride)(x),
            "`PadShortcut`")
    from deepres.course.checks import vgg
    from deepres.lesion import path_length_counts
    from deepres.models.vgg import make_features
    rejects(why.path_counts, path_length_counts, "`path_length_counts`")
    rejects(why.path_counts, lambda n: list(path_length_counts(n)), "`path_length_counts`")
    rejects(vgg.make_features, make_features, "`make_features`")
    from deepres.transfer import freeze
    rejects(practice.freeze_up_to, lambda m, up_to: freeze(m, ["conv1", "bn1", "layer1"]),
            "`freeze`")
    rejects(vgg.make_features, lambda config, c: make_features(config, c), "`make_features`")



def _helper_one_call_down(model, indices):
    from deepres import lesion
    return getattr(lesion, "delete_" + "blocks")(model, indices)


class _CallsTheLibrary:
    def __call__(self, model, indices):
        from deepres.lesion import delete_blocks as renamed
        return renamed(model, indices)


def test_the_library_is_refused_however_it_is_reached():
    """The rule is enforced on the code that runs: another name, a helper one call down,
    a default argument, an empty subclass, a partial, a callable object, getattr, eval,
    a closure, a copy of a module the library built."""
    import copy
    import functools

    from deepres.course.checks import densenet, residual, why
    from deepres.lesion import delete_blocks
    from deepres.models import DenseBlock, PadShortcut
    _del = delete_blocks

    def with_default(model, indices, _d=delete_blocks):
        return _d(model, indices)

    def closure():
        found = delete_blocks
        return lambda model, indices: found(model, indices)

    for answer in (lambda model, indices: _del(model, indices), _helper_one_call_down,
                   with_default, functools.partial(delete_blocks), _CallsTheLibrary(),
                   lambda model, indices: eval("d", {"d": _del})(model, indices),
                   closure()):
        rejects(why.remove_blocks, answer, "`delete_blocks`")
    rejects(densenet.dense_block, type("Mine", (DenseBlock,), {}), "`DenseBlock`")
    rejects(residual.option_a, lambda x, c_out, stride: copy.deepcopy(
        PadShortcut(x.shape[1], c_out, stride))(x), "`PadShortcut`")


def test_a_learners_own_function_of_a_librarys_name_is_fine(capsys):
    """Only the library's object is refused: a helper of the learner's own that happens
    to be called delete_blocks is their own code."""
    import copy as copy_module

    from deepres.course.checks import why
    namespace = {"copy": copy_module, "nn": nn}
    exec("def delete_blocks(model, indices):\n"
         "    out = copy.deepcopy(model)\n"
         "    for i in indices:\n"
         "        out.blocks[i] = nn.Identity()\n"
         "    return out\n"
         "def remove_blocks(model, indices):\n"
         "    return delete_blocks(model, indices)\n", namespace)
    why.remove_blocks(namespace["remove_blocks"])
    assert "correct" in capsys.readouterr().out


def test_the_time_limit_grows_on_a_slower_machine(monkeypatch):
    """A check's limit is TIME_LIMIT on the machine the course was written on, and
    proportionally more on a slower one (never less)."""
    from deepres.course.checks import core, timelimit
    assert core.slowness() >= 1.0
    monkeypatch.setattr(timelimit, "_slowness", [])
    monkeypatch.setattr(timelimit, "_calibration", lambda: 3 * timelimit.CALIBRATION)
    assert core.slowness() == pytest.approx(3.0)
    seen = []
    monkeypatch.setattr(core, "stop_after", lambda limit: seen.append(limit)
                        or contextlib.nullcontext())
    check.stack_params(lambda c, n, k: n * k * k * c * c)
    assert seen == [3 * core.TIME_LIMIT]


def test_a_time_out_says_when_the_answers_threads_still_run(monkeypatch):
    import threading
    import time
    from deepres.course.checks import core
    monkeypatch.setattr(core, "TIME_LIMIT", 1)
    monkeypatch.setattr(core, "slowness", lambda: 1.0)
    stop = threading.Event()

    def with_a_thread(channels, n_layers, kernel_size):
        threading.Thread(target=stop.wait, daemon=True).start()
        while True:
            time.sleep(0.01)
    try:
        rejects(check.stack_params, with_a_thread, "stopped after 1 s",
                "1 thread(s) your code started still run")
    finally:
        stop.set()
