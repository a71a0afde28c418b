"""One validated place for TIP Watch's configuration.

Process settings come from ``TIPWATCH_*`` environment variables (and an optional ``.env``);
the list of sources comes from a YAML file. Any source's base URL can be overridden, so a
mirror or the test replica can stand in for the real site without editing the YAML.
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_SOURCES = CONFIG_DIR / "sources.yaml"
VERSION = "0.1.0"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tipwatch"


class ConfigError(Exception):
    """A configuration file or value is invalid; the message names the file and the key."""


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


class SourceConfig(BaseModel):
    """One polled site section. Paths in ``feeds`` and ``listings`` are relative to ``base_url``."""

    model_config = ConfigDict(extra="forbid")

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
    language: Literal["en", "fr"] | None = None
    enabled: bool = True
    options: dict[str, Any] = {}
    series: list[SeriesConfig] = []

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

    model_config = SettingsConfigDict(env_prefix="TIPWATCH_", env_file=".env", extra="ignore")

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
    http_timeout: float = Field(default=30.0, gt=0)
    max_download_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    extract_timeout: float = Field(default=120.0, gt=0)  # seconds per PDF
    # seconds a PDF may wait on the extract queue before the sweeper assumes its task was lost
    extract_requeue_after: float = Field(default=1800.0, ge=0)
    host_delay: float = Field(default=1.0, ge=0)
    rate_limit_url: str | None = None  # Redis shared by all workers for host_delay
    notify_max_attempts: int = Field(default=5, ge=1)
    notify_claim_lease: float = Field(default=600, gt=0)  # seconds before a stuck send is retried
    digest_hour: int = Field(default=7, ge=0, le=23)  # UTC hour daily/weekly digests go out
    digest_weekday: int = Field(default=0, ge=0, le=6)  # weekly digests: 0 = Monday
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"

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
    from worker.discover import source_kinds  # registered kinds live with discovery

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read sources file: {exc}") from exc
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
        kinds = source_kinds()
        if src.kind not in kinds:
            raise ConfigError(
                f"{path}: source {label}: sources[{index}].kind: unknown kind {src.kind!r}"
                f" (known: {', '.join(sorted(kinds))})"
            )
        try:
            kinds[src.kind].validate_options(src.options)
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
    """Build settings from the environment; keyword overrides win (used by tests and the CLI)."""
    return Settings(**overrides)
