"""``coattail-stream-job redrive-dlq``: put one reason's and one day's dead letters back into the stream.

    coattail-stream-job redrive-dlq --reason validity_json --date 2024-08-08 [--config FILE] [--dry-run] [--force]

Runs in the operator's process, without Spark. Reads the dead letters the ingest query
wrote under ``{storage.raw_zone}/dlq/{reason}/dt={date}/`` (``date`` is the trade date,
UTC): Spark's JSON-lines part files, in ``batch={id}/`` folders; names starting with ``_``
or ``.`` are skipped, as Spark does. The raw zone is a local folder or ``s3://`` (pyarrow's
S3 file system: default credential chain, ``aws.endpoint_url`` for moto). Each dead
letter's ``raw`` text (the record's payload as the stream job decoded it, UTF-8; bytes
that were not UTF-8 came through as U+FFFD) is put into ``kinesis.stream_name`` with the
producer's ``put_payloads``: the same batching (500 records / 5 MiB), ordered retries and
partition key (the JSON ``symbol``, else a hash of the payload) as ``replay kinesis:FILE``.

Dead letters not re-driven are counted by reason: ``no_raw_payload`` (no ``raw`` text: the
record had no data), ``empty_payload``, ``unreadable`` (a line that is not a JSON object),
``too_large`` (payload plus key over Kinesis' 1 MiB), ``publisher_stalled`` and the
publisher's drops (Kinesis refused the records until the deadline).

The dead letters stay where they are. After a redrive that put anything, the marker
``_redriven.json`` is written beside them (UTC time, stream, counts, the files read), and a
second redrive of the same reason and date is refused unless ``--force``: a record
re-driven twice is in the stream twice. Records that fail again are dead-lettered again,
in new ``batch=`` folders of the same reason and date (the marker lists the files it
covered). ``--dry-run`` reads and counts, puts and writes nothing.

Prints a JSON summary to stdout. Exit codes: 0 every dead letter found was re-driven (dry
run: would be); 1 some were left (the message names them by reason); 2 bad arguments or
configuration, no dead letters there, or a refused second redrive.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coattail_framework.errors import CoattailError, ConfigError

if TYPE_CHECKING:
    from pyarrow.fs import FileSystem

    from coattail_framework.config.model import CoattailConfig
    from coattail_producer.raw_records import RawPayload
    from coattail_stream_job.history.store import ObjectStore

LOG = logging.getLogger(__name__)

DLQ_FOLDER = "dlq"
"""As ``coattail_framework.quality.dlq.DLQ_FOLDER`` (that module needs PySpark; a test pins the two equal)."""
MARKER = "_redriven.json"
SKIP_NO_RAW = "no_raw_payload"
SKIP_EMPTY = "empty_payload"
SKIP_UNREADABLE = "unreadable"
EXIT_LEFT = 1
PRODUCER_PACKAGE = "coattail-producer"
_REASON = re.compile(r"[A-Za-z0-9_.-]+")


class RedriveRefusedError(CoattailError):
    """The reason and date were already re-driven (marker present) and ``--force`` was not given."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``redrive-dlq`` arguments."""
    parser.add_argument("--reason", required=True, type=reason_name, help="dead-letter reason (a rule name)")
    parser.add_argument("--date", required=True, type=utc_date, help="trade date of the dead letters, YYYY-MM-DD (UTC)")
    parser.add_argument("--config", help="configuration file (default $COATTAIL_CONFIG, else config/features.yaml)")
    parser.add_argument("--dry-run", action="store_true", help="read and count; put and write nothing")
    parser.add_argument("--force", action="store_true", help="re-drive even though the marker says it was done")


def reason_name(text: str) -> str:
    """A dead-letter reason: letters, digits, ``_``, ``.``, ``-`` (a folder name under ``dlq/``)."""
    if not _REASON.fullmatch(text) or text in {".", ".."}:
        raise argparse.ArgumentTypeError(f"a reason is a rule name such as validity_json, got {text!r}")
    return text


def utc_date(text: str) -> str:
    """``YYYY-MM-DD`` (a UTC calendar date, the ``dt=`` folder), checked."""
    try:
        parsed: date | None = date.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or len(text) != 10:
        raise argparse.ArgumentTypeError(f"a date is YYYY-MM-DD (UTC), got {text!r}")
    return parsed.isoformat()


def dead_letter_uri(raw_zone: str, reason: str, day: str) -> str:
    """``{raw_zone}/dlq/{reason}/dt={day}``: where the ingest query writes those dead letters."""
    return f"{raw_zone.rstrip('/')}/{DLQ_FOLDER}/{reason}/dt={day}"


def is_hidden(relative: str) -> bool:
    """Whether a path below the date folder is one Spark's readers skip (a part starting ``_`` or ``.``)."""
    return any(part.startswith(("_", ".")) for part in relative.split("/"))


@dataclass
class DeadLetterFolder:
    """One reason's and date's dead-letter folder: its files, its marker (local or ``s3://``)."""

    uri: str
    filesystem: FileSystem
    path: str
    """``uri`` as a path of ``filesystem`` (``bucket/key`` on S3, an absolute path locally)."""
    store: ObjectStore
    """The folder as an object store: atomic marker writes."""

    @classmethod
    def open(cls, config: CoattailConfig, reason: str, day: str) -> DeadLetterFolder:
        """The folder of ``reason`` and ``day`` under ``config.storage.raw_zone``."""
        from pyarrow.fs import LocalFileSystem

        from coattail_stream_job.history.store import LocalStore, S3Store, s3_filesystem

        uri = dead_letter_uri(config.storage.raw_zone, reason, day)
        if uri.startswith("s3://"):
            filesystem = s3_filesystem(region=config.aws.region, endpoint_url=config.aws.endpoint_url)
            return cls(uri, filesystem, uri.removeprefix("s3://"), S3Store(uri, filesystem))
        if "://" in uri:
            raise ConfigError(
                f"storage.raw_zone {config.storage.raw_zone!r}: only local paths and s3:// URIs are supported"
            )
        return cls(uri, LocalFileSystem(), str(Path(uri).resolve()), LocalStore(uri))

    def files(self) -> list[str]:
        """Dead-letter files below the folder (relative, ``/``-separated, sorted); hidden ones left out."""
        from pyarrow.fs import FileSelector, FileType

        infos = self.filesystem.get_file_info(FileSelector(self.path, recursive=True, allow_not_found=True))
        relative = (info.path[len(self.path) :].lstrip("/") for info in infos if info.type == FileType.File)
        return sorted(name for name in relative if not is_hidden(name))

    def lines(self, relative: str) -> Iterator[bytes]:
        """The lines of one file, streamed."""
        with self.filesystem.open_input_stream(f"{self.path}/{relative}") as stream:
            yield from io.BufferedReader(stream)

    def present(self) -> str:
        """What the dead-letter path holds instead (dates of the reason, else reasons), for the message."""
        from pyarrow.fs import FileSelector

        reason_folder = self.path.rsplit("/", 1)[0]
        for folder, what in ((reason_folder, "dates of this reason"), (reason_folder.rsplit("/", 1)[0], "reasons")):
            names = sorted(
                info.base_name
                for info in self.filesystem.get_file_info(FileSelector(folder, allow_not_found=True))
                if not is_hidden(info.base_name)
            )
            if names:
                return f"{what}: {', '.join(names)}"
        return "no dead letters at all"

    def marker(self) -> dict[str, Any] | None:
        """The marker of an earlier redrive, if any."""
        data = self.store.get(MARKER)
        return json.loads(data) if data is not None else None

    def write_marker(self, document: dict[str, Any]) -> None:
        """Write the marker (atomically: whole or not at all)."""
        self.store.put(MARKER, (json.dumps(document, indent=2) + "\n").encode("utf-8"))


@dataclass
class RedriveReport:
    """What a redrive found and did; ``complete`` when every dead letter found was re-driven."""

    reason: str
    date: str
    folder: str
    stream: str
    dry_run: bool
    files: list[str] = field(default_factory=list)
    found: int = 0
    redriven: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    earlier: str | None = None
    """When the marker says the folder was re-driven before (UTC, ISO 8601); None without a marker."""

    @property
    def left(self) -> int:
        """Dead letters found but not re-driven (dry run: that would not be)."""
        return self.found - self.redriven

    @property
    def complete(self) -> bool:
        """Every dead letter found was re-driven."""
        return self.found > 0 and self.left == 0

    def as_dict(self) -> dict[str, Any]:
        """The JSON summary (also the marker's body)."""
        return {
            "reason": self.reason,
            "date": self.date,
            "folder": self.folder,
            "stream": self.stream,
            "dry_run": self.dry_run,
            "files": self.files,
            "found": self.found,
            "redriven": self.redriven,
            "skipped": dict(sorted(self.skipped.items())),
            "complete": self.complete,
            "earlier_redrive": self.earlier,
        }


def dead_letter_payloads(folder: DeadLetterFolder, report: RedriveReport) -> Iterator[RawPayload]:
    """Every dead letter's ``raw`` payload, file by file; those without one counted in ``report.skipped``."""
    from coattail_producer.raw_records import RawPayload

    for relative in report.files:
        for number, line in enumerate(folder.lines(relative), start=1):
            if not line.strip():
                continue
            report.found += 1
            origin = f"{folder.uri}/{relative}:{number}"
            try:
                letter = json.loads(line)
            except ValueError:
                letter = None
            if not isinstance(letter, dict):
                report.skipped[SKIP_UNREADABLE] += 1
                LOG.error("redrive: %s is not a JSON object; not re-driven", origin)
                continue
            raw = letter.get("raw")
            if not isinstance(raw, str):
                report.skipped[SKIP_NO_RAW] += 1
                continue
            if not raw:
                report.skipped[SKIP_EMPTY] += 1
                continue
            data = raw.encode("utf-8")
            yield RawPayload(data, len(data), origin)


def require_producer() -> None:
    """Raise ``ConfigError`` naming the package when the producer's publisher is not installed."""
    try:
        import coattail_producer.raw_records  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"redrive-dlq puts records with the producer's publisher: pip install {PRODUCER_PACKAGE} "
            "(or 'coattail-stream-job[replay]')"
        ) from None


def check_stream(client: Any, stream: str) -> None:
    """Raise ``ConfigError`` when ``stream`` does not exist (before anything is read or put)."""
    from botocore.exceptions import ClientError

    try:
        client.describe_stream_summary(StreamName=stream)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise ConfigError(f"kinesis.stream_name: stream {stream!r} not found; create it or fix the name") from None
        raise


def redrive(
    config: CoattailConfig,
    reason: str,
    day: str,
    *,
    dry_run: bool = False,
    force: bool = False,
    kinesis_client: Any | None = None,
    now: datetime | None = None,
) -> RedriveReport:
    """Re-drive the dead letters of ``reason`` and ``day``; see the module docstring.

    ``now`` (UTC) is the marker's time (default the wall clock). Raises ``ConfigError`` when
    the folder holds no dead letters, ``RedriveRefusedError`` when its marker is present
    (not with ``force`` or ``dry_run``).
    """
    from coattail_framework.aws.clients import aws_client

    require_producer()
    from coattail_producer.raw_records import REJECT_TOO_LARGE, put_payloads, record_key
    from coattail_producer.settings import PublisherSettings

    folder = DeadLetterFolder.open(config, reason, day)
    stream = config.kinesis.stream_name
    report = RedriveReport(reason, day, folder.uri, stream, dry_run, files=folder.files())
    if not report.files:
        raise ConfigError(f"no dead letters under {folder.uri}; present: {folder.present()}")
    earlier = folder.marker()
    if earlier is not None and not (force or dry_run):
        raise RedriveRefusedError(
            f"{folder.uri} was already re-driven at {earlier.get('redriven_at')} ({earlier.get('redriven')} of "
            f"{earlier.get('found')} dead letter(s) into {earlier.get('stream')!r}; marker {MARKER}); a second "
            "redrive puts those records into the stream again: pass --force if that is what you want"
        )
    report.earlier = earlier.get("redriven_at") if earlier is not None else None
    if dry_run:
        limit = PublisherSettings().max_record_bytes
        for payload in dead_letter_payloads(folder, report):
            if record_key(payload, limit) is None:
                report.skipped[REJECT_TOO_LARGE] += 1
            else:
                report.redriven += 1
    else:
        client = kinesis_client or aws_client("kinesis", region=config.aws.region, endpoint_url=config.aws.endpoint_url)
        check_stream(client, stream)
        outcome = asyncio.run(put_payloads(client, stream, dead_letter_payloads(folder, report)))
        report.redriven = outcome.put
        report.skipped.update(outcome.rejected)
        report.skipped.update(outcome.dropped)
        if outcome.put:
            moment = (now or datetime.now(UTC)).astimezone(UTC)
            folder.write_marker({**report.as_dict(), "redriven_at": moment.isoformat(), "forced": force})
    if report.found == 0:
        raise ConfigError(f"the {len(report.files)} file(s) under {folder.uri} hold no dead letters (empty part files)")
    return report


def main(args: argparse.Namespace) -> int:
    """Run the redrive; print the summary as JSON; return the exit code (see the module docstring)."""
    from coattail_framework.config import ConfigLoader

    config = ConfigLoader(args.config).load()
    report = redrive(config, args.reason, args.date, dry_run=args.dry_run, force=args.force)
    sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    if report.complete:
        return 0
    verb = "would leave" if report.dry_run else "left"
    print(  # noqa: T201 - the command's error line
        f"coattail-stream-job redrive-dlq: {verb} {report.left} of {report.found} dead letter(s) of "
        f"{report.folder} not re-driven: {dict(sorted(report.skipped.items()))}",
        file=sys.stderr,
    )
    return EXIT_LEFT
