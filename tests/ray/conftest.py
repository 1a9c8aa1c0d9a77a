"""One local Ray cluster (2 CPUs) for every test of tests/ray that needs one, and a corpus.

Starting and stopping a cluster takes seconds, so it is started once per session, on first
use, with `address="local"` so that it is always a new cluster of this session (never one
that `ray start` or another process runs on this machine). Tests that need Ray skip, with the
reason, when the extra is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cortexlang.inputs import generators
from cortexlang.inputs.ptb import write_ptb

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TREELSTM = str(EXAMPLES / "treelstm.cx")
SIZES = ["-D", "H=8", "-D", "V=60"]
VOCABULARY = 50
RAY_MISSING = "the ray extra is not installed: pip install 'cortexlang[ray]'"


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """A local cluster of 2 CPUs, connected in this process for the whole session."""
    pytest.importorskip("ray.data", reason=RAY_MISSING)
    pytest.importorskip("ray.serve", reason=RAY_MISSING)
    import ray

    from cortexlang.ray.job import connect

    connect("local", num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two PTB files of SST-shaped trees (40 and 30), with blank lines between some."""
    directory = tmp_path_factory.mktemp("corpus")
    vocab = generators.pseudo_vocab(VOCABULARY)
    trees = generators.sst_like_trees(70, rng=7, vocab_size=VOCABULARY)
    write_ptb(trees[:40], directory / "a.ptb", vocab)
    write_ptb(trees[40:], directory / "b.ptb", vocab)
    text = (directory / "b.ptb").read_text().split("\n")
    (directory / "b.ptb").write_text("\n".join(text[:5] + [""] + text[5:]))
    return directory
