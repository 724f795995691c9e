"""Stream-job tests share one SparkSession and one moto server (coattail_framework.testing.fixtures)."""

pytest_plugins = ["coattail_framework.testing.fixtures"]
