"""The `ingest` command. For `ingest run`, the settings are checked first (refused, they are
reported at once), then the worker pool's fork server is spawned before anything else is
imported: its imports and warm-up then run on the other core while this process imports the
CLI, HTTP and database stack and checks the database, and the workers are ready when the
first feeds come in; what the first request needs (`ingest.preload`) loads in a thread
meanwhile. Everything else is `ingest.cli`."""

from __future__ import annotations

import gc
import signal
import sys


def terminated(signum: int, frame: object) -> None:
    """SIGTERM ends the command, its clean-up run (the commands that have more to do, `run`,
    `backfill`, `prune`, put their own handler in place of this one once they are under way).
    Without a handler, the command as a container's PID 1 (`docker run IMAGE feeds import`)
    would not even stop: the kernel spares PID 1 every signal it does not handle, and Docker
    kills it 10 s later. In place before anything is imported: `docker stop` of a service
    still importing its stack would be ignored, and the service run on until the SIGKILL."""
    raise SystemExit(143)


def hung_up(signum: int, frame: object) -> None:
    """SIGHUP, the hang-up of the terminal the command runs in the foreground of (an SSH
    session closed), ends the command as SIGTERM does, its clean-up run (an embedded server it
    started stopped, a migration's session closed), exit 129 (128 + SIGHUP), where the
    signal's default action would kill it on the spot; the commands that have more to do
    (`run`, `backfill`, `prune`) put their own handler in place of this one once under way.
    In place before anything is imported, as `terminated` is."""
    raise SystemExit(129)


def main() -> int:
    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGHUP, hung_up)
    argv = sys.argv[1:]
    run = argv[:1] == ["run"] and not {"-h", "--help"} & set(argv)
    # Importing makes some 50,000 objects the collector tracks, and the 130 collections that
    # triggers (one of them over everything) cost 10-30 ms of a start-up: none runs until the
    # imports are done; then what they made is frozen out of every later collection.
    gc.disable()
    try:
        once = _run_once(argv[1:]) if run else None
        if once is not None and (refused := _refused_settings(serving=not once)) is not None:
            print(f"ingest: {refused}", file=sys.stderr)  # as `ingest.cli` reports an IngestError
            return 1
        if run:
            from ingest import preload
            from ingest.workers import forkserver

            forkserver.start()
            preload.start()
        _lighten_imports()
        from ingest.cli import main as cli_main

        if run:
            import ingest.pipeline  # noqa: F401
    except KeyboardInterrupt:
        from ingest import preload

        preload.wait()
        return 130
    finally:
        gc.freeze()
        gc.enable()
    try:
        code = cli_main()
    except KeyboardInterrupt:  # before the command's own handling begins (its parser)
        return 130
    # The last thing the command does: what is left is the interpreter's own teardown, whose
    # collections would walk every object of the libraries loaded (about 0.1 s) only to free
    # memory the process gives back anyway.
    gc.freeze()
    return code


def _run_once(options: list[str]) -> bool | None:
    """Whether `ingest run OPTIONS` is `run --once` (True) or the service (False), for options
    its parser takes as they are (`--once`, `--all` with it, either abbreviated: `--onc`); None
    for any other, whose usage error `ingest.cli` reports (exit 2) before any setting."""
    flags = set()
    for option in options:
        flag = next(
            (f for f in ("--once", "--all") if len(option) > 2 and f.startswith(option)), None
        )
        if flag is None:
            return None
        flags.add(flag)
    once = "--once" in flags
    return None if "--all" in flags and not once else once


def _refused_settings(*, serving: bool) -> str | None:
    """Why `ingest run` cannot start (None when it can): settings refused, or what it needs
    of the machine (`ingest.config.run_problem`; `serving`: not `run --once`, which serves no
    endpoint), found before anything slow, so that a service that cannot start says so at
    once, not after spawning its fork server and importing its whole stack (a second or two
    on a busy machine)."""
    from ingest.config import load_settings, run_problem  # light: stdlib and ingest.errors
    from ingest.errors import ConfigError

    try:
        settings = load_settings()
    except ConfigError as e:
        return str(e)
    return run_problem(settings, serving=serving)


def _lighten_imports() -> None:
    """Imports the process never uses: httpx's command-line client (click and rich, imported
    by `import httpx` when click is installed, about 10 ms), and rich with pygments under
    structlog (66 modules, about 25 ms), which structlog uses only to pretty-print tracebacks
    and locals, neither of which `ingest.logs` asks for (plain tracebacks on a console, no
    locals in JSON). structlog is imported with rich hidden; rich itself stays importable (the
    backfill's progress display)."""
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import structlog.dev
        import structlog.tracebacks  # noqa: F401
    finally:
        del sys.modules["rich"]
