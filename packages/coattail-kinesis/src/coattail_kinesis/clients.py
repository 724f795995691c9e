"""boto3 clients built from configuration, in whichever process calls: the one place that makes them.

This module is the home of that policy for the whole platform: it lives here, in the lowest
distribution, because the ``coattail-kinesis`` source builds its clients on executors and must
not depend on ``coattail-framework``; the framework re-exports it as ``coattail_framework.aws.clients``.

Credentials come from boto3's default provider chain (environment, shared files, instance
or task role); nothing here reads or logs a secret. ``aws.endpoint_url`` in the
configuration points every client at one endpoint (moto's server locally); when it is
unset the clients talk to AWS.

One exception, for the local stack only: when the endpoint is on this machine
(``http://127.0.0.1:…``, ``localhost``, ``[::1]``) and the default chain finds no
credentials, the client signs with ``LOCAL_CREDENTIALS`` (moto accepts any), so
``run --local``, the producer and ``coattail-api serve --local`` work in a shell without
AWS credentials. Without an endpoint override, or with one elsewhere (a VPC endpoint), the
default chain alone decides, as before. For a local endpoint the chain leaves out the
providers that ask the network (the EC2 instance metadata service and the container
credentials endpoint, ``LOCAL_CHAIN_SKIPS``): a local run never reaches past loopback, nor
waits for a metadata service that is not there. Executors follow the same rule: they create
their own clients from the endpoint in the source's or sink's options.

Clients are not picklable: create them where they are used (on executors, lazily, per
process), never on an object Spark ships to workers.

Example::

    kinesis = aws_client("kinesis", region="us-east-1", endpoint_url="http://127.0.0.1:5000")
"""

from __future__ import annotations

import ipaddress
from typing import Any, cast
from urllib.parse import urlsplit

from botocore.config import Config as BotoConfig

_RETRIES = BotoConfig(retries={"max_attempts": 10, "mode": "adaptive"})

LOCAL_CREDENTIALS: dict[str, str] = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
"""What clients of a local endpoint sign with when the default chain has no credentials."""

_CREDENTIAL_ARGUMENTS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
LOCAL_CHAIN_SKIPS = ("container-role", "iam-role")
"""botocore's credential providers that call an HTTP endpoint; left out of a local endpoint's chain."""


def is_local_endpoint(endpoint_url: str | None) -> bool:
    """Whether ``endpoint_url`` is on this machine (a loopback address or ``localhost``).

    >>> is_local_endpoint("http://127.0.0.1:5000"), is_local_endpoint("http://localhost:4566")
    (True, True)
    >>> is_local_endpoint(None), is_local_endpoint("https://kinesis.us-east-1.amazonaws.com")
    (False, False)
    """
    if not endpoint_url:
        return False
    host = urlsplit(endpoint_url).hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_credentials(session: Any, endpoint_url: str | None) -> dict[str, str]:
    """``LOCAL_CREDENTIALS`` when ``endpoint_url`` is local and ``session``'s chain finds none, else ``{}``.

    ``session`` is a ``boto3.session.Session``; its chain is only consulted for a local endpoint.
    """
    if not is_local_endpoint(endpoint_url) or session.get_credentials() is not None:
        return {}
    return dict(LOCAL_CREDENTIALS)


def offline_session() -> Any:
    """A ``boto3.session.Session`` whose credential chain asks no network service (see ``LOCAL_CHAIN_SKIPS``).

    Environment, shared files, ``credential_process`` and the SSO cache still count.
    """
    import boto3
    import botocore.credentials
    import botocore.session

    core = botocore.session.get_session()
    resolver = botocore.credentials.create_credential_resolver(core)
    for provider in LOCAL_CHAIN_SKIPS:
        resolver.remove(provider)
    core.register_component("credential_provider", resolver)
    return boto3.session.Session(botocore_session=core)


def aws_client(
    service: str, *, region: str, endpoint_url: str | None = None, session: Any = None, **kwargs: Any
) -> Any:
    """A boto3 client for ``service`` (adaptive retries unless ``config`` is given).

    ``session``: the ``boto3.session.Session`` to build it from (default a new one; for a
    local endpoint ``offline_session()``). Credentials passed in ``kwargs`` are used as given;
    otherwise see the module docstring.
    """
    import boto3

    if session is None:
        session = offline_session() if is_local_endpoint(endpoint_url) else boto3.session.Session()
    session = cast(Any, session)
    if not any(kwargs.get(name) for name in _CREDENTIAL_ARGUMENTS):
        kwargs |= local_credentials(session, endpoint_url)
    return session.client(
        service, region_name=region, endpoint_url=endpoint_url, config=kwargs.pop("config", _RETRIES), **kwargs
    )
