"""Imported by the worker pool's fork server (see `ingest.workers`): loads what every worker
needs (trafilatura, feedparser, the language model) once, before the workers are forked."""

import py3langid

import ingest.extract
import ingest.parse  # noqa: F401

py3langid.classify("load the language identification model once")
