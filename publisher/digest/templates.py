"""The digest templates: loading (list folder, then [render] templates, then built-in), rendering, errors.

Autoescape is on for ``*.html.j2`` and off for text templates and the subject;
``trim_blocks`` and ``lstrip_blocks`` are on (a line holding only a block tag
leaves no blank line); StrictUndefined everywhere, so a misspelt variable is an error naming the
template and line rather than an empty gap in thousands of emails.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import jinja2

from publisher.config import Config, ListConfig
from publisher.errors import DigestError
from publisher.resources import template_dir

HTML_TEMPLATE = "digest.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _autoescape(name: str | None) -> bool:
    return name is not None and name.endswith((".html.j2", ".html", ".htm"))


def search_path(config: Config, mailing_list: ListConfig) -> list[Path]:
    own = [config.resolve(mailing_list.templates)] if mailing_list.templates else []
    return [*own, *config.template_dirs, template_dir()]


def environment(config: Config, mailing_list: ListConfig) -> jinja2.Environment:
    loader = jinja2.FileSystemLoader([str(path) for path in search_path(config, mailing_list)])
    return jinja2.Environment(loader=loader, autoescape=_autoescape, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, auto_reload=False)


def render(env: jinja2.Environment, list_name: str, name: str, context: dict[str, Any]) -> str:
    """Render the template ``name``; any template problem becomes a one-line DigestError naming it."""
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateError as exc:
        raise DigestError(list_name, _problem(exc, name)) from exc


def render_subject(env: jinja2.Environment, list_name: str, source: str, context: dict[str, Any]) -> str:
    """The subject line from the list's ``subject`` template: one line, no control characters."""
    try:
        text = env.from_string(source).render(context)
    except jinja2.TemplateError as exc:
        raise DigestError(list_name, _problem(exc, f"lists.{list_name}.subject")) from exc
    return " ".join(_CONTROL.sub(" ", text).split())


def _problem(exc: jinja2.TemplateError, name: str) -> str:
    where, line = _location(exc, name)
    at = f"{where} line {line}" if line else where
    message = " ".join(str(exc.message or exc).split()) if not isinstance(exc, jinja2.TemplateNotFound) else \
        f"template {exc.name} not found"
    return f"{at}: {message}; fix the template"


def _location(exc: jinja2.TemplateError, name: str) -> tuple[str, int | None]:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return (exc.filename or exc.name or name), exc.lineno
    frame = None
    tb = exc.__traceback__ or sys.exc_info()[2]
    while tb is not None:  # Jinja rewrites traceback frames to point at template lines
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2") or filename == "<template>":
            frame = (filename, tb.tb_lineno)
        tb = tb.tb_next
    if frame is None:
        return name, None
    return (name if frame[0] == "<template>" else frame[0]), frame[1]
