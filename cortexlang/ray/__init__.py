"""Beyond one process: score a corpus on a Ray cluster, and serve a model with Ray Serve.

Install the extra first: `pip install 'cortexlang[ray]'`. Modules, one per concern:

    corpus    the rows of PTB and JSON-lines files: chunks, ids, one structure per row
    model     `ModelSpec` (what to build, picklable) and `LoadedModel` (built once per actor)
              running a batch in one compiled run while keeping bad structures apart
    shards    output shards (.npz, written atomically, keyed by structure id), the manifest,
              and reading a job's shards back as the single-process run's archive
    job       the Ray Data job: `read_trees`, `TreePredictor`, `ShardWriter`, `run_job`
    serving   the Ray Serve deployment `TreeModelServer` and `serve_model`
    cli       the `--ray [ADDRESS]` options of `cortexlang run`

Only `job` and `serving` import Ray; everything else runs without it, so the command line
and the tests of the pure parts work where Ray is not installed.

A structure's id is its file and the 1-based line it is on: `corpus/a.ptb:17`. Errors are the
readers' and the backends' own (`InputError`, with code, location and caret), reported per
structure; Ray missing or a cluster that cannot be reached is `EnvironmentProblem` E0620.
"""

from __future__ import annotations

from cortexlang.errors import Diagnostic, EnvironmentProblem

RAY_EXTRA_HINT = "install the extra: pip install 'cortexlang[ray]'"


def require_ray() -> None:
    """Raise `EnvironmentProblem` E0620 (exit 3) when Ray (with Data and Serve) is missing."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError as error:
        raise EnvironmentProblem(Diagnostic(
            "E0620", f"Ray is not installed ({error})", None, "", RAY_EXTRA_HINT)) from None
