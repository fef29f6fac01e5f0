"""Runs as data: a :class:`RunSpec` describes one call of ``train`` without making it, so
that a list of them can be trained, planned (which are stored, how long the rest takes)
or counted, and each way sees the same runs."""
import functools
import inspect
from dataclasses import dataclass

import torch

from .cpu import flush_denormal as flushing, num_threads
from .runcache import find, run_key
from .training import _config, cpu_threads, estimate_seconds, train


@dataclass(eq=False)   # a spec is itself, not its fields: the key of what was trained
class RunSpec:
    """A run described, not trained: ``train(make_model, data, **options)``. A run that
    starts from another's trained model names that run as its ``source``; its
    ``make_model`` then takes that model (on the CPU)."""
    make_model: object
    data: object
    options: dict   # train()'s keyword arguments but the device
    source: "RunSpec | None" = None


def train_specs(specs, device, done=None):
    """Train (or load) the run of each spec in ``{label: RunSpec}``, each source once and
    before the runs that start from it; returns ``{label: Run}``. ``done``: a dict of the
    runs trained so far, {RunSpec: Run}, to keep between calls (a source is then loaded
    once, not at every call)."""
    done = {} if done is None else done

    def run(spec):
        if spec not in done:
            make = spec.make_model
            if spec.source is not None:
                make = functools.partial(make, run(spec.source).model.cpu())
            done[spec] = train(make, spec.data, device=device, **spec.options)
        return done[spec]
    return {label: run(spec) for label, spec in specs.items()}


def plan_specs(specs, device):
    """Where the runs of ``{label: RunSpec}`` stand, without training any:
    ``{label: (key, estimate)}``, ``estimate()`` giving the run's estimated seconds here.
    A run that starts from a source not trained yet has no key (None): its key holds the
    source's trained weights."""
    device, planned, sources = torch.device(device), {}, {}

    def source_model(spec):   # the source's trained model if it is stored, else None
        if spec not in sources:
            key, _, model = _plan(spec, device, source_model(spec.source)
                                  if spec.source is not None else None)
            stored = find(key, "source run") if key is not None else None
            weights = stored and stored["state_dict"]   # (a book's run may have none)
            if weights:
                model.load_state_dict(weights)
            sources[spec] = model if weights else None
        return sources[spec]

    for label, spec in specs.items():
        source = None if spec.source is None else source_model(spec.source)
        key, estimate, _ = _plan(spec, device, source)
        planned[label] = (None if spec.source is not None and source is None else key,
                          estimate)
    return planned


def _plan(spec, device, source):
    """(key, estimate, model as built) of ``spec``'s run; ``source``: its source's trained
    model (None: an untrained one stands in, and the key means nothing)."""
    options = inspect.signature(train).bind(spec.make_model, spec.data, device=device,
                                            **spec.options)
    options.apply_defaults()
    a = options.arguments
    threads = cpu_threads(a["threads"]) if device.type == "cpu" else None
    recipe = {k: a[k] for k in ("steps", "batch_size", "lr", "momentum", "weight_decay",
                                "warmup", "eval_every", "seed")}
    with num_threads(threads), flushing(a["flush_denormal"]):
        config = _config(spec.data, device, threads, a["flush_denormal"], **recipe)
        if spec.source is not None and source is None:
            source = untrained(spec.source)
        torch.manual_seed(config["seed"])
        model = spec.make_model() if spec.source is None else spec.make_model(source)
        key = run_key(config, model)

    def estimate():
        with num_threads(threads), flushing(a["flush_denormal"]):
            return estimate_seconds(model, spec.data, steps=recipe["steps"],
                                    batch_size=recipe["batch_size"],
                                    eval_every=recipe["eval_every"], device=device)
    return key, estimate, model


def untrained(spec):
    """The model ``spec`` builds, its source (if any) untrained: its shape and cost, not
    its weights."""
    return spec.make_model() if spec.source is None else spec.make_model(untrained(spec.source))
