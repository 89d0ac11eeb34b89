"""Syndicated HTML keeps only safe elements and attributes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from publisher.sanitize import clean_style, sanitize

from .feedcheck import html_problems


def test_scripts_styles_and_handlers_go():
    html = '<p onclick="x()" class="a">Hi</p><script>alert(1)</script><style>p{}</style>'
    assert sanitize(html) == '<p class="a">Hi</p>'


def test_frames_and_objects_become_links():
    html = '<iframe src="https://video.example.com/embed/1" width="5"></iframe><object data="javascript:x"></object>'
    assert sanitize(html) == '<a href="https://video.example.com/embed/1">https://video.example.com/embed/1</a>'


def test_text_entities_and_structure_are_kept():
    html = '<p>Fish &amp; chips &#8617; <a href="https://a.example/x?a=1&amp;b=2" title="T">link</a></p><br />'
    assert sanitize(html) == html


def test_unknown_elements_keep_their_text_and_svg_goes():
    assert sanitize("<custom-card><b>Hi</b></custom-card><svg><path d='M0'/></svg>") == "<b>Hi</b>"


def test_style_keeps_only_simple_declarations():
    assert clean_style("width:100%; position: fixed; background: url(x)") == "width: 100%"
    assert sanitize('<img src="https://a/x.png" style="position: fixed">') == '<img src="https://a/x.png">'


@given(st.text(alphabet=st.sampled_from(list("<>/ =\"'abpscrytlefohnimgdv&#;:1")), max_size=120))
def test_whatever_goes_in_nothing_the_validator_flags_comes_out(html):
    out = sanitize(html)
    assert [name for name, _ in html_problems(out) if name.startswith("SecurityRisk")] == []
