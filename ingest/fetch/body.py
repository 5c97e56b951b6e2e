"""Response bodies: decoded (gzip, deflate) while streaming, with the size cap enforced on the
decoded bytes."""

from __future__ import annotations

import zlib
from typing import Final

_CHUNK: Final = 64 * 1024


class BodyTooLargeError(Exception):
    pass


class BodyDecoder:
    """Decodes a Content-Encoding incrementally and never produces more than `cap` bytes.

    httpx's own decoders have no output limit, so a 50 KB gzip of zeros would expand to 50 MB
    in memory before any cap could look at it; `max_length` stops zlib at the cap instead."""

    def __init__(self, encoding: str, cap: int, *, truncate: bool = False) -> None:
        self._encoding = encoding
        self._cap = cap
        self._truncate = truncate
        # The decoded chunks, joined once at the end: a growing buffer would copy the body
        # at least twice (its growth, then the bytes it is returned as).
        self._out: list[bytes] = []
        self._size = 0
        self._raw_seen = 0
        self._done = False
        # RFC 9110 says deflate means zlib-wrapped, but many servers send raw deflate: start
        # with zlib and, if the header is rejected before any output, replay as raw.
        self._zlib_first = encoding == "deflate"
        self._head = bytearray()
        self._decomp = self._new_decompressor()

    def _new_decompressor(self) -> zlib._Decompress | None:
        if self._encoding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self._encoding == "deflate":
            return zlib.decompressobj(zlib.MAX_WBITS if self._zlib_first else -zlib.MAX_WBITS)
        return None

    @property
    def done(self) -> bool:
        """True once the cap was reached in truncate mode; further input is ignored."""
        return self._done

    def feed(self, data: bytes) -> None:
        if self._done or not data:
            return
        self._raw_seen += len(data)
        # Compressed input that inflates to almost nothing (empty deflate blocks) would
        # otherwise be read for ever; no honest body is twice its decoded size.
        if self._raw_seen > 2 * self._cap + _CHUNK:
            self._overflow(f"compressed body exceeds {2 * self._cap + _CHUNK} bytes")
            return
        if self._decomp is None:
            self._emit(data)
            return
        if not self._zlib_first:
            self._inflate(data)
            return
        self._head += data
        try:
            self._inflate(data)
        except zlib.error:
            if self._size:
                raise
            self._zlib_first = False
            self._decomp = self._new_decompressor()
            self._inflate(bytes(self._head))
        if self._size or len(self._head) > _CHUNK:
            self._zlib_first = False
            self._head = bytearray()

    def _inflate(self, data: bytes) -> None:
        assert self._decomp is not None
        while data and not self._done:
            if self._decomp.eof:
                # Concatenated gzip members are one body (RFC 1952 §2.2); other trailing bytes
                # after the end of the stream are ignored, as browsers do.
                if self._encoding != "gzip" or not b"\x1f\x8b".startswith(data[:2]):
                    return
                self._decomp = self._new_decompressor()
                assert self._decomp is not None
            # At most one chunk per call: asking zlib for everything up to the cap at once
            # would hold a cap-sized bytes object beside the cap-sized buffer (and a slice of
            # it), three times the cap in memory for every bomb being read.
            room = self._cap - self._size + 1
            self._emit(self._decomp.decompress(data, min(room, _CHUNK)))
            data = self._decomp.unused_data if self._decomp.eof else self._decomp.unconsumed_tail

    def _emit(self, out: bytes) -> None:
        room = self._cap - self._size
        if len(out) > room:
            self._out.append(out[:room])
            self._size += room
            self._overflow()
            return
        if out:
            self._out.append(out)
            self._size += len(out)

    def _overflow(self, message: str | None = None) -> None:
        if not self._truncate:
            raise BodyTooLargeError(message or f"body exceeds {self._cap} bytes")
        self._done = True

    def finish(self) -> bytes:
        """The decoded body. A compressed stream cut short yields what was decoded, as
        browsers and httpx do; framing errors are the HTTP layer's to report."""
        if self._decomp is not None and not self._done and not self._decomp.eof:
            # _inflate leaves no unconsumed input, so flush only drains zlib's window.
            self._emit(self._decomp.flush())
        return b"".join(self._out)


_DECODED: Final = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}
"""The content codings decoded here, by the name a response gives them."""
_UNDECODED: Final = frozenset(
    {"aes128gcm", "br", "compress", "dcb", "dcz", "exi", "pack200-gzip", "x-compress", "zstd"}
)
"""The other content codings of IANA's registry (RFC 9110 §16.6.1), identity aside."""


def content_coding(header: str | None) -> str:
    """The single content coding of a response: "identity", "gzip" or "deflate".

    We only ever send `Accept-Encoding: gzip`, so a registered coding we do not decode (br,
    zstd) and stacked codings like "gzip, gzip" (which would need one bounded inflater per
    layer) are refused. A value that names no content coding at all (`none`, PHP's idiom to
    keep a server from compressing what it flushes; a charset, `UTF-8`; `binary`) says
    nothing of the body and is passed over, as identity is and as browsers do."""
    named = [c.strip().lower() for c in (header or "").split(",")]
    codings = [c for c in named if c in _DECODED or c in _UNDECODED]
    if not codings:
        return "identity"
    if len(codings) > 1:
        raise ValueError(f"stacked content encodings are not supported: {header}")
    if codings[0] in _UNDECODED:
        raise ValueError(f"unsupported content encoding: {codings[0]}")
    return _DECODED[codings[0]]
