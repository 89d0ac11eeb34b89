"""Making post HTML safe to syndicate.

Feed readers and mail clients strip scripts, frames and unknown attributes, and
the W3C Feed Validation Service warns about each one.  So the HTML that goes
into feeds keeps only well-known elements and attributes: scripts, styles and
document-level elements go (with their content); frames and embedded objects
become a plain link to what they showed; event handlers and other unknown
attributes are dropped; unknown elements lose their tags but keep their text;
``style`` keeps only simple, harmless declarations.
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

DROP_WITH_CONTENT = frozenset("script style template title head noscript xmp plaintext svg math".split())
HTML_ELEMENTS = frozenset(
    """a abbr acronym address area article aside audio b bdi bdo big blockquote br button caption center
    cite code col colgroup data dd del details dfn div dl dt em figcaption figure font footer h1 h2 h3
    h4 h5 h6 header hgroup hr i img ins kbd label legend li main map mark nav ol optgroup option p
    picture pre q rp rt ruby s samp section small source span strike strong sub summary sup table
    tbody td tfoot th thead time tr track tt u ul var video wbr""".split()
)
EMBEDS = {"iframe": "src", "frame": "src", "embed": "src", "object": "data", "applet": "code"}
SAFE_ATTRIBUTES = frozenset(
    """abbr align alt border cellpadding cellspacing cite class colspan datetime dir download headers
    height href hreflang id kind label lang loop media muted name playsinline poster preload rel
    reversed rowspan scope sizes span src srclang srcset start summary target title type valign value
    width""".split()
)
SAFE_CSS = frozenset(
    """width height text-align float clear vertical-align color font-weight font-style font-size
    white-space display line-height""".split()
)
_CSS_VALUE = re.compile(r"^[#\w\s.%,()!-]+$")
VOID = frozenset("area br col hr img input source track wbr".split())


def clean_style(style: str) -> str:
    """Keep the declarations of simple properties with simple values; drop the rest."""
    kept = []
    for declaration in style.split(";"):
        prop, _, value = declaration.partition(":")
        prop, value = prop.strip().lower(), value.strip()
        if prop in SAFE_CSS and value and _CSS_VALUE.match(value) and "url" not in value.lower():
            kept.append(f"{prop}: {value}")
    return "; ".join(kept)


class _Sanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self.skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self.get_starttag_text() or "", closed=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self.get_starttag_text() or "", closed=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], raw: str, closed: bool) -> None:
        if self.skipping:
            if tag == self.skipping[-1] and not closed:
                self.skipping.append(tag)
            return
        if tag in DROP_WITH_CONTENT:
            if not closed:
                self.skipping.append(tag)
            return
        if tag in EMBEDS:
            self._link_to(dict(attrs).get(EMBEDS[tag]))
            return
        if tag in HTML_ELEMENTS:
            self.out.append(_tag(tag, attrs, closed))

    def _link_to(self, url: str | None) -> None:
        if url and re.match(r"^https?://", url.strip()):
            url = escape(url.strip())
            self.out.append(f'<a href="{url}">{url}</a>')

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
            return
        if tag in HTML_ELEMENTS and tag not in VOID:
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(escape(data, quote=False) if "<" in data or ">" in data else data)

    def handle_entityref(self, name: str) -> None:
        if not self.skipping:
            self.out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        if not self.skipping:
            self.out.append(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        return None  # comments (and conditional comments) are not content


def _tag(tag: str, attrs: list[tuple[str, str | None]], closed: bool) -> str:
    parts = [tag]
    for name, value in attrs:
        if name == "style" and value:
            value = clean_style(value)
            if not value:
                continue
        elif name not in SAFE_ATTRIBUTES and not name.startswith("data-"):
            continue
        parts.append(name if value is None else f'{name}="{escape(value)}"')
    end = " />" if closed and tag in VOID else ">"
    return f"<{' '.join(parts)}{end}" + ("" if not closed or tag in VOID else f"</{tag}>")


def sanitize(html: str) -> str:
    """``html`` with only safe elements and attributes (text, entities and structure otherwise kept)."""
    parser = _Sanitizer()
    parser.feed(html)
    parser.close()
    return "".join(parser.out)
