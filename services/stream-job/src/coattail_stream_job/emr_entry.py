"""EMR Serverless entry point of the stream job: ``coattail-stream-job run`` with the job's arguments.

``coattail-stream-job submit`` uploads this file as the job run's ``entryPoint``; EMR's
spark-submit runs it on the driver with the archive's Python (``./environment/bin/python``),
where ``coattail_stream_job`` and the plugins are installed and PySpark comes from EMR.
A ``--config`` given as an ``s3://`` URI is first downloaded (with the job's execution
role, boto3's default credential chain) to a local file, because the configuration loader
reads files.

    spark-submit emr_entry.py --config s3://bucket/stream-job/artifacts/<sha>/features.yaml
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse


def localize_config(arguments: Sequence[str], folder: Path | None = None) -> list[str]:
    """``arguments`` with an ``s3://`` ``--config`` value replaced by a downloaded local copy."""
    result = list(arguments)
    for index, argument in enumerate(result):
        if argument == "--config" and index + 1 < len(result):
            position, value, prefix = index + 1, result[index + 1], ""
        elif argument.startswith("--config="):
            position, value, prefix = index, argument.split("=", 1)[1], "--config="
        else:
            continue
        if value.startswith("s3://"):
            result[position] = prefix + str(_download(value, folder or Path(tempfile.mkdtemp(prefix="coattail-"))))
        break
    return result


def _download(uri: str, folder: Path) -> Path:
    import boto3

    parsed = urlparse(uri)
    if not parsed.netloc or not parsed.path.strip("/"):
        raise ValueError(f"--config {uri}: expected s3://<bucket>/<key>")
    target = folder / Path(parsed.path).name
    boto3.client("s3").download_file(parsed.netloc, parsed.path.lstrip("/"), str(target))
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``coattail-stream-job run`` with ``argv`` (default: this process's arguments)."""
    from coattail_stream_job.cli import main as cli_main

    return cli_main(["run", *localize_config(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
