"""The outbox provider: one .eml file per message, written atomically, named by Message-ID."""

from __future__ import annotations

import os
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher.config import OutboxProvider as OutboxConfig
from publisher.errors import DeliveryError
from publisher.mail.mime import MimeEncoder
from publisher.providers import make_provider
from publisher.providers.outbox import OutboxProvider, file_name
from tests.contract import make_letter, make_recipient, make_recipients


def outbox(base_dir: Path, directory: str | Path = "outbox", **kwargs: object) -> OutboxProvider:
    config = OutboxConfig(type="outbox", directory=Path(directory))
    return OutboxProvider(config, name="outbox", environ={}, base_dir=base_dir, **kwargs)  # type: ignore[arg-type]


def eml_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.eml"))


def test_each_message_is_a_file_named_by_message_id_holding_the_encoded_bytes(tmp_path: Path) -> None:
    letter, batch = make_letter(digest_id=42), make_recipients(3, digest_id=42)
    provider = outbox(tmp_path)
    results = provider.send(letter, batch)

    assert [(r.delivery_id, r.outcome) for r in results] == [(r.delivery_id, "sent") for r in batch]
    folder = tmp_path / "outbox" / "42"
    assert eml_files(tmp_path) == sorted(folder / f"digest-42.subscriber-{n}@example.org.eml" for n in (1, 2, 3))
    for recipient, result in zip(batch, results):
        message = parse((folder / str(result.provider_id)).read_bytes())
        expected = parse(MimeEncoder().encode(letter, recipient))  # same but for the random MIME boundary
        assert message.items() == expected.items() or _same_but_boundary(message, expected)
        assert message["Message-ID"] == recipient.message_id
        assert message["To"].addresses[0].addr_spec == recipient.email
        for kind in ("plain", "html"):
            assert message.get_body((kind,)).get_content() == expected.get_body((kind,)).get_content()


def parse(data: bytes):  # type: ignore[no-untyped-def]
    return BytesParser(policy=policy.default).parsebytes(data)


def _same_but_boundary(message, expected) -> bool:  # type: ignore[no-untyped-def]
    def headers(m):  # type: ignore[no-untyped-def]
        return [(k, v) for k, v in m.items() if k.lower() != "content-type"]

    return headers(message) == headers(expected) and message.get_content_type() == expected.get_content_type()


def test_the_factory_builds_it_from_config(tmp_path: Path) -> None:
    provider = make_provider("outbox", OutboxConfig(type="outbox"), environ={}, base_dir=tmp_path)
    assert isinstance(provider, OutboxProvider)
    assert provider.directory == tmp_path / "outbox"


def test_an_absolute_directory_is_used_as_it_is(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    provider = outbox(tmp_path / "config-dir", elsewhere)
    provider.send(make_letter(), make_recipients(1))
    assert [p.parent for p in eml_files(tmp_path)] == [elsewhere / "7"]


def test_test_sends_without_a_digest_go_to_the_test_folder(tmp_path: Path) -> None:
    outbox(tmp_path).send(make_letter(digest_id=None), make_recipients(1, digest_id=None))
    assert [p.parent.name for p in eml_files(tmp_path)] == ["test"]


def test_a_resend_replaces_the_file_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    provider = outbox(tmp_path)
    first = make_letter(subject="First")
    provider.send(first, make_recipients(2))
    provider.send(make_letter(subject="Second"), make_recipients(1))

    files = eml_files(tmp_path)
    assert len(files) == 2
    subjects = {BytesParser(policy=policy.default).parsebytes(p.read_bytes())["Subject"] for p in files}
    assert subjects == {"First", "Second"}
    assert sorted(p.name for p in (tmp_path / "outbox" / "7").iterdir()) == sorted(p.name for p in files)


def test_an_unwritable_folder_is_a_transient_delivery_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "outbox").mkdir()
    (tmp_path / "outbox" / "7").write_text("a file where the digest folder goes")
    with pytest.raises(DeliveryError) as caught:
        outbox(tmp_path).send(make_letter(), make_recipients(2))
    assert caught.value.transient
    assert str(tmp_path / "outbox" / "7") in str(caught.value)
    assert str(caught.value).startswith("provider outbox: cannot write to outbox folder")
    assert "\n" not in str(caught.value)


def test_a_failed_write_leaves_neither_a_partial_nor_a_temporary_file(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(DeliveryError, match="No space left on device"):
        outbox(tmp_path).send(make_letter(), make_recipients(1))
    assert list((tmp_path / "outbox" / "7").iterdir()) == []


class PreparingEncoder:
    """An encoder with the fast path: prepare once per batch, then encode per recipient."""

    def __init__(self) -> None:
        self.prepared = 0

    def prepare(self, letter: object) -> PreparingEncoder:
        self.prepared += 1
        return self

    def encode(self, recipient: object) -> bytes:
        return f"To: {recipient.email}\r\n\r\nprepared\r\n".encode()  # type: ignore[attr-defined]


def test_the_encoder_prepares_each_letter_once_per_batch(tmp_path: Path) -> None:
    encoder = PreparingEncoder()
    outbox(tmp_path, encoder=encoder).send(make_letter(), make_recipients(5))
    assert encoder.prepared == 1
    assert [p.read_bytes().endswith(b"prepared\r\n") for p in eml_files(tmp_path)] == [True] * 5


def test_odd_message_ids_stay_inside_the_folder(tmp_path: Path) -> None:
    odd = make_recipient(1)
    odd = type(odd)(**{**{f: getattr(odd, f) for f in odd.__slots__}, "message_id": "<../../etc/passwd@x>"})
    [result] = outbox(tmp_path).send(make_letter(), [odd])
    [path] = eml_files(tmp_path)
    assert path.parent == tmp_path / "outbox" / "7"
    assert path.name == result.provider_id


@given(st.text(min_size=1, max_size=400))
def test_file_names_are_safe(text: str) -> None:
    name = file_name(f"<{text}@example.org>")
    assert name.endswith(".eml")
    assert not name.startswith(".")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert len(name.encode()) <= 255
    assert name.isascii()


@given(st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=60))
def test_different_message_ids_get_different_files(left: str, right: str) -> None:
    if left != right:
        assert file_name(f"<{left}@example.org>") != file_name(f"<{right}@example.org>")
