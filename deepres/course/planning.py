"""What a chapter will train, and how long that takes here, before it trains anything."""
import torch

from .budget import BOOK_BUDGET
from .experiments import chapter_specs
from ..runcache import stored
from ..timing import duration
from ..specs import plan_specs


def plan(chapters, budget, device):
    """The chapters' runs that are not stored, without training any: ``(todo, waiting,
    total)``. ``todo`` maps each such run's key to its estimated seconds here (chapters
    share runs: each is counted once); ``waiting`` holds the estimated seconds of the runs
    that start from a source not trained yet (they have no key until it is); ``total``
    counts the chapters' runs."""
    todo, waiting, total = {}, [], 0
    for chapter in chapters:
        specs = chapter_specs(chapter, budget)
        total += len(specs)
        for key, estimate in plan_specs(specs, device).values():
            if key is None:
                waiting.append(estimate())
            elif key not in todo and not stored(key):
                todo[key] = estimate()
    return todo, waiting, total


def preview(chapter, budget, device, book_runs=False):
    """Say, before a chapter trains anything, what it will train and about how long that
    takes here: the sum of the estimates (from a few timed steps) of its runs that are not
    stored (it prints, and returns nothing, so that a notebook cell shows only the text).
    With ``book_runs``, the book's own runs are put in the run cache first
    (``deepres.course.book_runs.use``): nothing is left to train."""
    if book_runs:
        from .book_runs import use
        added = use(chapter, budget, device)
        print(f"BOOK_RUNS = True: {added} of this chapter's runs were copied from the book's "
              f"runs into your run cache (the book's numbers, trained on a CPU).")
    todo, waiting, total = plan([chapter], budget, device)
    left = len(todo) + len(waiting)
    if not left:
        print(f"This chapter's {total} training runs ({budget.name} budget) are all in the "
              f"run cache: they load in seconds.")
    else:
        print(f"This chapter trains {total} runs ({budget.name} budget): "
              f"{total - left} are in the run cache, {left} to train on "
              f"{torch.device(device).type}, about "
              f"{duration(sum(todo.values()) + sum(waiting))} here (the sum of their "
              f"estimates from timed steps; your exercises' runs not counted). No time for "
              f"that? Set BOOK_RUNS = True in this cell: the chapter then loads the book's "
              f"own runs ({BOOK_BUDGET} budget) instead of training them.", flush=True)


def share_out(todo, jobs):
    """Longest runs first, each to the process with the least work so far: a list of
    ``jobs`` lists of cache keys."""
    shares, load = [[] for _ in range(jobs)], [0.0] * jobs
    for key in sorted(todo, key=todo.get, reverse=True):
        i = load.index(min(load))
        shares[i].append(key)
        load[i] += todo[key]
    return shares
