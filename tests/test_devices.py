"""Library functions that take a model and tensors follow the model's device.

A learner on a GPU gets a trained model on the GPU and measures it with a batch taken
from the data on the CPU (chapter 2 does exactly this). These tests have no GPU: the
model goes to PyTorch's "meta" device instead, and a hook records the device of the
input the model receives before stopping the pass (meta tensors hold no values)."""
import pytest
import torch

from deepres.landscape import filter_normalized_direction, loss_at
from deepres.measure import layer_grad_norms, output_stds, step_seconds
from deepres.models import plain


class Stop(Exception):
    pass


def meta_model():
    model = plain(8, widths=(4, 8, 16), in_channels=1).to("meta")
    seen = []

    def record(module, args):
        seen.append(args[0].device.type)
        raise Stop

    model.register_forward_pre_hook(record)
    return model, seen


@pytest.mark.parametrize("measure", [
    lambda model, x, y: layer_grad_norms(model, x, y),
    lambda model, x, y: output_stds(model, x),
    lambda model, x, y: step_seconds([model], x),
    lambda model, x, y: loss_at(model, [filter_normalized_direction(model)], [(0.5,)], x, y),
], ids=["layer_grad_norms", "output_stds", "step_seconds", "loss_at"])
def test_measurements_move_the_data_to_the_models_device(measure):
    model, seen = meta_model()
    x, y = torch.randn(4, 1, 14, 14), torch.arange(4)
    with pytest.raises(Stop):
        measure(model, x, y)
    assert seen == ["meta"]

