<?xml version="1.0" encoding="UTF-8"?>
<!--
  Shows an Atom or RSS feed opened in a browser as a readable page.
  XSLT 1.0, inline CSS, no JavaScript, nothing fetched from elsewhere.
  Summaries are HTML escaped in the feed; they are shown as plain text (tags
  dropped, the common entities decoded) because not every browser honours
  disable-output-escaping.
-->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:atom="http://www.w3.org/2005/Atom"
                xmlns:dc="http://purl.org/dc/elements/1.1/"
                exclude-result-prefixes="atom dc">

  <xsl:output method="html" encoding="UTF-8" indent="yes" doctype-system="about:legacy-compat"/>

  <xsl:template match="/">
    <xsl:variable name="title" select="atom:feed/atom:title | rss/channel/title"/>
    <xsl:variable name="self" select="(atom:feed/atom:link[@rel='self'] | rss/channel/atom:link[@rel='self'])/@href"/>
    <xsl:variable name="home" select="atom:feed/atom:link[@rel='alternate' or not(@rel)][1]/@href | rss/channel/link"/>
    <xsl:variable name="about" select="atom:feed/atom:subtitle | rss/channel/description"/>
    <xsl:variable name="lang" select="atom:feed/@xml:lang | rss/channel/language"/>
    <html>
      <xsl:if test="$lang">
        <xsl:attribute name="lang"><xsl:value-of select="$lang"/></xsl:attribute>
      </xsl:if>
      <head>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="$title"/> (web feed)</title>
        <style>
          :root { color-scheme: light dark; }
          body { font: 1.05rem/1.6 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 42rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; color: #1d1d1f; background: #fdfdfc; }
          header { border-bottom: 1px solid #d8d8d3; padding-bottom: 1rem; margin-bottom: 1.5rem; }
          h1 { font-size: 1.8rem; line-height: 1.2; margin: 0 0 .5rem; }
          .about { color: #55554f; margin: 0 0 1rem; }
          .hint { background: #fff7d6; border: 1px solid #e8d68c; border-radius: .4rem; padding: .75rem 1rem; margin: 0; }
          .hint code { display: block; margin-top: .35rem; word-break: break-all; font-size: .95rem; }
          .home { margin: .75rem 0 0; }
          ol { list-style: none; padding: 0; margin: 0; }
          li { padding: 1rem 0; border-bottom: 1px solid #ecece8; }
          h2 { font-size: 1.2rem; margin: 0; }
          a { color: #0b57a4; }
          time { display: block; color: #6b6b66; font-size: .9rem; }
          .summary { margin: .35rem 0 0; }
          .empty { color: #6b6b66; font-style: italic; }
          @media (prefers-color-scheme: dark) {
            body { color: #e8e8e3; background: #1b1b1d; }
            .about, time, .empty { color: #a9a9a3; }
            .hint { background: #3a3318; border-color: #6b5d23; }
            header, li { border-color: #3a3a3d; }
            a { color: #8ab8f0; }
          }
        </style>
      </head>
      <body>
        <header>
          <h1><xsl:value-of select="$title"/></h1>
          <xsl:if test="string($about) and string($about) != string($title)">
            <p class="about"><xsl:value-of select="$about"/></p>
          </xsl:if>
          <p class="hint">This is a web feed: copy its URL into your feed reader to subscribe.
            <code><xsl:value-of select="$self"/></code>
          </p>
          <xsl:if test="$home">
            <p class="home"><a href="{$home}">Visit the site</a></p>
          </xsl:if>
        </header>
        <main>
          <xsl:choose>
            <xsl:when test="atom:feed/atom:entry | rss/channel/item">
              <ol>
                <xsl:apply-templates select="atom:feed/atom:entry | rss/channel/item"/>
              </ol>
            </xsl:when>
            <xsl:otherwise>
              <p class="empty">Nothing has been published here yet.</p>
            </xsl:otherwise>
          </xsl:choose>
        </main>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="atom:entry">
    <xsl:variable name="date" select="(atom:published | atom:updated)[1]"/>
    <li>
      <h2><a href="{atom:link[@rel='alternate' or not(@rel)][1]/@href}"><xsl:value-of select="atom:title"/></a></h2>
      <time datetime="{$date}"><xsl:value-of select="substring($date, 1, 10)"/></time>
      <xsl:call-template name="summary">
        <xsl:with-param name="html" select="atom:summary | atom:content[not(../atom:summary)]"/>
      </xsl:call-template>
    </li>
  </xsl:template>

  <xsl:template match="item">
    <li>
      <h2><a href="{link}"><xsl:value-of select="title"/></a></h2>
      <time><xsl:value-of select="substring(pubDate, 1, 16)"/></time>
      <xsl:call-template name="summary">
        <xsl:with-param name="html" select="description"/>
      </xsl:call-template>
    </li>
  </xsl:template>

  <xsl:template name="summary">
    <xsl:param name="html"/>
    <xsl:variable name="text">
      <xsl:call-template name="strip-tags">
        <xsl:with-param name="html" select="string($html)"/>
      </xsl:call-template>
    </xsl:variable>
    <xsl:if test="normalize-space($text)">
      <p class="summary">
        <xsl:call-template name="decode">
          <xsl:with-param name="text" select="normalize-space($text)"/>
        </xsl:call-template>
      </p>
    </xsl:if>
  </xsl:template>

  <!-- Text of an HTML fragment: everything outside <...>; a space for each tag but the inline ones. -->
  <xsl:template name="strip-tags">
    <xsl:param name="html"/>
    <xsl:choose>
      <xsl:when test="contains($html, '&lt;')">
        <xsl:variable name="tag" select="substring-before(substring-after($html, '&lt;'), '&gt;')"/>
        <xsl:variable name="name" select="translate(substring-before(concat(normalize-space(translate($tag, '/', ' ')), ' '), ' '),
                                                    'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"/>
        <xsl:value-of select="substring-before($html, '&lt;')"/>
        <xsl:if test="not(contains('|a|abbr|b|bdi|bdo|cite|code|data|dfn|em|i|kbd|mark|q|s|samp|small|span|strong|sub|sup|time|u|var|', concat('|', $name, '|')))">
          <xsl:text> </xsl:text>
        </xsl:if>
        <xsl:call-template name="strip-tags">
          <xsl:with-param name="html" select="substring-after(substring-after($html, '&lt;'), '&gt;')"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:otherwise>
        <xsl:value-of select="$html"/>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- The character references HTML summaries commonly hold, decoded; others are left as written. -->
  <xsl:template name="decode">
    <xsl:param name="text"/>
    <xsl:choose>
      <xsl:when test="contains($text, '&amp;') and contains(substring-after($text, '&amp;'), ';')">
        <xsl:variable name="name" select="substring-before(substring-after($text, '&amp;'), ';')"/>
        <xsl:variable name="char">
          <xsl:choose>
            <xsl:when test="$name = 'amp'">&amp;</xsl:when>
            <xsl:when test="$name = 'lt'">&lt;</xsl:when>
            <xsl:when test="$name = 'gt'">&gt;</xsl:when>
            <xsl:when test="$name = 'quot' or $name = '#34' or $name = '#x22'">"</xsl:when>
            <xsl:when test="$name = 'apos' or $name = '#39' or $name = '#x27'">'</xsl:when>
            <xsl:when test="$name = 'nbsp' or $name = '#160' or $name = '#xA0'">&#160;</xsl:when>
            <xsl:when test="$name = 'lsquo' or $name = '#8216'">&#8216;</xsl:when>
            <xsl:when test="$name = 'rsquo' or $name = '#8217'">&#8217;</xsl:when>
            <xsl:when test="$name = 'ldquo' or $name = '#8220'">&#8220;</xsl:when>
            <xsl:when test="$name = 'rdquo' or $name = '#8221'">&#8221;</xsl:when>
            <xsl:when test="$name = 'ndash' or $name = '#8211'">&#8211;</xsl:when>
            <xsl:when test="$name = 'mdash' or $name = '#8212'">&#8212;</xsl:when>
            <xsl:when test="$name = 'hellip' or $name = '#8230'">&#8230;</xsl:when>
          </xsl:choose>
        </xsl:variable>
        <xsl:value-of select="substring-before($text, '&amp;')"/>
        <xsl:choose>
          <xsl:when test="string($char)">
            <xsl:value-of select="$char"/>
            <xsl:call-template name="decode">
              <xsl:with-param name="text" select="substring-after(substring-after($text, '&amp;'), ';')"/>
            </xsl:call-template>
          </xsl:when>
          <xsl:otherwise>
            <xsl:text>&amp;</xsl:text>
            <xsl:call-template name="decode">
              <xsl:with-param name="text" select="substring-after($text, '&amp;')"/>
            </xsl:call-template>
          </xsl:otherwise>
        </xsl:choose>
      </xsl:when>
      <xsl:otherwise>
        <xsl:value-of select="$text"/>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
