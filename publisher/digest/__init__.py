"""Email digests: choosing a list's new posts, rendering them once, keeping a web copy.

Importing this package is cheap; the composer (Jinja2, css-inline) loads on first use::

    from publisher.digest import Composer
    composed = Composer(config, store).compose("weekly", scheduled_for)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from publisher.digest.compose import Composed, Composer

__all__ = ["Composed", "Composer"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from publisher.digest import compose

        return getattr(compose, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
