"""``publisher check``: every problem with the config and the posts, listed at once.

Nothing is written: posts are read and rendered in memory, the state database
is not touched.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from publisher.config import Config
from publisher.errors import PostError, PublisherError
from publisher.links import post_url
from publisher.posts import Post, read_post
from publisher.scan import scan_posts


@dataclass
class CheckReport:
    posts: int
    problems: list[str]


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _collect_warnings() -> Iterator[list[str]]:
    collector = _Collector()
    root = logging.getLogger("publisher")
    root.addHandler(collector)
    try:
        yield collector.messages
    finally:
        root.removeHandler(collector)


def check(config: Config) -> CheckReport:
    """Scan and read every post; render the ones that call ERB helpers; report every problem."""
    try:
        stats = scan_posts(config.posts_root, config.posts.folders)
    except PublisherError as exc:
        return CheckReport(0, [str(exc)])
    problems: list[str] = []
    posts = list(_read_all(config, [s.path for s in stats], problems))
    problems += _duplicate_names(config, posts)
    problems += _render_problems(config, [post for post in posts if post.erb])
    problems += _output_problems(config)
    return CheckReport(len(stats), problems)


def _read_all(config: Config, paths: list[str], problems: list[str]) -> Iterator[Post]:
    for path in paths:
        source = config.posts_root / path
        try:
            yield read_post(path, source.read_bytes(), source.stat().st_mtime, tz=config.site.tz, source=str(source))
        except PostError as exc:
            problems.append(str(exc))
        except OSError as exc:
            problems.append(f"{source}: can't read the file ({exc.strerror})")


def _duplicate_names(config: Config, posts: list[Post]) -> list[str]:
    seen: dict[str, str] = {}
    problems = []
    for post in posts:
        url = post_url(config.site, name=post.name, kind=post.kind, author=post.author, created=post.created_at)
        if url in seen:
            problems.append(f"{config.posts_root / post.path}: same URL {url} as {seen[url]}; rename one of them")
        seen.setdefault(url, post.path)
    return problems


def _render_problems(config: Config, posts: list[Post]) -> list[str]:
    if not posts:
        return []
    from publisher.render import Renderer

    site = config.site
    renderer = Renderer(site_url=site.url, asset_base_url=site.assets, author_url=site.author_url,
                        authors=site.authors, template_dirs=config.template_dirs, summary=config.render.summary,
                        summary_length=config.render.summary_length)
    with _collect_warnings() as warnings:
        for post in posts:
            try:
                renderer.render(post, post_url(site, name=post.name, kind=post.kind, author=post.author,
                                               created=post.created_at))
            except PublisherError as exc:
                warnings.append(str(exc))
    return [f"{config.posts_root}/{message}" if not message.startswith("/") else message for message in warnings]


def _output_problems(config: Config) -> list[str]:
    problems = []
    for label, folder in (("feeds.output", config.output_dir), ("state.directory", config.state_dir)):
        existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
        if existing is not None and not os.access(existing, os.W_OK):
            problems.append(f"{folder}: not writable; fix the permissions or change {label}")
    for folder in config.template_dirs:
        if not folder.is_dir():
            problems.append(f"{folder}: templates folder not found; check render.templates")
    return problems
