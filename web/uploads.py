"""Uploads stay in memory: a request class whose file parts are ``BytesIO``, never files.

Werkzeug spools a file part above 500 KB to a temporary file; the screens promise that an
uploaded picture (which may show a person and their licence) is never written anywhere.
The whole request is capped by ``MAX_CONTENT_LENGTH`` (``web.max_upload_kb`` plus room for
the form), so the memory held per request is bounded by that cap.
"""

from __future__ import annotations

import io
from typing import IO

from flask import Request

# Room for the form fields and multipart headers beside the picture itself.
FORM_OVERHEAD_BYTES = 64 * 1024


class InMemoryRequest(Request):
    """A Flask request that keeps uploaded files in memory."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()


def request_limit(max_upload_kb: int) -> int:
    """The largest request body accepted, for ``MAX_CONTENT_LENGTH``."""
    return max_upload_kb * 1024 + FORM_OVERHEAD_BYTES
