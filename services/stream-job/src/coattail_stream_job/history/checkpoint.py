"""What a history destination already holds for one symbol: stored id ranges and pending files.

The checkpoint is the commit record of the loader. A Parquet file counts as stored only once
the checkpoint lists its id range; files named in ``pending`` were being written when a run
stopped and are deleted by the next run before it fetches anything. Pure data, no I/O.

Example::

    >>> checkpoint = LoadCheckpoint(symbol="BTCUSDT").with_stored(IdRange(first=10, last=19))
    >>> checkpoint.with_stored(IdRange(first=20, last=29)).stored
    [IdRange(first=10, last=29)]
    >>> checkpoint.skip_stored(12), checkpoint.skip_stored(30)
    (20, 30)
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator


class IdRange(BaseModel):
    """Aggregate trade ids ``first..last`` (both inclusive), every one of them fetched and stored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first: int = Field(ge=0)
    last: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> IdRange:
        if self.last < self.first:
            raise ValueError(f"an id range needs first <= last, got {self.first}..{self.last}")
        return self

    def __repr__(self) -> str:
        return f"IdRange(first={self.first}, last={self.last})"


class LoadCheckpoint(BaseModel):
    """The stored id ranges of one symbol (sorted, disjoint, merged) and the files in flight."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    stored: list[IdRange] = Field(default_factory=list)
    pending: list[str] = Field(default_factory=list)
    """Paths relative to the destination root of files written but not yet committed."""
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def last_stored_id(self) -> int | None:
        """The highest stored aggregate id, or None when nothing is stored."""
        return self.stored[-1].last if self.stored else None

    @property
    def stored_count(self) -> int:
        """How many ids the stored ranges span."""
        return sum(span.last - span.first + 1 for span in self.stored)

    def skip_stored(self, trade_id: int) -> int:
        """``trade_id`` if it is not stored, else the first id after the stored range holding it."""
        for span in self.stored:
            if span.first <= trade_id <= span.last:
                return span.last + 1
        return trade_id

    def next_stored_after(self, trade_id: int) -> int | None:
        """The first stored id above ``trade_id`` (where a page must stop), or None."""
        return next((span.first for span in self.stored if span.first > trade_id), None)

    def with_pending(self, paths: list[str]) -> LoadCheckpoint:
        """This checkpoint announcing ``paths`` as being written."""
        return self.model_copy(update={"pending": list(paths), "updated_at": datetime.now(UTC)})

    def with_stored(self, span: IdRange) -> LoadCheckpoint:
        """This checkpoint with ``span`` committed (merged with its neighbours) and nothing pending."""
        merged: list[IdRange] = []
        for current in sorted([*self.stored, span], key=lambda item: item.first):
            if merged and current.first <= merged[-1].last + 1:
                merged[-1] = IdRange(first=merged[-1].first, last=max(merged[-1].last, current.last))
            else:
                merged.append(current)
        return self.model_copy(update={"stored": merged, "pending": [], "updated_at": datetime.now(UTC)})
