"""publisher: a folder of text posts in; Atom, RSS and JSON feeds and email digests out."""

__version__ = "0.1.0"
