"""The page and mail templates of the web service, and its static files.

Search path (the first folder holding a name wins): ``[web] templates``, then
``<folder>/web`` for each ``[render] templates`` folder, then the built-in
``templates/web/``.  Static files (the stylesheet) live in ``static/`` below any
of these and are looked up the same way.  A template may be named with or
without a ``web/`` prefix (``web/base.html.j2`` is ``base.html.j2``).  Autoescape is on for ``*.html.j2``;
StrictUndefined everywhere.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from publisher.resources import template_dir

STATIC_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,80}\.(css|svg|png|ico|woff2)")
STATIC_TYPES = {"css": "text/css; charset=utf-8", "svg": "image/svg+xml", "png": "image/png",
                "ico": "image/x-icon", "woff2": "font/woff2"}


def search_path(config: Any) -> list[Path]:
    own = [config.resolve(config.web.templates)] if config.web.templates else []
    return [*own, *(Path(folder) / "web" for folder in config.template_dirs), template_dir() / "web"]


def _autoescape(name: str | None) -> bool:
    return name is not None and name.endswith((".html.j2", ".html"))


def environment(config: Any) -> Any:
    import jinja2

    folders = jinja2.FileSystemLoader([str(path) for path in search_path(config)])
    # "base.html.j2" and "web/base.html.j2" name the same template, from the same search path.
    loader = jinja2.ChoiceLoader([folders, jinja2.PrefixLoader({"web": folders})])
    return jinja2.Environment(loader=loader, autoescape=_autoescape, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, auto_reload=False)


@dataclass(frozen=True, slots=True)
class StaticFile:
    data: bytes
    media_type: str
    version: str  # a short content hash, for cache-busting URLs


class StaticFiles:
    """Static files found on the template search path, read once."""

    def __init__(self, config: Any) -> None:
        self.folders = [folder / "static" for folder in search_path(config)]
        self._cache: dict[str, StaticFile | None] = {}

    def get(self, name: str) -> StaticFile | None:
        """The file called ``name`` (a plain name, no folders), or None."""
        if not STATIC_NAME.fullmatch(name):
            return None
        if name not in self._cache:
            self._cache[name] = self._find(name)
        return self._cache[name]

    def _find(self, name: str) -> StaticFile | None:
        for folder in self.folders:
            path = folder / name
            if path.is_file():
                data = path.read_bytes()
                kind = STATIC_TYPES[name.rsplit(".", 1)[1]]
                return StaticFile(data, kind, hashlib.sha256(data).hexdigest()[:12])
        return None
