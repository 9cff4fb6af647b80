"""The one rule for ids that become part of a Firestore document id (experiment, cohort, user ids).

Firestore document ids may not contain ``/`` (it would address a sub-collection), and control characters
make ids unreadable in logs and reports; ids are at most ``MAX_ID`` characters so composite ids
(``{experimentId}_{userId}``) stay far below Firestore's 1,500-byte limit. Every model that accepts an id
(callable requests, Pub/Sub messages) uses ``DocumentId``; code that receives an id from elsewhere (a
token's uid) checks it with ``is_document_id``.
"""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

MAX_ID = 128
ID_PATTERN = r"^[^/\x00-\x1f]+$"
_ID = re.compile(ID_PATTERN)

DocumentId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
"""A validated id (pydantic): 1..128 characters, no ``/``, no control characters."""


def is_document_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID and _ID.match(value) is not None
