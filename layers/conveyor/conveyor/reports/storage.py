"""The reports bucket: resumable multipart uploads, object facts, and download URLs minted per request.

An upload is resumable because everything needed to finish it is small and saved by the caller (the process
context): the upload id and each uploaded part's ETag, by part number. Uploading a part number again replaces
that part (S3 keeps the last), so a part whose ETag was not saved is simply uploaded again. Parts are at least
PART_BYTES (S3's minimum is 5 MiB, except the last); a part is built in memory and sent from that buffer, so a
writer holds about one part (plus the page being encoded) whatever the report's size.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from conveyor.platform.aws import client, error_code

MIB = 1024 * 1024
PART_BYTES = 8 * MIB  # each part but the last; above S3's 5 MiB minimum with room for a page's overshoot
S3_MIN_PART_BYTES = 5 * MIB
MAX_PARTS = 10_000


def create_upload(bucket: str, key: str, *, content_type: str, filename: str) -> str:
    response = client("s3").create_multipart_upload(
        Bucket=bucket,
        Key=key,
        ContentType=content_type,
        ContentDisposition=f'attachment; filename="{filename}"',
        ServerSideEncryption="AES256",
    )
    return str(response["UploadId"])


def upload_part(bucket: str, key: str, upload_id: str, number: int, body: io.BytesIO) -> str:
    """Upload `body` (from its start) as part `number` (1-based); its ETag, without quotes."""
    if not 1 <= number <= MAX_PARTS:
        raise ValueError(f"part number {number} outside 1..{MAX_PARTS}")
    body.seek(0)
    response = client("s3").upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
    return str(response["ETag"]).strip('"')


def complete_upload(bucket: str, key: str, upload_id: str, etags: list[str]) -> None:
    """Assemble the parts (ETags in part order). Completing an upload that was completed before is a no-op: a
    retried final step finds the object in place (S3 answers NoSuchUpload for the spent upload id)."""
    s3 = client("s3")
    parts = [{"PartNumber": i, "ETag": f'"{etag}"'} for i, etag in enumerate(etags, start=1)]
    try:
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    except s3.exceptions.ClientError as exc:
        if error_code(exc) == "NoSuchUpload" and object_size(bucket, key) is not None:
            return
        raise


def abort_upload(bucket: str, key: str, upload_id: str) -> None:
    s3 = client("s3")
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except s3.exceptions.ClientError as exc:
        if error_code(exc) != "NoSuchUpload":
            raise


def object_size(bucket: str, key: str) -> int | None:
    s3 = client("s3")
    try:
        return int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except s3.exceptions.ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def download_url(bucket: str, key: str, *, filename: str, content_type: str, seconds: int) -> str:
    """A presigned GET, valid `seconds`, that downloads as an attachment named `filename`. Minted per request and
    never stored: signed with the function's temporary credentials, it dies with their session anyway."""
    return str(
        client("s3").generate_presigned_url(
            "get_object",
            Params={
                "Bucket": bucket,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
                "ResponseContentType": content_type,
            },
            ExpiresIn=seconds,
        )
    )


def read_object(bucket: str, key: str, sink: Callable[[bytes], Any], chunk: int = MIB) -> None:
    """Stream an object's bytes into `sink` (the local stack's copy under .local/reports/)."""
    body = client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    for data in body.iter_chunks(chunk):
        sink(data)


class PartSink(io.RawIOBase):
    """A write-only stream that turns what is written into parts of a multipart upload (XLSX: openpyxl's zip is
    written into it). Each time PART_BYTES have gathered, they go out as the next part; `close_parts` sends the
    rest as the last. Holds at most one part in memory."""

    def __init__(self, bucket: str, key: str, upload_id: str, *, part_bytes: int = PART_BYTES) -> None:
        super().__init__()
        self.bucket, self.key, self.upload_id, self.part_bytes = bucket, key, upload_id, part_bytes
        self.etags: list[str] = []
        self.size = 0
        self._buffer = io.BytesIO()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._buffer.write(view)
        self.size += len(view)
        if self._buffer.tell() >= self.part_bytes:
            self._send()
        return len(view)

    def _send(self) -> None:
        number = len(self.etags) + 1
        self.etags.append(upload_part(self.bucket, self.key, self.upload_id, number, self._buffer))
        self._buffer = io.BytesIO()

    def close_parts(self) -> list[str]:
        if self._buffer.tell() or not self.etags:
            self._send()
        return list(self.etags)
