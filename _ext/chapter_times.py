"""How long each chapter ran in this build, for the learner notebooks' first cell.

When the HTML build has executed the chapters, this writes
``_build/reports/chapter-times.json``: for each chapter that trains runs of its own, the
seconds myst-nb took to execute it (its runs loaded from the committed runs or the run
cache). ``devtools/learner.py`` quotes them beside the runs' own training time, which
``runs/index.json`` records.
"""
import json
from pathlib import Path

from myst_nb.sphinx_ import NbMetadataCollector

from deepres.course.experiments import CHAPTERS


def record(app, exception):
    if exception or app.builder.format != "html" or app.config.nb_execution_mode == "off":
        return
    times = {}
    for chapter in CHAPTERS:
        [docname] = [d for d in app.env.found_docs if d.startswith(f"chapters/{chapter:02d}_")]
        data = NbMetadataCollector.get_exec_data(app.env, docname)
        times[chapter] = data["runtime"] if data else None
    reports = Path(app.outdir).parent / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "chapter-times.json").write_text(json.dumps(times, indent=1))


def setup(app):
    app.connect("build-finished", record)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
