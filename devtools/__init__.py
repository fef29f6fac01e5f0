"""The course's development tools: what the book's build, the tools and the tests share.

Not part of the library a learner installs. ``make setup`` installs it (editable, from
``devtools/pyproject.toml``) into the build's environment; run a tool as
``python -m devtools.NAME``.

- ``repository``: the repository and book URLs every link is built from;
- ``learner``: the learner notebooks, made from the chapters;
- ``bench``, ``gpu_estimate``, ``gpu_check``, ``learner_times``, ``check_seconds``:
  measurements (``make bench``, the GPU estimate, ``make gpu-check``, the learner's wait,
  the checks' reference times);
- ``fixtures``, ``testing``: small datasets in the real file formats, and the tests'
  helpers (synthetic data, notebooks executed with their solutions).
"""
