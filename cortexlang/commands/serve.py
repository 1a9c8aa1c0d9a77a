"""`cortexlang serve MODEL.cx`: serve a model over HTTP with Ray Serve, requests batched.

    cortexlang serve examples/treelstm.cx --vocab vocab.txt --weights w.npz --port 8000
    curl -s 127.0.0.1:8000/ -d '{"tree": "(3 (2 good) (2 film))"}'

Concurrent requests are merged into one compiled run (up to --max-batch-size trees that
arrive within --batch-wait-ms); a request with a bad tree gets a 400 response with the
located error, and the others in its batch are answered as if it were not there. Needs the
extra: pip install 'cortexlang[ray]'. Runs until interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import time

from cortexlang.backends import backend_names
from cortexlang.commands import Command
from cortexlang.commands.common import (
    add_compiler_options,
    add_model_argument,
    add_size_options,
    load_model,
    positive_integer,
    setting_pair,
    stderr_console,
)
from cortexlang.commands.loading import add_weight_options
from cortexlang.errors import Diagnostic, UsageError
from cortexlang.inputs.vocab import UNKNOWN, Vocab


def configure(parser: argparse.ArgumentParser) -> None:
    """The model, weights, vocabulary, backend, batching and address options."""
    add_model_argument(parser)
    add_size_options(parser)
    add_weight_options(parser)
    parser.add_argument("--vocab", metavar="FILE",
                        help="vocabulary file (one token per line); needed when the model "
                             "reads tokens")
    group = parser.add_argument_group("running")
    group.add_argument("--backend", choices=backend_names(), default=None,
                       help="how to run the model (default compiled)")
    group.add_argument("--float64", action="store_true", help="compute in float64")
    group.add_argument("--device", metavar="SPEC", help="OpenCL device")
    group.add_argument("--set", dest="settings", metavar="NAME=VALUE", action="append",
                       default=[], type=setting_pair, help="a backend-specific setting")
    add_compiler_options(parser)
    group = parser.add_argument_group("serving")
    group.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1, this machine only)")
    group.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    group.add_argument("--max-batch-size", metavar="N", type=positive_integer, default=32,
                       help="most requests merged into one run (default 32; 1: no batching)")
    group.add_argument("--batch-wait-ms", metavar="MS", type=float, default=5.0,
                       help="how long a batch waits for more requests (default 5 ms)")
    group.add_argument("--replicas", metavar="N", type=positive_integer, default=1,
                       help="model replicas (default 1)")
    group.add_argument("--cpus-per-replica", metavar="K", type=positive_integer, default=1,
                       help="CPUs and PoCL threads of each replica (default 1)")
    group.add_argument("--ray", metavar="ADDRESS", default="local",
                       help="the Ray cluster: 'local' (default) starts one here, 'auto' joins "
                            "`ray start`'s, or HOST:PORT")


def execute(args: argparse.Namespace) -> int:
    """Deploy the model and serve until interrupted; exit 130 on Ctrl-C (from the CLI)."""
    from cortexlang.ray.cli import model_spec

    program = load_model(args.model, args)
    reads_tokens = any(item.kind == "token" for item in program.inputs)
    if reads_tokens and args.vocab is None:
        raise UsageError(Diagnostic("E0011", f"{program.name} reads tokens: serving it needs "
                                    "--vocab FILE", None, "",
                                    "pass the vocabulary the weights were trained with"))
    vocab = Vocab.read(args.vocab, unknown=getattr(args, "unknown", UNKNOWN)) \
        if args.vocab is not None else Vocab((UNKNOWN,))
    if args.batch_wait_ms < 0:
        raise UsageError(Diagnostic("E0011", "--batch-wait-ms cannot be negative", None))
    spec = model_spec(args, vocab)
    from cortexlang.ray.job import connect

    connect(args.ray)
    from cortexlang.ray.serving import start_server

    start_server(spec, host=args.host, port=args.port, max_batch_size=args.max_batch_size,
                 batch_wait_timeout_s=args.batch_wait_ms / 1000, replicas=args.replicas,
                 cpus_per_replica=args.cpus_per_replica)
    stderr_console().print(f"serving {program.name} on http://{args.host}:{args.port}/ "
                           f"({args.replicas} replicas, batches of up to "
                           f"{args.max_batch_size}); Ctrl-C stops", markup=False)
    while True:
        time.sleep(3600)


COMMAND = Command(
    name="serve",
    summary="serve a model over HTTP with Ray Serve (requests batched)",
    configure=configure,
    execute=execute,
    description=__doc__ or "",
)
