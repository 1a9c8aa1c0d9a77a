"""`run --ray`: the batch job on a local 2-CPU cluster gives the single-process run's arrays,
reports bad rows with their id and located error, and survives an actor that dies."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cortexlang.cli import main
from cortexlang.ray.corpus import chunk_files, expand_patterns, merge_tokens
from cortexlang.ray.shards import MANIFEST, read_manifest, read_outputs

pytest.importorskip("ray.data", reason="the ray extra is not installed: "
                                       "pip install 'cortexlang[ray]'")

TREELSTM = str(Path(__file__).resolve().parents[2] / "examples" / "treelstm.cx")
SIZES = ["-D", "H=8", "-D", "V=60"]
# One worker runs every Ray test (pytest-xdist), so the suite starts one local cluster.
pytestmark = [pytest.mark.opencl, pytest.mark.usefixtures("ray_cluster"),
              pytest.mark.xdist_group("ray")]


def single_process(files: list[str], tmp_path: Path, *options: str) -> dict[str, np.ndarray]:
    """`cortexlang run --out OUT.npz` on the files joined into one."""
    joined = tmp_path / "joined.ptb"
    joined.write_text("".join(Path(path).read_text() for path in files))
    out = tmp_path / "single.npz"
    assert main(["run", TREELSTM, *SIZES, "--trees", str(joined), "--out", str(out),
                 "--json", *options]) == 0
    with np.load(out) as archive:
        return {key: archive[key] for key in archive.files}


def assert_same_arrays(merged: dict[str, np.ndarray], single: dict[str, np.ndarray]) -> None:
    assert sorted(merged) == sorted(single)
    for key, values in single.items():
        np.testing.assert_allclose(merged[key], values, rtol=1e-5, atol=1e-6, err_msg=key)


def test_the_job_gives_the_single_process_outputs_and_reports_bad_rows(
        corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The corpus and a third file, sorted after it, with two bad lines among good ones.
    files = tmp_path / "files"
    files.mkdir()
    for name in ("a.ptb", "b.ptb"):
        (files / name).write_text((corpus / name).read_text())
    good = (corpus / "a.ptb").read_text().split("\n")[:2]
    bad = files / "c.ptb"
    bad.write_text("\n".join(["(2 (1 x) (3 y)", *good, "(2 (1 x) (3 y) (2 z))"]) + "\n")
    (tmp_path / "c_good.ptb").write_text("\n".join(good) + "\n")
    single = single_process([str(files / "a.ptb"), str(files / "b.ptb"),
                             str(tmp_path / "c_good.ptb")], tmp_path)
    capsys.readouterr()
    out = tmp_path / "job"
    code = main(["run", TREELSTM, *SIZES, "--trees", str(files / "*.ptb"), "--ray",
                 "--out", str(out), "--actors", "2", "--chunk", "16", "--json"])
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert code == 1
    assert (summary["done"], summary["failed"], summary["actors"]) == (72, 2, 2)
    manifest = read_manifest(str(out))
    assert [(failure.id, failure.code) for failure in manifest.failures] == [
        (f"{bad}:1", "E0501"), (f"{bad}:4", "E0507")]
    assert f"{bad}:4:1" in manifest.failures[1].error and "^" in manifest.failures[1].error
    assert f"{bad}:1 failed" in captured.err and "2 structures failed" in captured.err
    assert_same_arrays(read_outputs(str(out)), single)
    assert len(manifest.shards) >= 5  # 72 structures in batches of 16
    assert sorted(os.listdir(out)) == sorted([*manifest.shards, MANIFEST])


class DiesOnce:
    """Mixed into the predictor: the actor exits, once in the whole job (a marker file says
    it happened), on its second batch, after its first shard was written; Ray restarts it."""

    marker: str = ""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)  # type: ignore[call-arg]
        self.calls = 0

    def __call__(self, batch: Any) -> Any:
        self.calls += 1
        if self.calls == 2 and not os.path.exists(self.marker):
            Path(self.marker).write_text("died\n")
            os._exit(1)
        return super().__call__(batch)  # type: ignore[misc]


def test_an_actor_that_dies_is_replaced_and_every_structure_is_written_once(
        corpus: Path, tmp_path: Path) -> None:
    import ray.cloudpickle

    from cortexlang.commands.common import load_model
    from cortexlang.ray.cli import model_spec
    from cortexlang.ray.job import TreePredictor, corpus_tokens, run_job

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    marker = tmp_path / "died"
    predictor = type("DyingPredictor", (DiesOnce, TreePredictor), {"marker": str(marker)})
    files = expand_patterns([str(corpus / "*.ptb")])
    chunks = chunk_files(files, lines_per_chunk=8)
    args = _arguments(files)
    vocab = merge_tokens(corpus_tokens(chunks, load_model(TREELSTM, args).structure
                                       .max_children))
    out = tmp_path / "job"
    report = run_job(model_spec(args, vocab), chunks, files, str(out), actors=1,
                     batch_size=8, predictor=predictor)
    assert marker.exists()
    ids = [identifier for shard in report.manifest.shards.values() for identifier in shard]
    assert len(ids) == len(set(ids)) == 70
    assert report.failures == ()
    assert_same_arrays(read_outputs(str(out)), single_process(files, tmp_path))


def _arguments(files: list[str]) -> Any:
    """The parsed command line of `run` for the job's model options."""
    from cortexlang.cli import build_parser, load_commands

    parser = build_parser(load_commands())
    return parser.parse_args(["run", TREELSTM, *SIZES, "--trees", files[0], "--ray"])
