"""A child process's environment with no AWS credentials: what tests of the local stack start programs in.

Runs in the test process. No ``AWS_*`` or ``COATTAIL_*`` variable is kept, HOME is a folder
of the test's (no ``~/.aws``), and the EC2 instance metadata service is switched off, so a
child that does reach boto3's full default chain asks nothing past loopback.

    subprocess.run(command, env=without_aws_credentials(tmp_path, COATTAIL_CONFIG=str(config)))
"""

from __future__ import annotations

import os
from pathlib import Path


def without_aws_credentials(home: Path, **extra: str) -> dict[str, str]:
    """``os.environ`` less ``AWS_*``/``COATTAIL_*``, with ``HOME=home``, the metadata service off, then ``extra``."""
    environ = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "COATTAIL_"))}
    return environ | {"HOME": str(home), "AWS_EC2_METADATA_DISABLED": "true", **extra}
