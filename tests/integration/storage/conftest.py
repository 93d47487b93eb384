from tests.fixtures.s3server import moto_server, object_lock_bucket, s3_bucket  # noqa: F401
