"""Spread tests share one local SparkSession (coattail_framework.testing.fixtures)."""

pytest_plugins = ["coattail_framework.testing.fixtures"]
