"""A checker of the W3C Feed Validation Service's rules, for the feeds publisher writes.

The W3C service (validator.w3.org/feed) cannot be reached from the tests, so this
module re-states, from a reading of its source and of the specifications (RFC 4287,
the RSS 2.0 specification and the RSS Best Practices Profile, JSON Feed 1.1), the
rules that apply to documents like ours.  It is independent code, not a port.

``check_atom``, ``check_rss`` and ``check_json`` return one line per problem:
the name of the validator's message class (``MissingSelf``, ``DuplicateUpdated``,
``ContainsRelRef`` ...) then a colon and the details.  Errors and warnings are both
reported (the service counts both against a feed); its "info" notes (best-practice
hints such as a missing language) are not.  A few rules are stricter than the
service, marked "house rule" in the message: every URL absolute, exactly one
alternate link per entry, an author even on an empty Atom feed (RFC 4287 4.1.1).

An Atom document is also validated against RFC 4287's RELAX NG schema
(tests/fixtures/feeds/atom.rng); what it rejects is reported as "RelaxNG: ...".

JSON Feed has no W3C validator: ``check_json`` checks the JSON Feed 1.1 rules,
with message names in the same style.

The vocabularies below (HTML elements and attributes the validator accepts, CSS
properties, link relations, known namespaces) mirror the lists the validator
judges by, so that its security warnings can be predicted.
"""

from __future__ import annotations

import functools
import json
import re
import time
import unicodedata
from datetime import datetime
from email.utils import getaddresses, mktime_tz, parsedate_tz
from html.entities import name2codepoint
from pathlib import Path
from urllib.parse import unquote, urlsplit

import html5lib
from html5lib.html5parser import ParseError
from lxml import etree

ATOM_NS = "http://www.w3.org/2005/Atom"
XHTML_NS = "http://www.w3.org/1999/xhtml"
XML_NS = "http://www.w3.org/XML/1998/namespace"
A = "{%s}" % ATOM_NS
RNG_PATH = Path(__file__).parent / "fixtures" / "feeds" / "atom.rng"

# --------------------------------------------------------------------------- vocabularies

# Namespaces the validator knows, with the prefix it expects for each (a subset of
# its table: those a blog feed might plausibly use).
KNOWN_NAMESPACES = {
    "http://www.w3.org/2005/Atom": "atom",
    "http://purl.org/rss/1.0/modules/content/": "content",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://purl.org/dc/terms/": "dcterms",
    "http://www.w3.org/1999/xhtml": "xhtml",
    "http://www.w3.org/XML/1998/namespace": "xml",
    "http://www.itunes.com/dtds/podcast-1.0.dtd": "itunes",
    "http://search.yahoo.com/mrss/": "media",
    "http://www.georss.org/georss": "georss",
    "http://purl.org/syndication/thread/1.0": "thr",
    "http://purl.org/syndication/history/1.0": "fh",
    "http://wellformedweb.org/CommentAPI/": "wfw",
    "http://purl.org/rss/1.0/modules/slash/": "slash",
    "http://purl.org/rss/1.0/modules/syndication/": "sy",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf",
    "http://www.w3.org/2000/01/rdf-schema#": "rdfs",
    "http://xmlns.com/foaf/0.1/": "foaf",
    "http://www.w3.org/2007/app": "app",
    "http://a9.com/-/spec/opensearch/1.1/": "opensearch",
    "http://rssnamespace.org/feedburner/ext/1.0": "feedburner",
    "http://www.w3.org/2000/svg": "svg",
    "http://www.w3.org/1998/Math/MathML": "mathml",
    "http://www.w3.org/1999/xlink": "xlink",
}
KNOWN_PREFIXES = {prefix: uri for uri, prefix in KNOWN_NAMESPACES.items()}

# Link relations the validator accepts without a warning (others must be full URIs).
ATOM_LINK_RELS = frozenset(
    "alternate related self enclosure via current first last next previous next-archive prev-archive "
    "describedby edit edit-media hub license payment replies search service up".split()
)
FEED_HISTORY_RELS = frozenset("current first last next previous next-archive prev-archive".split())

# URI schemes registered with IANA (the ones a feed may meet).
IANA_SCHEMES = frozenset(
    "http https ftp mailto tag urn data file news nntp telnet tel fax sip sips xmpp im pres ldap "
    "imap pop dav dns info crid go rtsp snmp tftp cid mid tv z39.50r z39.50s gopher wais".split()
)

# Every HTML element name the validator recognises, and those of them it calls a security risk.
HTML_ELEMENTS = frozenset(
    """a abbr acronym address applet area article aside audio b base basefont bdi bdo big blockquote
    body br button canvas caption center cite code col colgroup command comment data datagrid datalist
    dd del details dfn dialog dir div dl dt em embed eventsource fieldset figcaption figure font footer
    form frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe img input ins isindex kbd
    label legend li link listing m main map mark menu meta meter nav noframes noscript object ol
    optgroup option output p param picture plaintext pre progress q rp rt ruby s samp script section
    select slot small source span strike strong style sub summary sup table tbody td template textarea
    tfoot th thead time title tr track tt u ul var video wbr xmp""".split()
)
UNSAFE_ELEMENTS = frozenset(
    """applet base basefont body comment embed frame frameset head html iframe isindex link listing
    meta noframes object param plaintext script slot style title xmp""".split()
)
# Attributes the validator accepts on HTML elements (besides data-*); "style" is checked apart.
SAFE_ATTRIBUTES = frozenset(
    """abbr accept accept-charset accesskey action align allow allowfullscreen allowpaymentrequest alt
    as autocapitalize autocomplete autofocus autoplay axis background balance bgcolor bgproperties
    border bordercolor bordercolordark bordercolorlight bottompadding cellpadding cellspacing ch
    challenge char charoff charset checked choff cite class clear color cols colspan compact
    contenteditable coords crossorigin data datafld datapagesize datasrc datetime decoding default
    delay dir dirname disabled download draggable dynsrc enctype end enterkeyhint face for form
    formenctype frame galleryimg gutter headers height hidden hidefocus high href hreflang hspace icon
    id inputmode is ismap itemid itemprop itemref itemscope itemtype keytype kind label lang
    leftspacing list loading longdesc loop loopcount loopend loopstart low lowsrc max maxlength media
    method min minlength multiple muted name nohref nonce noshade nowrap open optimum pattern ping
    placeholder playsinline point-size poster pqg preload prompt radiogroup readonly referrerpolicy
    rel repeat-max repeat-min replace required rev reversed rightspacing rows rowspan rules scope
    selected shape size sizes span spellcheck src srclang srcset start step summary suppress tabindex
    target template title toppadding translate type unselectable urn usemap valign value variable
    volume vrml vspace width wrap xml:lang xmlns""".split()
)
SAFE_CSS_PROPERTIES = frozenset(
    """azimuth background background-color border border-bottom border-bottom-color
    border-bottom-style border-bottom-width border-collapse border-color border-left border-left-color
    border-left-style border-left-width border-right border-right-color border-right-style
    border-right-width border-spacing border-style border-top border-top-color border-top-style
    border-top-width border-width clear color cursor direction display elevation float font
    font-family font-size font-style font-variant font-weight height letter-spacing line-height
    list-style-type margin margin-bottom margin-left margin-right margin-top overflow padding
    padding-bottom padding-left padding-right padding-top pause pause-after pause-before pitch
    pitch-range richness speak speak-header speak-numeral speak-punctuation speech-rate stress
    text-align text-decoration text-indent unicode-bidi vertical-align voice-family volume white-space
    width""".split()
)
SAFE_CSS_KEYWORDS = frozenset(
    """aqua auto black block blue bold both bottom brown center collapse dashed dotted fuchsia gray
    green !important italic left lime maroon medium none navy normal nowrap olive pointer purple red
    right solid silver teal top transparent underline white yellow""".split()
)
# HTML attributes holding URLs (srcset holds a list of them).
URL_ATTRIBUTES = frozenset("href src poster cite action formaction longdesc background usemap data".split())

RSS_CHANNEL_ELEMENTS = frozenset(
    """title link description language copyright managingEditor webMaster pubDate lastBuildDate
    category generator docs cloud ttl image rating textInput skipHours skipDays item""".split()
)
RSS_CHANNEL_SINGLETONS = frozenset(
    """title link description language copyright managingEditor webMaster pubDate lastBuildDate
    generator docs cloud ttl image rating textInput skipHours skipDays""".split()
)
RSS_ITEM_ELEMENTS = frozenset("title link description author category comments enclosure guid pubDate source".split())
RSS_ITEM_SINGLETONS = frozenset("title link description author comments guid pubDate source".split())
RSS_EXPECTED_ATTRIBUTES = {
    "rss": {"version"},
    "guid": {"isPermaLink"},
    "category": {"domain"},
    "enclosure": {"url", "length", "type"},
    "source": {"url"},
    "cloud": {"domain", "port", "path", "registerProcedure", "protocol"},
}

ATOM_FEED_ELEMENTS = frozenset(
    "author category contributor generator icon id link logo rights subtitle title updated entry".split()
)
ATOM_ENTRY_ELEMENTS = frozenset(
    "author category content contributor id link published rights source summary title updated".split()
)
ATOM_FEED_SINGLETONS = frozenset("generator icon id logo rights subtitle title updated".split())
ATOM_ENTRY_SINGLETONS = frozenset("content id published rights source summary title updated".split())
ATOM_EXPECTED_ATTRIBUTES = {
    "link": {"href", "rel", "type", "hreflang", "title", "length"},
    "category": {"term", "scheme", "label"},
    "content": {"type", "src"},
    "title": {"type"},
    "subtitle": {"type"},
    "summary": {"type"},
    "rights": {"type"},
    "generator": {"uri", "version"},
}

DC = "{http://purl.org/dc/elements/1.1/}"
CHANNEL_SYNONYMS = (
    ("managingEditor", DC + "creator"), ("category", DC + "subject"), ("pubDate", DC + "date"),
    ("language", DC + "language"), ("copyright", DC + "rights"), ("lastBuildDate", "{http://purl.org/dc/terms/}modified"),
)
ITEM_SYNONYMS = (
    ("author", DC + "creator"), ("category", DC + "subject"), ("pubDate", DC + "date"),
    ("guid", A + "id"), ("pubDate", A + "published"),
)

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
JSON_FEED_KEYS = frozenset(
    """version title home_page_url feed_url description user_comment next_url icon favicon authors
    author language expired hubs items""".split()
)
JSON_ITEM_KEYS = frozenset(
    """id url external_url title content_html content_text summary image banner_image date_published
    date_modified authors author tags language attachments""".split()
)

# --------------------------------------------------------------------------- patterns

URI_CHARS = r"[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,#]"
FULL_URI_RE = re.compile(r"^[a-zA-Z][0-9a-zA-Z+\-.]*:(//)?" + URI_CHARS + r"+$")
URI_REFERENCE_RE = re.compile(r"^([a-zA-Z][0-9a-zA-Z+\-.]*:)?/{0,2}(\[[0-9A-Fa-f:]+\])?" + URI_CHARS + r"*$")
TAG_CHARS = r"[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,]"
TAG_RE = re.compile(
    r"^tag:([a-z0-9\-._]+?@)?[a-z0-9.\-]+?,\d{4}(-\d{2}(-\d{2})?)?:" + TAG_CHARS + r"*(#" + TAG_CHARS + r"*)?$"
)
URN_RE = re.compile(r"^urn:[a-z0-9][a-z0-9-]{1,31}:([a-z0-9()+,.:=@;$_!*'\-]|%[0-9a-f]{2})+$", re.I)
UUID_URN_RE = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
HTTP_AUTHORITY_RE = re.compile(r"^\w+://[^/].*")
ABSOLUTE_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:")
MEDIA_TYPE_RE = re.compile(
    r'^[^\s()<>,;:\\"/\[\]?=]+/[^\s()<>,;:\\"/\[\]?=]+'
    r'(\s*;\s*[^\s()<>,;:\\"/\[\]?=]+=("(\\"|[^"])*"|[^\s()<>,;:\\"/\[\]?=]+))*$'
)
LANGUAGE_RE = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8})*$")
ADDR_SPEC_RE = re.compile(
    r"^[A-Z0-9_\-+.']+@(([0-9]{1,3}\.){3}|([A-Z0-9\-]+\.)+)[A-Z0-9][-A-Z0-9]*$", re.I
)
RFC3339_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*)?(Z|[+-]\d\d:\d\d)$")
MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
RFC2822_RE = re.compile(
    r"^((Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?\d\d? (" + MONTHS + r") \d{4} \d\d:\d\d(:\d\d)? "
    r"([+-]?\d\d[03]0|UT|GMT|EST|EDT|CST|CDT|MST|MDT|PST|PDT|Z)$"
)
RFC822_LOOSE_RE = re.compile(
    r"^((mon|tue|wed|thu|fri|sat|sun)\s*,\s*)?\d\d?\s+(" + MONTHS.lower() + r")\s+\d\d(\d\d)?\s+"
    r"\d\d:\d\d(:\d\d)?\s+([+-]\d{4}|ut|gmt|[ecmp][sd]t|[a-ik-z])?$"
)
END_TAG_RE = re.compile(r"</(\w+)>")
ENTITY_RE = re.compile(r"&(#?\w+)")
RSS_MARKUP_RE = re.compile(r"&#[x0-9]|<[/a-zA-Z]")
EMAIL_IN_TEXT_RE = re.compile(r"<[A-Z0-9_\-+.']+@[^>\s]+>", re.I)
DOUBLE_ENCODED_RE = re.compile("[\u00c2\u00c3][\u0080-\u00bf]")
BAD_CHARACTERS_RE = re.compile("[\u0080-\u009f\ufffd]")


# --------------------------------------------------------------------------- public API


def check_atom(data: bytes, url: str) -> list[str]:
    """The validator's errors and warnings for ``data``, an Atom feed served at ``url``."""
    doc = _Document(data, url)
    if doc.root is not None:
        _AtomChecker(doc).check()
    return doc.problems


def check_rss(data: bytes, url: str) -> list[str]:
    """The validator's errors and warnings for ``data``, an RSS 2.0 feed served at ``url``."""
    doc = _Document(data, url)
    if doc.root is not None:
        _RssChecker(doc).check()
    return doc.problems


def check_json(data: bytes, url: str) -> list[str]:
    """Problems with ``data`` as a JSON Feed 1.1 document served at ``url``."""
    return _JsonChecker(data, url).check()


def names(problems: list[str]) -> set[str]:
    """The message names in a list of problems ("MissingSelf: ..." -> "MissingSelf")."""
    return {problem.split(":", 1)[0] for problem in problems}


def canonical_uri(uri: str) -> str | None:
    """``uri`` normalised as RFC 3986 section 6.2.2 describes (case, percent-encoding,
    dot segments) plus the http(s) scheme rules (default port, empty path is "/");
    None if it is not a URI.  An id that differs from its canonical form draws a
    NonCanonicalURI warning."""
    match = re.match(r"^(([^:/?#]+):)?(//([^/?#]*))?([^?#]*)(\?([^#]*))?(#(.*))?$", uri)
    if not match or match.group(2) is None:
        return None
    scheme = match.group(2).lower()
    try:
        authority = match.group(4)
        path = match.group(5)
        if authority is not None:
            authority = _normal_authority(authority, scheme)
            path = "/".join(_normal_part(segment, _PCHAR) for segment in _remove_dot_segments(path).split("/"))
            path = path or "/"
        elif path.startswith("/"):
            path = "/".join(_normal_part(segment, _PCHAR) for segment in _remove_dot_segments(path).split("/"))
        else:
            path = _normal_part(path, _PCHAR + "/")
        query = None if match.group(6) is None else _normal_part(match.group(7), _PCHAR + "/?")
        fragment = None if match.group(8) is None else _normal_part(match.group(9), _PCHAR + "/?")
    except ValueError:
        return None
    result = scheme + ":" + ("" if authority is None else "//" + authority) + path
    result += "" if query is None else "?" + query
    return result + ("" if fragment is None else "#" + fragment)


# --------------------------------------------------------------------------- URI helpers

_UNRESERVED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
_PCHAR = "!$&'()*+,;=:@"
_DEFAULT_PORTS = {"http": "80", "https": "443", "ftp": "21"}


def _normal_part(text: str, allowed: str) -> str:
    """One URI component with percent-encoding normalised (decode unreserved, upper-case hex,
    encode what may not appear literally)."""
    out = []
    position = 0
    while position < len(text):
        char = text[position]
        if char == "%":
            octet = text[position + 1 : position + 3]
            if len(octet) != 2 or not all(c in "0123456789abcdefABCDEF" for c in octet):
                raise ValueError("bad percent-encoding")
            decoded = chr(int(octet, 16))
            out.append(decoded if decoded in _UNRESERVED else "%" + octet.upper())
            position += 3
            continue
        if char in _UNRESERVED or char in allowed:
            out.append(char)
        else:
            out.append("".join(f"%{b:02X}" for b in unicodedata.normalize("NFC", char).encode("utf-8")))
        position += 1
    return "".join(out)


def _normal_authority(authority: str, scheme: str) -> str:
    userinfo, at, host = authority.rpartition("@")
    host = host.lower()
    port_match = re.search(r":(\d*)$", host)
    if port_match:
        port = port_match.group(1)
        host = host[: port_match.start()]
        if port and port != _DEFAULT_PORTS.get(scheme):
            host += ":" + port
    if host.startswith("[") != host.endswith("]"):
        raise ValueError("bad IPv6 literal")
    return (userinfo + at if userinfo else "") + host


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4."""
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/".join(output)


def _as_uri(value: str) -> str:
    """An IRI written as a URI (non-ASCII characters percent-encoded as UTF-8)."""
    return "".join(c if ord(c) < 128 else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in value)


def uri_problem(value: str, *, full: bool, iri: bool = True) -> str | None:
    """The name of what is wrong with ``value`` as a URI (reference), or None.

    ``full``: it must be absolute; ``iri``: non-ASCII characters are allowed."""
    scheme = value.split(":", 1)[0].lower()
    if scheme == "tag":
        return None if TAG_RE.match(value) else "InvalidTAG"
    if scheme == "urn":
        if value.lower().startswith("urn:uuid:") and not UUID_URN_RE.match(value):
            return "InvalidUUID"
        return None if URN_RE.match(value) else "InvalidURN"
    checked = _as_uri(value) if iri else value
    if not (FULL_URI_RE if full else URI_REFERENCE_RE).match(checked):
        if any(ord(c) < 128 and not re.match(URI_CHARS, c) for c in value):
            return "InvalidUriChar"
        if not iri and any(ord(c) >= 128 for c in value):
            return "UriNotIri"
        return "InvalidFullLink" if full else ("InvalidIRI" if iri else "InvalidLink")
    if scheme in ("http", "https", "ftp") and not HTTP_AUTHORITY_RE.match(value):
        return "InvalidFullLink" if full else "InvalidLink"
    if ":" in value and scheme.isalpha() and scheme not in IANA_SCHEMES:
        return "SchemeNotIANARegistered"
    return None


def is_absolute(url: str) -> bool:
    return bool(ABSOLUTE_RE.match(url.strip()))


# --------------------------------------------------------------------------- dates


def rfc3339_problem(value: str) -> str | None:
    """InvalidRFC3339Date, ImplausibleDate (before 1990 or in the future) or None."""
    if not RFC3339_RE.match(value):
        return "InvalidRFC3339Date"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return "InvalidRFC3339Date"
    if parsed.year < 1990 or parsed.timestamp() > time.time() + 600:
        return "ImplausibleDate"
    return None


def rfc822_problem(value: str) -> str | None:
    """InvalidRFC2822Date, IncorrectDOW, ProblematicalRFC822Date, ImplausibleDate or None."""
    if not RFC2822_RE.match(value):
        loose = value
        while True:
            stripped = re.sub(r"\([^(]*?\)", " ", loose)
            if stripped == loose:
                break
            loose = stripped
        return "ProblematicalRFC822Date" if RFC822_LOOSE_RE.match(loose.strip().lower()) else "InvalidRFC2822Date"
    parsed = parsedate_tz(value)
    try:
        day = datetime(*parsed[:6])
    except (TypeError, ValueError):
        return "InvalidRFC2822Date"
    if "," in value and day.strftime("%a") != value[:3]:
        return "IncorrectDOW"
    if day.year < 1990 or mktime_tz(parsed) > time.time() + 600:
        return "ImplausibleDate"
    return None


# --------------------------------------------------------------------------- HTML


def html_problems(markup: str) -> list[tuple[str, str]]:
    """(name, detail) for what the validator dislikes in an HTML fragment, plus
    ContainsRelRef for every relative URL in it."""
    problems = []
    try:
        fragment = html5lib.HTMLParser(strict=True).parseFragment(markup)
    except ParseError as error:
        problems.append(("NotHtml", f"invalid HTML: {error}"))
        fragment = html5lib.HTMLParser().parseFragment(markup)
    for element in fragment.iter():
        if not isinstance(element.tag, str) or element.tag == "DOCUMENT_FRAGMENT":
            continue
        problems += _element_problems(element.tag.split("}")[-1], element.attrib)
    return problems


def _element_problems(tag: str, attributes) -> list[tuple[str, str]]:
    if tag.lower() not in HTML_ELEMENTS:
        return [("NotHtml", f"non-HTML element <{tag}>")]
    if tag.lower() in UNSAFE_ELEMENTS:
        return [("SecurityRisk", f"<{tag}> element")]
    problems = []
    for name, value in attributes.items():
        name = name.split("}")[-1].lower()
        if name == "style":
            problems += [("DangerousStyleAttr", f"style={value!r}")] if style_is_dangerous(value) else []
        elif name not in SAFE_ATTRIBUTES and not name.startswith("data-"):
            problems.append(("SecurityRiskAttr", f"{name} attribute on <{tag}>"))
        if name in URL_ATTRIBUTES or name == "srcset":
            problems += _relative_references(tag, name, value)
    return problems


def _relative_references(tag: str, name: str, value: str) -> list[tuple[str, str]]:
    urls = [part.split()[0] for part in value.split(",") if part.split()] if name == "srcset" else [value]
    return [("ContainsRelRef", f"<{tag} {name}={url!r}> is relative") for url in urls if not is_absolute(url)]


def style_is_dangerous(style: str) -> bool:
    """True unless ``style`` is plain declarations of safe properties with simple values."""
    if not re.match(r"""^([:,;#%.\sa-zA-Z0-9!]|\w-\w|'[\s\w]+'|"[\s\w]+"|\([\d,\s]+\))*$""", style):
        return True
    if not re.match(r"^(\s*[-\w]+\s*:\s*[^:;]*(;|$))*$", style):
        return True
    for prop, value in re.findall(r"([-\w]+)\s*:\s*([^:;]*)", style.lower()):
        if prop not in SAFE_CSS_PROPERTIES:
            return True
        if prop.split("-")[0] in ("background", "border", "margin", "padding"):
            simple = re.compile(r"^(#[0-9a-f]+|rgb\(\d+%?,\d*%?,?\d*%?\)?|\d?\.?\d?\d(cm|em|ex|in|mm|pc|pt|px|%|,|\))?)$")
            if any(word not in SAFE_CSS_KEYWORDS and not simple.match(word) for word in value.split()):
                return True
    return False


def looks_double_encoded(text: str) -> bool:
    """Whether ``text`` reads as UTF-8 bytes decoded as Latin-1 ("cafÃ©"), as the validator guesses."""
    if not DOUBLE_ENCODED_RE.search(text):
        return False
    try:
        text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return False
    return True


# --------------------------------------------------------------------------- documents


class _Document:
    """A parsed XML feed and the problems found in it so far."""

    def __init__(self, data: bytes, url: str) -> None:
        self.url = url
        self.problems: list[str] = []
        self.lines: list[str] = []
        self.root = self._parse(data)

    def add(self, name: str, detail: str, node=None) -> None:
        line = getattr(node, "sourceline", None)
        where = f" (line {line})" if line else ""
        problem = f"{name}: {detail}{where}"
        if problem not in self.problems:
            self.problems.append(problem)

    def _parse(self, data: bytes):
        if not isinstance(data, bytes):
            self.add("UnicodeError", "a feed is bytes; got " + type(data).__name__)
            return None
        declaration = re.match(rb"<\?xml\s+version\s*=\s*['\"]([^'\"]*)['\"]", data)
        if declaration and declaration.group(1) != b"1.0":
            self.add("BadXmlVersion", f"XML version {declaration.group(1).decode()}")
        encoding = re.match(rb"<\?xml[^>]*encoding\s*=\s*['\"]([-A-Za-z0-9._]+)['\"]", data)
        if encoding and encoding.group(1).upper() not in (b"UTF-8", b"UTF-16"):
            self.add("ObscureEncoding", f"encoding {encoding.group(1).decode()} (write UTF-8)")
        try:
            self.lines = data.decode("utf-8").split("\n")
        except UnicodeDecodeError as error:
            self.add("UnicodeError", str(error))
            return None
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
        try:
            return etree.fromstring(data, parser)
        except etree.XMLSyntaxError as error:
            self.add("SAXError", f"not well-formed XML: {error}")
            return None

    def has_hex_reference(self, element) -> bool:
        """Whether the line ``element`` starts on holds "&#x" (the RSS Profile's escape)."""
        line = (element.sourceline or 1) - 1
        return line < len(self.lines) and "&#x" in self.lines[line]


def _elements(root):
    return (node for node in root.iter() if isinstance(node.tag, str))


def _local(element) -> str:
    return etree.QName(element).localname


def _namespace(element) -> str | None:
    return etree.QName(element).namespace


def _text(element) -> str:
    return element.text or ""


class _Checker:
    """What the Atom and RSS checks share."""

    is_atom = False

    def __init__(self, doc: _Document) -> None:
        self.doc = doc
        self.root = doc.root

    def add(self, name: str, detail: str, node=None) -> None:
        self.doc.add(name, detail, node)

    def check_common(self) -> None:
        self.check_namespaces()
        self.check_characters()
        self.check_languages()

    def check_namespaces(self) -> None:
        for element in _elements(self.root):
            parent = element.getparent()
            inherited = parent.nsmap if parent is not None else {}
            for prefix, uri in element.nsmap.items():
                if inherited.get(prefix) != uri:
                    self.check_declaration(prefix, uri, element)

    def check_declaration(self, prefix: str | None, uri: str, element) -> None:
        if prefix and prefix in KNOWN_PREFIXES and KNOWN_NAMESPACES.get(uri) != prefix:
            self.add("ReservedPrefix", f'prefix "{prefix}" belongs to {KNOWN_PREFIXES[prefix]}, not {uri}', element)
        elif prefix and self.is_atom and uri in (ATOM_NS, XHTML_NS):
            self.add("AvoidNamespacePrefix", f'prefix "{prefix}" for {uri}: use a default namespace', element)
        elif uri not in KNOWN_NAMESPACES and not (prefix is None and uri == ATOM_NS):
            self.add("UnknownNamespace", f"namespace {uri}", element)

    def check_characters(self) -> None:
        for element in _elements(self.root):
            values = [element.text or "", element.tail or "", *element.attrib.values()]
            for value in values:
                if BAD_CHARACTERS_RE.search(value) or looks_double_encoded(value):
                    self.add("BadCharacters", f"{_local(element)} holds C1 controls, U+FFFD or double-encoded UTF-8", element)

    def check_languages(self) -> None:
        for element in _elements(self.root):
            language = element.get(f"{{{XML_NS}}}lang")
            if language and not LANGUAGE_RE.match(language):
                self.add("InvalidLanguage", f"xml:lang {language!r}", element)

    def check_uri(self, value: str, node, what: str, *, full: bool, error: str | None = None) -> bool:
        problem = uri_problem(value.strip(), full=full)
        if problem:
            self.add(error if error and problem.startswith("Invalid") else problem, f"{what} {value!r}", node)
            return False
        if not is_absolute(value):
            self.add("RelativeURL", f"{what} {value!r} is relative (house rule: every URL absolute)", node)
        return True

    def check_html(self, markup: str, node, what: str) -> None:
        for name, detail in html_problems(markup):
            self.add(name, f"{what}: {detail}", node)

    def check_nonhtml(self, value: str, node, what: str, message: str = "ContainsHTML") -> None:
        """Plain text: no HTML end tags; entity-like text or (RSS) markup only with "&#x" escapes."""
        tags = [tag for tag in END_TAG_RE.findall(value) if tag.lower() in HTML_ELEMENTS]
        escaped = self.doc.has_hex_reference(node)
        if tags:
            self.add(message, f"{what} holds </{tags[0]}>", node)
        elif any(_entity_like(word) for word in ENTITY_RE.findall(value)):
            if not escaped:
                self.add(message, f"{what} holds an HTML entity", node)
        elif not self.is_atom and RSS_MARKUP_RE.search(value) and not escaped:
            self.add("CharacterData", f"{what} holds markup characters: write them as &#x3C; and &#x26;", node)

    def check_email_in_name(self, value: str, node, what: str) -> None:
        if EMAIL_IN_TEXT_RE.search(value):
            self.add("ContainsEmail", f"{what} includes an e-mail address", node)

    def check_nonblank(self, value: str, node, what: str) -> None:
        if not value.strip():
            self.add("NotBlank", f"{what} is blank", node)

    def check_nows(self, value: str, node, what: str) -> None:
        if value != value.strip():
            self.add("UnexpectedWhitespace", f"{what} has white space around it", node)

    def check_singletons(self, parent, singletons, what: str) -> None:
        seen = set()
        for child in parent:
            if isinstance(child.tag, str):
                key = child.tag
                if _local(child) in singletons and key in seen:
                    self.add("DuplicateElement", f"{what} contains more than one {_local(child)}", child)
                seen.add(key)

    def check_link_element(self, link, in_feed: bool) -> tuple[str, str, str]:
        """An atom:link (in Atom or RSS); returns its (rel, type, hreflang)."""
        rel = link.get("rel", "alternate")
        if rel.startswith("http://www.iana.org/assignments/relation/"):
            rel = rel.rsplit("/", 1)[-1]
        if "rel" in link.attrib:
            self.check_rel(rel, link)
        link_type = link.get("type", "")
        if "type" in link.attrib:
            if not MEDIA_TYPE_RE.match(link_type):
                self.add("InvalidMIMEType", f"link type {link_type!r}", link)
            elif rel == "self" and link_type not in ("application/atom+xml", "application/rss+xml", "application/rdf+xml"):
                self.add("SelfNotAtom", f'rel="self" link has type {link_type}', link)
        self.check_link_attributes(link)
        href = link.get("href")
        if href is None:
            self.add("MissingHref", "link has no href", link)
        elif self.check_uri(href, link, "link href", full=False, error="InvalidIRI") and rel == "self" and in_feed:
            self.check_self(href, link)
        if _text(link).strip() or len(link):
            self.add("AtomLinkNotEmpty", "link has content (all its data is in attributes)", link)
        return rel, link_type, link.get("hreflang", "")

    def check_rel(self, rel: str, link) -> None:
        if not rel:
            self.add("AttrNotBlank", "rel attribute is blank", link)
        elif rel not in ATOM_LINK_RELS and not FULL_URI_RE.match(_as_uri(rel)):
            self.add("UnregisteredAtomLinkRel", f"rel={rel!r}", link)
        elif rel in FEED_HISTORY_RELS and _local(link.getparent()) == "entry":
            self.add("FeedHistoryRelInEntry", f"rel={rel!r} in an entry", link)

    def check_link_attributes(self, link) -> None:
        if "title" in link.attrib:
            self.check_nonblank(link.get("title"), link, "link title")
        length = link.get("length")
        if length is not None and not (length.strip().isdigit()):
            self.add("InvalidNonNegativeInteger", f"link length {length!r}", link)
        hreflang = link.get("hreflang")
        if hreflang is not None and not LANGUAGE_RE.match(hreflang):
            self.add("InvalidLanguage", f"hreflang {hreflang!r}", link)

    def check_self(self, href: str, link) -> None:
        if not urlsplit(href).netloc:
            self.add("RelativeSelf", f"self link {href!r} is relative", link)
        elif canonical_uri(href) != canonical_uri(self.doc.url):
            self.add("SelfDoesntMatchLocation", f"self link {href!r} is not where the feed is ({self.doc.url})", link)


def _prefixed(tag: str) -> str:
    qname = etree.QName(tag)
    return f"{KNOWN_NAMESPACES.get(qname.namespace, qname.namespace)}:{qname.localname}" if qname.namespace else tag


def _entity_like(word: str) -> bool:
    return word in name2codepoint or word == "apos" or not word.isalpha()


# --------------------------------------------------------------------------- Atom


@functools.cache
def _atom_schema() -> etree.RelaxNG:
    """RFC 4287 Appendix B as RELAX NG (tests/fixtures/feeds/atom.rng)."""
    return etree.RelaxNG(etree.parse(str(RNG_PATH)))


class _AtomChecker(_Checker):
    is_atom = True

    def check(self) -> None:
        if self.root.tag != A + "feed":
            self.add("InvalidNamespace" if _local(self.root) == "feed" else "UndefinedElement",
                     f"root element {self.root.tag} is not an Atom feed", self.root)
            return
        self.check_common()
        self.check_schema()
        self.check_attributes()
        self.check_feed(self.root)

    def check_schema(self) -> None:
        schema = _atom_schema()
        if not schema.validate(self.root):
            for error in schema.error_log:
                self.add("RelaxNG", f"RFC 4287 schema: {error.message} (line {error.line})")

    def check_attributes(self) -> None:
        for element in _elements(self.root):
            if _namespace(element) != ATOM_NS:
                continue
            expected = ATOM_EXPECTED_ATTRIBUTES.get(_local(element), set())
            for name in element.attrib:
                if not name.startswith("{") and name not in expected:
                    self.add("UnexpectedAttribute", f"{name} attribute on {_local(element)}", element)

    def check_feed(self, feed) -> None:
        self.check_children(feed, ATOM_FEED_ELEMENTS, "feed")
        self.check_singletons(feed, ATOM_FEED_SINGLETONS, "feed")
        children = {_local(c) for c in feed if _namespace(c) == ATOM_NS}
        for required in ("title", "id", "updated"):
            if required not in children:
                self.add("MissingElement", f"feed has no {required}", feed)
        self.check_metadata_order(feed)
        self.check_feed_links(feed)
        for child in feed:
            self.check_feed_child(child)
        entries = feed.findall(A + "entry")
        self.check_entries(feed, entries)

    def check_children(self, parent, known, what: str) -> None:
        for child in parent:
            if not isinstance(child.tag, str):
                continue
            namespace = _namespace(child)
            if namespace is None:
                self.add("UndeterminableVocabulary", f"{what} element {child.tag} has no namespace", child)
            elif namespace == ATOM_NS and _local(child) not in known:
                self.add("UndefinedElement", f"{what} has an undefined element {_local(child)}", child)

    def check_metadata_order(self, feed) -> None:
        seen_entry = False
        for child in feed:
            if child.tag == A + "entry":
                seen_entry = True
            elif seen_entry and isinstance(child.tag, str) and _namespace(child) == ATOM_NS:
                self.add("MisplacedMetadata", f"{_local(child)} must come before the entries", child)

    def check_feed_links(self, feed) -> None:
        links = [self.check_link_element(link, in_feed=True) for link in feed.findall(A + "link")]
        if not any(rel == "self" for rel, _, _ in links):
            self.add("MissingSelf", 'feed has no link rel="self"', feed)
        if not any(rel == "alternate" and kind in ("", "text/html") for rel, kind, _ in links):
            self.add("MissingAlternateLink", 'feed has no rel="alternate" text/html link (house rule)', feed)
        self.check_duplicate_alternates(links, feed)

    def check_duplicate_alternates(self, links, node) -> None:
        alternates = [(kind, lang) for rel, kind, lang in links if rel == "alternate"]
        for pair in set(alternates):
            if alternates.count(pair) > 1:
                self.add("DuplicateAtomLink", f"two alternate links with type {pair[0]!r} hreflang {pair[1]!r}", node)

    def check_feed_child(self, child) -> None:
        if not isinstance(child.tag, str) or _namespace(child) != ATOM_NS:
            return
        name = _local(child)
        if name == "id":
            self.check_id(child)
        elif name == "updated":
            self.check_date(child)
        elif name in ("title", "subtitle", "rights"):
            self.check_text_construct(child)
        elif name in ("author", "contributor"):
            self.check_person(child)
        elif name in ("icon", "logo"):
            self.check_nonblank(_text(child), child, name)
            self.check_nows(_text(child), child, name)
            self.check_uri(_text(child), child, name, full=False, error="InvalidLink")
        elif name == "generator":
            self.check_generator(child)
        elif name == "category":
            self.check_category(child)

    def check_id(self, element) -> None:
        value = _text(element)
        self.check_nows(value, element, "id")
        problem = uri_problem(value.strip(), full=True)
        if problem:
            self.add(problem, f"id {value!r} is not a full URI", element)
            return
        canonical = canonical_uri(value.strip())
        if canonical != value:
            self.add("NonCanonicalURI", f"id {value!r}: its canonical form is {canonical!r}", element)

    def check_date(self, element) -> None:
        value = _text(element)
        self.check_nows(value, element, _local(element))
        problem = rfc3339_problem(value.strip())
        if problem:
            self.add(problem, f"{_local(element)} {value!r}", element)

    def check_text_construct(self, element) -> None:
        what = f"{_local(element.getparent())} {_local(element)}"
        kind = element.get("type", "text")
        if "type" in element.attrib and not kind:
            self.add("AttrNotBlank", f"{what} has a blank type", element)
        is_content = _local(element) == "content"
        if "/" in kind and not is_content:
            self.add("InvalidTextType", f"{what} type {kind!r} (text, html or xhtml)", element)
        elif "/" in kind and (not MEDIA_TYPE_RE.match(kind) or kind == "multipart/alternative"):
            self.add("InvalidMIMEType", f"{what} type {kind!r}", element)
        if is_content and "src" in element.attrib:
            self.check_out_of_line(element, what)
            return
        value = _text(element)
        if kind != "xhtml" and not kind.endswith(("+xml", "/xml")):
            for child in element:  # markup must be escaped unless the type says XML
                self.add("UndefinedElement", f"{what} holds an unescaped element {child.tag}", child)
        if kind == "xhtml":
            self.check_xhtml(element, what)
        elif kind == "html" or kind.endswith("/html"):
            self.check_html(value, element, what)
        elif kind == "text" or kind.startswith("text/"):
            self.check_nonhtml(value, element, what, "ContainsUndeclaredHTML")
        if not value.strip() and not len(element):
            self.add("NotBlank", f"{what} is blank", element)

    def check_out_of_line(self, element, what: str) -> None:
        self.check_uri(element.get("src"), element, f"{what} src", full=False, error="InvalidURIAttribute")
        if "type" not in element.attrib:
            self.add("MissingTypeAttr", f"{what} with src has no type", element)

    def check_xhtml(self, element, what: str) -> None:
        children = [child for child in element if isinstance(child.tag, str)]
        if len(children) != 1 or children[0].tag != f"{{{XHTML_NS}}}div" or _text(element).strip():
            self.add("MissingXhtmlDiv", f"{what} must hold one xhtml:div", element)
            return
        for node in children[0].iterdescendants():
            if not isinstance(node.tag, str):
                continue
            if _namespace(node) != XHTML_NS:
                self.add("NotHtml", f"{what}: element {node.tag} outside XHTML", node)
                continue
            for name, detail in _element_problems(_local(node), node.attrib):
                self.add(name, f"{what}: {detail}", node)

    def check_person(self, person) -> None:
        what = _local(person)
        self.check_singletons(person, {"name", "email", "uri"}, what)
        name = person.find(A + "name")
        if name is None:
            self.add("MissingElement", f"{what} has no name", person)
        else:
            self.check_nonblank(_text(name), name, f"{what} name")
            self.check_nonhtml(_text(name), name, f"{what} name")
            self.check_email_in_name(_text(name), name, f"{what} name")
        email = person.find(A + "email")
        if email is not None and not ADDR_SPEC_RE.match(_text(email)):
            self.add("InvalidAddrSpec", f"{what} email {_text(email)!r}", email)
        uri = person.find(A + "uri")
        if uri is not None:
            self.check_nonblank(_text(uri), uri, f"{what} uri")
            self.check_nows(_text(uri), uri, f"{what} uri")
            self.check_uri(_text(uri), uri, f"{what} uri", full=False, error="InvalidIRI")

    def check_generator(self, element) -> None:
        self.check_nonblank(_text(element), element, "generator")
        self.check_nonhtml(_text(element), element, "generator")
        if "uri" in element.attrib:
            self.check_uri(element.get("uri"), element, "generator uri", full=False, error="InvalidURIAttribute")

    def check_category(self, element) -> None:
        if "term" not in element.attrib:
            self.add("MissingAttribute", "category has no term", element)
        else:
            self.check_nonblank(element.get("term"), element, "category term")
        if "scheme" in element.attrib:
            self.check_uri(element.get("scheme"), element, "category scheme", full=True)
        if "label" in element.attrib:
            self.check_nonhtml(element.get("label"), element, "category label")

    def check_entries(self, feed, entries) -> None:
        feed_has_author = feed.find(A + "author") is not None
        if not entries and not feed_has_author:
            self.add("MissingElement", "an empty feed needs an author (RFC 4287 4.1.1; house rule)", feed)
        ids, updated = [], []
        for entry in entries:
            self.check_entry(entry, feed_has_author)
            ids += [_text(e).strip() for e in entry.findall(A + "id")]
            updated += [_text(e).strip() for e in entry.findall(A + "updated")]
        self.check_unique_ids(ids, feed)
        for value in sorted({v for v in updated if updated.count(v) > 1}):
            self.add("DuplicateUpdated", f"{updated.count(value)} entries are updated {value}", feed)

    def check_unique_ids(self, ids: list[str], feed) -> None:
        if len(ids) > 9 and len(set(ids)) == 1:
            self.add("DuplicateIds", f"all {len(ids)} entries have the id {ids[0]!r}", feed)
            return
        for value in sorted({v for v in ids if ids.count(v) > 1}):
            self.add("DuplicateEntries", f"{ids.count(value)} entries have the id {value!r}", feed)

    def check_entry(self, entry, feed_has_author: bool) -> None:
        self.check_children(entry, ATOM_ENTRY_ELEMENTS, "entry")
        self.check_singletons(entry, ATOM_ENTRY_SINGLETONS, "entry")
        children = {_local(c) for c in entry if isinstance(c.tag, str) and _namespace(c) == ATOM_NS}
        for required in ("title", "id", "updated"):
            if required not in children:
                self.add("MissingElement", f"entry has no {required}", entry)
        if "author" not in children and not feed_has_author:
            self.add("MissingElement", "entry has no author, nor has the feed", entry)
        for child in entry:
            self.check_entry_child(child)
        self.check_entry_content(entry, children)
        links = [self.check_link_element(link, in_feed=False) for link in entry.findall(A + "link")]
        self.check_duplicate_alternates(links, entry)
        alternates = [rel for rel, _, _ in links if rel == "alternate"]
        if len(alternates) != 1:
            self.add("MissingAlternateLink" if not alternates else "DuplicateAlternateLink",
                     f"entry has {len(alternates)} alternate links (house rule: exactly one)", entry)

    def check_entry_child(self, child) -> None:
        if not isinstance(child.tag, str) or _namespace(child) != ATOM_NS:
            return
        name = _local(child)
        if name == "id":
            self.check_id(child)
        elif name in ("updated", "published"):
            self.check_date(child)
        elif name in ("title", "summary", "rights", "content"):
            self.check_text_construct(child)
        elif name in ("author", "contributor"):
            self.check_person(child)
        elif name == "category":
            self.check_category(child)

    def check_entry_content(self, entry, children) -> None:
        content = entry.find(A + "content")
        if content is None:
            if "summary" not in children:
                self.add("MissingTextualContent", "entry has neither content nor summary", entry)
            if not any(link.get("rel", "alternate") == "alternate" for link in entry.findall(A + "link")):
                self.add("MissingContentOrAlternate", "entry has neither content nor an alternate link", entry)
            return
        kind = content.get("type", "text")
        textual = "/" not in kind or kind.endswith(("+xml", "/xml")) or kind.startswith("text/")
        if "summary" not in children and ("src" in content.attrib or not textual):
            self.add("MissingSummary", "entry with non-textual or linked content has no summary", entry)


# --------------------------------------------------------------------------- RSS


class _RssChecker(_Checker):
    def check(self) -> None:
        rss = self.root
        if rss.tag != "rss":
            name = "InvalidNamespace" if _local(rss) == "rss" else "UndefinedElement"
            self.add(name, f"root element {rss.tag} is not rss", rss)
            return
        self.check_common()
        self.check_attributes()
        version = rss.get("version")
        if version is None:
            self.add("MissingAttribute", "rss has no version", rss)
        elif version not in ("0.91", "0.92", "2.0"):
            self.add("InvalidRSSVersion", f"rss version {version!r}", rss)
        channels = rss.findall("channel")
        for child in rss:
            if isinstance(child.tag, str) and child.tag != "channel":
                self.add("UndefinedElement", f"rss has an undefined element {child.tag}", child)
        if not channels:
            self.add("MissingElement", "rss has no channel", rss)
        elif len(channels) > 1:
            self.add("DuplicateElement", "rss contains more than one channel", channels[1])
        for channel in channels[:1]:
            self.check_channel(channel)

    def check_attributes(self) -> None:
        docs = self.root.findtext("channel/docs")
        for element in _elements(self.root):
            if _namespace(element) is not None:
                continue
            expected = RSS_EXPECTED_ATTRIBUTES.get(element.tag, set())
            for name in element.attrib:
                if name.startswith("{") and docs != "http://www.rssboard.org/rss-specification":
                    self.add("UseOfExtensionAttr", f"{name} attribute on {element.tag}", element)
                elif not name.startswith("{") and name not in expected:
                    self.add("UnexpectedAttribute", f"{name} attribute on {element.tag}", element)

    def check_channel(self, channel) -> None:
        self.check_elements(channel, RSS_CHANNEL_ELEMENTS, "channel")
        self.check_singletons(channel, RSS_CHANNEL_SINGLETONS, "channel")
        present = {child.tag for child in channel if isinstance(child.tag, str)}
        for required, name in (("title", "MissingTitle"), ("link", "MissingLink"), ("description", "MissingDescription")):
            if required not in present:
                self.add(name, f"channel has no {required}", channel)
        self.check_item_placement(channel)
        self.check_semantics(channel, present, "DuplicateSemantics", CHANNEL_SYNONYMS)
        for child in channel:
            self.check_channel_child(child)
        self.check_channel_self(channel)
        guids = []
        for item in channel.findall("item"):
            self.check_item(item)
            guids += [_text(guid).strip() for guid in item.findall("guid")]
        for value in sorted({g for g in guids if guids.count(g) > 1}):
            self.add("DuplicateValue", f"{guids.count(value)} items have the guid {value!r}", channel)

    def check_elements(self, parent, known, what: str) -> None:
        for child in parent:
            if isinstance(child.tag, str) and _namespace(child) is None and child.tag not in known:
                self.add("UndefinedElement", f"{what} has an undefined element {child.tag}", child)

    def check_item_placement(self, channel) -> None:
        seen_item = False
        for child in channel:
            if child.tag == "item":
                seen_item = True
            elif seen_item and isinstance(child.tag, str) and (_namespace(child) is None or child.tag == A + "link"):
                self.add("MisplacedItem", f"{_local(child)} comes after the items", child)

    def check_semantics(self, parent, present, name: str, pairs) -> None:
        """An RSS core element and the extension element meaning the same thing: keep one."""
        for core, extension in pairs:
            if core in present and extension in present:
                self.add(name, f"{parent.tag} has both {core} and {_prefixed(extension)}", parent)

    def check_channel_child(self, child) -> None:
        if not isinstance(child.tag, str):
            return
        name, value = child.tag, _text(child)
        if name == "title":
            self.check_nonblank(value, child, "channel title")
            self.check_nonhtml(value, child, "channel title")
        elif name in ("description", "copyright", "category"):
            self.check_nonhtml(value, child, f"channel {name}")
        elif name in ("link", "docs"):
            self.check_uri(value.strip(), child, f"channel {name}", full=True)
        elif name == "language" and not LANGUAGE_RE.match(value.strip()):
            self.add("InvalidLanguage", f"language {value!r}", child)
        elif name in ("pubDate", "lastBuildDate"):
            self.check_rfc822(child)
        elif name == "ttl" and not (value.strip().isdigit() and int(value) > 0):
            self.add("InvalidPositiveInteger", f"ttl {value!r}", child)
        elif name in ("managingEditor", "webMaster"):
            self.check_email_with_name(child)
        elif name == "textInput":
            self.add("AvoidTextInput", "textInput is best avoided", child)

    def check_channel_self(self, channel) -> None:
        links = [self.check_link_element(link, in_feed=True) for link in channel.findall(A + "link")]
        if not any(rel == "self" for rel, _, _ in links):
            self.add("MissingAtomSelfLink", 'channel has no atom:link rel="self"', channel)

    def check_rfc822(self, element) -> None:
        problem = rfc822_problem(_text(element).strip())
        if problem:
            self.add(problem, f"{_local(element)} {_text(element)!r}", element)

    def check_email_with_name(self, element) -> None:
        value = _text(element).strip()
        if value.startswith("mailto:"):
            value = unquote(value.split(":", 1)[1])
        if "@" in value and not value.endswith(")"):
            self.add("EmailFormat" if " " in value else "MissingRealName",
                     f"{element.tag} {value!r}: write it as 'address (Real Name)'", element)
            return
        addresses = getaddresses([value])
        address = addresses[0][1] if len(addresses) == 1 else value
        if not ADDR_SPEC_RE.match(address):
            self.add("InvalidContact", f"{element.tag} {value!r}", element)

    def check_item(self, item) -> None:
        self.check_elements(item, RSS_ITEM_ELEMENTS, "item")
        self.check_singletons(item, RSS_ITEM_SINGLETONS, "item")
        for duplicate in item.findall("enclosure")[1:]:
            self.add("DuplicateEnclosure", "item contains more than one enclosure", duplicate)
        present = {child.tag for child in item if isinstance(child.tag, str)}
        if "title" not in present and "description" not in present:
            self.add("ItemMustContainTitleOrDescription", "item has neither title nor description", item)
        if "guid" not in present:
            self.add("MissingGuid", "item should contain a guid", item)
        self.check_semantics(item, present, "DuplicateItemSemantics", ITEM_SYNONYMS)
        self.check_content_order(item)
        for child in item:
            self.check_item_child(child)

    def check_content_order(self, item) -> None:
        encoded = "{http://purl.org/rss/1.0/modules/content/}encoded"
        seen_description = False
        for child in item:
            if child.tag == "description":
                seen_description = True
            elif child.tag == encoded and not seen_description:
                self.add("NeedDescriptionBeforeContent", "content:encoded comes before (or without) description", child)

    def check_item_child(self, child) -> None:
        if not isinstance(child.tag, str):
            return
        name, value = child.tag, _text(child)
        if name == "title":
            self.check_nonblank(value, child, "item title")
            self.check_nonhtml(value, child, "item title")
        elif name in ("description", "{http://purl.org/rss/1.0/modules/content/}encoded"):
            self.check_html(value, child, f"item {_local(child)}")
        elif name in ("link", "comments"):
            self.check_uri(value.strip(), child, f"item {name}", full=True)
        elif name == "category":
            self.check_nonblank(value, child, "item category")
            self.check_nonhtml(value, child, "item category")
        elif name == "pubDate":
            self.check_rfc822(child)
        elif name == "author":
            self.check_email_with_name(child)
        elif name == "guid":
            self.check_guid(child)
        elif name == "enclosure":
            self.check_enclosure(child)
        elif name == "source":
            self.check_uri(child.get("url", ""), child, "source url", full=True, error="MissingAttribute")
        elif name == A + "link":
            self.check_link_element(child, in_feed=False)

    def check_guid(self, guid) -> None:
        value = _text(guid).strip()
        flag = guid.get("isPermaLink", "true")
        if flag not in ("true", "false"):
            self.add("InvalidBooleanAttribute", f"isPermaLink={flag!r}", guid)
        if flag != "false":
            if value.lower().startswith(("tag:", "urn:uuid:")):
                self.add("InvalidPermalink", f"guid {value!r} is not a URL: set isPermaLink=\"false\"", guid)
            elif uri_problem(value, full=True, iri=False) or not urlsplit(value).netloc:
                self.add("InvalidHttpGUID", f"guid {value!r} must be a full URL unless isPermaLink is false", guid)
        elif len(value) < 9 and value.isdigit():
            self.add("NotSufficientlyUnique", f"guid {value!r}", guid)
        self.check_nonblank(value, guid, "guid")

    def check_enclosure(self, enclosure) -> None:
        for attribute in ("url", "length", "type"):
            if attribute not in enclosure.attrib:
                self.add("MissingAttribute", f"enclosure has no {attribute}", enclosure)
        length = enclosure.get("length", "0")
        if not length.lstrip("-").isdigit():
            self.add("InvalidIntegerAttribute", f"enclosure length {length!r}", enclosure)
        elif int(length) < 0:
            self.add("UseZeroForUnknown" if length == "-1" else "InvalidNonNegativeInteger", f"length {length}", enclosure)
        if "type" in enclosure.attrib and not MEDIA_TYPE_RE.match(enclosure.get("type")):
            self.add("InvalidMIMEAttribute", f"enclosure type {enclosure.get('type')!r}", enclosure)
        url = enclosure.get("url")
        if url is not None and (not url.lower().startswith(("http://", "https://")) or uri_problem(url, full=True, iri=False)):
            self.add("InvalidURLAttribute", f"enclosure url {url!r}", enclosure)


# --------------------------------------------------------------------------- JSON Feed


class _JsonChecker:
    def __init__(self, data: bytes, url: str) -> None:
        self.data = data
        self.url = url
        self.problems: list[str] = []

    def add(self, name: str, detail: str) -> None:
        problem = f"{name}: {detail}"
        if problem not in self.problems:
            self.problems.append(problem)

    def check(self) -> list[str]:
        try:
            document = json.loads(self.data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            self.add("InvalidJSON", f"not UTF-8 JSON: {error}")
            return self.problems
        if not isinstance(document, dict):
            self.add("InvalidJSON", "a JSON Feed is an object")
            return self.problems
        self.check_top(document)
        items = document.get("items")
        if not isinstance(items, list):
            self.add("MissingElement", "feed has no items array")
        else:
            self.check_items(items)
        return self.problems

    def check_top(self, document: dict) -> None:
        version = document.get("version")
        if version != JSON_FEED_VERSION:
            self.add("InvalidVersion" if version else "MissingElement", f"version must be {JSON_FEED_VERSION}, not {version!r}")
        self.check_string(document, "title", "feed", required=True)
        for key in ("home_page_url", "feed_url"):
            if key not in document:
                self.add("MissingRecommendedElement", f"feed has no {key} (JSON Feed strongly recommends it)")
        for key in ("home_page_url", "feed_url", "next_url", "icon", "favicon"):
            self.check_url(document, key, "feed")
        if isinstance(document.get("feed_url"), str) and canonical_uri(document["feed_url"]) != canonical_uri(self.url):
            self.add("SelfDoesntMatchLocation", f"feed_url {document['feed_url']!r} is not where the feed is ({self.url})")
        for key in ("description", "language", "user_comment"):
            self.check_string(document, key, "feed")
        self.check_authors(document, "feed")
        self.check_unknown_keys(document, JSON_FEED_KEYS, "feed")

    def check_items(self, items: list) -> None:
        ids = []
        for index, item in enumerate(items):
            where = f"items[{index}]"
            if not isinstance(item, dict):
                self.add("InvalidValue", f"{where} is not an object")
                continue
            self.check_item(item, where)
            ids.append(item.get("id"))
        for value in {v for v in ids if isinstance(v, str) and ids.count(v) > 1}:
            self.add("DuplicateEntries", f"{ids.count(value)} items have the id {value!r}")

    def check_item(self, item: dict, where: str) -> None:
        if not isinstance(item.get("id"), str) or not item["id"].strip():
            self.add("MissingElement", f"{where} has no id string")
        if not any(isinstance(item.get(key), str) for key in ("content_html", "content_text")):
            self.add("MissingElement", f"{where} has neither content_html nor content_text")
        for key in ("url", "external_url", "image", "banner_image"):
            self.check_url(item, key, where)
        for key in ("title", "content_html", "content_text", "summary", "language"):
            self.check_string(item, key, where)
        for key in ("date_published", "date_modified"):
            if key in item:
                problem = rfc3339_problem(item[key]) if isinstance(item[key], str) else "InvalidRFC3339Date"
                if problem:
                    self.add(problem, f"{where}.{key} {item[key]!r}")
        if isinstance(item.get("content_html"), str):
            for name, detail in html_problems(item["content_html"]):
                self.add(name, f"{where}.content_html: {detail}")
        if isinstance(item.get("summary"), str) and END_TAG_RE.search(item["summary"]):
            self.add("ContainsHTML", f"{where}.summary is plain text in JSON Feed")
        tags = item.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(tag, str) and tag.strip() for tag in tags):
            self.add("InvalidValue", f"{where}.tags must be an array of non-empty strings")
        self.check_authors(item, where)
        self.check_unknown_keys(item, JSON_ITEM_KEYS, where)

    def check_string(self, obj: dict, key: str, where: str, required: bool = False) -> None:
        if key not in obj:
            if required:
                self.add("MissingElement", f"{where} has no {key}")
        elif not isinstance(obj[key], str) or not obj[key].strip():
            self.add("NotBlank" if isinstance(obj[key], str) else "InvalidValue", f"{where}.{key} must be a non-blank string")

    def check_url(self, obj: dict, key: str, where: str) -> None:
        if key not in obj:
            return
        value = obj[key]
        if not isinstance(value, str) or uri_problem(value, full=True) or not urlsplit(value).netloc:
            self.add("InvalidFullLink", f"{where}.{key} {value!r} must be an absolute URL")

    def check_authors(self, obj: dict, where: str) -> None:
        if "author" in obj:
            self.add("DeprecatedElement", f"{where}.author is JSON Feed 1.0: use authors")
        authors = obj.get("authors")
        if authors is None:
            return
        if not isinstance(authors, list) or not authors:
            self.add("InvalidValue", f"{where}.authors must be a non-empty array")
            return
        for index, author in enumerate(authors):
            if not isinstance(author, dict) or not any(isinstance(author.get(k), str) for k in ("name", "url", "avatar")):
                self.add("InvalidValue", f"{where}.authors[{index}] needs a name, url or avatar")
                continue
            for key in ("url", "avatar"):
                self.check_url(author, key, f"{where}.authors[{index}]")

    def check_unknown_keys(self, obj: dict, known, where: str) -> None:
        for key in obj:
            if key not in known and not key.startswith("_"):
                self.add("UndefinedElement", f"{where} has an undefined key {key!r} (extensions start with _)")
