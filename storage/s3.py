"""S3Store: content-addressed, write-once blobs in an S3 bucket (AWS or any S3-compatible store).

Keys under the optional prefix ``P``::

    P/blobs/<sha256>        one object per blob; its bytes hash to the key's digest
    P/staging/<uuid>        large uploads in flight (see below), deleted once copied
    P/quarantine/<sha256>   copies made by ``quarantine`` for review

Why it is safe:

* **Versioning is required** and checked when the store is created and by ``health()``: an
  overwrite or delete then only adds a version or a delete marker, and the original bytes stay
  retrievable. Object Lock (detected, never assumed) makes chosen versions undeletable:
  ``retain`` applies COMPLIANCE or GOVERNANCE retention and ``set_legal_hold`` a legal hold.
* **Create-once writes.** Blobs are written with ``If-None-Match: *`` so that, of concurrent
  uploads of the same bytes, one creates the object and the others get 412 and reuse it (a
  409, "a twin is still being written", makes us look again and retry a few times). With ``conditional_writes=False`` (stores that lack it) the store looks first, then writes;
  a race then leaves two versions of identical bytes, which is harmless.
* **Checksums end to end.** Objects are written with ``ChecksumAlgorithm=SHA256`` and our own
  digest, so the server refuses bytes damaged in transit; and every read re-hashes the bytes
  (``BlobReader``) because a server may not check (moto does not).
* **Bounded memory.** A stream is read one part (``part_size``, default 8 MiB) at a time. If it
  ends within the first part, it is hashed and PUT straight to its content key. Otherwise the
  key is not known until the last byte, so the parts go to a multipart upload under a unique
  ``staging/`` key while being hashed; at the end, if the blob already exists the upload is
  simply aborted, else it is completed and copied server-side to ``blobs/<sha256>`` (one
  CopyObject up to 5 GiB, a multipart copy above), then the staging version is deleted. A crash
  leaves at most a staging object or an incomplete multipart upload, never a wrong content
  key; a lifecycle rule on ``P/staging/`` (expire objects, abort incomplete uploads after a
  day) cleans those up. With a *default* Object Lock retention on the bucket, staging objects
  are locked too and stay until their retention ends: prefer explicit ``retain`` instead.
* **Reads pick a version.** ``open(BlobRef)`` reads exactly the version recorded in the
  reference; ``open("<digest>")`` reads the current version. Either way the bytes are verified,
  so an object overwritten behind our back is refused by digest, while the version recorded
  at upload still reads intact.
* **A dead server is reported, not hung on.** Connect timeout 1 s, read timeout 5 s, two
  attempts: a refused connection raises ``StorageUnavailable`` within about a second, an
  unreachable host within two or three; every botocore error becomes one of our errors.
* **Size limit.** S3 allows 10,000 parts per upload: with 8 MiB parts a blob can reach about
  78 GiB; raise ``part_size`` for larger ones.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    ConnectionError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
)

from storage.base import (
    BlobRef,
    RefLike,
    RetentionMode,
    SupportsRead,
    retention_deadline,
    split_ref,
    validate_digest,
)
from storage.errors import (
    BlobIntegrityError,
    BlobNotFound,
    RetentionNotSupported,
    StorageError,
    StorageMisconfigured,
    StorageUnavailable,
)
from storage.reader import DEFAULT_CHUNK_SIZE, BlobReader

MIB = 1024 * 1024
GIB = 1024 * MIB
MIN_PART_SIZE = 5 * MIB  # S3's minimum for every part but the last
MAX_COPY_OBJECT_SIZE = 5 * GIB  # above this, CopyObject is refused: copy in parts
_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}
_ALREADY_EXISTS = {"PreconditionFailed", "ConditionalRequestConflict"}
_CONFLICT_RETRIES = 3
_REFUSED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}


class S3Store:
    """Blob store in a versioned S3 bucket. See the module docstring for design and guarantees.

    Creating the store checks the bucket: it raises ``StorageUnavailable`` if the endpoint
    cannot be reached and ``StorageMisconfigured`` if the bucket is missing, forbidden or not
    versioned.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        object_lock_mode: RetentionMode | str = RetentionMode.COMPLIANCE,
        retention_years: int = 25,
        part_size: int = 8 * MIB,
        copy_part_size: int = 512 * MIB,
        copy_threshold: int = MAX_COPY_OBJECT_SIZE,
        conditional_writes: bool = True,
        connect_timeout: float = 1.0,
        read_timeout: float = 5.0,
        max_attempts: int = 2,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        """Connect to ``bucket`` and check it; credentials default to boto3's usual chain."""
        if part_size < MIN_PART_SIZE or copy_part_size < MIN_PART_SIZE:
            raise StorageMisconfigured(
                f"S3 part sizes must be at least {MIN_PART_SIZE} bytes (5 MiB), S3's minimum."
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self.object_lock_mode = RetentionMode(object_lock_mode)
        self.retention_years = retention_years
        self.part_size = part_size
        self.copy_part_size = copy_part_size
        self.copy_threshold = min(copy_threshold, MAX_COPY_OBJECT_SIZE)
        self.conditional_writes = conditional_writes
        self.chunk_size = chunk_size
        self._client = _make_client(
            endpoint_url,
            region,
            access_key,
            secret_key,
            session_token,
            connect_timeout,
            read_timeout,
            max_attempts,
        )
        self._object_lock = False
        self._check_bucket()

    # -- the BlobStore contract -------------------------------------------------------------

    @property
    def supports_retention(self) -> bool:
        """True when the bucket has Object Lock enabled (detected at start-up)."""
        return self._object_lock

    def describe(self) -> str:
        """Return ``s3://bucket/prefix at <endpoint>``."""
        where = self.endpoint_url or f"AWS {self.region}"
        return f"s3://{self.bucket}/{self.prefix} at {where}"

    def put(self, stream: SupportsRead, expected_sha256: str | None = None) -> BlobRef:
        """Store the stream under its SHA-256 (see ``BlobStore.put``); durable on return."""
        if expected_sha256 is not None:
            validate_digest(expected_sha256)
        first = _read_up_to(stream, self.part_size)
        if len(first) < self.part_size:
            return self._put_single(first, expected_sha256)
        # Hand the part over in a list the uploader empties, so that no frame keeps the first
        # part alive for the whole upload (memory stays at about one part).
        pending = [first]
        del first
        return self._put_multipart(pending, stream, expected_sha256)

    def open(self, ref: RefLike) -> BlobReader:
        """Open a blob (the ref's version, else the current one) for a verifying read."""
        digest, version_id = split_ref(ref)
        request = self._object_args(digest, version_id)
        with self._s3(f"read blob {digest}"):
            try:
                response = self._client.get_object(**request)
            except ClientError as exc:
                if _code(exc) in _NOT_FOUND:
                    raise BlobNotFound(digest, self.describe()) from None
                raise
        body = response["Body"]
        where = self.describe()

        def read_source(n: int) -> bytes:
            try:
                return bytes(body.read(n))
            except FlexibleChecksumError as exc:
                raise BlobIntegrityError(digest, "(transfer checksum mismatch)", where) from exc
            except (BotoCoreError, ClientError, OSError) as exc:
                raise _translate(exc, f"read blob {digest}", where) from exc

        return BlobReader(
            digest,
            read_source,
            body.close,
            where,
            size=response.get("ContentLength"),
            version_id=response.get("VersionId"),
            chunk_size=self.chunk_size,
        )

    def exists(self, ref: RefLike) -> bool:
        """Tell whether the blob's current version exists (a delete marker hides it)."""
        digest, _ = split_ref(ref)
        return self._current_version(digest) is not None

    def iter_refs(self) -> Iterator[BlobRef]:
        """Yield the current version of every blob under ``blobs/``."""
        prefix = self._key("")
        paginator = self._client.get_paginator("list_object_versions")
        with self._s3("list blobs"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for version in page.get("Versions", []):
                    name = version["Key"][len(prefix) :]
                    if version.get("IsLatest") and _is_digest(name):
                        yield BlobRef(name, int(version["Size"]), version.get("VersionId"))

    def retain(self, ref: RefLike, until: datetime, mode: RetentionMode | None = None) -> None:
        """Apply Object Lock retention until ``until`` (UTC) to the ref's (or current) version.

        COMPLIANCE retention cannot be shortened or removed by anyone, the root account
        included, until it expires: use the configured mode unless you mean otherwise.
        """
        digest, version_id = split_ref(ref)
        self._require_object_lock()
        if until.tzinfo is None:
            raise ValueError("Retention needs a timezone-aware time (UTC).")
        chosen = RetentionMode(mode) if mode is not None else self.object_lock_mode
        retention = {"Mode": chosen.value, "RetainUntilDate": until}
        with self._s3(f"apply retention to blob {digest}"):
            self._client.put_object_retention(
                **self._object_args(digest, version_id), Retention=retention
            )

    def retention_until(self, now: datetime) -> datetime:
        """The default retention end for a record finalised at ``now``: ``retention_years`` on."""
        return retention_deadline(now, self.retention_years)

    def set_legal_hold(self, ref: RefLike, on: bool) -> None:
        """Place (``on=True``) or lift a legal hold on the ref's (or current) version."""
        digest, version_id = split_ref(ref)
        self._require_object_lock()
        with self._s3(f"set the legal hold of blob {digest}"):
            self._client.put_object_legal_hold(
                **self._object_args(digest, version_id),
                LegalHold={"Status": "ON" if on else "OFF"},
            )

    def quarantine(self, ref: RefLike) -> None:
        """Hide an unreferenced blob: copy it to ``quarantine/<digest>``, then delete its key.

        The delete, without a version id, only adds a delete marker: every version stays in the
        versioned bucket (and locked ones cannot be removed at all), so quarantine never
        destroys bytes. Deleting the delete marker undoes it.
        """
        digest, version_id = split_ref(ref)
        current = version_id or self._current_version(digest)
        if current is None:
            raise BlobNotFound(digest, self.describe())
        with self._s3(f"quarantine blob {digest}"):
            size = int(
                self._client.head_object(**self._object_args(digest, current))["ContentLength"]
            )
            self._copy(self._key(digest), current, self._quarantine_key(digest), size, {})
            self._client.delete_object(Bucket=self.bucket, Key=self._key(digest))

    def health(self) -> None:
        """Check that the bucket answers, exists, is accessible and is versioned."""
        self._check_bucket()

    # -- writing -----------------------------------------------------------------------------

    def _put_single(self, data: bytearray, expected: str | None) -> BlobRef:
        """PUT a blob that fits in one part straight to its content key, create-once."""
        digest_bytes = hashlib.sha256(data).digest()
        digest = digest_bytes.hex()
        if expected is not None and digest != expected:
            raise BlobIntegrityError.unexpected_upload(expected, digest, self.describe())
        if not self.conditional_writes and (existing := self._current_version(digest)):
            return BlobRef(digest, len(data), existing)
        extra = {"IfNoneMatch": "*"} if self.conditional_writes else {}
        for _ in range(_CONFLICT_RETRIES):
            with self._s3(f"store blob {digest}"):
                try:
                    response = self._client.put_object(
                        Bucket=self.bucket,
                        Key=self._key(digest),
                        Body=data,
                        ChecksumAlgorithm="SHA256",
                        ChecksumSHA256=_b64(digest_bytes),
                        **extra,
                    )
                    return BlobRef(digest, len(data), response.get("VersionId"))
                except ClientError as exc:
                    if _code(exc) not in _ALREADY_EXISTS:
                        raise
            # 412: a twin is stored, reuse it. 409: a twin is still being written and may yet
            # fail, so look again and, if nothing is there, write ours (AWS advises a retry).
            if existing := self._current_version(digest):
                return BlobRef(digest, len(data), existing)
        raise self._conflict(digest)

    def _put_multipart(
        self, pending: list[bytearray], stream: SupportsRead, expected: str | None
    ) -> BlobRef:
        """Upload a large stream to a staging key while hashing, then copy it into place."""
        staging = f"{self.prefix}staging/{uuid.uuid4().hex}"
        with self._s3("start a multipart upload"):
            upload_id = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=staging, ChecksumAlgorithm="SHA256"
            )["UploadId"]
        try:
            digest, size, parts = self._upload_parts(staging, upload_id, pending, stream)
            if expected is not None and digest != expected:
                raise BlobIntegrityError.unexpected_upload(expected, digest, self.describe())
            existing = self._current_version(digest)
            if existing is not None:  # already stored: drop the upload, nothing to clean up
                self._abort_quietly(staging, upload_id)
                return BlobRef(digest, size, existing)
            with self._s3(f"finish uploading blob {digest}"):
                staging_version = self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=staging,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                ).get("VersionId")
        except BaseException:
            self._abort_quietly(staging, upload_id)
            raise
        try:
            version = self._copy_into_place(staging, staging_version, digest, size)
        finally:
            self._delete_staging_quietly(staging, staging_version)
        return BlobRef(digest, size, version)

    def _upload_parts(
        self, key: str, upload_id: str, pending: list[bytearray], stream: SupportsRead
    ) -> tuple[str, int, list[dict[str, Any]]]:
        """Send the stream part by part (one part in memory); return digest, size, parts."""
        hasher, size, parts = hashlib.sha256(), 0, []
        chunk, number = pending.pop(), 1
        while chunk:
            hasher.update(chunk)
            size += len(chunk)
            checksum = _b64(hashlib.sha256(chunk).digest())
            with self._s3(f"upload part {number}"):
                etag = self._client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=chunk,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                )["ETag"]
            parts.append({"ETag": etag, "PartNumber": number, "ChecksumSHA256": checksum})
            del chunk  # let the part go before the next one is read
            chunk, number = _read_up_to(stream, self.part_size), number + 1
        return hasher.hexdigest(), size, parts

    def _copy_into_place(
        self, staging: str, staging_version: str | None, digest: str, size: int
    ) -> str | None:
        """Copy a finished staging object to its content key, create-once; return the version."""
        extra = {"IfNoneMatch": "*"} if self.conditional_writes else {}
        for _ in range(_CONFLICT_RETRIES):
            with self._s3(f"copy blob {digest} into place"):
                try:
                    return self._copy(staging, staging_version, self._key(digest), size, extra)
                except ClientError as exc:
                    if _code(exc) not in _ALREADY_EXISTS:
                        raise
            # A concurrent upload of the same bytes is there (412) or on its way (409).
            if existing := self._current_version(digest):
                return existing
        raise self._conflict(digest)

    def _copy(
        self,
        source_key: str,
        source_version: str | None,
        target_key: str,
        size: int,
        extra: dict[str, str],
    ) -> str | None:
        """Copy an object server-side, recomputing its SHA-256 checksum; return the version.

        Raises botocore errors: callers translate them.
        """
        source = {"Bucket": self.bucket, "Key": source_key}
        if source_version:
            source["VersionId"] = source_version
        if size > self.copy_threshold:
            return self._copy_in_parts(source, target_key, size, extra)
        response = self._client.copy_object(
            Bucket=self.bucket,
            Key=target_key,
            CopySource=source,
            ChecksumAlgorithm="SHA256",
            **extra,
        )
        version: str | None = response.get("VersionId")
        return version

    def _copy_in_parts(
        self, source: dict[str, str], target_key: str, size: int, extra: dict[str, str]
    ) -> str | None:
        """Server-side multipart copy for objects too large for one CopyObject."""
        upload_id = self._client.create_multipart_upload(
            Bucket=self.bucket, Key=target_key, ChecksumAlgorithm="SHA256"
        )["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, size, self.copy_part_size), start=1):
                end = min(start + self.copy_part_size, size) - 1
                result = self._client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=target_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=f"bytes={start}-{end}",
                )["CopyPartResult"]
                part = {"ETag": result["ETag"], "PartNumber": number}
                if "ChecksumSHA256" in result:
                    part["ChecksumSHA256"] = result["ChecksumSHA256"]
                parts.append(part)
            response = self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=target_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **extra,
            )
        except BaseException:
            self._abort_quietly(target_key, upload_id)
            raise
        version: str | None = response.get("VersionId")
        return version

    def _abort_quietly(self, key: str, upload_id: str) -> None:
        # Best effort: a failed abort leaves an incomplete upload for the lifecycle rule.
        with suppress(BotoCoreError, ClientError):
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def _delete_staging_quietly(self, key: str, version_id: str | None) -> None:
        # Deleting by version id removes the staging bytes for good (no delete marker). A bucket
        # default retention forbids it; the lifecycle rule then removes them later.
        args = {"Bucket": self.bucket, "Key": key}
        if version_id:
            args["VersionId"] = version_id
        with suppress(BotoCoreError, ClientError):
            self._client.delete_object(**args)

    # -- bucket and object look-ups ----------------------------------------------------------

    def _check_bucket(self) -> None:
        """Refuse a bucket that is missing, forbidden or unversioned; detect Object Lock."""
        with self._s3("check the bucket"):
            try:
                status = self._client.get_bucket_versioning(Bucket=self.bucket).get("Status")
            except ClientError as exc:
                if _code(exc) in {"NoSuchBucket", "404"}:
                    raise StorageMisconfigured(
                        f"The bucket {self.bucket!r} does not exist at {self._endpoint()}. "
                        "Create it with versioning enabled (and Object Lock for write-once "
                        "records)."
                    ) from None
                raise
            if status != "Enabled":
                raise StorageMisconfigured(
                    f"The bucket {self.bucket!r} does not have versioning enabled "
                    f"(status: {status or 'never enabled'}), so stored records could be "
                    "overwritten or deleted without trace. Enable it with: aws s3api "
                    f"put-bucket-versioning --bucket {self.bucket} "
                    "--versioning-configuration Status=Enabled"
                )
            self._object_lock = self._bucket_has_object_lock()

    def _bucket_has_object_lock(self) -> bool:
        try:
            config = self._client.get_object_lock_configuration(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) == "ObjectLockConfigurationNotFoundError":
                return False
            raise
        return bool(config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled")

    def _current_version(self, digest: str) -> str | None:
        """Return the current version id of a blob ("null" if unversioned), None if absent."""
        with self._s3(f"look up blob {digest}"):
            try:
                response = self._client.head_object(Bucket=self.bucket, Key=self._key(digest))
            except ClientError as exc:
                if _code(exc) in _NOT_FOUND:
                    return None
                raise
        version: str = response.get("VersionId") or "null"
        return version

    def _conflict(self, digest: str) -> StorageError:
        return StorageError(
            f"Could not store blob {digest} in {self.describe()}: concurrent writes of the same "
            "object kept conflicting. Try again."
        )

    def _require_object_lock(self) -> None:
        if not self._object_lock:
            raise RetentionNotSupported(
                f"The bucket {self.bucket!r} does not have Object Lock enabled, so retention and "
                "legal hold cannot be enforced. Object Lock can be enabled on a versioned bucket "
                f"with: aws s3api put-object-lock-configuration --bucket {self.bucket} "
                "--object-lock-configuration ObjectLockEnabled=Enabled"
            )

    def _key(self, digest: str) -> str:
        return f"{self.prefix}blobs/{digest}"

    def _quarantine_key(self, digest: str) -> str:
        return f"{self.prefix}quarantine/{digest}"

    def _object_args(self, digest: str, version_id: str | None) -> dict[str, str]:
        args = {"Bucket": self.bucket, "Key": self._key(digest)}
        if version_id and version_id != "null":
            args["VersionId"] = version_id
        return args

    def _endpoint(self) -> str:
        return self.endpoint_url or f"AWS region {self.region}"

    @contextmanager
    def _s3(self, action: str) -> Iterator[None]:
        """Turn botocore failures into our errors; ours pass through untouched."""
        try:
            yield
        except StorageError:
            raise
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, action, self.describe()) from exc


def _make_client(
    endpoint_url: str | None,
    region: str,
    access_key: str | None,
    secret_key: str | None,
    session_token: str | None,
    connect_timeout: float,
    read_timeout: float,
    max_attempts: int,
) -> Any:
    """Build a private boto3 client with short timeouts and few retries."""
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        # Path-style addressing works with every S3-compatible server and with IP endpoints.
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        # We send our own SHA-256 where it matters; no extra CRC32 on every request.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_supported",
    )
    with _SESSION_LOCK:  # boto3 sessions are not thread-safe; their clients are
        return _shared_session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            aws_session_token=session_token,
            config=config,
        )


_SESSION_LOCK = threading.Lock()


@functools.cache
def _shared_session() -> Any:
    """One boto3 session per process, made on first use: it caches the parsed service models,
    which makes every further client cheap (a fresh session costs a few hundred ms)."""
    return boto3.session.Session()


def _translate(exc: BaseException, action: str, where: str) -> StorageError:
    """Say in a sentence what went wrong talking to S3."""
    if isinstance(exc, ConnectionError | HTTPClientError | IncompleteReadError | OSError):
        return StorageUnavailable(
            f"Could not {action}: the S3 storage {where} cannot be reached ({exc}). "
            "Check that the server is running and the endpoint URL is right."
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StorageMisconfigured(
            f"Could not {action}: no S3 credentials are configured for {where}."
        )
    if isinstance(exc, ClientError):
        code = _code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _REFUSED:
            return StorageMisconfigured(
                f"Could not {action}: the S3 storage {where} refused the credentials or the "
                f"permission ({code}). Check the access key and the bucket policy."
            )
        if status >= 500 or code in {"SlowDown", "ServiceUnavailable", "InternalError"}:
            return StorageUnavailable(
                f"Could not {action}: the S3 storage {where} is failing ({code}); try again later."
            )
        message = exc.response.get("Error", {}).get("Message", "")
        return StorageError(f"Could not {action} in {where}: S3 answered {code}: {message}")
    return StorageError(f"Could not {action} in {where}: {exc}")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _read_up_to(stream: SupportsRead, size: int) -> bytearray:
    """Read exactly ``size`` bytes, or fewer only at the end of the stream.

    Fills one preallocated buffer, so a part costs its own size in memory and no more.
    """
    buffer = bytearray(size)
    filled = 0
    while filled < size and (more := stream.read(size - filled)):
        buffer[filled : filled + len(more)] = more
        filled += len(more)
    del buffer[filled:]  # shrinks in place at the end of the stream
    return buffer


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _is_digest(name: str) -> bool:
    try:
        validate_digest(name)
    except ValueError:
        return False
    return True
