"""The ``msms`` console script of the Python package: the Rust command line, in process."""

import sys

from . import _native


def main() -> None:
    """Run ``msms`` with this process's arguments and exit with its exit code."""
    argv = ["msms", *sys.argv[1:]]
    sys.exit(_native.run(argv))


if __name__ == "__main__":
    main()
