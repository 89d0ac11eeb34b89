"""Configuration: ``config.toml`` read with tomllib into strict pydantic models.

Every section forbids unknown keys, and every problem is reported with its key
path (``feeds.entries: must be at least 1``).  Paths are relative to the
config file.  Secrets never live here: a setting that needs one names the
environment variable that holds it.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from publisher.errors import ConfigError
from publisher.ids import ID_FIELDS

DEFAULT_CONFIG = "config.toml"
_URL_FIELDS = {"name", "year", "month", "day", "kind", "author"}
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)?\s*$")
_DURATION_UNITS = {None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _absolute_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
    return value if value.endswith("/") else value + "/"


def _check_placeholders(template: str, allowed: set[str]) -> str:
    names = set(re.findall(r"{(\w*)[^}]*}", template))
    unknown = sorted(names - allowed)
    if unknown:
        raise ValueError(f"unknown placeholder {{{unknown[0]}}}; use {', '.join('{' + n + '}' for n in sorted(allowed))}")
    return template


class SiteConfig(_Section):
    title: str
    url: str = Field(description="The site's absolute base URL; site-relative links resolve against it.")
    description: str | None = None
    language: str | None = "en"
    timezone: str = "UTC"
    author: str | None = None
    post_url: str = "/{name}"
    author_url: str = "/{author}"
    asset_url: str | None = None
    icon: str | None = None
    authors: dict[str, str] = Field(default_factory=dict)

    _url = field_validator("url")(_absolute_url)

    @field_validator("asset_url")
    @classmethod
    def _asset_url(cls, value: str | None) -> str | None:
        return None if value is None else _absolute_url(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}; use an IANA name such as 'Europe/London'") from exc
        return value

    @field_validator("post_url", "author_url")
    @classmethod
    def _url_template(cls, value: str) -> str:
        return _check_placeholders(value, _URL_FIELDS)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def assets(self) -> str:
        return self.asset_url or self.url + "images/"


class PostsConfig(_Section):
    root: Path
    folders: list[str] = Field(default_factory=list)
    kinds: list[str] = Field(default_factory=list)

    @field_validator("folders")
    @classmethod
    def _folders(cls, value: list[str]) -> list[str]:
        for folder in value:
            if Path(folder).is_absolute() or ".." in Path(folder).parts:
                raise ValueError(f"{folder!r} must be a folder inside posts.root")
        return value


class RenderConfig(_Section):
    summary: Literal["paragraph", "characters"] = "paragraph"
    summary_length: Annotated[int, Field(ge=20, le=100_000)] = 300
    templates: Path | None = None


class FeedsConfig(_Section):
    output: Path = Path("public/feeds")
    url: str | None = None
    entries: Annotated[int, Field(ge=1, le=10_000)] = 20
    formats: list[Literal["atom", "rss", "json"]] = Field(default_factory=lambda: ["atom", "rss", "json"])
    entry_id: str = "tag:{domain},{date}:/{name}"
    stylesheet: StrictBool = True
    per_kind: StrictBool | list[str] = False
    per_author: StrictBool | list[str] = False

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _absolute_url(value)

    @field_validator("entry_id")
    @classmethod
    def _entry_id(cls, value: str) -> str:
        _check_placeholders(value, set(ID_FIELDS))
        if not re.match(r"^(\{url\}|[A-Za-z][A-Za-z0-9+.-]*:)", value):
            raise ValueError("must make a URI: start with a scheme such as 'tag:' or 'urn:', or be '{url}'")
        return value

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one of 'atom', 'rss', 'json'")
        return list(dict.fromkeys(value))


class StateConfig(_Section):
    directory: Path = Path("state")
    database: str | None = Field(default=None, description="A SQLAlchemy URL; default: SQLite in state.directory")


def parse_duration(value: int | str) -> int:
    """``300``, ``"300"``, ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"`` -> seconds."""
    match = _DURATION.match(str(value))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"{value!r} is not a duration; write seconds or e.g. '30s', '5m', '2h'")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


class ScheduleConfig(_Section):
    build_every: int | str | None = None
    build_cron: str | None = None
    timezone: str | None = None

    @field_validator("build_every")
    @classmethod
    def _every(cls, value: int | str | None) -> int | None:
        return None if value is None else parse_duration(value)

    @field_validator("build_cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            from apscheduler.triggers.cron import CronTrigger

            CronTrigger.from_crontab(value)
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleConfig:
        if self.build_every is not None and self.build_cron is not None:
            raise ValueError("set build_every or build_cron, not both")
        return self


class LogConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Config(_Section):
    site: SiteConfig
    posts: PostsConfig
    render: RenderConfig = Field(default_factory=RenderConfig)
    feeds: FeedsConfig = Field(default_factory=FeedsConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    path: Path = Field(default=Path(DEFAULT_CONFIG), exclude=True)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, path: Path) -> Path:
        """A path from the config, made absolute against the config file's folder."""
        return path if path.is_absolute() else self.base_dir / path

    @property
    def posts_root(self) -> Path:
        return self.resolve(self.posts.root)

    @property
    def output_dir(self) -> Path:
        return self.resolve(self.feeds.output)

    @property
    def state_dir(self) -> Path:
        return self.resolve(self.state.directory)

    @property
    def database_url(self) -> str:
        if self.state.database:
            return self.state.database
        return f"sqlite:///{self.state_dir / 'publisher.db'}"

    @property
    def feeds_url(self) -> str:
        return self.feeds.url or self.site.url + "feeds/"

    @property
    def template_dirs(self) -> list[Path]:
        return [self.resolve(self.render.templates)] if self.render.templates else []

    @property
    def build_interval(self) -> int:
        """Seconds between builds when no cron is set (default: 5 minutes)."""
        return self.schedule.build_every or 300


def load_config(path: str | Path = DEFAULT_CONFIG) -> Config:
    """Read and validate a config file; raise ConfigError listing every problem."""
    path = Path(path).absolute()
    data = _read_toml(path)
    try:
        return Config.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise ConfigError(path, _problems(exc, data)) from exc


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(path, ["file not found: create it (see config.toml in the project) or pass --config PATH"]) from exc
    except OSError as exc:
        raise ConfigError(path, [f"can't read the file: {exc.strerror}"]) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from exc
    if "path" in data:
        raise ConfigError(path, ["path: unknown key; remove it"])
    return data


def _problems(exc: ValidationError, data: dict[str, Any]) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"] if not _is_union_tag(part)]
        key = ".".join(loc) or "(top level)"
        problems.append(f"{key}: {_describe(error, loc, data)}")
    return list(dict.fromkeys(problems))


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and (part.startswith(("literal[", "function-")) or part in {"bool", "list[str]", "int", "str"})


def _describe(error: dict[str, Any], loc: list[str], data: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key" + _suggestion(loc)
    if kind == "missing":
        return "required key is missing"
    message = error["msg"]
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _suggestion(loc: list[str]) -> str:
    section: type[BaseModel] = Config
    for part in loc[:-1]:
        field = section.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return "; remove it"
        section = annotation
    known = [name for name in section.model_fields if name != "path"]
    close = difflib.get_close_matches(loc[-1], known, n=1)
    return f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
