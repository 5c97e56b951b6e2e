"""Page bytes + URL -> article text and metadata: cleaning (`clean`), the text and the guard
against losing it (`page`), what the page says about the article (`metadata`). Runs in the
worker processes; the main process reaches it through `ingest.workers.tasks`."""

from ingest.extract.page import extract_page, read_page, visible_text

__all__ = ["extract_page", "read_page", "visible_text"]
