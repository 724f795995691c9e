"""boto3 clients built from configuration: ``coattail_kinesis.clients``, re-exported for the platform.

The policy (default credential chain; dummy credentials and no metadata service for a loopback
endpoint) lives once, in ``coattail_kinesis.clients``, because the ``coattail-kinesis`` source
builds its clients on executors without the framework (ADR-030). Import it from here in
framework code and services.

Example::

    kinesis = aws_client("kinesis", region="us-east-1", endpoint_url="http://127.0.0.1:5000")
"""

from coattail_kinesis.clients import (
    LOCAL_CHAIN_SKIPS,
    LOCAL_CREDENTIALS,
    aws_client,
    is_local_endpoint,
    local_credentials,
    offline_session,
)

__all__ = [
    "LOCAL_CHAIN_SKIPS",
    "LOCAL_CREDENTIALS",
    "aws_client",
    "is_local_endpoint",
    "local_credentials",
    "offline_session",
]
