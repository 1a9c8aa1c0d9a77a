"""Model inputs: trees (PTB, JSON, generators), vocabularies and weights.

Modules, one per concern:

    structure   the `Structure` every input becomes (flat arrays, one per tree/DAG/sequence)
    ptb         bracketed trees, one per line, `(label child child)` / `(label token)`
    jsontrees   nested JSON trees and flat DAG records, a list or JSON lines
    generators  deterministic synthetic inputs (SST-shaped trees, perfect trees, grids, chains)
    reshape     fit trees to the model: binarize, collapse or refuse unary nodes
    python      structures from Python values (PTB text, nltk Trees, nested tuples, dicts)
    vocab       `Vocab` (any unknown id; 0 when built) and the `VocabBuilder` of streaming
    weights     initialise, save, load and describe a model's named parameters
    weightfiles .npz, .safetensors and PyTorch files, and the metadata saved with weights
    weightmap   stored names (a state_dict's) to parameter names; every mismatch listed
    provenance  which weights and vocabulary a run uses, and the rules that decide it
    load        `load_structures(path, vocab)`, the one entry point choosing the reader

The helpers below build located `InputError`s for every reader, so that an error in line 8000
of a streamed file still shows that line and a caret without keeping the file in memory.

Error codes (E05xx, all `InputError`). The codes from E0530 on are raised by both backends,
the interpreter and the compiled model, with the same code for the same mistake; E0501-E0514
come from the readers of input files only.

    E0501  unclosed bracket: a node is not closed before the end of its line
    E0502  unexpected ')' with no open node
    E0503  missing label after '('
    E0504  empty node: a label with neither a token nor children
    E0505  an integer label outside the 32-bit range
    E0506  text outside a tree: before the first '(' or after the tree is complete
    E0507  a node with more children than the limit
    E0508  a node that mixes a token with children, or holds two tokens
    E0509  an input file that cannot be read (missing, not UTF-8)
    E0510  invalid JSON syntax
    E0511  a JSON value of the wrong shape (missing or unknown key, wrong type)
    E0512  a node index out of range in a flat (DAG) record
    E0513  JSON nested too deeply to read
    E0514  a structure that cannot be written in the chosen format
    E0515  a JSON record of kind "tree" or "sequence" with a node of two parents
    E0516  a node with one child where the model takes binary trees
    E0520  a duplicate token in a vocabulary file
    E0521  an empty line in a vocabulary file
    E0522  a vocabulary larger than the model's
    E0523  an unknown id outside the vocabulary
    E0524  a vocabulary given that differs from the one saved with the weights
    E0525  trained weights, a model that reads tokens, and no vocabulary anywhere
    E0530  a parameter the model needs is missing from the weights file
    E0531  the weights file holds a parameter the model does not have
    E0532  a parameter's shape differs between the weights file and the model
    E0533  a weights file that cannot be read (missing, corrupt, of no known format)
    E0534  an unknown initialiser or wrong initialiser arguments
    E0535  a weights array that is not floating point
    E0536  a weights file whose reader (torch, safetensors) is not installed
    E0537  two stored arrays that map to one parameter
    E0540  an input file whose format cannot be told
    E0550  a node with more children than the model's `max_children`
    E0551  a child id outside its structure
    E0552  a cycle in a structure
    E0553  per-node features present in some structures only, or of different widths
    E0554  a node without a token where the model reads one (a leaf without a word)
    E0555  a token id outside the table the model reads with it (the vocabulary)
    E0556  a vector input missing from the structures, or of the wrong width
    E0557  a structure with more nodes than the device holds in one run
    E0560  an unknown synthetic input kind, or a size it does not take
    E0575  a damaged or foreign .cxa artifact (cortexlang.artifact); E0576 a newer one
    E0595  a Python value that `run` cannot read as a structure

Files are written through `cortexlang.atomic`, which reports an unwritable path as E0570.
A weight larger than the device allows in one allocation is not an input error but an
`EnvironmentProblem` (E0604, see `cortexlang.runtime.weights`).
"""

from __future__ import annotations

from cortexlang.errors import Diagnostic, InputError, Span


def located_input_error(code: str, message: str, *, path: str, line: int, column: int,
                        line_text: str, width: int = 1, label: str = "",
                        hint: str = "") -> InputError:
    """An `InputError` pointing at `line`:`column` (1-based) of `path`, with a caret.

    Only the offending line is kept: the renderer finds source lines by number, so the
    source handed to it is that line preceded by `line - 1` empty lines.
    """
    span = Span(path, line, column, line, column + max(1, width))
    source = "\n" * (line - 1) + line_text
    return InputError(Diagnostic(code, message, span, label, hint), source)


def input_error(code: str, message: str, *, hint: str = "",
                notes: tuple[str, ...] = ()) -> InputError:
    """An `InputError` without a source location (binary files, whole batches)."""
    return InputError(Diagnostic(code, message, None, "", hint, notes))
