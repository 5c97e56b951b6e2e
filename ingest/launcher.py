"""The `ingest` command. For `ingest run`, the worker pool's fork server is spawned before
anything else is imported: its imports and warm-up then run on the other core while this
process imports the CLI, HTTP and database stack and checks the database, and the workers are
ready when the first feeds come in. Everything else is `ingest.cli`."""

from __future__ import annotations

import gc
import sys


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["run"] and not {"-h", "--help"} & set(argv):
        from ingest.workers import forkserver

        forkserver.start()
    try:
        from ingest.cli import main as cli_main
    except KeyboardInterrupt:
        return 130
    code = cli_main()
    # The last thing the command does: what is left is the interpreter's own teardown, whose
    # collections would walk every object of the libraries loaded (about 0.1 s) only to free
    # memory the process gives back anyway.
    gc.freeze()
    return code
