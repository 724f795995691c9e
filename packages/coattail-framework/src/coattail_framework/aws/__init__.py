"""AWS access: clients from the default credential chain, and the resources' definitions."""

from coattail_framework.aws.clients import aws_client

__all__ = ["aws_client"]
