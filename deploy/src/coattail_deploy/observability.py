"""Alarms that page (an encrypted SNS topic) and the platform's CloudWatch dashboard.

Runs in the CDK app (synth). Each alarm is an ``AlarmSpec``: its metric, threshold and the
reason it pages; docs/DEPLOY.md lists the same names, thresholds and reasons (a test keeps
them in step). Metric names are the services' own: the producer's (``coattail_producer.metrics``,
dimension ``Service=coattail-producer``), the stream job's (``coattail_framework.pipeline.listener``,
dimension ``query``), and AWS's for Kinesis, DynamoDB, Lambda and API Gateway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from coattail_deploy.api import Api
from coattail_deploy.data import DataPlane
from coattail_deploy.producer import Producer
from coattail_deploy.settings import DeploySettings
from coattail_framework.config.model import CoattailConfig
from coattail_framework.metrics import QUERY_FAILURES_METRIC

PRODUCER = {"Service": "coattail-producer"}
"""The producer's metric dimension (``coattail_producer.metrics.SERVICE_DIMENSION``)."""
INGEST = {"query": "ingest"}
"""The stream job's ingest query (raw trades, data quality): present whatever modules run."""


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: what it watches and why it pages (the reason is the alarm's description)."""

    name: str
    metric: cw.IMetric
    threshold: float
    comparison: cw.ComparisonOperator
    reason: str
    evaluation_periods: int = 1
    missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING


def _metric(
    config: CoattailConfig, name: str, dimensions: dict[str, str], statistic: str, minutes: int = 1
) -> cw.Metric:
    return cw.Metric(
        namespace=config.metrics.namespace,
        metric_name=name,
        dimensions_map=dimensions,
        statistic=statistic,
        period=Duration.minutes(minutes),
    )


def alarm_specs(
    settings: DeploySettings, config: CoattailConfig, data: DataPlane, producer: Producer, api: Api
) -> list[AlarmSpec]:
    """Every alarm of the stack, in the order docs/DEPLOY.md lists them."""
    above, below = cw.ComparisonOperator.GREATER_THAN_THRESHOLD, cw.ComparisonOperator.LESS_THAN_THRESHOLD
    at_least = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
    thresholds = settings.alarms
    specs = [
        AlarmSpec(
            "kinesis-iterator-age",
            data.stream.metric_get_records_iterator_age_milliseconds(statistic="Maximum", period=Duration.minutes(1)),
            thresholds.iterator_age_ms,
            above,
            "The stream job reads trades later than this behind the stream's head: alerts are late, and trades "
            "older than the retention expire unread.",
            evaluation_periods=5,
        ),
    ]
    for venue in sorted(config.enabled_exchanges):
        specs.append(
            AlarmSpec(
                f"producer-unhealthy-{venue}",
                _metric(config, "ConnectorHealthy", {**PRODUCER, "Exchange": venue}, "Minimum"),
                1,
                below,
                f"The producer's {venue} connector failed its health check (or the producer stopped reporting): "
                "its trades are not reaching the stream.",
                evaluation_periods=3,
                missing=cw.TreatMissingData.BREACHING,
            )
        )
    specs += [
        AlarmSpec(
            "producer-events-dropped",
            _metric(config, "EventsDropped", PRODUCER, "Sum"),
            1,
            at_least,
            "The producer dropped trades it could not publish (its buffer was full or Kinesis refused them "
            "past the deadline): those trades are lost to every detector.",
        ),
        AlarmSpec(
            "producer-put-failures",
            _metric(config, "PutRecordsFailedCalls", PRODUCER, "Sum", minutes=5),
            5,
            at_least,
            "PutRecords calls keep failing as a whole (access, KMS, throttling): the producer retries, "
            "its buffer fills, and drops follow.",
            evaluation_periods=2,
        ),
        AlarmSpec(
            "dead-letter-rate",
            cw.MathExpression(
                expression="IF(total > 0, invalid / total, 0)",
                using_metrics={
                    "invalid": _metric(config, "dq_invalid", INGEST, "Sum", minutes=5),
                    "total": _metric(config, "dq_total", INGEST, "Sum", minutes=5),
                },
                period=Duration.minutes(5),
                label="dead-lettered share of ingested trades",
            ),
            thresholds.dead_letter_ratio,
            above,
            "More than this share of the ingested trades fails the data-quality rules and goes to the dead-letter "
            "zone: a venue changed its format or the producer is sending garbage.",
            evaluation_periods=2,
        ),
        AlarmSpec(
            "stream-job-query-failures",
            _metric(config, QUERY_FAILURES_METRIC, {}, "Sum"),
            1,
            at_least,
            "A streaming query ended with an error: EMR restarts the run, but a query that keeps failing "
            "means its module's outputs and alerts stop.",
        ),
        AlarmSpec(
            "stream-job-lag",
            _metric(config, "batch_duration", INGEST, "Maximum", minutes=5),
            thresholds.ingest_batch_ms,
            above,
            "The ingest query's micro-batches take longer than this: the job falls behind the stream.",
            evaluation_periods=3,
        ),
        AlarmSpec(
            "stream-job-silent",
            _metric(config, "batch_duration", INGEST, "SampleCount", minutes=10),
            1,
            below,
            "No ingest batch for 10 minutes: the stream job is not running (or cannot publish metrics).",
            missing=cw.TreatMissingData.BREACHING,
        ),
        AlarmSpec(
            "dynamodb-throttles",
            cw.MathExpression(
                expression="reads + writes",
                using_metrics={
                    "reads": data.table.metric("ReadThrottleEvents", statistic="Sum", period=Duration.minutes(5)),
                    "writes": data.table.metric("WriteThrottleEvents", statistic="Sum", period=Duration.minutes(5)),
                },
                period=Duration.minutes(5),
                label="throttled requests",
            ),
            1,
            at_least,
            "The alert table throttled requests: alerts are written late (the job retries) or API reads fail.",
        ),
        AlarmSpec(
            "dynamodb-system-errors",
            data.table.metric_system_errors_for_operations(
                operations=[dynamodb.Operation.PUT_ITEM, dynamodb.Operation.GET_ITEM, dynamodb.Operation.QUERY],
                period=Duration.minutes(5),
            ),
            1,
            at_least,
            "DynamoDB answered with server errors (HTTP 500): an AWS-side problem to follow up with AWS.",
        ),
        AlarmSpec(
            "api-errors",
            api.function.metric_errors(statistic="Sum", period=Duration.minutes(5)),
            1,
            at_least,
            "The API's function raised (clients got a 500 with a request id): the logs have the exception.",
        ),
        AlarmSpec(
            "api-latency",
            api.function.metric_duration(statistic="p99", period=Duration.minutes(5)),
            thresholds.api_p99_ms,
            above,
            "The API's 99th-percentile duration is above this: reads are slow (throttling, a hot index) or the "
            "function is short of memory.",
            evaluation_periods=3,
        ),
        AlarmSpec(
            "api-5xx",
            api.http_api.metric_server_error(statistic="Sum", period=Duration.minutes(5)),
            5,
            at_least,
            "API Gateway answered 5xx (function errors, timeouts or throttling of the function).",
        ),
    ]
    return specs


def build_observability(
    scope: Construct, settings: DeploySettings, config: CoattailConfig, data: DataPlane, producer: Producer, api: Api
) -> tuple[sns.Topic, list[cw.Alarm], cw.Dashboard]:
    """The alarm topic, every alarm with the topic as its action, and the dashboard."""
    topic = sns.Topic(
        scope,
        "AlarmTopic",
        display_name=f"Coat Tail Capital {settings.environment} alarms",
        master_key=data.key,
        enforce_ssl=True,
    )
    if settings.alarms.email:
        topic.add_subscription(subscriptions.EmailSubscription(settings.alarms.email))
    alarms = []
    for spec in alarm_specs(settings, config, data, producer, api):
        alarm = cw.Alarm(
            scope,
            f"Alarm-{spec.name}",
            alarm_name=f"coattail-{settings.environment}-{spec.name}",
            alarm_description=spec.reason,
            metric=spec.metric,
            threshold=spec.threshold,
            comparison_operator=spec.comparison,
            evaluation_periods=spec.evaluation_periods,
            treat_missing_data=spec.missing,
        )
        alarm.add_alarm_action(actions.SnsAction(topic))
        alarm.add_ok_action(actions.SnsAction(topic))
        alarms.append(alarm)
    dashboard = _dashboard(scope, settings, config, data, api, alarms)
    return topic, alarms, dashboard


def _dashboard(
    scope: Construct,
    settings: DeploySettings,
    config: CoattailConfig,
    data: DataPlane,
    api: Api,
    alarms: Sequence[cw.Alarm],
) -> cw.Dashboard:
    dashboard = cw.Dashboard(scope, "Dashboard", dashboard_name=f"coattail-{settings.environment}")
    venues = sorted(config.enabled_exchanges)
    dashboard.add_widgets(cw.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24))
    dashboard.add_widgets(
        cw.GraphWidget(
            title="Producer: events published and dropped (per minute)",
            left=[
                _metric(config, "EventsPublished", PRODUCER, "Sum"),
                _metric(config, "EventsDropped", PRODUCER, "Sum"),
                _metric(config, "EventsFailed", PRODUCER, "Sum"),
            ],
            width=12,
        ),
        cw.GraphWidget(
            title="Producer: connectors healthy (1 = yes)",
            left=[_metric(config, "ConnectorHealthy", {**PRODUCER, "Exchange": venue}, "Minimum") for venue in venues],
            width=12,
        ),
    )
    dashboard.add_widgets(
        cw.GraphWidget(
            title="Kinesis: iterator age (ms, max) and incoming records",
            left=[data.stream.metric_get_records_iterator_age_milliseconds(statistic="Maximum")],
            right=[data.stream.metric_incoming_records(statistic="Sum")],
            width=12,
        ),
        cw.GraphWidget(
            title="Stream job: ingest rows and dead letters (per 5 min), batch duration (ms)",
            left=[
                _metric(config, "input_rows", INGEST, "Sum", minutes=5),
                _metric(config, "dq_invalid", INGEST, "Sum", minutes=5),
            ],
            right=[_metric(config, "batch_duration", INGEST, "Maximum", minutes=5)],
            width=12,
        ),
    )
    dashboard.add_widgets(
        cw.GraphWidget(
            title="Alert table: consumed write and read units",
            left=[data.table.metric_consumed_write_capacity_units(), data.table.metric_consumed_read_capacity_units()],
            width=12,
        ),
        cw.GraphWidget(
            title="API: requests, errors, p99 duration (ms)",
            left=[api.function.metric_invocations(), api.function.metric_errors()],
            right=[api.function.metric_duration(statistic="p99")],
            width=12,
        ),
    )
    return dashboard
