"""``coattail-producer replay`` with a local endpoint in a shell without AWS credentials publishes to moto."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path
from typing import Any

from coattail_devstack.testing.environment import without_aws_credentials

from .conftest import BTC_DAY1, published_events
from .test_cli import COMMAND, write_config


def test_replay_to_a_local_endpoint_needs_no_credentials(
    tmp_path: Path, moto_url: str, stream: str, kinesis: Any
) -> None:
    recording = tmp_path / "trades.txt"
    with gzip.open(BTC_DAY1, "rt") as source:
        trade_lines = [line for _, line in zip(range(500), source, strict=False) if '@trade"' in line]
    recording.write_text("".join(trade_lines))
    config = write_config(tmp_path / "features.yaml", "http://127.0.0.1:9", stream, {"stream": "trade"})
    home = tmp_path / "home"
    home.mkdir()
    env = without_aws_credentials(home, COATTAIL_CONFIG=str(config), COATTAIL_AWS__ENDPOINT_URL=moto_url)

    done = subprocess.run(
        [COMMAND, "replay", "--exchange", "binance", "--linger-ms", "10", str(recording)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["published"] == len(trade_lines)
    assert len(published_events(kinesis, stream)) == len(trade_lines)
