"""One declaration, two table definitions: Spark DDL (parsed by Spark) and the pyiceberg table."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyiceberg.transforms import BucketTransform, DayTransform, IdentityTransform
from pyiceberg.types import DoubleType, ListType, NestedField, StringType, TimestamptzType
from pyspark.sql import SparkSession
from pyspark.sql import types as st

from coattail_framework.config.model import AwsConfig, IcebergConfig
from coattail_framework.iceberg import create_table_ddl, ensure_table, open_catalog, to_iceberg_schema
from coattail_framework.partitioning import PartitionField, bucket, day, identity
from coattail_framework.schemas import BASE_ALERT_RECORD, UNIFIED_TRADE_EVENT

NESTED = st.StructType(
    [
        st.StructField("order_id", st.StringType(), nullable=False),
        st.StructField("fills", st.ArrayType(st.DoubleType(), containsNull=False), nullable=True),
        st.StructField("at", st.TimestampType(), nullable=True),
    ]
)


def test_ddl_text() -> None:
    ddl = create_table_ddl("glue_catalog.coattail.alerts", BASE_ALERT_RECORD, [day("detected_at"), identity("symbol")])
    assert ddl.splitlines()[:3] == [
        "CREATE TABLE IF NOT EXISTS glue_catalog.coattail.alerts (",
        "  `alert_id` string NOT NULL,",
        "  `alert_type` string NOT NULL,",
    ]
    assert "  `ttl_epoch` bigint," in ddl
    assert ") USING iceberg\nPARTITIONED BY (days(detected_at), symbol)\nTBLPROPERTIES (" in ddl


@pytest.mark.parametrize(
    ("schema", "partition"),
    [
        (BASE_ALERT_RECORD, [day("detected_at"), identity("symbol")]),
        (UNIFIED_TRADE_EVENT, [day("timestamp"), identity("exchange"), bucket("symbol", 16)]),
        (NESTED, [PartitionField("order_id", "truncate", 4)]),
    ],
)
def test_generated_ddl_parses_with_sparks_own_parser(
    spark: SparkSession, schema: st.StructType, partition: list[PartitionField]
) -> None:
    ddl = create_table_ddl("glue_catalog.coattail.t", schema, partition)
    plan = spark._jsparkSession.sessionState().sqlParser().parsePlan(ddl)  # type: ignore[attr-defined]
    text = plan.toString()
    assert "CreateTable" in text
    for field in schema.fields:
        assert field.name in text


def test_partition_on_unknown_column_is_refused() -> None:
    with pytest.raises(ValueError, match="partition field days\\(when\\) names column 'when', not in the schema"):
        create_table_ddl("t", BASE_ALERT_RECORD, [day("when")])
    with pytest.raises(ValueError, match="needs a positive width"):
        bucket("symbol", 0)


def test_pyiceberg_schema_mirrors_spark_nullability_and_types() -> None:
    schema = to_iceberg_schema(NESTED)
    assert schema.fields == (
        NestedField(1, "order_id", StringType(), required=True),
        NestedField(2, "fills", ListType(4, DoubleType(), element_required=True), required=False),
        NestedField(3, "at", TimestamptzType(), required=False),
    )


def test_pyiceberg_table_created_from_the_declaration(tmp_path: Path) -> None:
    catalog = open_catalog(
        IcebergConfig(uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=str(tmp_path / "warehouse")), AwsConfig()
    )
    partition = [day("timestamp"), identity("exchange"), bucket("symbol", 8)]
    table = ensure_table(catalog, ("coattail", "raw_trades"), UNIFIED_TRADE_EVENT, partition)
    again = ensure_table(catalog, ("coattail", "raw_trades"), UNIFIED_TRADE_EVENT, partition)
    assert again.metadata.table_uuid == table.metadata.table_uuid
    assert [f.name for f in table.schema().fields] == UNIFIED_TRADE_EVENT.fieldNames()
    assert all(not f.required for f in table.schema().fields)
    spec = table.spec()
    assert [(f.name, type(f.transform)) for f in spec.fields] == [
        ("timestamp_day", DayTransform),
        ("exchange", IdentityTransform),
        ("symbol_bucket", BucketTransform),
    ]
    assert spec.fields[2].transform.num_buckets == 8  # type: ignore[attr-defined]
    assert table.schema().find_field(spec.fields[0].source_id).name == "timestamp"
    assert catalog.list_tables("coattail") == [("coattail", "raw_trades")]
