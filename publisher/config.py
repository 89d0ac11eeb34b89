"""Configuration: ``config.toml`` read with tomllib into strict pydantic models.

Every section forbids unknown keys, and every problem is reported with its key
path (``feeds.entries: must be at least 1``).  Paths are relative to the
config file.  Secrets never live here: a setting that needs one names the
environment variable that holds it.
"""

from __future__ import annotations

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


def _cron(value: str) -> str:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a cron expression ({exc}); write e.g. '0 16 * * fri'") from exc
    return value


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {value!r}; use an IANA name such as 'Europe/London'") from exc
    return value


def _address(value: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value, check_deliverability=False, allow_smtputf8=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not an email address: {exc}") from exc


def _env_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(f"{value!r} must be the NAME of an environment variable (the secret itself never goes here)")
    return value


class ListConfig(_Section):
    """One mailing list: which posts, when, from whom, through which provider."""

    title: str
    description: str | None = None
    kinds: list[str] = Field(default_factory=list)
    authors: list[str] = Field(default_factory=list)
    schedule: str = Field(description="cron expression, e.g. '0 16 * * fri'")
    timezone: str = "UTC"
    from_address: str
    from_name: str | None = None
    reply_to: str | None = None
    subject: str = "{{ list.title }}: {{ posts | length }} new post{{ '' if posts | length == 1 else 's' }}"
    templates: Path | None = None
    provider: str = "outbox"
    max_posts: Annotated[int, Field(ge=1, le=500)] = 20
    grace: int | str = 12 * 3600  # a digest missed while the daemon was down still goes out this late

    _schedule = field_validator("schedule")(_cron)
    _timezone = field_validator("timezone")(_zone)
    _from = field_validator("from_address")(_address)

    @field_validator("reply_to")
    @classmethod
    def _reply_to(cls, value: str | None) -> str | None:
        return None if value is None else _address(value)

    @field_validator("grace")
    @classmethod
    def _grace(cls, value: int | str) -> int:
        return parse_duration(value)

    @field_validator("title", "from_name", "subject")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise ValueError("must be one line with no control characters")
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class OutboxProvider(_Section):
    """Each message written as an .eml file: the embedded default, no account needed."""

    type: Literal["outbox"]
    directory: Path = Path("outbox")


class SmtpProvider(_Section):
    type: Literal["smtp"]
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    verify: StrictBool = True
    ca_file: Path | None = None
    username: str | None = None
    password_env: str | None = None
    pool: Annotated[int, Field(ge=1, le=64)] = 4
    per_connection: Annotated[int, Field(ge=1)] = 1000
    rate: Annotated[float, Field(ge=0)] = 0.0  # messages per second over the pool; 0 = no limit
    timeout: Annotated[float, Field(gt=0)] = 30.0
    local_hostname: str | None = None

    _password_env = field_validator("password_env")(lambda v: None if v is None else _env_name(v))


class _HttpProvider(_Section):
    base_url: str
    timeout: Annotated[float, Field(gt=0)] = 30.0
    rate: Annotated[float, Field(ge=0)] = 0.0  # API calls per second; 0 = no limit

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return _absolute_url(value)


class MailgunProvider(_HttpProvider):
    type: Literal["mailgun"]
    domain: str
    api_key_env: str = "MAILGUN_API_KEY"
    base_url: str = "https://api.mailgun.net/"
    batch: Annotated[int, Field(ge=1, le=1000)] = 1000

    _key = field_validator("api_key_env")(_env_name)


class PostmarkProvider(_HttpProvider):
    type: Literal["postmark"]
    server_token_env: str = "POSTMARK_SERVER_TOKEN"
    base_url: str = "https://api.postmarkapp.com/"
    message_stream: str = "broadcast"
    batch: Annotated[int, Field(ge=1, le=500)] = 500

    _key = field_validator("server_token_env")(_env_name)


class SendgridProvider(_HttpProvider):
    type: Literal["sendgrid"]
    api_key_env: str = "SENDGRID_API_KEY"
    base_url: str = "https://api.sendgrid.com/"
    batch: Annotated[int, Field(ge=1, le=1000)] = 1000

    _key = field_validator("api_key_env")(_env_name)


ProviderConfig = Annotated[
    OutboxProvider | SmtpProvider | MailgunProvider | PostmarkProvider | SendgridProvider,
    Field(discriminator="type"),
]
PROVIDER_TYPES = ("outbox", "smtp", "mailgun", "postmark", "sendgrid")


class DkimConfig(_Section):
    selector: str
    domain: str
    key_file: Path  # PEM private key: RSA (rsa-sha256) or Ed25519 (ed25519-sha256)


class MailConfig(_Section):
    secret_env: str = "PUBLISHER_SECRET"  # the server secret that signs links; a key file in state/ when unset
    unsubscribe_mailto: str | None = None
    message_id_domain: str | None = None  # default: the site's domain
    dkim: DkimConfig | None = None

    _secret = field_validator("secret_env")(_env_name)

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _mailto(cls, value: str | None) -> str | None:
        return None if value is None else _address(value)


class WebConfig(_Section):
    """The subscriber web service (``publisher serve``, or inside ``publisher run`` with ``serve = true``)."""

    url: str | None = None  # where the subscriber pages are served publicly; default: site.url + "newsletter/"
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    serve: StrictBool = False  # `publisher run` serves the pages beside the scheduler, in one process
    templates: Path | None = None  # a folder of page templates that override the built-in ones
    confirm_within: int | str = 48 * 3600  # how long a confirmation link works
    max_body: Annotated[int, Field(ge=1024, le=10 * 1024 * 1024)] = 64 * 1024  # bytes per request
    signups_per_address: Annotated[int, Field(ge=1)] = 3  # confirmation mails per address per hour
    signups_per_client: Annotated[int, Field(ge=1)] = 20  # sign-ups per client IP per hour
    soft_bounce_limit: Annotated[int, Field(ge=1, le=100)] = 3  # soft bounces before an address counts as bounced
    forwarded_allow_ips: list[str] = Field(default_factory=list)  # proxies whose X-Forwarded-For is trusted
    mailgun_signing_key_env: str = "MAILGUN_WEBHOOK_SIGNING_KEY"
    postmark_webhook_user_env: str = "POSTMARK_WEBHOOK_USER"
    postmark_webhook_password_env: str = "POSTMARK_WEBHOOK_PASSWORD"
    sendgrid_verification_key_env: str = "SENDGRID_WEBHOOK_VERIFICATION_KEY"

    _envs = field_validator("mailgun_signing_key_env", "postmark_webhook_user_env", "postmark_webhook_password_env",
                            "sendgrid_verification_key_env")(_env_name)

    @field_validator("confirm_within")
    @classmethod
    def _confirm_within(cls, value: int | str) -> int:
        return parse_duration(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _absolute_url(value)


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
    lists: dict[str, ListConfig] = Field(default_factory=dict)
    providers: dict[str, ProviderConfig] = Field(default_factory=lambda: {"outbox": OutboxProvider(type="outbox")})
    mail: MailConfig = Field(default_factory=MailConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    path: Path = Field(default=Path(DEFAULT_CONFIG), exclude=True)

    @field_validator("lists")
    @classmethod
    def _list_names(cls, value: dict[str, ListConfig]) -> dict[str, ListConfig]:
        for name in value:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
                raise ValueError(f"list name {name!r}: use lower-case letters, digits and '-'")
        return value

    @model_validator(mode="after")
    def _providers_exist(self) -> Config:
        for name, mailing_list in self.lists.items():
            if mailing_list.provider not in self.providers:
                known = ", ".join(sorted(self.providers)) or "none"
                raise ValueError(f"lists.{name}.provider: no [providers.{mailing_list.provider}] section (known: {known})")
        return self

    @property
    def web_url(self) -> str:
        """The subscriber pages' base URL (unsubscribe, confirm, archive), ending in '/'."""
        return self.web.url or self.site.url + "newsletter/"

    @property
    def message_id_domain(self) -> str:
        return self.mail.message_id_domain or (urlsplit(self.site.url).hostname or "localhost")

    def mailing_list(self, name: str) -> ListConfig:
        """The list called ``name``, or a ConfigError naming the lists there are."""
        try:
            return self.lists[name]
        except KeyError:
            known = ", ".join(sorted(self.lists)) or "none configured"
            raise ConfigError(self.path, [f"lists.{name}: no such list (known: {known})"]) from None

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
        loc = _location(error["loc"])
        key = ".".join(loc) or "(top level)"
        problems.append(_one_line(f"{key}: {_describe(error, loc, data)}"))
    return list(dict.fromkeys(problems))


def _one_line(text: str) -> str:
    """Control characters a bad value carried into a message, shown escaped: a problem is one line."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]", lambda m: repr(m.group())[1:-1], text)


def _location(raw: tuple[Any, ...]) -> list[str]:
    loc: list[str] = []
    for part in raw:
        provider_tag = loc[:1] == ["providers"] and len(loc) == 2 and part in PROVIDER_TYPES
        if not (_is_union_tag(part) or provider_tag):
            loc.append(str(part))
    return loc


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
    import difflib  # only for a bad key: not on every load

    close = difflib.get_close_matches(loc[-1], known, n=1)
    return f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
