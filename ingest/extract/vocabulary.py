"""The words templates use to name furniture and the article's own content, read by
`ingest.extract.clean` from tags, ARIA roles and class/id/data-* values. Data only."""

from __future__ import annotations

# Tags that are furniture wherever they appear in a page.
DROP_TAGS = frozenset(
    {
        "nav",
        "aside",
        "form",
        "dialog",
        "iframe",
        "noscript",
        "button",
        "select",
        "textarea",
        "input",
        "label",
        "svg",
        "template",
        "figcaption",
        "menu",
    }
)
# ARIA landmark roles and widgets that are not the article.
DROP_ROLES = frozenset(
    {
        "navigation",
        "banner",
        "contentinfo",
        "complementary",
        "dialog",
        "alertdialog",
        "search",
        "menu",
        "menubar",
        "toolbar",
        "form",
        "tablist",
    }
)
# Advertising, in the class/id vocabulary of templates in several languages.
AD_TOKENS = frozenset(
    {
        "ad",
        "ads",
        "adv",
        "advert",
        "adverts",
        "advertisement",
        "advertising",
        "adslot",
        "adunit",
        "adbox",
        "dfp",
        "gpt",
        "sponsor",
        "sponsored",
        "promo",
        "promoted",
        "commercial",
        "anzeige",
        "anzeigen",
        "werbung",
        "publicite",
        "pub",
        "reklama",
    }
)

# Words naming a comment thread (its list, its form, its replies): furniture, and the one part
# of a page where a name marked as an author is a reader's (`ingest.extract.metadata`).
COMMENT_TOKENS = frozenset(
    {
        "comment",
        "comments",
        "commentlist",
        "kommentar",
        "kommentare",
        "leserkommentare",
        "commentaire",
        "commentaires",
        "reaction",
        "reactions",
        "responses",
        "disqus",
        "respond",
        "replies",
    }
)

# Words of the class/id/data-* vocabulary of news templates (WordPress, Drupal, Ghost, Arc,
# newsroom front-ends, and the German/French/Russian portal conventions). Matched against
# whole tokens of those attributes ("ad-slot__label" -> ad, slot, label), never substrings.
DROP_TOKENS = (
    AD_TOKENS
    | COMMENT_TOKENS
    | frozenset(
        {
            "adsense",
            "outbrain",
            "taboola",
            "teads",
            # newsletters, subscriptions, paywalls, donations
            "newsletter",
            "newsletters",
            "signup",
            "subscribe",
            "subscription",
            "subscriber",
            "optin",
            "mailchimp",
            "paywall",
            "regwall",
            "piano",
            "epic",
            "contributions",
            # related, popular, teasers
            "related",
            "recommended",
            "recommendations",
            "trending",
            "popular",
            "meistgelesen",
            "bookmark",
            # sharing
            "share",
            "sharing",
            "social",
            "sharedaddy",
            "sharebar",
            "addthis",
            "shareaholic",
            # consent
            "cookie",
            "cookies",
            "consent",
            "gdpr",
            "cmp",
            # navigation and page chrome
            "breadcrumb",
            "breadcrumbs",
            "navbar",
            "navi",
            "navigation",
            "pagination",
            "pager",
            "sidebar",
            "widget",
            "widgets",
            "footer",
            "fuss",
            "fusszeile",
            "masthead",
            "skip",
            "tools",
            # around the article
            "bio",
            "authorbio",
            "caption",
            "bildunterschrift",
            "legende",
            "tags",
            "tagcloud",
            "weather",
            "wetter",
            "print",
        }
    )
)
# The same vocabulary as compound names split over several tokens ("most-read", "read_next").
DROP_COMPOUNDS = frozenset(
    {
        "mostread",
        "mostviewed",
        "mostpopular",
        "mostshared",
        "readnext",
        "readmore",
        "readalso",
        "alsoread",
        "morefrom",
        "moreon",
        "moreonthisstory",
        "youmayalsolike",
        "aboutauthor",
        "abouttheauthor",
        "authorbox",
        "authorinfo",
        "signupcard",
        "emailsignup",
        "skiplink",
        "adslot",
        "adcontainer",
        "inlinead",
        "sociallinks",
        "sharebuttons",
    }
)
# Names templates give the element that holds the article's text ("article-content",
# "story__body", "entry-content", `data-article-body`): such an element marks itself as the
# article, whatever other words its vocabulary holds.
CONTENT_COMPOUNDS = frozenset(
    {
        "articlebody",
        "articlecontent",
        "articletext",
        "articlecontainer",
        "storybody",
        "storycontent",
        "storytext",
        "entrycontent",
        "entrybody",
        "postcontent",
        "postbody",
        "posttext",
        "newsbody",
        "newscontent",
        "newstext",
        "bodytext",
        "contentbody",
        "artikelbody",
        "artikeltext",
        "artikelinhalt",
    }
)
