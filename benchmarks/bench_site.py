"""The benchmark's two sites on disk: the publisher site and the same posts as a Hugo site.

Both are written under ``benchmarks/work/posts-N-seed-S-vV/`` and reused while
the parameters (and the generator's version) are the same.  ``manifest.json``
is written last, so a half-written corpus is never reused.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import bench_hugo
from bench_corpus import AUTHORS, FOLDERS, Snip, append_sentence, make_post

GENERATOR_VERSION = 1
SITE_URL = "https://bench.example.org/"
ASSET_URL = SITE_URL + "images/"
SITE_TITLE = "Bench Co-op"
ENTRIES = 20

CONFIG_TOML = """\
# publisher's config for the benchmark (written by benchmarks/bench_site.py).
[site]
title = "{title}"
url = "{url}"
description = "Weeknotes and blog of a made-up co-op"
timezone = "Europe/London"
author = "The Bench Co-op"
asset_url = "{assets}"

[site.authors]
{authors}

[posts]
root = "posts"
folders = {folders}

[feeds]
output = "public/feeds"
entries = {entries}
formats = ["atom", "rss", "json"]
per_kind = false
per_author = false

[state]
directory = "state"
"""


@dataclass(frozen=True)
class Corpus:
    root: Path
    posts: int
    seed: int
    drafts: int

    @property
    def site(self) -> Path:
        return self.root / "site"

    @property
    def config(self) -> Path:
        return self.site / "config.toml"

    @property
    def hugo(self) -> Path:
        return self.root / "hugo"

    @property
    def newest(self) -> Snip:
        return make_post(self.seed, self.posts - 1, self.posts)

    def snip_path(self, snip: Snip) -> Path:
        return self.site / "posts" / snip.path

    def hugo_path(self, snip: Snip) -> Path:
        return self.hugo / "content" / "posts" / f"{snip.name}.md"

    def our_outputs(self) -> list[Path]:
        """What a cold build must not find: the state folder and the feeds."""
        return [self.site / "state", self.site / "public"]


def corpus_stats(corpus: Corpus) -> str:
    """One line about the corpus: posts, drafts, bytes."""
    sizes = sorted(path.stat().st_size for path in (corpus.site / "posts").glob("*/*.snip.markdown"))
    return (f"{len(sizes)} synthetic posts ({corpus.drafts} drafts), {sum(sizes) / 1e6:.1f} MB, "
            f"median {sizes[len(sizes) // 2] / 1024:.1f} KiB, largest {sizes[-1] / 1024:.1f} KiB")


def corpus_dir(work: Path, posts: int, seed: int) -> Path:
    return work / f"posts-{posts}-seed-{seed}-v{GENERATOR_VERSION}"


def prepare(work: Path, posts: int, seed: int, *, fresh: bool = False) -> Corpus:
    """The corpus for these parameters: reused if complete, else (or with ``fresh``) made anew."""
    root = corpus_dir(work, posts, seed)
    manifest = root / "manifest.json"
    if fresh or not manifest.is_file():
        shutil.rmtree(root, ignore_errors=True)
        write_corpus(root, posts, seed)
    corpus = Corpus(root=root, **json.loads(manifest.read_text()))
    restore_newest(corpus)
    return corpus


def write_corpus(root: Path, posts: int, seed: int) -> None:
    for folder in FOLDERS:
        (root / "site" / "posts" / folder).mkdir(parents=True)
    (root / "hugo" / "content" / "posts").mkdir(parents=True)
    (root / "site" / "config.toml").write_text(publisher_config())
    (root / "hugo" / "hugo.toml").write_text(bench_hugo.hugo_config(SITE_URL, SITE_TITLE, ENTRIES))
    corpus = Corpus(root=root, posts=posts, seed=seed, drafts=0)
    drafts = 0
    for index in range(posts):
        snip = make_post(seed, index, posts)
        write_post(corpus, snip, snip.text)
        drafts += snip.draft
    manifest = {"posts": posts, "seed": seed, "drafts": drafts}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def write_post(corpus: Corpus, snip: Snip, text: str) -> None:
    """The post in both sites: the soup snip for publisher, the converted file for Hugo."""
    corpus.snip_path(snip).write_text(text, encoding="utf-8")
    corpus.hugo_path(snip).write_text(to_hugo(text), encoding="utf-8")


def to_hugo(text: str) -> str:
    return bench_hugo.to_hugo(text, SITE_URL, ASSET_URL, AUTHORS)


def publisher_config() -> str:
    authors = "\n".join(f'{slug} = "{name}"' for slug, name in AUTHORS.items())
    return CONFIG_TOML.format(title=SITE_TITLE, url=SITE_URL, assets=ASSET_URL, authors=authors,
                              folders=json.dumps(list(FOLDERS)), entries=ENTRIES)


def edit_sentence(label: str) -> str:
    return f"Edited in benchmark {label}: one more sentence to re-render."


def edit_newest(corpus: Corpus, label: str) -> str:
    """Append a sentence to the newest post (the one at the top of every feed), in both sites; return it."""
    snip = corpus.newest
    current = corpus.snip_path(snip).read_text(encoding="utf-8")
    sentence = edit_sentence(label)
    write_post(corpus, snip, append_sentence(current, sentence))
    return sentence


def restore_newest(corpus: Corpus) -> None:
    """Put the newest post back as generated (the rounds of a run append to it)."""
    snip = corpus.newest
    if corpus.snip_path(snip).read_text(encoding="utf-8") != snip.text:
        write_post(corpus, snip, snip.text)
