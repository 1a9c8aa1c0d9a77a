"""Train DGL's binary TreeLSTM briefly in PyTorch, export it, and serve it with cortexlang.

    .venv/bin/python examples/pytorch/train_and_export.py --out out/pytorch

1. reads the bundled SST-style trees (examples/data/sample.ptb) with a small PTB reader of its
   own (no cortexlang on the PyTorch side);
2. trains the TreeLSTM of DGL's tree_lstm example (same modules, same parameter names:
   `embedding`, `cell.W_iou`, `cell.U_iou`, `cell.b_iou`, `cell.U_f`, `linear`) for a few
   steps of gradient descent on every node's sentiment label;
3. saves its state_dict as model.pt (torch.save) and model.safetensors, and the vocabulary,
   torchtext style (`<pad>` = 0, `<unk>` = 1), as vocab.txt;
4. loads the .pt into cortexlang (`--strip-prefix cell.`), runs it through the interpreter
   and the compiled kernels on held-out trees (SST dev when /work/shared/data/sst is there,
   else examples/data/sst_shaped.ptb), and prints the largest difference from PyTorch.

The functions are importable: tests/examples/test_pytorch_treelstm.py uses them.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent
MODEL = HERE / "treelstm_dgl.cx"
TRAIN = EXAMPLES / "data" / "sample.ptb"
# SST dev beside the checkout (as the tests look for it), else at /work/shared.
SST_DEV = next((path for path in (EXAMPLES.parent.parent / "shared" / "data" / "sst" / "dev.txt",
                                  Path("/work/shared/data/sst/dev.txt")) if path.is_file()),
               Path("/work/shared/data/sst/dev.txt"))
HELD_OUT = EXAMPLES / "data" / "sst_shaped.ptb"
PAD, UNK = "<pad>", "<unk>"

# A tree: (label, token) for a leaf, (label, left, right) for an internal node.
Tree = tuple[Any, ...]
_ATOM = re.compile(r"[()]|[^\s()]+", re.ASCII)


def parse_tree(line: str) -> Tree:
    """One SST line, `(3 (2 good) (2 film))`, as nested tuples (binary trees only)."""
    stack: list[list[Any]] = []
    atoms = _ATOM.findall(line)
    position = 0
    while position < len(atoms):
        atom = atoms[position]
        if atom == "(":
            stack.append([int(atoms[position + 1])])
            position += 2
        elif atom == ")":
            node = tuple(stack.pop())
            if not stack:
                return node  # type: ignore[return-value]
            stack[-1].append(node)
            position += 1
        else:
            stack[-1].append(atom)
            position += 1
    raise ValueError(f"unclosed tree: {line!r}")


def read_trees(path: Path, limit: int | None = None) -> list[Tree]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [parse_tree(line) for line in lines[:limit]]


def leaves(tree: Tree) -> list[str]:
    found, stack = [], [tree]
    while stack:
        node = stack.pop()
        if len(node) == 2:
            found.append(node[1])  # type: ignore[arg-type]
        else:
            stack.extend([node[2], node[1]])  # type: ignore[list-item]
    return found


def build_vocab(trees: list[Tree]) -> list[str]:
    """`<pad>`, `<unk>`, then the training words in order of first appearance."""
    words = [PAD, UNK]
    seen = set(words)
    for tree in trees:
        for word in leaves(tree):
            if word not in seen:
                seen.add(word)
                words.append(word)
    return words


class TreeLSTMCell(nn.Module):
    """DGL's TreeLSTMCell (examples/pytorch/tree_lstm/tree_lstm.py), parameter for parameter."""

    def __init__(self, x_size: int, h_size: int) -> None:
        super().__init__()
        self.W_iou = nn.Linear(x_size, 3 * h_size, bias=False)
        self.U_iou = nn.Linear(2 * h_size, 3 * h_size, bias=False)
        self.b_iou = nn.Parameter(torch.zeros(1, 3 * h_size))
        self.U_f = nn.Linear(2 * h_size, 2 * h_size)

    def leaf(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        i, o, u = torch.chunk(self.W_iou(x) + self.b_iou, 3, 1)
        c = torch.sigmoid(i) * torch.tanh(u)
        return torch.sigmoid(o) * torch.tanh(c), c

    def internal(self, h_children: torch.Tensor,
                 c_children: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h_children, c_children: [N, 2, H] (left child first), as DGL's mailbox."""
        h_cat = h_children.reshape(h_children.size(0), -1)
        f = torch.sigmoid(self.U_f(h_cat)).view(*h_children.size())
        i, o, u = torch.chunk(self.U_iou(h_cat) + self.b_iou, 3, 1)
        c = torch.sigmoid(i) * torch.tanh(u) + torch.sum(f * c_children, 1)
        return torch.sigmoid(o) * torch.tanh(c), c


class TreeLSTM(nn.Module):
    """DGL's TreeLSTM: embedding, cell and a linear classifier on every node (no dropout at
    evaluation)."""

    def __init__(self, num_vocabs: int, x_size: int, h_size: int, num_classes: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_vocabs, x_size)
        self.cell = TreeLSTMCell(x_size, h_size)
        self.linear = nn.Linear(h_size, num_classes)

    def forward(self, tree: Tree, ids: dict[str, int]) -> tuple[torch.Tensor, torch.Tensor,
                                                                  list[int]]:
        """Root h [H], logits of every node in post-order [N, C], and the nodes' labels."""
        states: list[tuple[torch.Tensor, torch.Tensor]] = []
        finished: list[torch.Tensor] = []  # every node's h, in post-order
        labels: list[int] = []
        stack: list[tuple[Tree, bool]] = [(tree, False)]
        while stack:
            node, expanded = stack.pop()
            if len(node) == 2:
                word = torch.tensor([ids.get(node[1], ids[UNK])])  # type: ignore[arg-type]
                states.append(self.cell.leaf(self.embedding(word)))
                labels.append(node[0])
            elif not expanded:
                stack.extend([(node, True), (node[2], False), (node[1], False)])  # type: ignore
            else:
                (h_right, c_right), (h_left, c_left) = states.pop(), states.pop()
                h, c = self.cell.internal(torch.stack([h_left, h_right], 1),
                                          torch.stack([c_left, c_right], 1))
                states.append((h, c))
                labels.append(node[0])
            if len(node) == 2 or expanded:
                finished.append(states[-1][0])
        return states[-1][0][0], self.linear(torch.cat(finished)), labels


def train(trees: list[Tree], vocab: list[str], *, hidden: int = 16, steps: int = 20,
          seed: int = 0, classes: int = 5, learning_rate: float = 0.5) -> TreeLSTM:
    """A few steps of plain gradient descent on every node's label (one tree per step),
    deterministic in `seed`. (Written out rather than `torch.optim`, whose first use costs
    seconds of imports; this is a demonstration, not a recipe.)"""
    torch.manual_seed(seed)
    model = TreeLSTM(len(vocab), hidden, hidden, classes)
    ids = {word: index for index, word in enumerate(vocab)}
    for step in range(steps):
        _, logits, labels = model(trees[step % len(trees)], ids)
        loss = nn.functional.cross_entropy(logits, torch.tensor(labels))
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for parameter in model.parameters():
                if parameter.grad is not None:
                    parameter -= learning_rate * parameter.grad
    return model.eval()


def reference(model: TreeLSTM, trees: list[Tree], vocab: list[str]) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """PyTorch's root h [T, H] and all-node logits [sum N, C] (post-order, tree by tree)."""
    ids = {word: index for index, word in enumerate(vocab)}
    roots, logits = [], []
    with torch.no_grad():
        for tree in trees:
            root_h, node_logits, _ = model(tree, ids)
            roots.append(root_h.numpy())
            logits.append(node_logits.numpy())
    return np.stack(roots), np.concatenate(logits)


def export(model: TreeLSTM, vocab: list[str], out: Path) -> dict[str, Path]:
    """model.pt (torch.save of the state_dict), model.safetensors and vocab.txt in `out`."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    paths = {"pt": out / "model.pt", "safetensors": out / "model.safetensors",
             "vocab": out / "vocab.txt"}
    torch.save(state, paths["pt"])
    save_file(state, str(paths["safetensors"]))
    paths["vocab"].write_text("".join(word + "\n" for word in vocab), encoding="utf-8")
    return paths


def held_out_lines(limit: int) -> list[str]:
    path = SST_DEV if SST_DEV.is_file() else HELD_OUT
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines[:limit]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("out/pytorch"))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--trees", type=int, default=50, help="held-out trees to compare on")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # node-by-node work on small matrices: threads only cost

    import cortexlang as cx

    started = time.perf_counter()
    training = read_trees(TRAIN)
    vocab = build_vocab(training)
    model = train(training, vocab, hidden=args.hidden, steps=args.steps)
    paths = export(model, vocab, args.out)
    print(f"trained {args.steps} steps on {len(training)} trees in "
          f"{time.perf_counter() - started:.1f} s; saved {paths['pt']}, "
          f"{paths['safetensors']}, {paths['vocab']}")

    lines = held_out_lines(args.trees)
    expected_h, expected_logits = reference(model, [parse_tree(line) for line in lines], vocab)
    sizes = {"X": args.hidden, "H": args.hidden, "V": len(vocab), "C": 5}
    served = cx.load(MODEL, sizes=sizes)
    served.load_weights(paths["pt"], vocab=paths["vocab"], strip_prefix="cell.")
    for backend in ("interp", "compiled"):
        out = served.compile(backend=backend).run(lines)
        difference = max(float(np.abs(out["h"] - expected_h).max()),
                         float(np.abs(out["logits"] - expected_logits).max()))
        print(f"{backend:<9} {len(lines)} held-out trees, largest difference from PyTorch "
              f"{difference:.2e} ({out.provenance['device']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
