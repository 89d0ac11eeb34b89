"""Rendering a post's body to HTML with absolute URLs, and its summary.

A :class:`Renderer` is built once per build and renders many posts:

1. ERB tags (only in ``:erb: true`` posts) become placeholder tokens; the
   helpers ``by``, ``image_tag`` and ``image_path`` (and any other macro an
   operator adds) are rendered by the Jinja macros of ``shortcodes.html.j2``,
   every other tag is removed with a warning (see :mod:`publisher.erb`);
2. Markdown bodies are converted with Python-Markdown (``extra`` and
   ``sane_lists``); HTML bodies pass through;
3. the shortcodes' output replaces the tokens;
4. every URL is made absolute against the post's own URL
   (:mod:`publisher.urls`), and the summary is taken (:mod:`publisher.summary`).

Post bodies are never evaluated as templates and ERB code is never run: a
body's ``{{ x }}`` comes out literally, and no ``<%`` survives as markup.
A Renderer is not thread-safe (it reuses one Markdown instance).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin, urlsplit

from publisher import erb
from publisher.errors import RenderError
from publisher.resources import template_dir
from publisher.summary import MODES, summarize
from publisher.urls import absolute_url, absolutize

if TYPE_CHECKING:
    from publisher.posts import Post

log = logging.getLogger(__name__)

SHORTCODES_TEMPLATE = "shortcodes.html.j2"
MARKDOWN_EXTENSIONS = ("extra", "sane_lists")
_IMAGE_OPTION = re.compile(r"(?:width|height|style|title|class|id|loading|decoding|align|border|data-[a-z0-9-]+)\Z")
_SIZE = re.compile(r"(\d+)(?:x(\d+))?\Z")

Arguments = tuple[tuple[Any, ...], dict[str, Any]]


class _BadArguments(ValueError):
    """A known helper was called with arguments it can't use."""


@dataclass(frozen=True, slots=True)
class Rendered:
    html: str  # the full body as HTML, every URL absolute
    summary: str  # HTML summary, every URL absolute


class Renderer:
    """Renders post bodies; build one per build, call :meth:`render` per post."""

    def __init__(
        self,
        *,
        site_url: str,
        asset_base_url: str,
        author_url: str = "/{author}",
        authors: Mapping[str, str] | None = None,
        template_dirs: Sequence[Path] = (),
        summary: str = "paragraph",
        summary_length: int = 300,
    ) -> None:
        import markdown

        parts = urlsplit(site_url)
        if not parts.scheme or not parts.netloc:
            raise ValueError(f"site URL {site_url!r} is not absolute: write it as https://example.com/")
        if summary not in MODES or summary_length < 1:
            raise ValueError(f"summary {summary!r}/{summary_length}: use one of {', '.join(MODES)} and a length >= 1")
        self._site_url = site_url
        self._asset_base_url = _folder(urljoin(site_url, asset_base_url.strip()))
        self._author_url = author_url
        self._authors = dict(authors or {})
        self._summary = summary
        self._summary_length = summary_length
        self._markdown = markdown.Markdown(extensions=_markdown_extensions(), output_format="html")
        self._search_path = [*template_dirs, template_dir()]
        self._loaded_macros: dict[str, Callable[..., Any]] | None = None  # Jinja is imported at the first ERB tag
        self._prepare: dict[str, Callable[[erb.Call], Arguments]] = {
            "by": self._by_arguments,
            "image_tag": self._image_tag_arguments,
            "image_path": self._image_path_arguments,
        }

    @property
    def _macros(self) -> dict[str, Callable[..., Any]]:
        if self._loaded_macros is None:
            self._loaded_macros = _load_macros(self._search_path)
        return self._loaded_macros

    def render(self, post: Post, url: str) -> Rendered:
        """Render ``post``, whose own absolute URL is ``url``."""
        protected = erb.protect(post.body, lambda tag: self._shortcode(post, tag)) if post.erb else None
        body = protected.text if protected else post.body
        html = self._convert(post, body) if post.body_format == "markdown" else body
        if protected:
            html = erb.restore(html, protected)
        html = absolutize(html.replace("<%", "&lt;%"), url)
        return Rendered(html=html, summary=summarize(html, self._summary, self._summary_length))

    def _convert(self, post: Post, text: str) -> str:
        try:
            self._markdown.reset()
            return self._markdown.convert(text)
        except Exception as exc:  # Python-Markdown raises anything from its extensions
            raise RenderError(post.path, f"Markdown conversion failed ({exc}): check the body's syntax") from exc

    # ------------------------------------------------------------ shortcodes

    def _shortcode(self, post: Post, tag: erb.Tag) -> str | None:
        """The HTML for one ERB tag, or None (and a warning) to remove it."""
        try:
            call = tag.call()
        except erb.ErbSyntaxError:
            call = None
        macro = self._macros.get(call.name) if call else None
        if call is None or macro is None:
            log.warning("%s: unknown ERB helper %r removed", post.path, tag.describe())
            return None
        try:
            args, kwargs = self._prepare.get(call.name, _as_written)(call)
            return str(macro(*args, **kwargs))
        except (_BadArguments, TypeError) as exc:
            log.warning("%s: ERB helper %r removed: bad arguments (%s)", post.path, call.name, exc)
            return None
        except Exception as exc:  # a Jinja error in an operator's macro
            raise RenderError(post.path, f"shortcode {call.name!r} failed ({exc}): fix {SHORTCODES_TEMPLATE}") from exc

    def _by_arguments(self, call: erb.Call) -> Arguments:
        slug = _one_string(call)
        name = self._authors.get(slug) or " ".join(word[:1].upper() + word[1:] for word in re.split(r"[-_\s]+", slug))
        url = urljoin(self._site_url, self._author_url.replace("{author}", quote(slug)))
        return (), {"name": name, "url": url, "slug": slug}

    def _image_path_arguments(self, call: erb.Call) -> Arguments:
        return (), {"src": absolute_url(_one_string(call, options=False), self._asset_base_url)}

    def _image_tag_arguments(self, call: erb.Call) -> Arguments:
        src = absolute_url(_one_string(call, options=True), self._asset_base_url)
        options = dict(call.kwargs)
        alt = options.pop("alt", None)
        attributes = _size_attributes(options.pop("size", None))
        for key, value in options.items():
            key = key.replace("_", "-")
            if not _IMAGE_OPTION.match(key):
                raise _BadArguments(f"option {key!r} is not supported")
            if value is not None and value is not False:
                attributes[key] = key if value is True else str(value)
        return (), {"src": src, "alt": "" if alt is None else str(alt), "attributes": attributes}


def warm_up() -> None:
    """Import what a Renderer imports (a helper process that renders later does it while it waits); not Jinja,
    which only a post with ERB tags needs."""
    import markdown  # noqa: F401

    _markdown_extensions()


def _markdown_extensions() -> list[Any]:
    """:data:`MARKDOWN_EXTENSIONS` as instances ("extra" as the extensions it stands for, in its order), so that
    Python-Markdown does not look each name up among every installed package's entry points (~15 ms a process)."""
    import importlib

    from markdown.extensions import extra

    names = [name for wanted in MARKDOWN_EXTENSIONS for name in (extra.extensions if wanted == "extra" else [wanted])]
    return [importlib.import_module(f"markdown.extensions.{name}").makeExtension() for name in names]


def _one_string(call: erb.Call, options: bool = False) -> str:
    if len(call.args) != 1 or not isinstance(call.args[0], str) or not call.args[0].strip():
        raise _BadArguments("expected one non-empty string")
    if call.kwargs and not options:
        raise _BadArguments("takes no options")
    return call.args[0].strip()


def _size_attributes(size: object) -> dict[str, str]:
    """Rails' ``size: '40x20'`` (or ``'40'``, or ``40``) as width and height."""
    if size is None:
        return {}
    match = _SIZE.match(str(size))
    if match is None:
        raise _BadArguments(f"size {size!r} is not WIDTHxHEIGHT")
    return {"width": match.group(1), "height": match.group(2) or match.group(1)}


def _as_written(call: erb.Call) -> Arguments:
    return call.args, dict(call.kwargs)


def _folder(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _load_macros(search_path: Sequence[Path]) -> dict[str, Callable[..., Any]]:
    """The macros of the first ``shortcodes.html.j2`` found on ``search_path``."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(path) for path in search_path]),
        autoescape=True,
        keep_trailing_newline=False,
    )
    try:
        module = environment.get_template(SHORTCODES_TEMPLATE).module
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or SHORTCODES_TEMPLATE
        raise RenderError(where, f"line {exc.lineno}: {exc.message}: fix the template") from exc
    except jinja2.TemplateError as exc:
        raise RenderError(SHORTCODES_TEMPLATE, f"{exc}: check the template folders") from exc
    return {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, jinja2.runtime.Macro) and not name.startswith("_")
    }
