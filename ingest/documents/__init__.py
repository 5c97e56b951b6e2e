"""Bytes -> typed values for the documents the service reads besides article pages: feeds
(`feeds`: RSS, Atom, JSON Feed), sitemaps (`sitemaps`), feed lists (`feedlists`: OPML or one URL
a line) and the feeds and sitemaps a web page or site points to (`discovery`). Pure."""
