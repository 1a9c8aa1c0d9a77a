"""The `cortexlang` command line: builds the parser from the command registry and dispatches.

Each subcommand lives in its own module of `cortexlang.commands` (see its docstring for how to
add one). This module owns only what every command shares: the parser, and turning whatever
a command raises into an exit code and a message.

Exit codes:

    0    success
    1    a user error in the program or its inputs: rendered with code, location and caret
    2    a usage error (bad arguments, -D syntax, option combinations)
    3    an environment problem (no OpenCL device, ...)
    70   an internal error: a bug in cortexlang; the traceback goes to a dump file
    130  interrupted (Ctrl-C, SIGINT)
    143  terminated (SIGTERM)

SIGINT and SIGTERM both unwind the command as an exception, so that every file being written
is abandoned with its temporary removed (`cortexlang.atomic`) and an existing output stays
as it was.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from cortexlang import __version__
from cortexlang.commands import COMMAND_MODULES, Command
from cortexlang.errors import CortexError, InternalError

EXIT_OK = 0
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + signal.SIGTERM
DUMP_DIRECTORY_VARIABLE = "CORTEXLANG_DUMP_DIR"


def load_commands() -> list[Command]:
    """The `COMMAND` of every module listed in `cortexlang.commands.COMMAND_MODULES`."""
    return [importlib.import_module(f"cortexlang.commands.{name}").COMMAND
            for name in COMMAND_MODULES]


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    """The top-level parser with one subparser per command; `args.execute` runs it."""
    parser = argparse.ArgumentParser(
        prog="cortexlang",
        description="An interpreter and optimising compiler for recursive deep-learning "
                    "models (TreeLSTM, TreeGRU, MV-RNN, DAG-RNN, ...), to OpenCL.")
    parser.add_argument("--version", action="version", version=f"cortexlang {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands:
        subparser = subparsers.add_parser(
            command.name, help=command.summary, description=command.description,
            formatter_class=argparse.RawDescriptionHelpFormatter)
        command.configure(subparser)
        subparser.set_defaults(execute=command.execute)
    return parser


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like KeyboardInterrupt, so writers clean up on the way out."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]) and return the exit code.

    While it runs, SIGTERM raises `Terminated` (exit 143); the previous handler is restored
    on return, so calling `main` in-process leaves the caller's handlers alone."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: signals cannot be handled here
        previous = None
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str] | None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(load_commands())
        try:
            args = parser.parse_args(arguments)
        except SystemExit as exit_request:
            # argparse exits 2 on bad arguments and 0 after --help or --version.
            code = exit_request.code
            return code if isinstance(code, int) else (EXIT_OK if code is None else 2)
        return int(args.execute(args))
    except CortexError as error:
        _print_error(error.render())
        return error.exit_code
    except InternalError as error:
        if error.dump_path is None:
            error.dump_path = write_dump(arguments, traceback.format_exc())
        _print_error(str(error))
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        _print_error("interrupted")
        return EXIT_INTERRUPTED
    except Terminated:
        _print_error("terminated")
        return EXIT_TERMINATED
    except BrokenPipeError:
        # The reader of our output went away (`cortexlang run ... | head`): not an error.
        _silence_stdout()
        return EXIT_OK
    except Exception:
        path = write_dump(arguments, traceback.format_exc())
        _print_error("internal error: this is a bug in cortexlang, not in your program or "
                     f"inputs; please report it.\nthe traceback is in {path}")
        return EXIT_INTERNAL


def _print_error(text: str) -> None:
    """User-facing errors go to stderr as plain text: rendered diagnostics hold carets and
    brackets that rich markup would eat."""
    try:
        print(text, file=sys.stderr)
    except (BrokenPipeError, OSError):
        pass


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def dump_directory() -> Path:
    """Where internal-error dumps go: $CORTEXLANG_DUMP_DIR, else a folder in the temp dir."""
    configured = os.environ.get(DUMP_DIRECTORY_VARIABLE)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / "cortexlang-dumps"


def write_dump(arguments: Sequence[str], details: str) -> str:
    """Write the command line, version and traceback of an internal error; return the path.

    Falls back to a fresh temporary file when the dump directory cannot be written, so the
    report always names a file that exists.
    """
    text = (f"cortexlang {__version__}\n"
            f"python {sys.version.split()[0]} on {sys.platform}\n"
            f"command: cortexlang {' '.join(arguments)}\n\n{details}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    directory = dump_directory()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"internal-error-{stamp}-{os.getpid()}.txt"
        path.write_text(text, encoding="utf-8")
        return str(path)
    except OSError:
        handle, fallback = tempfile.mkstemp(prefix="cortexlang-internal-error-", suffix=".txt")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        return fallback


if __name__ == "__main__":
    sys.exit(main())
