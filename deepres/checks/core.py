"""The exercise-checker framework.

A checker calls the learner's code on inputs it chooses, compares with the reference,
collects every problem it finds, and then either prints a short success line or raises
:class:`CheckFailed` listing each problem and a hint. It never lets the learner's own
exception escape: a crash in their code becomes one line saying where and what.
"""
import traceback

import torch


class CheckFailed(AssertionError):
    """Raised by a check cell whose exercise is not solved yet (nbval sees a failure).

    It is feedback, not a crash: IPython (Jupyter, Colab) shows only its message, with no
    traceback through this library. It still stops "Run all" and fails nbval.
    """

    def _render_traceback_(self):  # IPython calls this instead of printing a traceback
        return [f"{type(self).__name__}: {line}" if i == 0 else line
                for i, line in enumerate(str(self).splitlines())]


class NotDoneYet(Exception):
    """Internal: the learner's code still raises NotImplementedError."""


CRASHED = object()  # what Checker.call returns when the learner's code raised


class Checker:
    def __init__(self, exercise, hint=""):
        self.exercise, self.hint = exercise, hint
        self.problems, self.passed = [], 0

    def call(self, fn, *args, label=None, **kwargs):
        """``fn(*args, **kwargs)``, turning a crash into a recorded problem (and CRASHED)."""
        label = label or _describe_call(fn, args, kwargs)
        if not callable(fn):
            self.fail(f"expected a function or class, but got {type(fn).__name__} {fn!r}")
            return CRASHED
        try:
            return fn(*args, **kwargs)
        except NotImplementedError:
            raise NotDoneYet() from None
        except Exception as error:  # the learner's bug, reported, never re-raised
            self.fail(f"{label} raised {type(error).__name__}: {error}{_where(error)}")
            return CRASHED

    def expect(self, ok, message):
        """Record ``message`` as a problem unless ``ok``."""
        if ok:
            self.passed += 1
        else:
            self.fail(message)
        return bool(ok)

    def fail(self, message):
        if message not in self.problems:
            self.problems.append(message)

    def report(self):
        if self.problems:
            lines = "\n".join(f"  - {p}" for p in self.problems[:6])
            more = f"\n  (and {len(self.problems) - 6} more)" if len(self.problems) > 6 else ""
            hint = f"\nHint: {self.hint}" if self.hint else ""
            raise CheckFailed(f"{self.exercise}: not yet.\n{lines}{more}{hint}")
        print(f"{self.exercise}: correct - all {self.passed} checks passed.")


def run_checks(exercise, body, hint="", answer=None):
    """Run ``body(checker)`` and report. The function every check cell calls.

    ``answer`` is what the learner passed in; if given it must be callable.
    """
    if answer is not None and not callable(answer):
        raise CheckFailed(f"{exercise}: pass the function you wrote (its name, without "
                          f"parentheses), not {type(answer).__name__} {_short(answer)}.")
    checker = Checker(exercise, hint)
    try:
        body(checker)
    except NotDoneYet:
        raise CheckFailed(
            f"{exercise}: not done yet - the code still raises NotImplementedError. "
            f"Replace that line with your solution and run the cell again, then this one."
        ) from None
    checker.report()
    return True


def _describe_call(fn, args, kwargs):
    name = getattr(fn, "__name__", "your code")
    shown = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(shown)})"


def _short(value):
    if isinstance(value, torch.Tensor):
        return f"<tensor {tuple(value.shape)}>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _where(error):
    """' (line N of your cell: `code`)' for the innermost frame outside this library."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if "deepres" not in f.filename and "torch" not in f.filename]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (line {frame.lineno}: `{(frame.line or '').strip()}`)"


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def copy_weights(source, target):
    """Copy parameters and buffers from ``source`` into ``target``: by name if the names
    are the same, else by position; returns an error message, or None if it worked."""
    if source.state_dict().keys() == target.state_dict().keys():
        problem = _shape_mismatch(source.state_dict(), target.state_dict())
        if problem is None:
            target.load_state_dict(source.state_dict())
        return problem
    src = list(source.state_dict().values())
    dst = target.state_dict()
    if len(src) != len(dst):
        return (f"your module has {len(dst)} weight tensors (parameters and buffers); "
                f"the reference has {len(src)}")
    problem = _shape_mismatch(dict(zip(dst.keys(), src)), dst)
    if problem is None:
        target.load_state_dict(dict(zip(dst.keys(), src)))
    return problem


def _shape_mismatch(reference, yours):
    for (name, t), s in zip(yours.items(), reference.values()):
        if t.shape != s.shape:
            return (f"your tensor '{name}' has shape {tuple(t.shape)} where the reference "
                    f"has {tuple(s.shape)} (are the layers created in the same order?)")
    return None


def compare_modules(check, make_yours, make_reference, inputs, what="the module",
                    atol=1e-5):
    """The usual checks of a learner's nn.Module against the reference: it builds,
    has the same number of parameters, gives the same output shape, and - after copying
    the reference's weights into it - the same outputs and input gradients."""
    torch.manual_seed(0)
    yours = check.call(make_yours, label=f"building {what}")
    if yours is CRASHED:
        return
    reference = make_reference()
    if not check.expect(isinstance(yours, torch.nn.Module),
                        f"{what} should be an nn.Module, got {type(yours).__name__}"):
        return
    n_yours, n_ref = count_params(yours), count_params(reference)
    check.expect(n_yours == n_ref, f"{what} has {n_yours:,} parameters; expected {n_ref:,}")
    for x in inputs:
        x_ref = x.clone().requires_grad_(True)
        expected = reference(x_ref)
        x_yours = x.clone().requires_grad_(True)
        out = check.call(yours, x_yours, label=f"{what} on input {tuple(x.shape)}")
        if out is CRASHED:
            return
        if not check.expect(isinstance(out, torch.Tensor) and out.shape == expected.shape,
                            f"on input {tuple(x.shape)} {what} returned shape "
                            f"{tuple(getattr(out, 'shape', ()))}; expected {tuple(expected.shape)}"):
            continue
        problem = copy_weights(reference, yours)
        if not check.expect(problem is None, f"cannot copy the reference weights: {problem}"):
            continue
        reference.eval(), yours.eval()
        x_yours = x.clone().requires_grad_(True)
        expected = reference(x_ref)
        out = yours(x_yours)
        check.expect(torch.allclose(out, expected, atol=atol),
                     f"with the reference's weights, {what}'s output differs by up to "
                     f"{(out - expected).abs().max().item():.3g} on input {tuple(x.shape)}")
        expected.sum().backward()
        out.sum().backward()
        check.expect(x_yours.grad is not None and torch.allclose(x_yours.grad, x_ref.grad, atol=atol),
                     f"the gradient with respect to the input differs on input {tuple(x.shape)}")
        reference.train(), yours.train()
