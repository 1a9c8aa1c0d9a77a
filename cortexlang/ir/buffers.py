"""Typed buffer references, shared by the loop IR, the kernel IR and the executable.

A buffer is named by what it holds (`Role`) and the source name it holds it for (a parameter,
state, input or output name; a temporary's, uniform's or index array's own name), never by a
string that a later stage has to take apart.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.Enum):
    """What a buffer holds."""

    WEIGHT = "weight"      # a parameter as declared, row-major
    WEIGHT_T = "weight_t"  # a parameter transposed, perhaps in blocks (see `Layout`)
    UNIFORM = "uniform"    # a hoisted node-independent value
    TABLE = "table"        # a leaf table: one row per token
    STATE = "state"        # one row per node, plus a zero row for missing children
    INPUT = "input"        # the nodes' vector features
    TEMP = "temp"          # intermediates of a rule
    OUTPUT = "output"      # an output head's rows
    SYNC = "sync"          # the cooperative kernel's counters
    INDEX = "index"        # a linearizer array (inside the `indices` upload)
    TOKENS = "tokens"      # a token input's ids (inside the `indices` upload)


class BufferRows(enum.Enum):
    """How many rows a buffer of the loop and kernel IRs has (the printers write the word)."""

    NODES = "nodes"      # one per node of the run, plus a zero row for missing children
    BATCH = "batch"      # one per node of the largest batch (dense intermediates)
    HEADS = "heads"      # one per head node
    BATCHES = "batches"  # one per batch
    GROUPS = "groups"    # one per group of an unrolled batch, plus one (`group_start`)
    ONE = "one"          # a single row (a hoisted uniform)
    VOCAB = "vocab"      # one per token (a leaf table)
    PARAM = "param"      # a parameter, as declared (its shape flattened)
    STEPS = "steps"      # the cooperative kernel's steps (see `ir.kernels.sync_rows`)


# How the loop and kernel IRs' printers spell a role, written before the name and a colon; a
# role without an entry prints its name alone (`children`, `sync`).
_IR_SPELLING = {Role.WEIGHT: "param", Role.WEIGHT_T: "param_t", Role.UNIFORM: "uniform",
                Role.TABLE: "uniform", Role.STATE: "state", Role.INPUT: "input",
                Role.TEMP: "temp", Role.OUTPUT: "output", Role.TOKENS: "words"}

# Roles whose buffers the linearizer fills (integer arrays inside the `indices` upload).
INDEX_ROLES = (Role.INDEX, Role.TOKENS)
WEIGHT_ROLES = (Role.WEIGHT, Role.WEIGHT_T)


@dataclass(frozen=True, slots=True)
class BufferRef:
    """A typed reference to a buffer: its role and the source name it holds."""

    role: Role
    name: str

    def __str__(self) -> str:
        return f"{self.role.value} {self.name}"

    @property
    def ir_text(self) -> str:
        """The loop and kernel IRs' spelling: the role, a colon and the name (a weight `W` is
        `param` then `W`), or a linearizer array's name alone (`children`)."""
        spelling = _IR_SPELLING.get(self.role)
        return f"{spelling}:{self.name}" if spelling else self.name

    @property
    def spelled_role(self) -> str:
        """The role as the IR printers spell it (`param`, `words`, `index`, `sync`)."""
        return _IR_SPELLING.get(self.role, self.role.value)


def index(name: str) -> BufferRef:
    """A linearizer array (`children`, `batch_start`, ...)."""
    return BufferRef(Role.INDEX, name)


CHILDREN = index("children")
NUM_CHILDREN = index("num_children")
BATCH_START = index("batch_start")
BATCH_LEN = index("batch_len")
HEAD_NODES = index("head_nodes")
GROUP_START = index("group_start")      # unrolled recursion: the first node of each group
BATCH_GROUPS = index("batch_groups")    # ... and the first group of each batch
# What every batch section reads: where its batch starts and how long it is.
BATCH_RANGE_BUFFERS = (BATCH_START, BATCH_LEN)
