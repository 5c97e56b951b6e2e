"""The container's health check (`python -m ingest.healthcheck`, the Dockerfile's HEALTHCHECK):
GET /healthz where `ingest run` listens, its address and port read from the environment as the
service reads them (`ingest.config`: names in any case, values without the whitespace around
them), a wildcard address reached through the loopback address of its family. Exit 0 when it
answers 2xx; otherwise 1, with the reason on stdout (`docker inspect` shows it)."""

from __future__ import annotations

import ipaddress
import sys
import urllib.error
import urllib.request

from ingest.config import load_settings
from ingest.errors import ConfigError

TIMEOUT_SECONDS = 4.0
"""Under the HEALTHCHECK's own --timeout (5 s), so that a slow answer is this check's failure,
with its reason, rather than Docker's kill."""

_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - wildcards, mapped away


def healthz_url(host: str, port: int) -> str:
    """The URL of /healthz on a service listening on `host` and `port`: a wildcard address
    through loopback (`0.0.0.0`: 127.0.0.1; `::`, which listens on IPv6 alone: ::1), an IPv6
    address in brackets (its zone escaped, RFC 6874), a name as it is."""
    host = _LOOPBACK.get(host, host)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{port}/healthz"
    if address.version == 6:
        return f"http://[{host.replace('%', '%25')}]:{port}/healthz"
    return f"http://{host}:{port}/healthz"


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as e:
        print(f"unhealthy: {e}")
        return 1
    if not settings.http_port:
        print(
            "unhealthy: INGEST_HTTP_PORT=0 turns the endpoints off: nothing answers this check;"
            " run the container with --no-healthcheck"
        )
        return 1
    url = healthz_url(settings.http_host, settings.http_port)
    # Straight to the service: a proxy the container is given for its feeds (HTTP_PROXY) is
    # not the way to its own loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as e:
        print(f"unhealthy: {url} answered {e.code}: {e.read(200).decode('utf-8', 'replace')}")
        return 1
    except (OSError, ValueError) as e:
        print(f"unhealthy: {url}: {e}")
        return 1
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
