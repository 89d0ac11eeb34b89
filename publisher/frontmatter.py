"""YAML front matter (Jekyll / Hugo / Pelican style), and the YAML loader posts share.

A front-matter post starts with a ``---`` line, then YAML attributes, then a
``---`` (or ``...``) line, then the body.

:func:`load_mapping` is also the slow path of the soup snip reader
(:mod:`publisher.snip`): PyYAML is imported only when it is first needed.  The
loader is PyYAML's safe loader (the C one when libyaml is there) WITHOUT the
timestamp rule, so dates stay text and :func:`publisher.dates.parse_date`
reads every date the same way, whichever path read the attributes.
"""

from __future__ import annotations

import re
from datetime import date

__all__ = ["load_mapping", "read_front_matter", "split_front_matter", "json_safe"]

_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)
_LOADER: type | None = None
_MAX_NODES = 20_000
_MAX_DEPTH = 64

Raw = dict[str, object]  # key -> the plain text of a scalar value (or a list of them) as written


def split_front_matter(text: str) -> tuple[str, dict[str, object]] | None:
    """``(body, attributes)`` of a front-matter post, or None when ``text`` has none.

    The body loses the empty lines around it, as a snip's body does.

    Raises ValueError when the front matter is not closed or is not YAML key: value lines.
    """
    found = read_front_matter(text)
    return None if found is None else (found[0], found[1])


def read_front_matter(text: str) -> tuple[str, dict[str, object], Raw] | None:
    """Like :func:`split_front_matter`, plus the raw text of plain scalar values."""
    if not text.startswith("---"):
        return None
    first_end = text.find("\n")
    if (text[:first_end] if first_end >= 0 else text).rstrip() != "---":
        return None
    close = _CLOSE.search(text, first_end + 1) if first_end >= 0 else None
    if close is None:
        raise ValueError("front matter is not closed: add a '---' line after the attributes")
    attributes, raw = load_mapping(text[first_end + 1 : close.start()], first_line=2, what="front matter")
    return text[close.end() :].lstrip("\n").rstrip(), attributes, raw


def load_mapping(text: str, *, first_line: int, what: str) -> tuple[dict[str, object], Raw]:
    """Parse YAML ``text`` that must be a mapping; keys become text.

    ``first_line`` is the file line number of the text's first line and
    ``what`` names the block, both for error messages.  Returns the JSON-safe
    mapping and the raw text of each plain scalar value (for fields read as
    text whatever YAML makes of them).  Raises ValueError (one line).
    """
    data, raw = _load(text, first_line, what)
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be 'key: value' lines (a mapping), not a {_yaml_type(data)}")
    budget = [_MAX_NODES]
    return {str(key): json_safe(value, what, budget) for key, value in data.items()}, raw


def _load(text: str, first_line: int, what: str) -> tuple[object, Raw]:
    import yaml

    loader = _loader_class()(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise ValueError(_yaml_problem(exc, first_line, what)) from exc
    except yaml.reader.ReaderError as exc:
        line = first_line + text.count("\n", 0, exc.position)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise ValueError(f"{what}: line {line}: character U+{code:04X} is not allowed in YAML: remove it") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"{what} is not valid YAML ({_one_line(str(exc))}): fix it") from exc
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise ValueError(f"{what} has a value YAML cannot build ({_one_line(str(exc))}): fix it") from exc
    except (AttributeError, KeyError, IndexError) as exc:  # PyYAML's own failures on some explicit tags
        raise ValueError(f"{what} has a tagged value YAML cannot build (an explicit tag such as "
                         "'!!timestamp' on a value that is not one): remove the tag or fix the value") from exc
    finally:
        loader.dispose()
    return data, _raw_texts(node)


def _loader_class() -> type:
    """PyYAML's (C) safe loader minus the timestamp rule, built once."""
    global _LOADER
    if _LOADER is None:
        import yaml

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        timestamp = "tag:yaml.org,2002:timestamp"
        resolvers = {
            first: [(tag, regexp) for tag, regexp in rules if tag != timestamp]
            for first, rules in base.yaml_implicit_resolvers.items()
        }
        _LOADER = type("PostAttributeLoader", (base,), {"yaml_implicit_resolvers": resolvers})
    return _LOADER


def _raw_texts(node: object) -> Raw:
    """Key -> plain text of each plain scalar value (or list element) of a mapping node."""
    import yaml

    raw: Raw = {}
    if not isinstance(node, yaml.MappingNode):
        return raw
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue
        if isinstance(value_node, yaml.ScalarNode) and not value_node.style:  # plain ('' from libyaml)
            raw[key_node.value] = value_node.value
        elif isinstance(value_node, yaml.SequenceNode):
            raw[key_node.value] = [_plain(item) for item in value_node.value]
    return raw


def _plain(node: object) -> str | None:
    import yaml

    return node.value if isinstance(node, yaml.ScalarNode) and not node.style else None


def _yaml_problem(exc: Exception, first_line: int, what: str) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"line {first_line + mark.line}: " if mark is not None else ""
    problem = _one_line(getattr(exc, "problem", None) or getattr(exc, "context", None) or "invalid YAML")
    return (
        f"{what}: {where}{problem}: fix the YAML there "
        "(quote a value that contains ': ' or ' #' or starts with a special character)"
    )


def json_safe(value: object, what: str = "attributes", budget: list[int] | None = None, depth: int = 0) -> object:
    """``value`` with dates as ISO text, bytes as base64, sets as lists, keys as text.

    Raises ValueError for structures that are absurdly deep or large (YAML
    aliases can make a small file expand enormously).
    """
    budget = [_MAX_NODES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0 or depth > _MAX_DEPTH:
        raise ValueError(f"{what} are nested too deeply or are too large: simplify them")
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): json_safe(v, what, budget, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [json_safe(v, what, budget, depth + 1) for v in items]
    if isinstance(value, (bytes, bytearray)):
        import base64

        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def _yaml_type(data: object) -> str:
    return {list: "list", str: "single text value"}.get(type(data), type(data).__name__)


def _one_line(text: str) -> str:
    return " ".join(text.split())
