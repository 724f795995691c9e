"""A deployed stack as the tools see it, in moto: its outputs and its ``/coattail/<env>/deploy/`` parameters.

Runs in the pytest process, against a moto server on 127.0.0.1. For tests of what reads a
deployment (``coattail_framework.aws.deployment``, ``coattail-stream-job submit --stack``)
without synthesizing the CDK app (``deploy/``'s own tests deploy the real template).
"""

from __future__ import annotations

import json

from coattail_framework.aws.clients import aws_client
from coattail_framework.aws.deployment import FIELDS


def create_outputs_stack(endpoint: str, name: str, outputs: dict[str, str], *, region: str = "us-east-1") -> str:
    """A CloudFormation stack ``name`` with ``outputs`` (output key -> value) and one placeholder; its stack id."""
    template = {
        "Resources": {
            "Placeholder": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": f"/outputs-stack/{name}", "Type": "String", "Value": "placeholder"},
            }
        },
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation = aws_client("cloudformation", region=region, endpoint_url=endpoint)
    created = cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    return str(created["StackId"])


def put_deployment_parameters(
    endpoint: str, subtree: str, outputs: dict[str, str], *, region: str = "us-east-1"
) -> None:
    """The parameters the stack publishes under ``subtree`` for those of ``outputs`` (by output key)."""
    ssm = aws_client("ssm", region=region, endpoint_url=endpoint)
    for published in FIELDS:
        if published.output in outputs:
            ssm.put_parameter(Name=subtree + published.parameter, Value=outputs[published.output], Type="String")
