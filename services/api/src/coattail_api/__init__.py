"""Coat Tail Capital alert API: read-only HTTP endpoints over the DynamoDB alert table.

``coattail_api.app.handler`` is the AWS Lambda entry point (API Gateway HTTP API,
payload 2.0); ``coattail-api serve --local`` runs the same handler on 127.0.0.1.
"""

__version__ = "0.1.0"
