"""A plain snapshot of the config values a build reads, kept in the build stamp.

``publisher build`` with a few changed posts reads its settings from here
instead of validating ``config.toml`` with pydantic (see :mod:`publisher.quickbuild`).
The snapshot is taken from a validated :class:`publisher.config.Config` at the
end of every full build and is used only while the config file's bytes hash and
the publisher version are those it was taken with.

A :class:`Snapshot` answers the same attribute paths as the Config for
everything the build reads (``config.site.url``, ``config.feeds.entries``,
``config.posts_root``...); :data:`ATTRIBUTES` lists them, and a test holds the
two equal.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from publisher import __version__

if TYPE_CHECKING:
    from publisher.config import Config

_SECTIONS = {
    "site": ("title", "url", "description", "language", "timezone", "author", "post_url", "author_url", "assets",
             "icon", "authors"),
    "posts": ("folders", "kinds"),
    "render": ("summary", "summary_length"),
    "feeds": ("entries", "formats", "entry_id", "stylesheet", "per_kind", "per_author"),
    "log": ("level",),
}
_PATHS = ("path", "posts_root", "output_dir", "state_dir")
_TEXTS = ("database_url", "feeds_url")

#: Every attribute path a Snapshot answers, as the Config does.
ATTRIBUTES = (*(f"{section}.{name}" for section, names in _SECTIONS.items() for name in names),
              "site.tz", *_PATHS, *_TEXTS, "template_dirs")


def take(config: Config | Snapshot) -> dict[str, Any]:
    """The JSON-safe values of ``config`` that a build reads, with the publisher version."""
    if isinstance(config, Snapshot):
        return config.values
    values: dict[str, Any] = {section: {name: _plain(getattr(getattr(config, section), name)) for name in names}
                              for section, names in _SECTIONS.items()}
    values.update({name: str(getattr(config, name)) for name in (*_PATHS, *_TEXTS)})
    values["template_dirs"] = [str(path) for path in config.template_dirs]
    values["version"] = __version__
    return values


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    return list(value) if isinstance(value, (list, tuple)) else value


class Snapshot:
    """The build's view of a config, from :func:`take`'s values (KeyError when they are incomplete)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        for section, names in _SECTIONS.items():
            setattr(self, section, SimpleNamespace(**{name: values[section][name] for name in names}))
        from zoneinfo import ZoneInfo  # not on import: a build with nothing changed only asks usable()

        self.site.tz = ZoneInfo(values["site"]["timezone"])
        for name in _PATHS:
            setattr(self, name, Path(values[name]))
        self.database_url: str = values["database_url"]
        self.feeds_url: str = values["feeds_url"]
        self.template_dirs = [Path(path) for path in values["template_dirs"]]


def usable(values: Any, config_path: Path) -> bool:
    """True when ``values`` is a snapshot this publisher took of the config file at ``config_path``."""
    return isinstance(values, dict) and values.get("version") == __version__ and values.get("path") == str(config_path)
