"""What `ingest run` does before its first request, kept light (issue 16: under 0.4 s from the
command to the first feed request; bench/startup_bench.py measures it): the imports it skips
and the TLS context it loads in a thread."""

from __future__ import annotations

import ssl
import subprocess
import sys

from ingest import preload
from tests.support.paths import ROOT

_PROBE = """
import sys
from ingest import launcher
launcher._lighten_imports()
import ingest.cli, ingest.pipeline, httpx, structlog.dev
print(sorted(m for m in ("rich", "click", "pygments") if m in sys.modules))
print(structlog.dev.rich is None, callable(httpx.main))
import rich.progress
print("rich importable")
"""


def test_start_up_leaves_out_rich_click_and_pygments() -> None:
    """The CLI and pipeline are imported without rich, pygments (under structlog) and click
    (under httpx); rich is still there for whoever asks for it (the backfill's progress)."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "True True", "rich importable"]


def test_tls_context_is_loaded_once_and_verifies() -> None:
    """One client context per process, certifi's CA bundle loaded, hostnames checked."""
    preload.start()
    context = preload.ssl_context()
    assert preload.ssl_context() is context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 100
