"""Which files can define a name: the few to parse before a query by name answers, while the index builds.

A common name is mentioned in thousands of files and defined in a handful: on a 292 MB tree
`BaseModel` appears in 3,417 files, and parsing each before answering took 4.3-4.9 s. A language
whose spec says what a definition's name follows (`LanguageSpec.defined_after`, e.g. Python's `def` or
`class`) needs only the files where the name appears in that position, which the byte scan of the
stored text checks at each occurrence: a superset of the definitions (a window of only whitespace
counts, the keyword may be further back), so the answer stays identical to the finished index's.
Files of other languages are kept whenever they contain the name (parsed, as before).
"""

from __future__ import annotations

import re
from functools import cache

from .languages import spec_for

_BLANK = re.compile(rb"[\s\\]*\Z")  # a window of only whitespace: the keyword may lie further back
_IDENTIFIER_BYTE = re.compile(rb"[A-Za-z0-9_\x80-\xff]")


@cache
def _keyword_before(defined_after: bytes) -> re.Pattern[bytes]:
    return re.compile(rb"(?:^|[^A-Za-z0-9_])" + defined_after + rb"\Z")


def can_define_here(path: str, before: bytes, after: bytes) -> bool:
    """Whether this occurrence of a name (with the bytes `before` it in its file and the one `after`) can be
    a definition's name; an `accept` filter for rlm_mcp/contexts/scan.py's files_containing."""
    spec = spec_for(path)
    if spec is None or _IDENTIFIER_BYTE.match(after):
        return False  # not a language the index parses, or only part of a longer identifier
    if spec.defined_after is None:
        return True
    return bool(_keyword_before(spec.defined_after).search(before) or _BLANK.fullmatch(before))
