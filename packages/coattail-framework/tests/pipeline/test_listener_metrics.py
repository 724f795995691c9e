"""The listener's failure metric reaches CloudWatch (moto's, on 127.0.0.1): what the deploy's alarm watches."""

from __future__ import annotations

from types import SimpleNamespace

from coattail_framework.aws.clients import aws_client
from coattail_framework.config.model import AwsConfig, MetricsConfig
from coattail_framework.metrics import QUERY_FAILURES_METRIC, MetricsPublisher
from coattail_framework.pipeline.listener import PipelineListener, PipelineStats


def _sums(endpoint: str) -> list[float]:
    """The sums of ``query_failures`` datapoints, after checking it is the only metric, without dimension."""
    cloudwatch = aws_client("cloudwatch", region="us-east-1", endpoint_url=endpoint)
    metrics = cloudwatch.list_metrics(Namespace="CoatTail")["Metrics"]
    assert {(m["MetricName"], len(m["Dimensions"])) for m in metrics} == {(QUERY_FAILURES_METRIC, 0)}
    statistics = cloudwatch.get_metric_statistics(
        Namespace="CoatTail",
        MetricName=QUERY_FAILURES_METRIC,
        StartTime="2000-01-01T00:00:00Z",
        EndTime="2100-01-01T00:00:00Z",
        Period=86_400 * 365 * 100,
        Statistics=["Sum"],
    )
    return sorted(point["Sum"] for point in statistics["Datapoints"])


def test_a_query_ending_with_an_error_publishes_one_failure_and_a_clean_stop_none(moto_endpoint: str) -> None:
    publisher = MetricsPublisher(MetricsConfig(enabled=True), AwsConfig(endpoint_url=moto_endpoint))
    listener = PipelineListener(PipelineStats(), publisher, None)
    listener.onQueryTerminated(SimpleNamespace(id="q-1", runId="r-1", exception=None))
    listener.onQueryTerminated(SimpleNamespace(id="q-2", runId="r-2", exception="StreamingQueryException: boom"))
    listener.onQueryTerminated(SimpleNamespace(id="q-3", runId="r-3", exception="StreamingQueryException: again"))
    assert sum(_sums(moto_endpoint)) == 2.0
    assert publisher.failed_publishes == 0


def test_a_failed_publish_never_reaches_the_query() -> None:
    unreachable = AwsConfig(endpoint_url="http://127.0.0.1:9")  # discard port: nothing listens
    publisher = MetricsPublisher(MetricsConfig(enabled=True), unreachable)
    PipelineListener(PipelineStats(), publisher, None).onQueryTerminated(
        SimpleNamespace(id="q", runId="r", exception="boom")
    )
    assert publisher.failed_publishes == 1
