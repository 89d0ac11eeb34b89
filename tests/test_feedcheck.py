"""tests/feedcheck.py catches real mistakes: each rule fires on a feed broken by hand.

Each case starts from a small hand-written feed the checker passes, makes one
mistake in it (a text replacement), and expects the validator's message for it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import feedcheck
from tests.feedcheck import canonical_uri, check_atom, check_json, check_rss, names, rfc822_problem, rfc3339_problem

ATOM_URL = "https://example.net/feed.atom"
RSS_URL = "https://example.net/feed.rss"
JSON_URL = "https://example.net/feed.json"

GOOD_ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">
  <id>tag:example.net,2020:/feed</id>
  <title>Good feed</title>
  <updated>2020-03-02T10:00:00Z</updated>
  <author><name>Ann</name></author>
  <link rel="self" type="application/atom+xml" href="https://example.net/feed.atom"/>
  <link rel="alternate" type="text/html" href="https://example.net/"/>
  <entry>
    <id>tag:example.net,2020-03-02:/two</id>
    <title>Two</title>
    <updated>2020-03-02T10:00:00Z</updated>
    <published>2020-03-02T09:00:00+01:00</published>
    <link rel="alternate" type="text/html" href="https://example.net/two"/>
    <summary type="html">&lt;p&gt;Second.&lt;/p&gt;</summary>
    <content type="html">&lt;p&gt;The &lt;a href="https://example.net/one"&gt;second&lt;/a&gt; post.&lt;/p&gt;</content>
    <category term="posts"/>
  </entry>
  <entry>
    <id>tag:example.net,2020-03-01:/one</id>
    <title>One</title>
    <updated>2020-03-01T10:00:00Z</updated>
    <link rel="alternate" type="text/html" href="https://example.net/one"/>
    <summary type="html">&lt;p&gt;First.&lt;/p&gt;</summary>
    <content type="html">&lt;p&gt;The first post.&lt;/p&gt;</content>
  </entry>
</feed>
"""

GOOD_RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/">
  <channel>
    <title>Good feed</title>
    <link>https://example.net/</link>
    <description>A feed that is fine</description>
    <atom:link href="https://example.net/feed.rss" rel="self" type="application/rss+xml"/>
    <language>en</language>
    <lastBuildDate>Mon, 02 Mar 2020 10:00:00 GMT</lastBuildDate>
    <item>
      <title>Two</title>
      <link>https://example.net/two</link>
      <description>&lt;p&gt;The second post.&lt;/p&gt;</description>
      <content:encoded>&lt;p&gt;The &lt;a href="https://example.net/one"&gt;second&lt;/a&gt; post.&lt;/p&gt;</content:encoded>
      <guid isPermaLink="true">https://example.net/two</guid>
      <pubDate>Mon, 02 Mar 2020 10:00:00 +0000</pubDate>
      <category>posts</category>
      <dc:creator>Ann</dc:creator>
    </item>
    <item>
      <title>One</title>
      <link>https://example.net/one</link>
      <description>&lt;p&gt;The first post.&lt;/p&gt;</description>
      <guid isPermaLink="false">tag:example.net,2020-03-01:/one</guid>
      <pubDate>Sun, 01 Mar 2020 10:00:00 +0000</pubDate>
    </item>
  </channel>
</rss>
"""

GOOD_JSON = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Good feed",
    "home_page_url": "https://example.net/",
    "feed_url": JSON_URL,
    "authors": [{"name": "Ann"}],
    "items": [
        {
            "id": "tag:example.net,2020-03-02:/two",
            "url": "https://example.net/two",
            "title": "Two",
            "content_html": '<p>The <a href="https://example.net/one">second</a> post.</p>',
            "date_published": "2020-03-02T10:00:00Z",
            "tags": ["posts"],
        },
        {
            "id": "tag:example.net,2020-03-01:/one",
            "content_text": "The first post.",
            "date_published": "2020-03-01T10:00:00+00:00",
        },
    ],
}


def _mutate(document: str, old: str, new: str) -> bytes:
    assert old in document, f"the mutation's target {old!r} is not in the good feed"
    return document.replace(old, new, 1).encode("utf-8")


def test_the_good_feeds_are_good():
    assert check_atom(GOOD_ATOM.encode(), ATOM_URL) == []
    assert check_rss(GOOD_RSS.encode(), RSS_URL) == []
    assert check_json(json.dumps(GOOD_JSON).encode(), JSON_URL) == []


# --------------------------------------------------------------------------- Atom

TWO = "<id>tag:example.net,2020-03-02:/two</id>"
ATOM_MISTAKES = [
    # well-formedness and encoding
    ("unclosed element", "<title>Two</title>", "<title>Two", "SAXError"),
    ("undefined entity", "<title>Two</title>", "<title>Two &nbsp;</title>", "SAXError"),
    ("xml 1.1", 'version="1.0"', 'version="1.1"', "BadXmlVersion"),
    ("C1 control character", "<title>Two</title>", "<title>Two \u0085</title>", "BadCharacters"),
    ("double-encoded UTF-8", "<title>Two</title>", "<title>cafÃ©</title>", "BadCharacters"),
    # required elements and structure
    ("feed without title", "<title>Good feed</title>", "", "MissingElement"),
    ("feed without id", "<id>tag:example.net,2020:/feed</id>", "", "MissingElement"),
    ("entry without updated", "<updated>2020-03-01T10:00:00Z</updated>", "", "MissingElement"),
    ("entry without title", "<title>One</title>", "", "MissingElement"),
    ("two titles", "<title>Two</title>", "<title>Two</title><title>Deux</title>", "DuplicateElement"),
    ("undefined Atom element", "<title>Two</title>", "<title>Two</title><headline>x</headline>", "UndefinedElement"),
    ("element without namespace", "<title>Two</title>",
     '<title>Two</title><foo xmlns="">x</foo>', "UndeterminableVocabulary"),
    ("metadata after entries", "</feed>", "<subtitle>late</subtitle></feed>", "MisplacedMetadata"),
    ("schema: author without name", "<author><name>Ann</name></author>", "<author><uri>https://a.example/</uri></author>",
     "RelaxNG"),
    ("unexpected attribute", '<category term="posts"/>', '<category term="posts" colour="red"/>', "UnexpectedAttribute"),
    # ids
    ("relative id", TWO, "<id>/two</id>", "InvalidFullLink"),
    ("malformed tag URI", TWO, "<id>tag:Example.net,2020:/two</id>", "InvalidTAG"),
    ("non-canonical id", TWO, "<id>HTTP://Example.net/two</id>", "NonCanonicalURI"),
    ("id without path", TWO, "<id>http://example.net</id>", "NonCanonicalURI"),
    ("id with white space", TWO, "<id> tag:example.net,2020-03-02:/two</id>", "UnexpectedWhitespace"),
    ("duplicate entry ids", "<id>tag:example.net,2020-03-01:/one</id>", TWO, "DuplicateEntries"),
    ("unregistered scheme", TWO, "<id>gopherx://example.net/two</id>", "SchemeNotIANARegistered"),
    # self and alternate links
    ("no self link", '<link rel="self" type="application/atom+xml" href="https://example.net/feed.atom"/>', "",
     "MissingSelf"),
    ("self elsewhere", 'href="https://example.net/feed.atom"', 'href="https://example.net/other.atom"',
     "SelfDoesntMatchLocation"),
    ("relative self", 'href="https://example.net/feed.atom"', 'href="/feed.atom"', "RelativeSelf"),
    ("self not a feed", 'rel="self" type="application/atom+xml"', 'rel="self" type="text/html"', "SelfNotAtom"),
    ("feed without alternate", '<link rel="alternate" type="text/html" href="https://example.net/"/>', "",
     "MissingAlternateLink"),
    ("entry with two alternates", '<link rel="alternate" type="text/html" href="https://example.net/two"/>',
     '<link rel="alternate" type="text/html" href="https://example.net/two"/>'
     '<link rel="alternate" type="text/html" href="https://example.net/2"/>', "DuplicateAtomLink"),
    ("entry without alternate", '<link rel="alternate" type="text/html" href="https://example.net/two"/>', "",
     "MissingAlternateLink"),
    ("no content, no alternate",
     '<link rel="alternate" type="text/html" href="https://example.net/one"/>\n'
     '    <summary type="html">&lt;p&gt;First.&lt;/p&gt;</summary>\n'
     '    <content type="html">&lt;p&gt;The first post.&lt;/p&gt;</content>',
     '<summary>First.</summary>', "MissingContentOrAlternate"),
    ("unregistered rel", 'rel="alternate" type="text/html" href="https://example.net/two"',
     'rel="permalink" type="text/html" href="https://example.net/two"', "UnregisteredAtomLinkRel"),
    ("link with text", '<link rel="alternate" type="text/html" href="https://example.net/"/>',
     '<link rel="alternate" type="text/html" href="https://example.net/">home</link>', "AtomLinkNotEmpty"),
    ("link without href", 'href="https://example.net/two"', "", "MissingHref"),
    ("relative link", 'href="https://example.net/two"', 'href="/two"', "RelativeURL"),
    ("bad media type", 'rel="alternate" type="text/html" href="https://example.net/"',
     'rel="alternate" type="html" href="https://example.net/"', "InvalidMIMEType"),
    # dates
    ("date without time zone", "<updated>2020-03-02T10:00:00Z</updated>\n    <published>",
     "<updated>2020-03-02T10:00:00</updated>\n    <published>", "InvalidRFC3339Date"),
    ("date with a space", "<published>2020-03-02T09:00:00+01:00</published>",
     "<published>2020-03-02 09:00:00+01:00</published>", "InvalidRFC3339Date"),
    ("impossible date", "<published>2020-03-02T09:00:00+01:00</published>",
     "<published>2020-02-30T09:00:00+01:00</published>", "InvalidRFC3339Date"),
    ("date before 1990", "<updated>2020-03-01T10:00:00Z</updated>", "<updated>1989-03-01T10:00:00Z</updated>",
     "ImplausibleDate"),
    ("date in the future", "<updated>2020-03-01T10:00:00Z</updated>", "<updated>2999-03-01T10:00:00Z</updated>",
     "ImplausibleDate"),
    ("same updated twice", "<updated>2020-03-01T10:00:00Z</updated>", "<updated>2020-03-02T10:00:00Z</updated>",
     "DuplicateUpdated"),
    # authors
    ("no author anywhere", "<author><name>Ann</name></author>", "", "MissingElement"),
    ("author e-mail", "<author><name>Ann</name></author>", "<author><name>Ann</name><email>ann at example</email></author>",
     "InvalidAddrSpec"),
    ("e-mail in a name", "<author><name>Ann</name></author>", "<author><name>Ann &lt;ann@example.net&gt;</name></author>",
     "ContainsEmail"),
    ("blank author name", "<author><name>Ann</name></author>", "<author><name> </name></author>", "NotBlank"),
    # namespaces
    ("unknown namespace", 'xml:lang="en"', 'xml:lang="en" xmlns:x="http://example.net/ns/x"', "UnknownNamespace"),
    ("reserved prefix", 'xml:lang="en"', 'xml:lang="en" xmlns:dc="http://example.net/not-dublin-core"', "ReservedPrefix"),
    ("atom prefix in Atom", 'xml:lang="en"', 'xml:lang="en" xmlns:atom="http://www.w3.org/2005/Atom"',
     "AvoidNamespacePrefix"),
    ("bad xml:lang", 'xml:lang="en"', 'xml:lang="english!"', "InvalidLanguage"),
    # text constructs and HTML
    ("unescaped markup in html content", '<content type="html">&lt;p&gt;The first post.&lt;/p&gt;</content>',
     '<content type="html"><p xmlns="http://www.w3.org/1999/xhtml">The first post.</p></content>', "UndefinedElement"),
    ("HTML in a text title", "<title>Two</title>", "<title>Two &lt;b&gt;bold&lt;/b&gt;</title>",
     "ContainsUndeclaredHTML"),
    ("entity in a text title", "<title>Two</title>", "<title>Two &amp;amp; three</title>", "ContainsUndeclaredHTML"),
    ("blank summary", '<summary type="html">&lt;p&gt;First.&lt;/p&gt;</summary>', '<summary type="html"></summary>',
     "NotBlank"),
    ("broken HTML", "&lt;p&gt;The first post.&lt;/p&gt;", "&lt;p&gt;The first post.&lt;/b&gt;", "NotHtml"),
    ("script in content", "&lt;p&gt;The first post.&lt;/p&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;",
     "SecurityRisk"),
    ("iframe in content", "&lt;p&gt;The first post.&lt;/p&gt;",
     '&lt;iframe src="https://video.example/1"&gt;&lt;/iframe&gt;', "SecurityRisk"),
    ("event handler", "&lt;p&gt;The first post.&lt;/p&gt;", '&lt;p onclick="x()"&gt;The first post.&lt;/p&gt;',
     "SecurityRiskAttr"),
    ("dangerous style", "&lt;p&gt;The first post.&lt;/p&gt;",
     '&lt;p style="background: url(https://evil.example/x)"&gt;The first post.&lt;/p&gt;', "DangerousStyleAttr"),
    ("relative link in content", 'href="https://example.net/one"&gt;second', 'href="/one"&gt;second', "ContainsRelRef"),
    ("fragment link in content", 'href="https://example.net/one"&gt;second', 'href="#note-1"&gt;second',
     "ContainsRelRef"),
    ("protocol-relative image", "&lt;p&gt;The first post.&lt;/p&gt;", '&lt;img src="//cdn.example/a.png" alt=""&gt;',
     "ContainsRelRef"),
    ("relative srcset", "&lt;p&gt;The first post.&lt;/p&gt;",
     '&lt;img src="https://example.net/a.png" srcset="https://example.net/a.png 1x, a@2x.png 2x" alt=""&gt;',
     "ContainsRelRef"),
    ("xhtml without div", '<summary type="html">&lt;p&gt;First.&lt;/p&gt;</summary>',
     '<summary type="xhtml"><p xmlns="http://www.w3.org/1999/xhtml">First.</p></summary>', "MissingXhtmlDiv"),
    ("media type on a title", "<title>Two</title>", '<title type="text/plain">Two</title>', "InvalidTextType"),
    # summary presence
    ("neither content nor summary",
     '<summary type="html">&lt;p&gt;First.&lt;/p&gt;</summary>\n    <content type="html">&lt;p&gt;The first post.&lt;/p&gt;</content>',
     "", "MissingTextualContent"),
    ("linked content without summary",
     '<summary type="html">&lt;p&gt;First.&lt;/p&gt;</summary>\n    <content type="html">&lt;p&gt;The first post.&lt;/p&gt;</content>',
     '<content type="text/html" src="https://example.net/one.html"/>', "MissingSummary"),
    # categories
    ("category without term", '<category term="posts"/>', '<category label="Posts"/>', "MissingAttribute"),
]


@pytest.mark.parametrize(("old", "new", "expected"), [case[1:] for case in ATOM_MISTAKES],
                         ids=[case[0] for case in ATOM_MISTAKES])
def test_atom_mistake_is_caught(old, new, expected):
    problems = check_atom(_mutate(GOOD_ATOM, old, new), ATOM_URL)
    assert expected in names(problems), problems


def test_empty_atom_feed_without_author_is_caught():
    start, end = GOOD_ATOM.index("<entry>"), GOOD_ATOM.rindex("</entry>") + len("</entry>")
    empty = GOOD_ATOM[:start] + GOOD_ATOM[end:]
    assert check_atom(empty.encode(), ATOM_URL) == []
    problems = check_atom(_mutate(empty, "<author><name>Ann</name></author>", ""), ATOM_URL)
    assert names(problems) == {"MissingElement"}, problems


def test_ten_entries_with_one_id_are_duplicate_ids():
    entry = GOOD_ATOM[GOOD_ATOM.index("<entry>"):GOOD_ATOM.index("</entry>") + len("</entry>")]
    entries = "".join(entry.replace("2020-03-02T10", f"2020-03-{day:02d}T10") for day in range(2, 12))
    document = GOOD_ATOM[:GOOD_ATOM.index("<entry>")] + entries + "</feed>"
    assert "DuplicateIds" in names(check_atom(document.encode(), ATOM_URL))


def test_problems_name_the_line():
    problems = check_atom(_mutate(GOOD_ATOM, "<title>Two</title>", "<title>Two</title><title>2</title>"), ATOM_URL)
    line = GOOD_ATOM.splitlines().index("    <title>Two</title>") + 1
    assert any(p.startswith("DuplicateElement") and f"(line {line})" in p for p in problems), problems


# --------------------------------------------------------------------------- RSS

RSS_MISTAKES = [
    ("not well-formed", "</channel>", "</chanel>", "SAXError"),
    ("no version", '<rss version="2.0"', "<rss", "MissingAttribute"),
    ("wrong version", '<rss version="2.0"', '<rss version="3.0"', "InvalidRSSVersion"),
    ("no channel title", "<title>Good feed</title>", "", "MissingTitle"),
    ("no channel link", "<link>https://example.net/</link>", "", "MissingLink"),
    ("no channel description", "<description>A feed that is fine</description>", "", "MissingDescription"),
    ("undefined element", "<language>en</language>", "<language>en</language><author>x</author>", "UndefinedElement"),
    ("two languages", "<language>en</language>", "<language>en</language><language>fr</language>", "DuplicateElement"),
    ("metadata after items", "</channel>", "<ttl>60</ttl></channel>", "MisplacedItem"),
    ("no self link", '<atom:link href="https://example.net/feed.rss" rel="self" type="application/rss+xml"/>', "",
     "MissingAtomSelfLink"),
    ("self elsewhere", 'href="https://example.net/feed.rss"', 'href="https://example.net/rss.xml"',
     "SelfDoesntMatchLocation"),
    ("relative channel link", "<link>https://example.net/</link>", "<link>/</link>", "InvalidFullLink"),
    ("relative item link", "<link>https://example.net/one</link>", "<link>one</link>", "InvalidFullLink"),
    ("ISO date in pubDate", "<pubDate>Sun, 01 Mar 2020 10:00:00 +0000</pubDate>", "<pubDate>2020-03-01T10:00:00Z</pubDate>",
     "InvalidRFC2822Date"),
    ("wrong day of week", "<pubDate>Sun, 01 Mar 2020 10:00:00 +0000</pubDate>",
     "<pubDate>Mon, 01 Mar 2020 10:00:00 +0000</pubDate>", "IncorrectDOW"),
    ("two-digit year", "<pubDate>Sun, 01 Mar 2020 10:00:00 +0000</pubDate>", "<pubDate>Sun, 01 Mar 20 10:00:00 +0000</pubDate>",
     "ProblematicalRFC822Date"),
    ("quarter-hour offset", "<pubDate>Sun, 01 Mar 2020 10:00:00 +0000</pubDate>",
     "<pubDate>Sun, 01 Mar 2020 10:00:00 +0545</pubDate>", "ProblematicalRFC822Date"),
    ("pubDate before 1990", "<pubDate>Sun, 01 Mar 2020 10:00:00 +0000</pubDate>",
     "<pubDate>Wed, 01 Mar 1989 10:00:00 +0000</pubDate>", "ImplausibleDate"),
    ("item with neither title nor description",
     "<title>One</title>\n      <link>https://example.net/one</link>\n      <description>&lt;p&gt;The first post.&lt;/p&gt;</description>",
     "<link>https://example.net/one</link>", "ItemMustContainTitleOrDescription"),
    ("no guid", '<guid isPermaLink="false">tag:example.net,2020-03-01:/one</guid>', "", "MissingGuid"),
    ("tag guid as permalink", '<guid isPermaLink="false">tag:', '<guid isPermaLink="true">tag:', "InvalidPermalink"),
    ("tag guid, permalink by default", '<guid isPermaLink="false">tag:', "<guid>tag:", "InvalidPermalink"),
    ("relative permalink", '<guid isPermaLink="true">https://example.net/two</guid>', "<guid>/two</guid>",
     "InvalidHttpGUID"),
    ("isPermaLink yes", '<guid isPermaLink="false">', '<guid isPermaLink="no">', "InvalidBooleanAttribute"),
    ("numeric guid", '<guid isPermaLink="false">tag:example.net,2020-03-01:/one</guid>',
     '<guid isPermaLink="false">42</guid>', "NotSufficientlyUnique"),
    ("duplicate guids", '<guid isPermaLink="false">tag:example.net,2020-03-01:/one</guid>',
     '<guid isPermaLink="true">https://example.net/two</guid>', "DuplicateValue"),
    ("relative URL in description", "&lt;p&gt;The first post.&lt;/p&gt;",
     '&lt;p&gt;The &lt;a href="first"&gt;first&lt;/a&gt; post.&lt;/p&gt;', "ContainsRelRef"),
    ("relative image in content:encoded", 'href="https://example.net/one"', 'href="../one"', "ContainsRelRef"),
    ("script in description", "&lt;p&gt;The first post.&lt;/p&gt;", "&lt;script&gt;x()&lt;/script&gt;", "SecurityRisk"),
    ("content before description",
     "<description>&lt;p&gt;The second post.&lt;/p&gt;</description>\n      <content:encoded>&lt;p&gt;The &lt;a href=\"https://example.net/one\"&gt;second&lt;/a&gt; post.&lt;/p&gt;</content:encoded>",
     "<content:encoded>&lt;p&gt;second&lt;/p&gt;</content:encoded><description>&lt;p&gt;The second post.&lt;/p&gt;</description>",
     "NeedDescriptionBeforeContent"),
    ("author and dc:creator", "<dc:creator>Ann</dc:creator>", "<dc:creator>Ann</dc:creator><author>ann@example.net (Ann)</author>",
     "DuplicateItemSemantics"),
    ("name in author", "<dc:creator>Ann</dc:creator>", "<author>Ann</author>", "InvalidContact"),
    ("author without real name", "<dc:creator>Ann</dc:creator>", "<author>ann@example.net</author>", "MissingRealName"),
    ("markup in a title", "<title>One</title>", "<title>One &lt;em&gt;only</title>", "CharacterData"),
    ("HTML in a title", "<title>One</title>", "<title>One &lt;em&gt;only&lt;/em&gt;</title>", "ContainsHTML"),
    ("blank title", "<title>One</title>", "<title> </title>", "NotBlank"),
    ("unknown namespace", 'xmlns:dc="http://purl.org/dc/elements/1.1/"',
     'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:blog="https://example.net/ns/blog"', "UnknownNamespace"),
    ("reserved prefix", 'xmlns:dc="http://purl.org/dc/elements/1.1/"', 'xmlns:dc="https://example.net/dc"',
     "ReservedPrefix"),
    ("bad language", "<language>en</language>", "<language>English</language>", "InvalidLanguage"),
    ("bad characters", "<title>One</title>", "<title>One \ufffd</title>", "BadCharacters"),
    ("attribute on title", "<title>One</title>", '<title lang="en">One</title>', "UnexpectedAttribute"),
]


@pytest.mark.parametrize(("old", "new", "expected"), [case[1:] for case in RSS_MISTAKES],
                         ids=[case[0] for case in RSS_MISTAKES])
def test_rss_mistake_is_caught(old, new, expected):
    problems = check_rss(_mutate(GOOD_RSS, old, new), RSS_URL)
    assert expected in names(problems), problems


def test_markup_in_rss_title_is_fine_with_hexadecimal_references():
    title = "<title>One &#x3C;em&gt; &#x26;nbsp;</title>"
    assert check_rss(_mutate(GOOD_RSS, "<title>One</title>", title), RSS_URL) == []
    assert check_atom(_mutate(GOOD_ATOM, "<title>Two</title>", "<title>Two &#x26;nbsp;</title>"), ATOM_URL) == []


# --------------------------------------------------------------------------- JSON Feed


def _json_mistake(change) -> list[str]:
    document = json.loads(json.dumps(GOOD_JSON))
    change(document)
    return check_json(json.dumps(document).encode(), JSON_URL)


JSON_MISTAKES = [
    ("version 1.0", lambda d: d.update(version="https://jsonfeed.org/version/1"), "InvalidVersion"),
    ("no version", lambda d: d.pop("version"), "MissingElement"),
    ("no title", lambda d: d.pop("title"), "MissingElement"),
    ("no items", lambda d: d.pop("items"), "MissingElement"),
    ("item without id", lambda d: d["items"][0].pop("id"), "MissingElement"),
    ("numeric id", lambda d: d["items"][1].update(id=1), "MissingElement"),
    ("item without content", lambda d: d["items"][1].pop("content_text"), "MissingElement"),
    ("duplicate ids", lambda d: d["items"][1].update(id=d["items"][0]["id"]), "DuplicateEntries"),
    ("date without zone", lambda d: d["items"][0].update(date_published="2020-03-02T10:00:00"), "InvalidRFC3339Date"),
    ("date as RFC 822", lambda d: d["items"][0].update(date_modified="Mon, 02 Mar 2020 10:00:00 GMT"),
     "InvalidRFC3339Date"),
    ("author object of 1.0", lambda d: d.update(author={"name": "Ann"}), "DeprecatedElement"),
    ("authors not an array", lambda d: d.update(authors={"name": "Ann"}), "InvalidValue"),
    ("author with nothing", lambda d: d["items"][0].update(authors=[{}]), "InvalidValue"),
    ("no feed_url", lambda d: d.pop("feed_url"), "MissingRecommendedElement"),
    ("no home_page_url", lambda d: d.pop("home_page_url"), "MissingRecommendedElement"),
    ("feed_url elsewhere", lambda d: d.update(feed_url="https://example.net/other.json"), "SelfDoesntMatchLocation"),
    ("relative item url", lambda d: d["items"][0].update(url="/two"), "InvalidFullLink"),
    ("relative link in content", lambda d: d["items"][0].update(content_html='<a href="one">1</a>'), "ContainsRelRef"),
    ("HTML in summary", lambda d: d["items"][0].update(summary="<p>Two</p>"), "ContainsHTML"),
    ("tags not strings", lambda d: d["items"][0].update(tags=[1]), "InvalidValue"),
    ("unknown key", lambda d: d.update(updated="2020-03-02T10:00:00Z"), "UndefinedElement"),
]


@pytest.mark.parametrize(("change", "expected"), [case[1:] for case in JSON_MISTAKES],
                         ids=[case[0] for case in JSON_MISTAKES])
def test_json_mistake_is_caught(change, expected):
    problems = _json_mistake(change)
    assert expected in names(problems), problems


def test_json_extension_keys_are_allowed_and_broken_json_is_caught():
    assert _json_mistake(lambda d: d.update(_publisher={"about": "x"})) == []
    assert names(check_json(b'{"version": ', JSON_URL)) == {"InvalidJSON"}
    assert names(check_json(b"[]", JSON_URL)) == {"InvalidJSON"}


# --------------------------------------------------------------------------- the rules' building blocks


@pytest.mark.parametrize(
    ("uri", "canonical"),
    [
        ("HTTP://Example.COM:80/a/./b/../c/%7euser", "http://example.com/a/c/~user"),
        ("http://example.com", "http://example.com/"),
        ("https://example.com:443/x?q=%3a#F", "https://example.com/x?q=%3A#F"),
        ("https://example.com:8443/", "https://example.com:8443/"),
        ("tag:example.org,2018-02-09:/week-473", "tag:example.org,2018-02-09:/week-473"),
        ("http://example.com/caf\u00e9", "http://example.com/caf%C3%A9"),
        ("http://example.com/a b", "http://example.com/a%20b"),
        ("relative/path", None),
        ("http://example.com/%zz", None),
    ],
)
def test_canonical_uri(uri, canonical):
    assert canonical_uri(uri) == canonical


@given(st.datetimes(min_value=datetime(1990, 1, 2), max_value=datetime(2025, 12, 31)),
       st.integers(min_value=-24, max_value=24))
def test_dates_as_feedgen_writes_them_are_valid(moment, half_hours):
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=30 * half_hours)))
    assert rfc3339_problem(aware.replace(microsecond=0).isoformat()) is None
    assert rfc3339_problem(aware.isoformat()) is None
    assert rfc822_problem(aware.strftime("%a, %d %b %Y %H:%M:%S %z")) is None


@given(st.from_regex(r"\Ahttps?://[a-zA-Z0-9.-]{1,20}(:[0-9]{1,5})?(/[a-zA-Z0-9._~%!$&'()*+,;=:@-]{0,8}){0,4}"
                     r"(\?[a-zA-Z0-9/?%=&-]{0,10})?\Z"))
def test_canonical_form_is_stable(uri):
    canonical = canonical_uri(uri)
    if canonical is not None:
        assert canonical_uri(canonical) == canonical


def test_uri_problem_names():
    assert feedcheck.uri_problem("https://example.net/x", full=True) is None
    assert feedcheck.uri_problem("/x", full=True) == "InvalidFullLink"
    assert feedcheck.uri_problem("/x", full=False) is None
    assert feedcheck.uri_problem("https://example.net/a<b", full=True) == "InvalidUriChar"
    assert feedcheck.uri_problem("urn:uuid:1234", full=True) == "InvalidUUID"
    assert feedcheck.uri_problem("urn:isbn:0451450523", full=True) is None
    assert feedcheck.uri_problem("http:/example.net", full=True) == "InvalidFullLink"
