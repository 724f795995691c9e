"""The template's tests share one local SparkSession (coattail_framework.testing.fixtures)."""

pytest_plugins = ["coattail_framework.testing.fixtures"]
