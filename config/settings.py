"""One validated place for TIP Watch's configuration.

Process settings come from ``TIPWATCH_*`` environment variables (and an optional ``.env``);
the list of sources comes from a YAML file. Any source's base URL can be overridden, so a
mirror or the test replica can stand in for the real site without editing the YAML.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import soupsieve
import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_SOURCES = CONFIG_DIR / "sources.yaml"
VERSION = "0.1.0"
ENV_PREFIX = "TIPWATCH_"
ENV_FILE = ".env"
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tipwatch"


class ConfigError(Exception):
    """A configuration file or value is invalid; the message names the file and the key."""


# The sources file's schema for ``kind`` and ``options``: each kind worker.discover implements
# (one registered class per kind; it checks at import that both lists agree) and the option keys
# it accepts. Declared here, not looked up in worker/, so config/ imports nothing above it and
# every load of the sources file validates kinds whatever was imported before.
SOURCE_KIND_OPTIONS: dict[str, frozenset[str]] = {
    "spip": frozenset({"title_filter"}),
    "unodc": frozenset({"title_filter"}),
    "rss": frozenset({"title_filter"}),
    "html": frozenset(
        {
            "title_filter",
            "item_pattern",
            "document_pattern",
            "item_selector",
            "document_selector",
            "pagination_selector",
        }
    ),
}


def validate_source_options(kind: str, options: dict[str, Any]) -> None:
    """Raise ValueError naming the key when ``options`` do not suit the source ``kind``."""
    known = SOURCE_KIND_OPTIONS[kind]
    unknown = set(options) - known
    if unknown:
        raise ValueError(
            f"unknown option(s) {sorted(unknown)} for kind {kind!r} (known: {sorted(known)})"
        )
    for key, value in options.items():
        if key.endswith("_selector"):
            try:
                soupsieve.compile(value)
            except (soupsieve.SelectorSyntaxError, TypeError) as exc:
                raise ValueError(f"{key}: invalid CSS selector: {exc}") from exc
        if key.endswith(("_filter", "_pattern")):
            try:
                re.compile(value)
            except (re.error, TypeError) as exc:
                raise ValueError(f"{key}: invalid regular expression: {exc}") from exc


class SeriesConfig(BaseModel):
    """A periodical published by a source: its issues are numbered and expected regularly."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str = ""
    pattern: str = Field(description="regex on a numbered document's title or URL")
    every_days: int = Field(default=92, ge=1)
    grace_days: int = Field(default=31, ge=0)

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        return value

    def matches(self, text: str) -> bool:
        return re.search(self.pattern, text, re.IGNORECASE) is not None


class RevisitConfig(BaseModel):
    """When an archived item page or file is looked at again without a sign it changed (its
    entry in a feed or listing is the same): by its age, counted from its publication date or
    its last change, whichever is later. ``every_poll: true`` revisits everything each poll
    (the behaviour before revisits were scheduled)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    recent_days: float = Field(default=30, gt=0)  # younger than this: recent
    recent_every_hours: float = Field(default=24, gt=0)
    old_days: float = Field(default=365, gt=0)  # older than this: old
    middle_every_days: float = Field(default=7, gt=0)  # between recent and old
    old_every_days: float = Field(default=30, gt=0)
    every_poll: bool = False

    def interval(self, age: timedelta) -> timedelta:
        if age < timedelta(days=self.recent_days):
            return timedelta(hours=self.recent_every_hours)
        if age < timedelta(days=self.old_days):
            return timedelta(days=self.middle_every_days)
        return timedelta(days=self.old_every_days)


class SourceConfig(BaseModel):
    """One polled site section. Paths in ``feeds`` and ``listings`` are relative to ``base_url``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    kind: str
    title: str = ""
    base_url: str
    feeds: list[str] = []
    listings: list[str] = []
    allowed_hosts: list[str] = []
    interval_minutes: float = Field(default=360, gt=0)
    max_depth: int = Field(default=2, ge=0, le=5)
    max_pages: int = Field(default=3, ge=1, le=100)
    max_items: int = Field(default=200, ge=1)
    # Fan-out budgets: a page linking thousands of files must not cost thousands of requests.
    max_documents_per_page: int = Field(default=100, ge=1)  # documents taken from one page
    max_documents: int = Field(default=300, ge=1)  # documents fetched in one poll
    language: Literal["en", "fr"] | None = None
    enabled: bool = True
    options: dict[str, Any] = {}
    series: list[SeriesConfig] = []
    revisit: RevisitConfig = RevisitConfig()

    @field_validator("base_url")
    @classmethod
    def _absolute_http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
        return value.rstrip("/")

    @property
    def netloc(self) -> str:
        return urlsplit(self.base_url).netloc.lower()

    @property
    def allowed_netlocs(self) -> frozenset[str]:
        """Hosts (host[:port]) this source may request; everything else is refused."""
        return frozenset({self.netloc, *(h.lower() for h in self.allowed_hosts)})

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    @property
    def entry_urls(self) -> list[str]:
        return [self.url(p) for p in self.feeds + self.listings]


class Settings(BaseSettings):
    """Process-wide settings, read from ``TIPWATCH_*`` environment variables."""

    # allow_inf_nan: every number must be finite (a delay of "inf" would stall polling forever)
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=ENV_FILE, extra="ignore", allow_inf_nan=False
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = None
    archive_dir: Path | None = None
    blob_url: str | None = None  # s3://bucket/prefix: originals in an object store
    blob_endpoint: str | None = None  # S3-compatible endpoint (MinIO, Garage, …)
    blob_region: str | None = None
    broker_url: str = "redis://localhost:6379/0"
    result_backend: str | None = None
    sources: Path = DEFAULT_SOURCES
    base_urls: dict[str, str] = {}
    templates_dir: Path | None = None
    user_agent_contact: str = ""
    web_base_url: str = "http://localhost:8000"
    http_timeout: float = Field(default=30.0, gt=0, le=3600)
    max_download_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    # an HTML page or feed is parsed in memory (~20x its size): larger ones are refused
    max_page_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    download_deadline: float = Field(default=300.0, gt=0)  # seconds for one whole download
    # seconds for one poll of one source; what is left waits for the next poll (below the
    # Celery task's soft time limit)
    poll_deadline: float = Field(default=2400.0, gt=0)
    extract_timeout: float = Field(default=120.0, gt=0)  # seconds per PDF
    # seconds a PDF may wait on the extract queue before the sweeper assumes its task was lost
    extract_requeue_after: float = Field(default=1800.0, ge=0)
    host_delay: float = Field(default=1.0, ge=0, le=3600)
    rate_limit_url: str | None = None  # Redis shared by all workers for host_delay
    notify_max_attempts: int = Field(default=5, ge=1)
    notify_claim_lease: float = Field(default=600, gt=0)  # seconds before a stuck send is retried
    # A source's first successful poll is its baseline: archived, searchable, alerting nobody.
    # False: alert on everything it finds (the back catalogue); ``--backfill`` does that per
    # subscription.
    quiet_first_poll: bool = True
    digest_hour: int = Field(default=7, ge=0, le=23)  # UTC hour daily/weekly digests go out
    digest_weekday: int = Field(default=0, ge=0, le=6)  # weekly digests: 0 = Monday
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    # -- Email self-service and operator access (issue 18) --------------------------------
    # The subscribe page (/subscribe) is off unless switched on; it needs MAIL_URL (an apprise
    # mailto:// URL of the SMTP server, without `to=`) and SECRET_KEY (signs every link).
    self_service_email: bool = False
    mail_url: str | None = None
    secret_key: str | None = None
    # comma-separated: only addresses at these domains (empty: any)
    email_domains: Annotated[list[str], NoDecode] = []
    confirm_link_hours: float = Field(default=48, gt=0)
    manage_link_days: float = Field(default=365, gt=0)
    subscribe_per_client_hour: int = Field(default=10, ge=1)  # form posts per client IP
    subscribe_per_address_day: int = Field(default=3, ge=1)  # confirmation emails per address
    max_subscriptions_per_address: int = Field(default=10, ge=1)
    # Operator pages (/alerts, /status and their APIs): HTTP Basic with these, or the user
    # name in AUTH_PROXY_HEADER when the request comes from one of TRUSTED_PROXIES (IPs).
    operator_user: str = "operator"
    operator_password: str | None = None
    auth_proxy_header: str | None = None
    trusted_proxies: Annotated[list[str], NoDecode] = []  # comma-separated IP addresses

    @field_validator("email_domains", "trusted_proxies", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    # -- the Matrix channel (issue 18): `tipwatch bot` answers commands in the rooms it is
    # invited to, and their alerts are posted there by the same account --
    matrix_homeserver: str | None = None  # its client-server API: https://matrix.example.org
    matrix_user: str | None = None  # @tipwatch:example.org (or the localpart)
    matrix_password: SecretStr | None = None
    matrix_token: SecretStr | None = None  # an access token, instead of the password
    self_service_matrix: bool = True  # false: the bot refuses new subscriptions
    matrix_max_subscriptions: int = Field(default=10, ge=1)  # per room
    # Accept invitations only from users of these servers (comma-separated); empty: anyone's.
    matrix_invite_servers: Annotated[list[str], NoDecode] = []

    @field_validator("matrix_invite_servers", mode="before")
    @classmethod
    def _server_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [s.strip().lower() for s in value.split(",") if s.strip()]
        return value

    @field_validator("matrix_homeserver")
    @classmethod
    def _homeserver_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
                raise ValueError("must be the homeserver's http(s)://host[:port] URL")
            return value.rstrip("/")
        return value

    def matrix_problem(self) -> str | None:
        """What the Matrix channel still needs before the bot can log in and its rooms'
        alerts be posted (None: nothing)."""
        missing = []
        if not self.matrix_homeserver:
            missing.append("TIPWATCH_MATRIX_HOMESERVER")
        if not self.matrix_token and not self.matrix_password:
            missing.append("TIPWATCH_MATRIX_PASSWORD (or TIPWATCH_MATRIX_TOKEN)")
        elif not self.matrix_token and not self.matrix_user:
            missing.append("TIPWATCH_MATRIX_USER")
        if missing:
            return f"the Matrix bot is not configured: set {' and '.join(missing)}"
        return None

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.strip().upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.strip().upper()

    @field_validator(
        "database_url", "broker_url", "result_backend", "rate_limit_url", "blob_url", "mail_url"
    )
    @classmethod
    def _service_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value):
            raise ValueError("must be a URL such as scheme://host/…")
        return value

    @field_validator("web_base_url", "blob_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("must be an absolute http(s) URL")
        return value

    @field_validator("user_agent_contact")
    @classmethod
    def _header_safe(cls, value: str) -> str:
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("must not contain control characters (it goes into an HTTP header)")
        return value

    @field_validator("templates_dir")
    @classmethod
    def _directory(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError("not a directory")
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'tipwatch.db'}"

    @property
    def resolved_archive_dir(self) -> Path:
        return self.archive_dir or self.data_dir / "archive"

    @property
    def resolved_result_backend(self) -> str:
        return self.result_backend or self.broker_url

    @property
    def user_agent(self) -> str:
        contact = f"; +{self.user_agent_contact}" if self.user_agent_contact else ""
        return f"TIPWatch/{VERSION} (trafficking-in-persons publication watcher{contact})"

    @cached_property
    def source_list(self) -> list[SourceConfig]:
        return load_sources(self.sources, self.base_urls)

    def source(self, name: str) -> SourceConfig:
        for src in self.source_list:
            if src.name == name:
                return src
        known = ", ".join(s.name for s in self.source_list)
        raise ConfigError(f"unknown source {name!r} (known: {known})")


def load_sources(path: Path, base_urls: dict[str, str] | None = None) -> list[SourceConfig]:
    """Read and validate the sources file, then apply base-URL overrides.

    ``base_urls`` maps a source name, or an original host, to a replacement base URL. The
    original host is rewritten everywhere it appears (other sources' ``base_url`` and
    ``allowed_hosts``), so sources that share a host or link to each other keep working.
    """
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: cannot read sources file (TIPWATCH_SOURCES): not UTF-8 text"
            f" (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        ) from exc
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read sources file (TIPWATCH_SOURCES): {exc}") from exc
    entries = raw.get("sources") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected a top-level 'sources:' list")

    sources: list[SourceConfig] = []
    for index, entry in enumerate(entries):
        label = entry.get("name", f"#{index}") if isinstance(entry, dict) else f"#{index}"
        try:
            src = SourceConfig.model_validate(entry)
        except ValidationError as exc:
            errors = "; ".join(
                f"sources[{index}].{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"{path}: source {label}: {errors}") from exc
        if src.kind not in SOURCE_KIND_OPTIONS:
            raise ConfigError(
                f"{path}: source {label}: sources[{index}].kind: unknown kind {src.kind!r}"
                f" (known: {', '.join(sorted(SOURCE_KIND_OPTIONS))})"
            )
        try:
            validate_source_options(src.kind, src.options)
        except ValueError as exc:
            raise ConfigError(f"{path}: source {label}: sources[{index}].options: {exc}") from exc
        sources.append(src)

    names = [s.name for s in sources]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ConfigError(f"{path}: duplicate source names: {', '.join(sorted(duplicates))}")
    return _apply_overrides(sources, base_urls or {}, path)


def _apply_overrides(
    sources: list[SourceConfig], base_urls: dict[str, str], path: Path
) -> list[SourceConfig]:
    if not base_urls:
        return sources
    by_name = {s.name: s for s in sources}
    host_map: dict[str, tuple[str, str]] = {}  # original netloc -> (scheme, new netloc)
    for key, new_base in base_urls.items():
        new = urlsplit(new_base)
        if new.scheme not in ("http", "https") or not new.netloc:
            raise ConfigError(
                f"TIPWATCH_BASE_URLS[{key}]: not an absolute http(s) URL: {new_base!r}"
            )
        original = by_name[key].netloc if key in by_name else key.lower()
        if key not in by_name and not any(s.netloc == original for s in sources):
            raise ConfigError(
                f"TIPWATCH_BASE_URLS: {key!r} is neither a source name nor a host in {path}"
            )
        host_map[original] = (new.scheme, new.netloc.lower())

    def rewrite(url: str) -> str:
        parts = urlsplit(url)
        if parts.netloc.lower() in host_map:
            scheme, netloc = host_map[parts.netloc.lower()]
            parts = parts._replace(scheme=scheme, netloc=netloc)
        return urlunsplit(parts)

    rewritten = []
    for src in sources:
        hosts = [host_map.get(h.lower(), (None, h))[1] for h in src.allowed_hosts]
        rewritten.append(
            src.model_copy(update={"base_url": rewrite(src.base_url), "allowed_hosts": hosts})
        )
    return rewritten


def get_settings(**overrides: Any) -> Settings:
    """Build settings from the environment; keyword overrides win (used by tests and the CLI).

    An invalid value is a :class:`ConfigError` naming its variable (and the ``.env`` file when
    it came from there) instead of pydantic's multi-line report.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("; ".join(_validation_problem(e) for e in exc.errors())) from exc
    except SettingsError as exc:  # a complex value (TIPWATCH_BASE_URLS) that is not JSON
        found = re.search(r'field "(\w+)"', str(exc))
        where = env_origin(found.group(1)) if found else f"{ENV_PREFIX}*"
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        raise ConfigError(f"{where}: not valid JSON{cause}") from exc


def env_origin(field: str) -> str:
    """Where a setting comes from, for messages: ``TIPWATCH_X`` or ``TIPWATCH_X (in /…/.env)``."""
    name = f"{ENV_PREFIX}{field}".upper()
    if any(key.upper() == name for key in os.environ):
        return name
    env_file = Path(ENV_FILE)
    if env_file.is_file():
        from dotenv import dotenv_values

        try:
            if any(key.upper() == name for key in dotenv_values(env_file)):
                return f"{name} (in {env_file.resolve()})"
        except (OSError, ValueError):
            pass
    return name


def _validation_problem(error: Any) -> str:
    field, *inner = error["loc"] or ("?",)
    where = env_origin(str(field)) + "".join(f"[{part}]" for part in inner)
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    # the value, unless it may carry a password (a URL) or is not one (a missing field)
    if isinstance(value, str | int | float) and "url" not in str(field) and not inner:
        message += f" (got {str(value)[:100]!r})"
    return f"{where}: {message}"
