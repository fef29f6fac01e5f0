"""Where finished runs are kept, and the key that names one.

A run's key hashes what decides its numbers: its configuration (every argument of
``train``, the data's specification, the torch version and, on a CPU, the kernels' pins,
the thread count and the denormal switch), the model's structure and initial weights, the
code of any block defined outside this library, and :data:`NUMERICS_VERSION`. The library's
own source is not hashed: editing a comment or reshaping a function retrains nothing.

Runs are looked up in two places: the machine's run cache (:func:`cache_dir`, written by
``train``), then the runs committed with the book (:func:`store_dir`, read only).
"""
import hashlib
import inspect
import json
import os
import time
import types
from pathlib import Path

# Bump it in any change that alters a trained number (the arithmetic of training, the
# data, the models' initialisation): tests/test_numerics.py fails until it is bumped and
# its digests recorded anew, and then `make runs` retrains the committed runs.
NUMERICS_VERSION = 1

CACHE_ENV = "DEEPRES_CACHE"
STORE_ENV = "DEEPRES_STORE"   # the committed runs (default: runs/ of this clone); "" for none
REPOSITORY_RUNS = Path(__file__).resolve().parents[1] / "runs"   # runs/ of a clone


def cache_dir():
    """``$DEEPRES_CACHE``, else one folder for the whole machine:
    ``$XDG_CACHE_HOME/deepres/runs`` (``~/.cache/deepres/runs``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "deepres" / "runs"


def store_dir():
    """The folder of runs committed with the book (``runs/`` beside this package in a
    clone; ``$DEEPRES_STORE`` if set), or None where there is none (a pip install)."""
    folder = os.environ.get(STORE_ENV)
    if folder is None:
        folder = REPOSITORY_RUNS
    return Path(folder) if folder and Path(folder).is_dir() else None


def clear_cache():
    """Delete every cached run (and checkpoint); returns how many files were deleted.
    The committed runs are not touched."""
    files = [*cache_dir().glob("*.pt"), *cache_dir().glob("*.tmp")]
    for f in files:
        f.unlink()
    return len(files)


def run_key(config, model):
    """The name of a run: 20 hex digits of a hash of ``config``, ``model`` as built (before
    training) and the numerics version."""
    return hashlib.sha256(json.dumps(
        [config, model_fingerprint(model), NUMERICS_VERSION], sort_keys=True
    ).encode()).hexdigest()[:20]


def model_fingerprint(model):
    """Structure, initial weights, and the code of any class defined outside this library
    (a learner's block): its source where Python can find it, and always its methods'
    compiled code, which changes with the code even for a class defined in a notebook
    cell, whose source ``inspect`` cannot read."""
    h = hashlib.sha256(repr(model).encode())
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    for cls in sorted({type(m) for m in model.modules()}, key=lambda c: c.__qualname__):
        if not cls.__module__.startswith(("torch.", "deepres.")):
            h.update(cls.__qualname__.encode())
            try:
                h.update(inspect.getsource(cls).encode())
            except (OSError, TypeError):
                pass
            _hash_class_code(cls, h)
    return h.hexdigest()


def _hash_class_code(cls, h):
    """Add the compiled code of ``cls``'s own methods and properties (and of the classes
    it derives from outside torch and this library) to the hash ``h``."""
    for base in cls.__mro__:
        if base is object or base.__module__.startswith(("torch", "deepres.", "builtins")):
            continue
        for name, member in sorted(vars(base).items()):
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            parts = [member.fget, member.fset] if isinstance(member, property) else [member]
            for part in parts:
                if isinstance(part, types.FunctionType):
                    h.update(f"{base.__qualname__}.{name}".encode())
                    _hash_code(part.__code__, h)
                    h.update(repr(part.__defaults__).encode())


def _hash_code(code, h):
    h.update(code.co_code)
    h.update(repr((code.co_names, code.co_varnames)).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _hash_code(const, h)
        elif isinstance(const, frozenset):   # its order changes with the string hash seed
            h.update(repr(sorted(map(repr, const))).encode())
        else:
            h.update(repr(const).encode())


def stored(key):
    """Whether the run ``key`` is in the run cache or among the committed runs."""
    store = store_dir()
    return (cache_dir() / f"{key}.pt").is_file() or (
        store is not None and (store / f"{key}.pt").is_file())


def find(key, name):
    """The finished run ``key`` from the run cache or the committed runs, or None."""
    found = load(cache_dir() / f"{key}.pt", name)
    store = store_dir()
    if found is None and store is not None:
        found = load(store / f"{key}.pt", name, remove=False)
    return found


def load(path, name, remove=True):
    """A stored run or checkpoint, or None if there is none. One that cannot be read (a
    copy cut short, a file of another version) is reported and, with ``remove``, removed,
    so that the run is trained again."""
    import torch
    if not path.is_file():
        return None
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:   # torch raises many kinds for a damaged file
        print(f"{name}: the stored file {path} could not be read ({type(error).__name__}: "
              f"{str(error)[:200]}); " + ("removing it and " if remove else "") +
              "training again", flush=True)
        if remove:
            path.unlink(missing_ok=True)
        return None


def save(state, path):
    """Write ``state`` to ``path`` whole or not at all: into a file of this process's
    own, then renamed (two processes writing one entry each leave a complete file)."""
    import torch
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)
