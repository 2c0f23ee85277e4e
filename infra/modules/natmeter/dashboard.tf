# The dashboard: NAT spend first (today and this month, by gateway, by source, by
# destination with the avoidable share), then coverage against AWS's own NAT
# gateway metrics, then the health of the processor.
#
# Every metric name and dimension set below is one the function emits; the test
# tests/infra/test_tf_contract.py checks them against `natmeter metrics --json`.
# SourceIp and Destination are open sets, so they are queried with Metrics
# Insights (GROUP BY), never enumerated. A SCHEMA(...) names the exact dimension
# set of the metric it selects.
#
# Layout: a 24-column grid; widgets are placed row by row, y grows downwards.

locals {
  ns         = var.metric_namespace
  dash_fn    = aws_lambda_function.this.function_name
  dash_queue = aws_sqs_queue.failed_events.name

  # Metrics Insights: one query per widget (a GetMetricData call takes one).
  mi_top_source_cost = format("SELECT SUM(NatCost) FROM SCHEMA(\"%s\", SourceIp) GROUP BY SourceIp ORDER BY SUM() DESC LIMIT 10", local.ns)
  mi_direction_bytes = format("SELECT SUM(NatBytes) FROM SCHEMA(\"%s\", Direction, NatGatewayId) GROUP BY Direction", local.ns)
  mi_dest_bytes      = format("SELECT SUM(NatBytes) FROM SCHEMA(\"%s\", Destination) GROUP BY Destination ORDER BY SUM() DESC LIMIT 20", local.ns)
  mi_dest_cost       = format("SELECT SUM(NatCost) FROM SCHEMA(\"%s\", Destination) GROUP BY Destination ORDER BY SUM() DESC LIMIT 20", local.ns)
  mi_skipped_reason  = format("SELECT SUM(RecordsSkipped) FROM SCHEMA(\"%s\", Reason) GROUP BY Reason", local.ns)

  # Logs Insights over the source detail lines: every source, with USD.
  logs_top_sources = join(" | ", [
    "SOURCE '${aws_cloudwatch_log_group.function.name}'",
    "filter natmeter = \"source\"",
    "stats sum(NatBytes) as bytes, sum(NatCost) as usd by SourceIp, Destination",
    "sort bytes desc",
    "limit 20",
  ])

  # Cost today and this month (UTC) from one series of 15-minute sums: EPOCH
  # gives every point's timestamp, the last one is "now"; DATE gives the day of
  # the month. RUNNING_SUM over the points since midnight (or since the 1st)
  # ends at the total, which is what a single-value widget shows.
  cost_to_date_metrics = [
    [local.ns, "NatCost", { id = "cost", stat = "Sum", period = 900, visible = false }],
    [{ id = "t", expression = "EPOCH(cost)", visible = false }],
    [{ id = "daystart", expression = "FLOOR(TIME_SERIES(MAX(t)) / 86400) * 86400", visible = false }],
    [{ id = "dom", expression = "DATE(cost)", visible = false }],
    [{ id = "todaydom", expression = "TIME_SERIES(MAX(IF(t >= daystart, dom, 0)))", visible = false }],
    [{ id = "monthstart", expression = "daystart - (todaydom - 1) * 86400", visible = false }],
    [{ id = "today", expression = "RUNNING_SUM(IF(t >= daystart, FILL(cost, 0), 0))", label = "Today (UTC), USD" }],
    [{ id = "month", expression = "RUNNING_SUM(IF(t >= monthstart, FILL(cost, 0), 0))", label = "This month (UTC), USD" }],
  ]

  cost_by_gateway_metrics = [
    for id in var.nat_gateway_ids : [local.ns, "NatCost", "NatGatewayId", id, { label = id }]
  ]

  # Coverage: what natmeter metered (both private-side directions) over what the
  # gateway itself counts from and to its sources. About 100 % when the flow log
  # covers the gateway ENI; flow records are best effort, so small gaps happen.
  coverage_metrics = concat([
    for i, id in var.nat_gateway_ids : [
      ["AWS/NATGateway", "BytesInFromSource", "NatGatewayId", id, { id = "in${i}", stat = "Sum", visible = false }],
      ["AWS/NATGateway", "BytesOutToSource", "NatGatewayId", id, { id = "out${i}", stat = "Sum", visible = false }],
      [local.ns, "NatBytes", "NatGatewayId", id, { id = "nb${i}", stat = "Sum", visible = false }],
      [{ id = "cov${i}", expression = "100 * nb${i} / (in${i} + out${i})", label = id }],
    ]
  ]...)

  dashboard_widgets = [
    {
      type   = "text"
      x      = 0
      y      = 0
      width  = 24
      height = 3
      properties = {
        markdown = join("\n", [
          "# natmeter: NAT gateway spend by source (${var.name})",
          "NAT gateway data processing, metered from VPC flow logs: private-side bytes of both directions / 2^30 x the price per GB, at the minute of the flow. Times are UTC; flow logs arrive 5-10 minutes late, so the last minutes are always low.",
          "S3 and DynamoDB bytes through a NAT gateway are avoidable: gateway endpoints for them are free. Managed by Terraform: changes made here are overwritten.",
        ])
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 3
      width  = 12
      height = 4
      properties = {
        title   = "NAT cost to date (UTC, USD): needs a dashboard time range that covers the month"
        view    = "singleValue"
        region  = local.region
        period  = 900
        stat    = "Sum"
        metrics = local.cost_to_date_metrics
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 3
      width  = 12
      height = 4
      properties = {
        title                = "Time range: NAT cost, and the avoidable part (to S3 and DynamoDB)"
        view                 = "singleValue"
        region               = local.region
        stat                 = "Sum"
        setPeriodToTimeRange = true
        metrics = [
          [local.ns, "NatCost", { id = "all", label = "NAT cost, USD" }],
          [local.ns, "NatCost", "Destination", "S3", { id = "s3", visible = false }],
          [local.ns, "NatCost", "Destination", "DYNAMODB", { id = "ddb", visible = false }],
          [{ id = "avoidable", expression = "FILL(s3, 0) + FILL(ddb, 0)", label = "Avoidable (S3 + DynamoDB), USD" }],
          [{ id = "share", expression = "100 * (FILL(s3, 0) + FILL(ddb, 0)) / all", label = "Avoidable share, %" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 7
      width  = 12
      height = 6
      properties = {
        title   = "NAT cost by NAT gateway (USD per hour)"
        view    = "timeSeries"
        stacked = true
        region  = local.region
        period  = 3600
        stat    = "Sum"
        metrics = local.cost_by_gateway_metrics
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 7
      width  = 12
      height = 6
      properties = {
        title   = "NAT bytes per hour: outbound (uploads) vs inbound (downloads)"
        view    = "timeSeries"
        stacked = true
        region  = local.region
        metrics = [[{ id = "direction", expression = local.mi_direction_bytes, label = "", period = 3600 }]]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 13
      width  = 12
      height = 7
      properties = {
        title  = "Top 10 sources by NAT bytes (Contributor Insights: every source, no cap)"
        view   = "timeSeries"
        region = local.region
        period = 300
        legend = { position = "right" }
        insightRule = {
          maxContributorCount = 10
          orderBy             = "Sum"
          ruleName            = aws_cloudwatch_contributor_insight_rule.top_sources.rule_name
        }
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 13
      width  = 12
      height = 7
      properties = {
        title  = "Top 10 SourceIp metrics by NAT cost (USD per hour; sources beyond max_sources are in SourceIp=other)"
        view   = "timeSeries"
        region = local.region
        legend = { position = "right" }
        metrics = [[{ id = "topcost", expression = local.mi_top_source_cost, label = "", period = 3600 }]]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 20
      width  = 12
      height = 7
      properties = {
        title  = "Top 10 (source, destination) pairs by NAT bytes (Contributor Insights)"
        view   = "timeSeries"
        region = local.region
        period = 300
        legend = { position = "right" }
        insightRule = {
          maxContributorCount = 10
          orderBy             = "Sum"
          ruleName            = aws_cloudwatch_contributor_insight_rule.top_source_destinations.rule_name
        }
      }
    },
    {
      type   = "log"
      x      = 12
      y      = 20
      width  = 12
      height = 7
      properties = {
        title  = "Top 20 (source, destination) by NAT bytes with cost (Logs Insights over source detail lines)"
        view   = "table"
        region = local.region
        query  = local.logs_top_sources
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 27
      width  = 12
      height = 6
      properties = {
        title   = "NAT bytes per hour by destination (S3 and DYNAMODB are avoidable)"
        view    = "timeSeries"
        stacked = true
        region  = local.region
        metrics = [[{ id = "destbytes", expression = local.mi_dest_bytes, label = "", period = 3600 }]]
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 27
      width  = 12
      height = 6
      properties = {
        title   = "NAT cost per hour by destination (USD)"
        view    = "timeSeries"
        stacked = true
        region  = local.region
        metrics = [[{ id = "destcost", expression = local.mi_dest_cost, label = "", period = 3600 }]]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 33
      width  = 24
      height = 6
      properties = {
        title  = "Coverage per NAT gateway: NatBytes / (BytesInFromSource + BytesOutToSource), %"
        view   = "timeSeries"
        region = local.region
        period = 900
        yAxis  = { left = { min = 0, showUnits = false } }
        annotations = {
          horizontal = [{ label = "fully metered", value = 100 }]
        }
        metrics = local.coverage_metrics
      }
    },
    {
      type   = "text"
      x      = 0
      y      = 39
      width  = 24
      height = 1
      properties = {
        markdown = "## Processor health: function ${local.dash_fn}, failed-event queue ${local.dash_queue}"
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 40
      width  = 8
      height = 6
      properties = {
        title  = "Function invocations, errors, throttles"
        view   = "timeSeries"
        region = local.region
        period = 300
        stat   = "Sum"
        metrics = [
          ["AWS/Lambda", "Invocations", "FunctionName", local.dash_fn],
          ["AWS/Lambda", "Errors", "FunctionName", local.dash_fn],
          ["AWS/Lambda", "Throttles", "FunctionName", local.dash_fn],
        ]
      }
    },
    {
      type   = "metric"
      x      = 8
      y      = 40
      width  = 8
      height = 6
      properties = {
        title  = "Function duration (ms)"
        view   = "timeSeries"
        region = local.region
        period = 300
        metrics = [
          ["AWS/Lambda", "Duration", "FunctionName", local.dash_fn, { stat = "p50", label = "p50" }],
          ["AWS/Lambda", "Duration", "FunctionName", local.dash_fn, { stat = "p99", label = "p99" }],
          ["AWS/Lambda", "Duration", "FunctionName", local.dash_fn, { stat = "Maximum", label = "max" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 16
      y      = 40
      width  = 8
      height = 6
      properties = {
        title  = "Failed events waiting for replay (on-failure queue)"
        view   = "timeSeries"
        region = local.region
        period = 300
        stat   = "Maximum"
        metrics = [
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", local.dash_queue, { label = "events in queue" }],
          ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", local.dash_queue, { label = "age of oldest (s)", yAxis = "right" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 46
      width  = 8
      height = 6
      properties = {
        title  = "Flow records counted, and lines that failed to parse"
        view   = "timeSeries"
        region = local.region
        period = 300
        stat   = "Sum"
        metrics = [
          [local.ns, "RecordsCounted", { label = "counted (NAT traversals)" }],
          [local.ns, "ParseErrors", { label = "parse errors", yAxis = "right" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 8
      y      = 46
      width  = 8
      height = 6
      properties = {
        title   = "Flow records skipped, by reason"
        view    = "timeSeries"
        stacked = true
        region  = local.region
        metrics = [[{ id = "skipped", expression = local.mi_skipped_reason, label = "", period = 300 }]]
      }
    },
    {
      type   = "metric"
      x      = 16
      y      = 46
      width  = 8
      height = 6
      properties = {
        title  = "Ingest lag: processing time - end of the flow record (s)"
        view   = "timeSeries"
        region = local.region
        period = 300
        metrics = [
          [local.ns, "IngestLag", { stat = "Average", label = "average" }],
          [local.ns, "IngestLag", { stat = "Maximum", label = "max" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 52
      width  = 12
      height = 6
      properties = {
        title  = "Subscription delivery to the function (AWS/Logs)"
        view   = "timeSeries"
        region = local.region
        metrics = [
          [{ id = "forwarded", expression = "SEARCH('{AWS/Logs,DestinationType,FilterName,LogGroupName} MetricName=\"ForwardedLogEvents\" FilterName=\"${local.subscription_name}\"', 'Sum', 300)", label = "forwarded log events" }],
          [{ id = "errors", expression = "SEARCH('{AWS/Logs,DestinationType,FilterName,LogGroupName} MetricName=\"DeliveryErrors\" FilterName=\"${local.subscription_name}\"', 'Sum', 300)", label = "delivery errors" }],
          [{ id = "throttled", expression = "SEARCH('{AWS/Logs,DestinationType,FilterName,LogGroupName} MetricName=\"DeliveryThrottling\" FilterName=\"${local.subscription_name}\"', 'Sum', 300)", label = "delivery throttling" }],
        ]
      }
    },
    {
      type   = "alarm"
      x      = 12
      y      = 52
      width  = 12
      height = 6
      properties = {
        title = "natmeter alarms"
        alarms = concat(
          [
            aws_cloudwatch_metric_alarm.daily_cost.arn,
            aws_cloudwatch_metric_alarm.hourly_cost_anomaly.arn,
            aws_cloudwatch_metric_alarm.function_errors.arn,
            aws_cloudwatch_metric_alarm.failed_events.arn,
          ],
          aws_cloudwatch_metric_alarm.silent_failure[*].arn,
        )
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    # 31 days, so that "this month" is complete; zoom in for detail.
    start          = "-P31D"
    periodOverride = "auto"
    widgets        = local.dashboard_widgets
  })
}
