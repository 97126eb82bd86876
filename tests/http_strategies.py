"""Hypothesis strategies for what an HTTP client controls, shared by the fuzz
test (tests/test_fuzz.py) and the differential suite (tests/test_differential.py)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from hypothesis import strategies as st

METHODS = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8),
)
HEADER_VALUE = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\x7f"), max_size=60
)
HEADER_NAMES = st.one_of(
    st.sampled_from(["accept", "cookie", "authorization", "x-forwarded-for", "range", "if-modified-since",
                     "accept-encoding", "origin", "user-agent", "if-none-match", "content-encoding"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12),
)
CONTENT_TYPES = st.one_of(
    st.sampled_from([
        None, "application/json", "application/json; charset=latin-1", "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=fuzz", "multipart/form-data", "text/plain", "application/octet-stream",
    ]),
    HEADER_VALUE,
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FORM_PAIRS = st.lists(st.tuples(st.text(max_size=10), st.text(max_size=20)), max_size=6)
#: Multipart parts: field name, content, and whether it is a file.
MULTIPART_PARTS = st.lists(st.tuples(st.text(max_size=8), st.binary(max_size=60), st.booleans()), max_size=4)


def multipart(parts: list[tuple[str, bytes, bool]], boundary: str = "fuzz", closed: bool = True) -> bytes:
    """A multipart/form-data body; a file part is named ``f.txt``."""
    out = b""
    for name, data, is_file in parts:
        disposition = f'form-data; name="{name}"' + ('; filename="f.txt"' if is_file else "")
        out += f"--{boundary}\r\nContent-Disposition: ".encode() + disposition.encode() + b"\r\n\r\n" + data + b"\r\n"
    if closed:
        out += f"--{boundary}--\r\n".encode()
    return out


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """A body of any kind, whatever the content type will say."""
    kind = draw(st.sampled_from(["bytes", "json", "form", "multipart"]))
    if kind == "json":
        return json.dumps(draw(JSON_VALUES)).encode()
    if kind == "form":
        return urlencode(draw(FORM_PAIRS)).encode()
    if kind == "multipart":
        return multipart(draw(MULTIPART_PARTS), closed=draw(st.booleans()))
    return draw(st.binary(max_size=600))

#: The request headers tether parses itself (not only hands to the app).
PARSED_HEADERS = [
    "Last-Event-ID", "Origin", "Host", "Content-Type", "Content-Length", "Transfer-Encoding", "Cookie",
    "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions",
]
#: A value a client may send for any of them: latin-1 text (non-ASCII included), a huge or
#: negative number, empty, or a near-miss of a valid value.
PARSED_VALUE = st.one_of(
    HEADER_VALUE,
    st.integers(min_value=-(10**30), max_value=10**40).map(str),
    st.just(""),
    st.sampled_from(["chunked", "gzip, chunked", "13", "dGhlIHNhbXBsZSBub25jZQ==", "a=b; c", "=", "http://x",
                     "null", "multipart/form-data; boundary=", "text/event-stream", "localhost:99999999",
                     "1-\xb2", "\xb9\xb2-0", "0-0", "99999999999999999999999-1"]),
)
