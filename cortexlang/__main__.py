"""`python -m cortexlang`: the same command line as the `cortexlang` script."""

import sys

from cortexlang.cli import main

if __name__ == "__main__":
    sys.exit(main())
