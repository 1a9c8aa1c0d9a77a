"""Synthetic inputs, deterministic from a seed or a `numpy.random.Generator`.

Every generator takes `rng`: a Generator, an integer seed, or None (seed 0), so the same call
gives the same structures. Trees are numbered in post-order (children before parents, root
last), like the PTB reader, so a generated tree written as PTB reads back identical.

Words are drawn from a Zipf-like law over ids 1..vocab_size-1 (id 0 is `<unk>`):
P(id) is proportional to 1 / id ** ZIPF_EXPONENT, like word frequencies in text.

SST-shaped trees (`sst_like_trees`) fit the statistics in `shared/data/sst/README.md`:

- leaves per tree: 2 + floor(Gamma(shape 3.6, scale 4.9)), capped at 56. SST train has mean
  19.1 (std 9.3), median 18, minimum 2 and maximum 52..56; this law has mean 19.1, std 9.3,
  median 18 and minimum 2 (trees of 2 leaves are rarer than in SST).
- shape: a node over m leaves splits off one leaf at its left or right end with probability
  0.55 (a determiner, a final full stop), otherwise at a uniform point. This gives mean
  height about 10 for 19 leaves (SST: 10.1), 6.6 for 10 leaves (6.8), 12.8 for 30 (13.8),
  so a mean height near 9.8 over the leaf-count law above.
- labels: 0..4, roots with SST's root-class frequencies, other nodes mostly neutral (2).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from cortexlang.inputs import input_error
from cortexlang.inputs.structure import NO_WORD, Structure
from cortexlang.inputs.vocab import UNKNOWN, Vocab

ZIPF_EXPONENT = 1.0
SST_LEAVES_SHAPE = 3.6
SST_LEAVES_SCALE = 4.9
SST_MIN_LEAVES = 2
SST_MAX_LEAVES = 56
SST_END_SPLIT_PROBABILITY = 0.55
ROOT_LABEL_FREQUENCIES = (0.13, 0.26, 0.19, 0.27, 0.15)
PHRASE_LABEL_FREQUENCIES = (0.03, 0.1, 0.7, 0.12, 0.05)
DEFAULT_VOCABULARY_SIZE = 1000

RandomSource = np.random.Generator | int | None
# split(m, generator) -> leaves of the first child, for an int64 array of subtree sizes m >= 2.
Splitter = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def as_generator(rng: RandomSource) -> np.random.Generator:
    """A Generator: `rng` itself, or one seeded with the integer (None: seed 0)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


@functools.lru_cache(maxsize=16)
def _zipf_probabilities(vocab_size: int) -> np.ndarray:
    ranks = np.arange(1, vocab_size, dtype=np.float64)
    weights = ranks ** -ZIPF_EXPONENT
    return weights / weights.sum()


def zipf_words(count: int, rng: RandomSource, vocab_size: int) -> np.ndarray:
    """int32 [count] word ids in 1..vocab_size-1, Zipf-like (see the module docstring)."""
    if vocab_size < 2:
        raise ValueError("vocab_size must be at least 2 (<unk> and one word)")
    generator = as_generator(rng)
    return (generator.choice(vocab_size - 1, size=count, p=_zipf_probabilities(vocab_size))
            + 1).astype(np.int32)


_SYLLABLES = tuple(consonant + vowel for consonant in "bdfgklmnprstvz" for vowel in "aeiou")


def pseudo_word(word: int) -> str:
    """A pronounceable made-up word for id `word` >= 1, distinct for distinct ids."""
    if word < 1:
        raise ValueError("pseudo words exist for ids >= 1")
    base = len(_SYLLABLES)
    pieces = []
    while word > 0:
        word, digit = divmod(word - 1, base)
        pieces.append(_SYLLABLES[digit])
    return "".join(reversed(pieces))


def pseudo_vocab(vocab_size: int) -> Vocab:
    """`<unk>` followed by `pseudo_word(1..vocab_size-1)`."""
    return Vocab((UNKNOWN,) + tuple(pseudo_word(word) for word in range(1, vocab_size)))


def _binary_trees(leaf_counts: np.ndarray, split: Splitter,
                  generator: np.random.Generator) -> list[np.ndarray]:
    """children int32 [2*m-1, 2] of one binary tree per entry of `leaf_counts`, in post-order.

    Built top-down for the whole batch at once, one numpy step per level: a subtree over m
    leaves whose ids start at s has its root at s + 2m - 2; splitting it into k and m - k
    leaves puts the left child's root at s + 2k - 2 and the right child's at the parent - 1.
    """
    leaf_counts = np.asarray(leaf_counts, dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(2 * leaf_counts - 1)))
    children = np.full((int(offsets[-1]), 2), -1, dtype=np.int64)
    leaves, start, base = leaf_counts, offsets[:-1], offsets[:-1]
    while leaves.size:
        internal = leaves >= 2
        leaves, start, base = leaves[internal], start[internal], base[internal]
        if not leaves.size:
            break
        first = split(leaves, generator)
        node = start + 2 * leaves - 2
        children[node, 0] = start + 2 * first - 2 - base
        children[node, 1] = node - 1 - base
        leaves = np.concatenate((first, leaves - first))
        start = np.concatenate((start, start + 2 * first - 1))
        base = np.concatenate((base, base))
    return np.split(children.astype(np.int32), offsets[1:-1])


def _sst_split(leaves: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    end, point = generator.random((2, leaves.size))
    uniform = 1 + np.floor(point * (leaves - 1)).astype(np.int64)
    at_end = np.where(end < SST_END_SPLIT_PROBABILITY / 2, 1, leaves - 1)
    return np.where(end < SST_END_SPLIT_PROBABILITY, at_end, uniform)


def _split_half(leaves: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    return leaves // 2


def _split_left_deep(leaves: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    return leaves - 1


def _split_right_deep(leaves: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    return np.ones_like(leaves)


def _tree(children: np.ndarray, words: np.ndarray, labels: np.ndarray | None,
          kind: str = "tree", **meta: object) -> Structure:
    return Structure(children=children, words=words, root=int(children.shape[0]) - 1,
                     labels=labels, kind=kind, meta=dict(meta))


def _leaf_words(children: np.ndarray, rng: np.random.Generator, vocab_size: int) -> np.ndarray:
    leaves = (children < 0).all(axis=1)
    words = np.full(children.shape[0], NO_WORD, dtype=np.int32)
    words[leaves] = zipf_words(int(leaves.sum()), rng, vocab_size)
    return words


def sst_leaf_counts(count: int, rng: RandomSource) -> np.ndarray:
    """int64 [count] leaf counts drawn from the SST-fitted law (module docstring)."""
    generator = as_generator(rng)
    draws = generator.gamma(SST_LEAVES_SHAPE, SST_LEAVES_SCALE, size=count)
    return np.clip(np.floor(SST_MIN_LEAVES + draws), SST_MIN_LEAVES, SST_MAX_LEAVES).astype(
        np.int64)


def sst_like_trees(count: int, rng: RandomSource = None,
                   vocab_size: int = DEFAULT_VOCABULARY_SIZE) -> list[Structure]:
    """`count` random binary trees shaped like SST sentences (see the module docstring)."""
    if count == 0:
        return []
    generator = as_generator(rng)
    shapes = _binary_trees(sst_leaf_counts(count, generator), _sst_split, generator)
    children = np.concatenate(shapes)
    words = _leaf_words(children, generator, vocab_size)
    labels = np.asarray(generator.choice(5, size=children.shape[0], p=PHRASE_LABEL_FREQUENCIES),
                        dtype=np.int32)
    offsets = np.cumsum([shape.shape[0] for shape in shapes])
    labels[offsets - 1] = generator.choice(5, size=count, p=ROOT_LABEL_FREQUENCIES)
    parts = zip(shapes, np.split(words, offsets[:-1]), np.split(labels, offsets[:-1]),
                strict=True)
    return [_tree(shape, tree_words, tree_labels, generator="sst_like")
            for shape, tree_words, tree_labels in parts]


def perfect_tree(height: int, rng: RandomSource = None,
                 vocab_size: int = DEFAULT_VOCABULARY_SIZE) -> Structure:
    """A perfect binary tree of `height` (2**(height+1) - 1 nodes; height 7 gives 255)."""
    if height < 0:
        raise ValueError("height must be >= 0")
    generator = as_generator(rng)
    (children,) = _binary_trees(np.array([2**height]), _split_half, generator)
    return _tree(children, _leaf_words(children, generator, vocab_size), None,
                 generator="perfect")


def skewed(leaves: int, side: str = "left", rng: RandomSource = None,
           vocab_size: int = DEFAULT_VOCABULARY_SIZE) -> Structure:
    """A caterpillar binary tree of `leaves` leaves: every internal node has a leaf child.

    `side="left"` is left-deep (the spine runs through the left children), "right" right-deep.
    """
    if leaves < 1 or side not in ("left", "right"):
        raise ValueError("skewed needs leaves >= 1 and side 'left' or 'right'")
    split = _split_left_deep if side == "left" else _split_right_deep
    generator = as_generator(rng)
    (children,) = _binary_trees(np.array([leaves]), split, generator)
    return _tree(children, _leaf_words(children, generator, vocab_size), None,
                 generator=f"skewed_{side}")


def single_leaf(rng: RandomSource = None,
                vocab_size: int = DEFAULT_VOCABULARY_SIZE) -> Structure:
    """A tree of one node, a leaf with one word."""
    children = np.full((1, 2), -1, dtype=np.int32)
    return _tree(children, zipf_words(1, as_generator(rng), vocab_size), None,
                 generator="single_leaf")


def chain(length: int, rng: RandomSource = None,
          vocab_size: int = DEFAULT_VOCABULARY_SIZE) -> Structure:
    """A left-deep chain tree of `length` nodes: node t has the single child t-1 in column 0.

    Node 0 is the only leaf (it has a word); the root is node length-1, at height length-1.
    It is the deepest tree of its size, for stress tests (100,000 nodes).
    """
    if length < 1:
        raise ValueError("length must be >= 1")
    children = np.full((length, 2), -1, dtype=np.int32)
    children[1:, 0] = np.arange(length - 1, dtype=np.int32)
    return _tree(children, _leaf_words(children, as_generator(rng), vocab_size), None,
                 generator="chain")


def sequence(length: int, rng: RandomSource = None,
             vocab_size: int = DEFAULT_VOCABULARY_SIZE) -> Structure:
    """A sequence of `length` elements (kind "sequence"): element t has the single child t-1.

    Every element has a word (the token read at that step); the root is the last element.
    """
    if length < 1:
        raise ValueError("length must be >= 1")
    children = np.full((length, 1), -1, dtype=np.int32)
    children[1:, 0] = np.arange(length - 1, dtype=np.int32)
    words = zipf_words(length, as_generator(rng), vocab_size)
    return _tree(children, words, None, kind="sequence", generator="sequence")


def grid(rows: int, cols: int, features: int = 4, rng: RandomSource = None) -> Structure:
    """A rows x cols DAG grid: cell (i, j) is id i*cols + j with children [left, up].

    -1 marks a missing neighbour on the border; cell (0, 0) is the only leaf; the root is the
    last cell. Features are float64 [rows*cols, features], uniform in [-1, 1), as drawn (each
    backend converts them to the dtype it computes in); no words.
    """
    if rows < 1 or cols < 1 or features < 0:
        raise ValueError("grid needs rows >= 1, cols >= 1 and features >= 0")
    ids = np.arange(rows * cols, dtype=np.int32).reshape(rows, cols)
    children = np.full((rows, cols, 2), -1, dtype=np.int32)
    children[:, 1:, 0] = ids[:, :-1]
    children[1:, :, 1] = ids[:-1, :]
    values = as_generator(rng).uniform(-1.0, 1.0, size=(rows * cols, features))
    return Structure(children=children.reshape(rows * cols, 2),
                     words=np.full(rows * cols, NO_WORD, dtype=np.int32),
                     root=rows * cols - 1, features=values, kind="dag",
                     meta={"generator": "grid", "rows": rows, "cols": cols})


def random_nary_tree(max_children: int, rng: RandomSource = None, leaves: int = 20,
                     vocab_size: int = DEFAULT_VOCABULARY_SIZE,
                     unary_probability: float = 0.1) -> Structure:
    """A random tree with `leaves` leaves and up to `max_children` children per node.

    A subtree over m > 1 leaves gets a unary root with `unary_probability` (a leaf with a
    quarter of it; never two unary nodes in a row); otherwise its root takes
    2..min(max_children, m) children, splitting the m leaves at random points. The children
    array has `max_children` columns.
    """
    if max_children < 1 or leaves < 1 or (max_children == 1 and leaves > 1):
        raise ValueError("random_nary_tree needs leaves >= 1, max_children >= 1, and one leaf "
                         "when max_children is 1")
    generator = as_generator(rng)
    child_lists: list[list[int]] = []
    done: list[int] = []
    # (leaves, closes, may_be_unary): closes > 0 closes a node over that many children.
    stack: list[tuple[int, int, bool]] = [(leaves, 0, True)]
    while stack:
        count, closes, may_be_unary = stack.pop()
        if closes:
            children = done[len(done) - closes:]
            del done[len(done) - closes:]
        elif may_be_unary and generator.random() < (
                unary_probability / 4 if count == 1 else unary_probability):
            stack.extend([(0, 1, False), (count, 0, False)])
            continue
        elif count == 1:
            children = []
        else:
            arity = int(generator.integers(2, min(max_children, count) + 1))
            cuts = np.sort(generator.choice(count - 1, size=arity - 1, replace=False) + 1)
            sizes = np.diff(np.concatenate(([0], cuts, [count])))
            stack.append((0, arity, False))
            stack.extend((int(size), 0, True) for size in reversed(sizes))
            continue
        child_lists.append(children)
        done.append(len(child_lists) - 1)
    width = max(max_children, 1)
    rows = [children + [-1] * (width - len(children)) for children in child_lists]
    children_array = np.array(rows, dtype=np.int32).reshape(len(rows), width)
    return _tree(children_array, _leaf_words(children_array, generator, vocab_size), None,
                 generator="random_nary")


# kind -> (function, the sizes it takes, whether it makes one structure per call).
_KINDS: dict[str, tuple[Callable[..., Any], tuple[str, ...], bool]] = {
    "sst": (sst_like_trees, ("vocab_size",), False),
    "perfect": (perfect_tree, ("height", "vocab_size"), True),
    "skewed": (skewed, ("leaves", "side", "vocab_size"), True),
    "single_leaf": (single_leaf, ("vocab_size",), True),
    "chain": (chain, ("length", "vocab_size"), True),
    "sequence": (sequence, ("length", "vocab_size"), True),
    "grid": (grid, ("rows", "cols", "features"), True),
    "nary": (random_nary_tree, ("max_children", "leaves", "vocab_size", "unary_probability"),
             True),
}

SYNTHETIC_KINDS: tuple[str, ...] = tuple(_KINDS)


def synthetic(kind: str, count: int, rng: RandomSource = None,
              **sizes: Any) -> list[Structure]:
    """`count` structures of a named kind, for the command line and benchmarks.

    Kinds and the sizes they take: sst (vocab_size), perfect (height), skewed (leaves, side),
    single_leaf, chain (length), sequence (length), grid (rows, cols, features), nary
    (max_children, leaves, unary_probability); trees also take vocab_size. Every structure
    draws from the one generator, so the batch is deterministic. Raises `InputError` E0560
    for an unknown kind, a size the kind does not take, or a size out of range.
    """
    if kind not in _KINDS:
        raise input_error("E0560", f"unknown synthetic input kind {kind!r}",
                          hint=f"choose one of: {', '.join(SYNTHETIC_KINDS)}")
    function, accepted, one_per_call = _KINDS[kind]
    unknown = sorted(set(sizes) - set(accepted))
    if unknown:
        takes = ", ".join(accepted) or "no sizes"
        raise input_error("E0560", f"synthetic kind {kind!r} does not take {unknown[0]!r}",
                          hint=f"{kind} takes: {takes}")
    if not isinstance(count, int) or count < 0:
        raise input_error("E0560", f"the count of synthetic inputs must be >= 0, not {count}")
    generator = as_generator(rng)
    try:
        if not one_per_call:
            return function(count, generator, **sizes)
        return [function(rng=generator, **sizes) for _ in range(count)]
    except (TypeError, ValueError) as error:
        raise input_error("E0560", f"cannot make synthetic {kind!r} inputs: {error}",
                          hint=f"{kind} takes: {', '.join(accepted) or 'no sizes'}") from error

