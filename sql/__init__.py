"""Numbered migrations (`NNNN_name.sql`, applied in order, never edited once released) and the
named queries in `queries.sql`; installed as the `ingest.sql` package so they ship with the code."""
