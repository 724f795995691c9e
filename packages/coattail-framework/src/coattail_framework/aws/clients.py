"""boto3 clients built from configuration, in whichever process calls.

Credentials always come from boto3's default provider chain (environment, shared files,
instance or task role); nothing here reads or logs a secret. ``aws.endpoint_url`` in the
configuration points every client at one endpoint (moto's server locally); when it is
unset the clients talk to AWS.

Clients are not picklable: create them where they are used (on executors, lazily, per
process), never on an object Spark ships to workers.
"""

from __future__ import annotations

from typing import Any, cast

from botocore.config import Config as BotoConfig

_RETRIES = BotoConfig(retries={"max_attempts": 10, "mode": "adaptive"})


def aws_client(service: str, *, region: str, endpoint_url: str | None = None, **kwargs: Any) -> Any:
    """A boto3 client for ``service`` with adaptive retries."""
    import boto3

    session = cast(Any, boto3.session.Session())
    return session.client(
        service, region_name=region, endpoint_url=endpoint_url, config=kwargs.pop("config", _RETRIES), **kwargs
    )
