"""Iceberg tables derived from one declaration: a Spark ``StructType`` plus partition fields.

From the same declaration this module gives (a) Spark SQL ``CREATE TABLE IF NOT EXISTS
... USING iceberg PARTITIONED BY (...)`` DDL for Glue/EMR, where Spark's Iceberg runtime
creates tables, and (b) the pyiceberg ``Schema``, ``PartitionSpec`` and Arrow schema, so
the pyiceberg writer creates the same table on first write. It also opens the configured
catalog (SQLite ``SqlCatalog`` + local warehouse by default, Glue on AWS).

Spark ``TimestampType`` (a UTC instant) maps to Iceberg ``timestamptz``; nullable Spark
fields become optional Iceberg fields, non-nullable ones required.

Example::

    >>> from coattail_framework.schemas import BASE_ALERT_RECORD
    >>> from coattail_framework.partitioning import day, identity
    >>> print(create_table_ddl("glue.coattail.alerts", BASE_ALERT_RECORD, [day("detected_at")]).splitlines()[0])
    CREATE TABLE IF NOT EXISTS glue.coattail.alerts (
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pyiceberg import types as it
from pyiceberg.partitioning import PartitionField as IcebergPartitionField
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import (
    BucketTransform,
    DayTransform,
    HourTransform,
    IdentityTransform,
    MonthTransform,
    Transform,
    TruncateTransform,
    YearTransform,
)
from pyspark.sql import types as st

from coattail_framework.partitioning import PartitionField

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

    from coattail_framework.config.model import AwsConfig, IcebergConfig

DEFAULT_TABLE_PROPERTIES: Mapping[str, str] = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    # pyiceberg's appends add one manifest each, and every commit rewrites the list of all of
    # them; merging (Java Iceberg's default, off in pyiceberg) keeps that list short.
    "commit.manifest-merge.enabled": "true",
    # A streaming table commits every few seconds: keep the last 100 metadata files, not all.
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "100",
}
PARTITION_FIELD_ID_START = 1000
_CREATE_LOCK = threading.Lock()
"""Serializes namespace/table creation between the queries of one driver (the SQL catalog
does not resolve two concurrent ``create_namespace_if_not_exists`` calls)."""

_PRIMITIVES: dict[type[st.DataType], it.PrimitiveType] = {
    st.StringType: it.StringType(),
    st.LongType: it.LongType(),
    st.IntegerType: it.IntegerType(),
    st.ShortType: it.IntegerType(),
    st.ByteType: it.IntegerType(),
    st.DoubleType: it.DoubleType(),
    st.FloatType: it.FloatType(),
    st.BooleanType: it.BooleanType(),
    st.BinaryType: it.BinaryType(),
    st.DateType: it.DateType(),
    st.TimestampType: it.TimestamptzType(),
    st.TimestampNTZType: it.TimestampType(),
}


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def create_table_ddl(
    table: str,
    schema: st.StructType,
    partition: Sequence[PartitionField],
    properties: Mapping[str, str] = DEFAULT_TABLE_PROPERTIES,
) -> str:
    """Spark SQL DDL creating ``table`` (``catalog.db.name``) with Iceberg, if it is missing."""
    _check_partition_sources(schema, partition)
    columns = ",\n".join(
        f"  {_quote(field.name)} {field.dataType.simpleString()}{'' if field.nullable else ' NOT NULL'}"
        for field in schema.fields
    )
    ddl = f"CREATE TABLE IF NOT EXISTS {table} (\n{columns}\n) USING iceberg"
    if partition:
        ddl += f"\nPARTITIONED BY ({', '.join(field.sql() for field in partition)})"
    if properties:
        props = ", ".join(f"'{key}' = '{value}'" for key, value in properties.items())
        ddl += f"\nTBLPROPERTIES ({props})"
    return ddl


def _iceberg_type(data_type: st.DataType, ids: Iterator[int]) -> it.IcebergType:
    if isinstance(data_type, st.DecimalType):
        return it.DecimalType(data_type.precision, data_type.scale)
    if isinstance(data_type, st.StructType):
        return it.StructType(*_nested_fields(data_type, ids))
    if isinstance(data_type, st.ArrayType):
        element_id = next(ids)
        return it.ListType(
            element_id, _iceberg_type(data_type.elementType, ids), element_required=not data_type.containsNull
        )
    if isinstance(data_type, st.MapType):
        key_id, value_id = next(ids), next(ids)
        return it.MapType(
            key_id,
            _iceberg_type(data_type.keyType, ids),
            value_id,
            _iceberg_type(data_type.valueType, ids),
            value_required=not data_type.valueContainsNull,
        )
    primitive = _PRIMITIVES.get(type(data_type))
    if primitive is None:
        raise TypeError(f"Spark type {data_type.simpleString()} has no Iceberg mapping")
    return primitive


def _nested_fields(schema: st.StructType, ids: Iterator[int]) -> list[it.NestedField]:
    assigned = [(field, next(ids)) for field in schema.fields]
    return [
        it.NestedField(field_id, field.name, _iceberg_type(field.dataType, ids), required=not field.nullable)
        for field, field_id in assigned
    ]


def to_iceberg_schema(schema: st.StructType) -> Schema:
    """The pyiceberg schema of a Spark schema (field ids from 1, top level first)."""
    return Schema(*_nested_fields(schema, count(1)))


def _transform(field: PartitionField) -> Transform[Any, Any]:
    if field.transform == "bucket":
        return BucketTransform(num_buckets=field.width or 0)
    if field.transform == "truncate":
        return TruncateTransform(width=field.width or 0)
    simple: dict[str, Transform[Any, Any]] = {
        "identity": IdentityTransform(),
        "year": YearTransform(),
        "month": MonthTransform(),
        "day": DayTransform(),
        "hour": HourTransform(),
    }
    return simple[field.transform]


def to_partition_spec(schema: Schema, partition: Sequence[PartitionField]) -> PartitionSpec:
    """The pyiceberg partition spec of ``partition`` over ``schema``."""
    fields = []
    for offset, field in enumerate(partition):
        source = schema.find_field(field.source)
        fields.append(
            IcebergPartitionField(
                source_id=source.field_id,
                field_id=PARTITION_FIELD_ID_START + offset,
                transform=_transform(field),
                name=field.name,
            )
        )
    return PartitionSpec(*fields)


def to_arrow_schema(schema: st.StructType) -> pa.Schema:
    """The Arrow schema a writer must hand pyiceberg for a table declared with ``schema``."""
    return to_iceberg_schema(schema).as_arrow()


def _check_partition_sources(schema: st.StructType, partition: Sequence[PartitionField]) -> None:
    names = set(schema.fieldNames())
    for field in partition:
        if field.source not in names:
            raise ValueError(f"partition field {field.sql()} names column {field.source!r}, not in the schema")


def open_catalog(iceberg: IcebergConfig, aws: AwsConfig) -> Catalog:
    """The configured catalog: SQLite ``SqlCatalog`` + warehouse folder, or AWS Glue."""
    if iceberg.catalog_type == "glue":
        from pyiceberg.catalog.glue import GlueCatalog

        properties = {"glue.region": aws.region, "warehouse": iceberg.warehouse}
        if aws.endpoint_url:
            properties |= {"glue.endpoint": aws.endpoint_url, "s3.endpoint": aws.endpoint_url}
        return GlueCatalog(iceberg.catalog_name, **properties)
    from pyiceberg.catalog.sql import SqlCatalog

    if iceberg.uri.startswith("sqlite:///"):
        Path(iceberg.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    warehouse = iceberg.warehouse
    if "://" not in warehouse:
        Path(warehouse).mkdir(parents=True, exist_ok=True)
        warehouse = Path(warehouse).resolve().as_uri()
    return SqlCatalog(iceberg.catalog_name, uri=iceberg.uri, warehouse=warehouse)


def ensure_table(
    catalog: Catalog,
    identifier: tuple[str, str],
    schema: st.StructType,
    partition: Sequence[PartitionField],
    properties: Mapping[str, str] = DEFAULT_TABLE_PROPERTIES,
) -> Table:
    """Load ``(namespace, table)``, creating the namespace and table from the declaration if missing.

    Thread-safe within one process (the stream job's queries share the driver).
    """
    _check_partition_sources(schema, partition)
    iceberg_schema = to_iceberg_schema(schema)
    with _CREATE_LOCK:
        catalog.create_namespace_if_not_exists(identifier[0])
        return catalog.create_table_if_not_exists(
            identifier,
            schema=iceberg_schema,
            partition_spec=to_partition_spec(iceberg_schema, partition),
            properties=dict(properties),
        )
