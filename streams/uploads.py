"""Uploaded files, as every request receives them."""

from __future__ import annotations

from io import BytesIO
from typing import Any

from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from streams import stream_json

# The largest file any form takes is an import's (1 MiB in all); one byte more shows it is over.
KEPT_BYTES = stream_json.MAX_BYTES + 1


class BoundedUpload(FileUploadHandler):
    """Each uploaded file in memory, its first KEPT_BYTES only: the rest is counted, not kept,
    and the file reports its whole size, which the forms refuse as too large. Django's own
    handlers would spool a large upload to disk whole before any form could look at it."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.file = BytesIO()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.file.write(raw_data[:max(KEPT_BYTES - start, 0)])

    def file_complete(self, file_size: int) -> InMemoryUploadedFile:
        self.file.seek(0)
        return InMemoryUploadedFile(
            file=self.file, field_name=self.field_name, name=self.file_name,
            content_type=self.content_type, size=file_size, charset=self.charset,
            content_type_extra=self.content_type_extra)
