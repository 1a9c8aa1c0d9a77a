"""Regenerate the sample inputs of this directory (see README.md): deterministic output.

    .venv/bin/python examples/data/make_samples.py [directory]

The sentences below were written for cortexlang; none comes from a treebank. Each is given
with its binary bracketing and a root sentiment class chosen by hand; leaf classes come from
the small hand-written lexicon below and phrase classes from a simple composition rule, so
the phrase labels are plausible, not annotated.
"""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from cortexlang.inputs import generators
from cortexlang.inputs.jsontrees import write_json
from cortexlang.inputs.ptb import parse_ptb_line, write_ptb
from cortexlang.inputs.vocab import VocabBuilder

# (root class 0..4, binary bracketing; tokens are split on ASCII spaces like SST's).
SENTENCES: tuple[tuple[int, str], ...] = (
    (4, "((The acting) ((is (simply superb)) .))"),
    (0, "((This movie) ((is (a (complete mess))) .))"),
    (1, "((The plot) ((never (quite (comes together))) .))"),
    (4, "((A ((warm (and funny)) film)) ((that (everyone (should see))) .))"),
    (1, "((The dialogue) ((feels stiff) .))"),
    (4, "((Its (visual style)) ((is (truly breathtaking)) .))"),
    (0, "((I (was (bored (to tears)))) .)"),
    (1, "((The (second half)) (((drags on) ((far too) long)) .))"),
    (3, "(((A (clever script)) (with (sharp jokes))) .)"),
    (1, "((The (lead actor)) (((does n't) (convince (for (a moment)))) .))"),
    (4, "((It (is ((a delight) (from (start (to finish)))))) .)"),
    (1, "((Nothing (in (this film))) ((feels real) .))"),
    (3, "((The soundtrack) ((is (pleasant enough)) .))"),
    (1, "((An (ambitious failure)) .)"),
    (4, "((The children) ((will (love (every minute))) .))"),
    (1, "((Even (the (best scenes))) ((feel (oddly flat)) .))"),
    (4, "((A ((gripping (and (beautifully acted))) thriller)) .)"),
    (1, "((The jokes) ((fall flat) .))"),
    (1, "((It (is (neither (funny (nor moving))))) .)"),
    (3, "((The (final scene)) (((left me) (in tears)) .))"),
    (0, "(((What (a waste)) (of talent)) .)"),
    (3, "(((The story) (moves (at (a (brisk pace))))) .)"),
    (1, "((I (could (barely (stay awake)))) .)"),
    (3, "((A ((small (but wonderful)) film)) .)"),
    (1, "((The effects) ((look cheap) .))"),
    (4, "((Every (performance here)) ((is pitch-perfect) .))"),
    (1, "((The film) ((tries (too hard)) .))"),
    (3, "((It (is (a (pleasant surprise)))) .)"),
    (0, "((The (running time)) ((feels endless) .))"),
    (3, "((A ((modest (but charming)) (little comedy))) .)"),
    (1, "((The characters) ((are paper-thin) .))"),
    (4, "((I (laughed (from (beginning (to end))))) .)"),
    (1, "((The director) ((has (nothing (new (to say)))) .))"),
    (4, "((A ((sweet (and (genuinely moving))) story)) .)"),
    (0, "((The ending) ((is (a (cheap trick))) .))"),
    (3, "((It (is (not (bad (at all))))) .)"),
    (3, "((The (first hour)) ((is (quite good)) .))"),
    (1, "((The romance) ((never (feels earned)) .))"),
    (1, "(((Strong performances) ((ca n't) (save (a (weak script))))) .)"),
    (4, "((This (is (a (film (worth (seeing twice)))))) .)"),
    (2, "((The humor) ((is (hit (and miss))) .))"),
    (2, "((It (earns (2\u00a01\\/2 stars))) .)"),
)

LEXICON = {
    "superb": 4, "breathtaking": 4, "delight": 4, "love": 4, "best": 4, "gripping": 4,
    "wonderful": 4, "pitch-perfect": 4, "mess": 0, "bored": 0, "waste": 0, "failure": 0,
    "endless": 0, "warm": 3, "funny": 3, "clever": 3, "sharp": 3, "convince": 3, "real": 3,
    "pleasant": 3, "ambitious": 3, "talent": 3, "brisk": 3, "surprise": 3, "charming": 3,
    "laughed": 3, "new": 3, "sweet": 3, "moving": 3, "good": 3, "earned": 3, "strong": 3,
    "save": 3, "worth": 3, "hit": 3, "acted": 3, "together": 3, "stiff": 1, "drags": 1,
    "long": 1, "flat": 1, "cheap": 1, "paper-thin": 1, "trick": 1, "bad": 1, "weak": 1,
    "miss": 1, "tries": 1,
}
# "nor" is left out: in "neither X nor Y" the one negation is "neither".
NEGATORS = {"not", "n't", "never", "no", "nothing", "neither", "barely", "hardly"}
AUXILIARIES = {"does", "do", "did", "is", "was", "ca", "can", "could"}
INTENSIFIERS = {"simply", "truly", "utterly", "very", "so", "far", "too", "genuinely",
                "beautifully", "complete"}
FLIPPED = {0: 3, 1: 3, 2: 2, 3: 1, 4: 1}
INTENSIFIED = {0: 0, 1: 0, 2: 2, 3: 4, 4: 4}
_PIECE = re.compile(r"[()]|[^ ()]+")


def _compose(left: tuple[int, list[str]], right: tuple[int, list[str]]) -> int:
    """A phrase's class from its two children (label, tokens): negation flips the other
    side, an intensifier pushes it away from neutral, otherwise the side farther from
    neutral wins (the left one on a tie, as a verb outweighs its object)."""
    for this, other in ((left, right), (right, left)):
        words = {token.lower() for token in this[1]}
        if words & NEGATORS and words <= NEGATORS | AUXILIARIES:
            return FLIPPED[other[0]]
    if all(token.lower() in INTENSIFIERS for token in left[1]):
        return INTENSIFIED[right[0]]
    return left[0] if abs(left[0] - 2) >= abs(right[0] - 2) else right[0]


def labelled(root_label: int, bracketing: str) -> str:
    """The PTB line of one sentence: leaves from the lexicon, phrases by `_compose`."""
    # Each finished node: (label, tokens, text inside its brackets after the label).
    stack: list[list[tuple[int, list[str], str]]] = [[]]
    for piece in _PIECE.findall(bracketing):
        if piece == "(":
            stack.append([])
        elif piece == ")":
            children = stack.pop()
            if len(children) != 2:
                raise ValueError(f"not binary: {bracketing!r}")
            (left_label, left_tokens, left_inner), (right_label, right_tokens, right_inner) = (
                children)
            label = _compose((left_label, left_tokens), (right_label, right_tokens))
            inner = f"({left_label} {left_inner}) ({right_label} {right_inner})"
            stack[-1].append((label, left_tokens + right_tokens, inner))
        else:
            stack[-1].append((LEXICON.get(piece.lower(), 2), [piece], piece))
    ((_, _, inner),) = stack[0]
    return f"({root_label} {inner})"


def main(directory: Path) -> None:
    """Write sample.ptb, sample.json, grid_4x4.json and sst_shaped.ptb into `directory`."""
    lines = [labelled(root, bracketing) for root, bracketing in SENTENCES]
    (directory / "sample.ptb").write_text("\n".join(lines) + "\n", encoding="utf-8")

    builder = VocabBuilder()
    trees = [parse_ptb_line(line, builder.add) for line in lines[:4]]
    nary = parse_ptb_line("(3 (2 Short) (3 sharp) (3 funny) (2 .))", builder.add)
    write_json([tree for tree in trees + [nary] if tree is not None],
               directory / "sample.json", lines=False)

    grid = generators.grid(4, 4, features=4, rng=0)
    rounded = np.round(grid.features, 3).astype(np.float32)  # type: ignore[arg-type]
    write_json([replace(grid, features=rounded)], directory / "grid_4x4.json")

    vocab_size = 5000
    shaped = generators.sst_like_trees(200, rng=2026, vocab_size=vocab_size)
    write_ptb(shaped, directory / "sst_shaped.ptb", generators.pseudo_vocab(vocab_size))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
