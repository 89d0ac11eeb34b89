"""A post as publisher sees it, and reading one from a file.

Two source formats are read:

* the soup snip (``NAME.snip.markdown`` / ``NAME.snip.html``): the body, a
  blank line, then a trailing block of YAML attributes written ``:key: value``;
* Markdown (or HTML) with YAML front matter between ``---`` lines, as Jekyll,
  Hugo and Pelican users write it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Post:
    path: str  # posix path relative to the posts root, e.g. "weeknotes/week-473.snip.markdown"
    name: str  # the file name up to its first dot: "week-473"
    body_format: str  # "markdown" or "html"
    body: str
    title: str
    created_at: datetime  # timezone-aware
    updated_at: datetime  # timezone-aware
    author: str | None = None
    kind: str | None = None
    tags: tuple[str, ...] = ()
    draft: bool = False
    erb: bool = False
    dated_by_mtime: bool = False  # no date in the file: the file's mtime was used
    attributes: dict[str, object] = field(default_factory=dict)  # every attribute, JSON-safe
