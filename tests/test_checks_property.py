"""Every checker, fed a family of generated bad answers, rejects each one cleanly: a
CheckFailed with a message, never another exception, never a hang.

The bad answers are the kinds a confused learner writes: wrong types, code that raises,
NaN, wrong shapes and dtypes, outputs with no autograd graph, endless loops, huge
outputs, state that changes between calls. Module answers wrap the reference module, so
that their parameters match and the defect itself is what the checker must catch.
"""
import math

import pytest
import torch
from torch import nn

from deepres.checks import CheckFailed, bottleneck, core, degradation, densenet, residual, resnext, vgg
from deepres.models import BasicBlock, Bottleneck, DenseBlock, PreActBlock, Transition, plain
from deepres.models.vgg import make_features

FAST = 3  # seconds: the checks' time limit in these tests, so that loops end quickly


def endless(*args):
    while True:
        pass


def raises(*args):
    raise ValueError("a bug in the answer")


# What a broken answer returns instead of the right value, for each kind of answer.
BAD_VALUES = {
    "none": lambda right: None,
    "string": lambda right: "36864",
    "tuple": lambda right: (right, right),
    "object": lambda right: object(),
    "nan": lambda right: right * math.nan if isinstance(right, torch.Tensor) else math.nan,
    "float64": lambda right: right.double() if isinstance(right, torch.Tensor) else float(right) + 0.5,
    "wrong shape": lambda right: torch.zeros(3),
    "no graph": lambda right: right.detach() if isinstance(right, torch.Tensor) else right,
    "huge": lambda right: torch.zeros(10 ** 7),
    "noisy": lambda right: right + torch.rand_like(right) if isinstance(right, torch.Tensor) else right + 1,
}
BAD_CALLS = {"endless loop": endless, "raises": raises}


class Wrapped(nn.Module):
    """The reference module, with its output spoiled by ``spoil``."""

    def __init__(self, inner, spoil):
        super().__init__()
        self.inner, self.spoil = inner, spoil

    def forward(self, x):
        return self.spoil(self.inner(x))


def module_answers(make_reference, *example):
    """Bad classes for a module exercise: each builds the reference and spoils it;
    ``example`` are arguments for an instance (the answer "an instance, not the class")."""
    answers = {}
    for name, spoil in BAD_VALUES.items():
        if name in ("no graph", "nan", "float64", "noisy", "huge", "wrong shape", "none",
                    "tuple", "string"):
            answers[name] = (lambda s: lambda *args: Wrapped(make_reference(*args), s))(spoil)
    for name, call in BAD_CALLS.items():
        answers[name] = (lambda c: lambda *args: Wrapped(make_reference(*args), c))(call)
    answers["init raises"] = raises
    answers["instance"] = make_reference(*example)

    class NoForward(nn.Module):
        def __init__(self, *args):
            super().__init__()
            self.inner = make_reference(*args)

        def foward(self, x):  # misspelled on purpose
            return self.inner(x)

    answers["misspelled forward"] = NoForward
    return answers


def value_answers(right, tensor=False):
    """Bad functions for an exercise whose right answer (for the arguments given) is
    computed by ``right(*args)``; ``tensor``: the answer is a tensor (with a graph)."""
    answers = {name: (lambda b: lambda *args: b(right(*args)))(bad)
               for name, bad in BAD_VALUES.items() if tensor or name != "no graph"}
    answers.update(BAD_CALLS)
    answers["instance"] = 42
    return answers


def reference_option_a(x, c_out, stride):
    x = x[:, :, ::stride, ::stride]
    return torch.cat([x, x.new_zeros(x.shape[0], c_out - x.shape[1], *x.shape[2:])], 1)


def reference_grouped(x, conv):
    return nn.Conv2d.forward(conv, x)


def ref_block(c_in, c_out, stride):
    return BasicBlock(c_in, c_out, stride, shortcut="B")


def ref_bottleneck(c_in, planes, stride):
    return Bottleneck(c_in, planes, stride, shortcut="B")


CHECKERS = {
    "stack_params": (vgg.stack_params, value_answers(lambda c, n, k: n * k * k * c * c)),
    "conv_flops": (vgg.conv_flops, value_answers(lambda ci, co, k, h, w: 2 * co * h * w * ci * k * k)),
    "resnet_params": (residual.resnet_params, value_answers(lambda n: 1000 * n)),
    "bottleneck_params": (bottleneck.bottleneck_params, value_answers(lambda c, p, s: c * p)),
    "width_for_cardinality": (resnext.width_for_cardinality, value_answers(lambda c: 4)),
    "transition_channels": (densenet.transition_channels, value_answers(lambda c, n, k, t: c)),
    "option_a": (residual.option_a, value_answers(reference_option_a, tensor=True)),
    "grouped_conv": (resnext.grouped_conv, value_answers(reference_grouped, tensor=True)),
    "grad_norms": (degradation.grad_norms, value_answers(
        lambda model, x, y: torch.tensor([1.0]))),
    "make_features": (vgg.make_features, module_answers(make_features, [4, "M"], 3)),
    "plain_net": (degradation.plain_net, module_answers(lambda n: plain(6 * n + 2), 1)),
    "basic_block": (residual.basic_block, module_answers(ref_block, 8, 8, 1)),
    "bottleneck_block": (bottleneck.bottleneck_block, module_answers(ref_bottleneck, 64, 16, 1)),
    "dense_layer": (densenet.dense_layer, module_answers(densenet._OnTensor, 8, 4)),
    "dense_block": (densenet.dense_block, module_answers(DenseBlock, 2, 8, 4)),
    "preact_block": (residual.preact_block, module_answers(PreActBlock, 8, 8, 1)),
    "transition_layer": (densenet.transition_layer, module_answers(Transition, 8, 4)),
}
CASES = [(checker, kind) for checker, (_, answers) in CHECKERS.items() for kind in answers]


def test_every_checker_of_the_course_is_here():
    import inspect
    found = set()
    for module in (vgg, degradation, residual, bottleneck, resnext, densenet):
        for name, f in vars(module).items():
            if inspect.isfunction(f) and f.__module__ == module.__name__:
                parameters = list(inspect.signature(f).parameters)
                if parameters and parameters[0] in ("fn", "cls"):
                    found.add(name)
    assert found == set(CHECKERS)


@pytest.mark.parametrize("checker, kind", CASES, ids=[f"{c}-{k}" for c, k in CASES])
def test_a_bad_answer_is_rejected_cleanly(checker, kind, monkeypatch):
    if kind == "endless loop":
        monkeypatch.setattr(core, "TIME_LIMIT", FAST)
    check, answers = CHECKERS[checker]
    with pytest.raises(CheckFailed) as error:
        check(answers[kind])
    message = str(error.value)
    assert message.strip() and "Traceback" not in message
