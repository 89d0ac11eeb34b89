"""Where the files shipped with publisher live (templates, the feed stylesheet)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def template_dir() -> Path:
    """The built-in ``templates/`` folder.

    In a wheel it is packaged as ``publisher/templates``; in a source checkout
    (including editable installs) it is the top-level ``templates/`` folder.
    """
    packaged = _PACKAGE / "templates"
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent / "templates"
