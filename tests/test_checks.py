"""Every checker accepts the reference answer and rejects wrong ones with a specific
message; broken learner code never crashes a checker."""
import pytest
from torch import nn

from deepres.checks import CheckFailed
from deepres.checks import vgg as check


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
    assert check.stack_params(lambda c, n, k: n * k * k * c * c)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda c, n, k: n * (k * k * c * c + c), "counts the biases too"),
    (lambda c, n, k: k * k * c * c, "that is one layer"),
    (lambda c, n, k: n * k * c * c, "k*k"),
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
    assert check.make_features(features)


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
    assert check.conv_flops(lambda ci, co, k, h, w: 2 * ci * co * k * k * h * w)


@pytest.mark.parametrize("wrong, message", [
    (lambda ci, co, k, h, w: ci * co * k * k * h * w, "multiply-adds"),
    (lambda ci, co, k, h, w: 2 * ci * co * k * h * w, "flop_counter measures"),
    (lambda ci, co, k, h, w: 2 * ci * co * k * k * (h - k + 1) * (w - k + 1), "flop_counter measures"),
])
def test_conv_flops_rejects(wrong, message):
    rejects(check.conv_flops, wrong, message)


# --- what every checker must survive ----------------------------------------------

CHECKERS = [check.stack_params, check.make_features, check.conv_flops]


@pytest.mark.parametrize("checker", CHECKERS)
def test_unsolved_stub_says_not_done_yet(checker):
    rejects(checker, not_implemented, "not done yet", "NotImplementedError")


@pytest.mark.parametrize("checker", CHECKERS)
def test_crashing_code_is_reported_not_raised(checker):
    def broken(*args):
        return 1 / 0
    rejects(checker, broken, "ZeroDivisionError", "1 / 0")


@pytest.mark.parametrize("checker", CHECKERS)
def test_a_value_instead_of_a_function(checker):
    rejects(checker, 42, "pass the function you wrote")
