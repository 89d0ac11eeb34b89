"""Every dated post of the real Go Free Range corpus reads (skipped when the corpus is absent).

Expected numbers come from the files on disk (glob, plain text searches), never
from the parser under test; the folder counts are also pinned to the corpus
as published (484 weeknotes, 57 blog posts, 133 weeklinks, 50 show-and-tells).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from publisher.posts import Post, read_post

pytestmark = pytest.mark.corpus

FOLDERS = {"weeknotes": 484, "blog": 57, "weeklinks": 133, "show-and-tell": 50}


@pytest.fixture(scope="module")
def corpus(corpus_root: Path) -> dict[str, list[tuple[Path, Post]]]:
    soups = corpus_root / "soups"
    read: dict[str, list[tuple[Path, Post]]] = {}
    for folder in FOLDERS:
        read[folder] = [
            (path, read_post(path.relative_to(soups).as_posix(), path.read_bytes(), path.stat().st_mtime))
            for path in sorted((soups / folder).glob("*"))
            if path.is_file()
        ]
    return read


def all_posts(corpus: dict[str, list[tuple[Path, Post]]]) -> list[tuple[Path, Post]]:
    return [entry for entries in corpus.values() for entry in entries]


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_file_of_each_folder_reads(
    corpus_root: Path, corpus: dict[str, list[tuple[Path, Post]]], folder: str
) -> None:
    on_disk = [p for p in (corpus_root / "soups" / folder).glob("*") if p.is_file()]
    assert len(on_disk) == FOLDERS[folder]
    assert len(corpus[folder]) == len(on_disk)


def test_every_created_at_comes_from_the_file(corpus: dict[str, list[tuple[Path, Post]]]) -> None:
    for path, post in all_posts(corpus):
        written = re.search(r"^:created_at: (.+)$", path.read_text(encoding="utf-8"), re.MULTILINE)
        assert written is not None, path
        assert not post.dated_by_mtime, path
        assert post.created_at.utcoffset() is not None
        assert post.created_at.strftime("%Y-%m-%d %H:%M:%S") == written.group(1)[:19], path
        assert post.updated_at.utcoffset() is not None


def test_drafts(corpus: dict[str, list[tuple[Path, Post]]]) -> None:
    marked = {path.name for path, _ in all_posts(corpus)
              if re.search(r"^:draft: true\s*$", path.read_text(encoding="utf-8"), re.MULTILINE)}
    assert marked == {"reasons-to-hire-a-tech-coop.snip.markdown", "week-556.snip.markdown"}
    assert {path.name for path, post in all_posts(corpus) if post.draft} == marked


def test_erb_posts_are_flagged(corpus: dict[str, list[tuple[Path, Post]]]) -> None:
    erb = 0
    for path, post in all_posts(corpus):
        flagged = re.search(r"^:erb: true\s*$", path.read_text(encoding="utf-8"), re.MULTILINE) is not None
        assert post.erb == flagged, path
        erb += flagged
    assert erb > 100  # weeklinks use <%= by(...) %> throughout


def test_titles_names_and_bodies(corpus: dict[str, list[tuple[Path, Post]]]) -> None:
    for path, post in all_posts(corpus):
        assert post.title.strip() == post.title and post.title, path
        assert post.name == path.name.split(".", 1)[0]
        assert post.body.strip(), path
        assert not re.search(r"^:(created_at|updated_at|page_title|author|kind):", post.body, re.MULTILINE), path
        written = re.search(r"^:page_title: (.+?)\s*$", path.read_text(encoding="utf-8"), re.MULTILINE)
        if written:
            assert post.title == written.group(1).strip('"'), path


def test_authors_are_stripped(corpus: dict[str, list[tuple[Path, Post]]]) -> None:
    authors = {post.author for _, post in all_posts(corpus) if post.author is not None}
    assert authors and all(author == author.strip() for author in authors)
    assert "chris-roos" in authors
