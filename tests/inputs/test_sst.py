"""The SST treebank files parse with the counts of their README (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cortexlang.inputs.load import load_structures
from cortexlang.inputs.ptb import iter_ptb
from cortexlang.inputs.vocab import VocabBuilder

SST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sst"
SPLITS = {  # trees, tokens, leaves per tree (max), root label counts, distinct words
    "train": (8544, 163563, 52, [1092, 2218, 1624, 2322, 1288], 18280),
    "dev": (1101, 21274, 49, [139, 289, 229, 279, 165], 5374),
    "test": (2210, 42405, 56, [279, 633, 389, 510, 399], 8547),
}

pytestmark = pytest.mark.skipif(not (SST / "train.txt").exists(),
                                reason=f"the SST files are not at {SST}")


@pytest.mark.parametrize("split", sorted(SPLITS))
def test_split_matches_the_readme(split: str) -> None:
    trees, tokens, max_leaves, root_counts, distinct = SPLITS[split]
    loaded = load_structures(SST / f"{split}.txt")
    assert len(loaded.structures) == trees
    assert len(loaded.vocab) == distinct + 1
    leaves = np.array([int((s.words >= 0).sum()) for s in loaded.structures])
    assert leaves.sum() == tokens and leaves.max() == max_leaves and leaves.min() == 2
    assert all(s.max_arity == 2 and s.num_nodes == 2 * leaf - 1
               for s, leaf in zip(loaded.structures, leaves, strict=True))
    roots = [int(s.labels[s.root]) for s in loaded.structures]
    assert np.bincount(roots, minlength=5).tolist() == root_counts


def test_vocabulary_over_all_splits_and_the_non_breaking_spaces() -> None:
    builder = VocabBuilder()
    for split in SPLITS:
        structures = list(iter_ptb(SST / f"{split}.txt", builder.add))
        if split == "train":
            spaced = [token for s in structures for token in s.tokens
                      if token is not None and "\u00a0" in token]
            assert sorted(spaced) == ["2\u00a01\\/2", "2\u00a01\\/2", "8\u00a01\\/2"]
    vocab, _ = builder.freeze()
    assert len(vocab) == 21701 + 1
