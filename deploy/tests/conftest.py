"""The deploy tests synthesize the CDK app in this process (jsii starts node)."""

import os

# jsii's 12-line banner under node 20 (end of life 2026-10-30, this machine's node), as in `nox -s synth`.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
