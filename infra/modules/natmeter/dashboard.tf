# The dashboard: NAT spend first (today, this month, the dashboard's time range
# with the part to S3 and DynamoDB, by gateway, by source, by destination),
# then coverage against AWS's own NAT gateway metrics, then the health of the
# processor.
#
# Every metric name and dimension set below is one the function emits; the test
# tests/infra/test_tf_contract.py checks them against `natmeter metrics --json`.
# Only this instance's namespace (local.metric_namespace) is read: with sink =
# "both" the EMF copy in "<namespace>/emf" is never added to it. SourceIp and
# Destination are open sets, so they are queried with Metrics Insights (GROUP
# BY), never enumerated. A SCHEMA(...) names the exact dimension set of the
# metric it selects.
#
# Periods: periodOverride = "inherit" keeps every widget's own period (3600 s
# in the "per hour" widgets, 900 s for coverage, 300 s elsewhere) whatever the
# time range; "auto" would replace them with a period that adapts to the range,
# and "per hour" would stop being per hour. Time zone: UTC everywhere
# ("timezone" = "+0000" on every metric widget; "today" and "this month" are
# UTC days and months).
#
# Layout: a 24-column grid; widgets are placed row by row, y grows downwards.
# With the EKS inventory, a block of workload widgets (below) follows the
# source widgets and moves the rest down by local.inv_dy; with subnets
# (cross-AZ pricing), a row of cross-AZ widgets follows the NAT cost by gateway
# and moves everything below it down by local.xaz_dy.
#
# Both delivery paths show the same metrics; only the widget on how flow logs
# reach the function differs (the subscription's AWS/Logs metrics, or the S3
# path's object queues), and nothing reads a flow log group on the S3 path.

locals {
  ns         = local.metric_namespace
  dash_fn    = aws_lambda_function.this.function_name
  dash_queue = aws_sqs_queue.failed_events.name
  utc        = "+0000"

  # Metrics Insights: one query per widget (a GetMetricData call takes one).
  # Metrics Insights queries only the most recent two weeks of data.
  mi_top_source_cost = format("SELECT SUM(NatCost) FROM SCHEMA(\"%s\", SourceIp) GROUP BY SourceIp ORDER BY SUM() DESC LIMIT 10", local.ns)
  mi_direction_bytes = format("SELECT SUM(NatBytes) FROM SCHEMA(\"%s\", Direction, NatGatewayId) GROUP BY Direction", local.ns)
  mi_dest_bytes      = format("SELECT SUM(NatBytes) FROM SCHEMA(\"%s\", Destination) GROUP BY Destination ORDER BY SUM() DESC LIMIT 20", local.ns)
  mi_dest_cost       = format("SELECT SUM(NatCost) FROM SCHEMA(\"%s\", Destination) GROUP BY Destination ORDER BY SUM() DESC LIMIT 20", local.ns)
  mi_skipped_reason  = format("SELECT SUM(RecordsSkipped) FROM SCHEMA(\"%s\", Reason) GROUP BY Reason", local.ns)
  mi_note            = "Metrics Insights: the last 2 weeks at most"

  # Logs Insights over the source detail lines: every source, with USD.
  logs_top_sources = join(" | ", [
    "SOURCE '${aws_cloudwatch_log_group.function.name}'",
    "filter natmeter = \"source\"",
    "stats sum(NatBytes) as bytes, sum(NatCost) as usd by SourceIp, Destination",
    "sort bytes desc",
    "limit 20",
  ])

  # Cost today and this month (UTC), each in a widget with its own time range
  # and 300-second buckets that start on 5-minute clock boundaries, so that
  # midnight and the 1st (multiples of 300 s) fall between two buckets, never
  # inside one. CloudWatch rounds a GetMetricData start time between 15 and 63
  # days ago down to a 5-minute clock interval (one less than 15 days ago only
  # to the minute): hence 16 days for "today" and 31 days for "this month",
  # both also long enough to reach back to midnight and to the 1st. 5-minute
  # data is kept for 63 days. FILL gives every bucket of the range a value,
  # EPOCH its timestamp (the bucket's start): the last one is "now". DATE gives
  # the day of the month. RUNNING_SUM over the buckets since midnight (or since
  # the 1st) ends at the total, which is what a single-value widget shows (its
  # latest value). tests/infra/test_tf_dashboard.py evaluates these expressions
  # over a synthetic month.
  to_date_today_start = "-P16D"
  to_date_month_start = "-P31D"
  to_date_period      = 300
  cost_today_metrics = [
    [local.ns, "NatCost", { id = "cost", stat = "Sum", visible = false }],
    [{ id = "filled", expression = "FILL(cost, 0)", visible = false }],
    [{ id = "t", expression = "EPOCH(filled)", visible = false }],
    [{ id = "daystart", expression = "FLOOR(TIME_SERIES(MAX(t)) / 86400) * 86400", visible = false }],
    [{ id = "today", expression = "RUNNING_SUM(IF(t >= daystart, filled, 0))", label = "Today (UTC, since 00:00), USD" }],
  ]
  cost_month_metrics = [
    [local.ns, "NatCost", { id = "cost", stat = "Sum", visible = false }],
    [{ id = "filled", expression = "FILL(cost, 0)", visible = false }],
    [{ id = "t", expression = "EPOCH(filled)", visible = false }],
    [{ id = "daystart", expression = "FLOOR(TIME_SERIES(MAX(t)) / 86400) * 86400", visible = false }],
    [{ id = "dom", expression = "DATE(filled)", visible = false }],
    [{ id = "todaydom", expression = "TIME_SERIES(MAX(IF(t >= daystart, dom, 0)))", visible = false }],
    [{ id = "monthstart", expression = "daystart - (todaydom - 1) * 86400", visible = false }],
    [{ id = "month", expression = "RUNNING_SUM(IF(t >= monthstart, filled, 0))", label = "This month (UTC, since the 1st), USD" }],
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

  dashboard_alarm_arns = concat(
    aws_cloudwatch_metric_alarm.daily_cost[*].arn,
    aws_cloudwatch_metric_alarm.hourly_cost_anomaly[*].arn,
    aws_cloudwatch_metric_alarm.function_error_rate[*].arn,
    aws_cloudwatch_metric_alarm.failed_events[*].arn,
    aws_cloudwatch_metric_alarm.async_events_dropped[*].arn,
    aws_cloudwatch_metric_alarm.destination_delivery_failures[*].arn,
    aws_cloudwatch_metric_alarm.async_event_age[*].arn,
    aws_cloudwatch_metric_alarm.delivery_errors[*].arn,
    aws_cloudwatch_metric_alarm.delivery_throttling[*].arn,
    aws_cloudwatch_metric_alarm.failed_objects[*].arn,
    [for k in local.nat_keys : aws_cloudwatch_metric_alarm.silent_failure[k].arn if local.alarm_on.silent_failure],
    [for k in local.nat_keys : aws_cloudwatch_metric_alarm.coverage[k].arn if local.alarm_on.coverage],
  )

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
          "NAT gateway data processing, metered from VPC flow logs: private-side bytes of both directions / 2^30 x the price per GB, at the minute of the flow, in namespace `${local.ns}` only (this instance). **Times are UTC**; \"today\" and \"this month\" are UTC days and months. Flow logs arrive 5-10 minutes late, so the last minutes are always low. Every graph keeps its own period (per hour means per hour at any time range); the Metrics Insights graphs show the last 2 weeks at most.",
          "S3 and DynamoDB: the figures count them in **any region**. A gateway endpoint (free) serves only its own region's S3 and DynamoDB, so only the part in this VPC's region (${local.region}) is avoidable that way: the share shown is an upper bound. Managed by Terraform: changes made here are overwritten.",
        ])
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 3
      width  = 6
      height = 4
      properties = {
        title    = "NAT cost today (UTC, since 00:00), USD"
        view     = "singleValue"
        region   = local.region
        timezone = local.utc
        start    = local.to_date_today_start
        period   = local.to_date_period
        stat     = "Sum"
        metrics  = local.cost_today_metrics
      }
    },
    {
      type   = "metric"
      x      = 6
      y      = 3
      width  = 6
      height = 4
      properties = {
        title    = "NAT cost this month (UTC, since the 1st), USD"
        view     = "singleValue"
        region   = local.region
        timezone = local.utc
        start    = local.to_date_month_start
        period   = local.to_date_period
        stat     = "Sum"
        metrics  = local.cost_month_metrics
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 3
      width  = 12
      height = 4
      properties = {
        title                = "Dashboard time range: NAT cost, and the part to S3 and DynamoDB in any region (avoidable with gateway endpoints only in ${local.region})"
        view                 = "singleValue"
        region               = local.region
        timezone             = local.utc
        stat                 = "Sum"
        setPeriodToTimeRange = true
        metrics = [
          [local.ns, "NatCost", { id = "all", label = "NAT cost, USD" }],
          [local.ns, "NatCost", "Destination", "S3", { id = "s3", visible = false }],
          [local.ns, "NatCost", "Destination", "DYNAMODB", { id = "ddb", visible = false }],
          [{ id = "awsstore", expression = "FILL(s3, 0) + FILL(ddb, 0)", label = "To S3 + DynamoDB, any region, USD" }],
          [{ id = "share", expression = "100 * (FILL(s3, 0) + FILL(ddb, 0)) / all", label = "To S3 + DynamoDB, any region, % (upper bound of the avoidable share)" }],
          # NatAvoidableCost: the same-region part, from the function's ip-ranges.json (empty
          # when ip_ranges_url = "" or the file could not be read).
          [local.ns, "NatAvoidableCost", { id = "avoid", label = "Avoidable with gateway endpoints: S3 + DynamoDB only in ${local.region}, USD (from AWS's ip-ranges)" }],
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
        title    = "NAT cost by NAT gateway (USD per hour)"
        view     = "timeSeries"
        stacked  = true
        region   = local.region
        timezone = local.utc
        period   = 3600
        stat     = "Sum"
        metrics  = local.cost_by_gateway_metrics
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 7
      width  = 12
      height = 6
      properties = {
        title    = "NAT bytes per hour: outbound (uploads) vs inbound (downloads) (${local.mi_note})"
        view     = "timeSeries"
        stacked  = true
        region   = local.region
        timezone = local.utc
        period   = 3600
        metrics  = [[{ id = "direction", expression = local.mi_direction_bytes, label = "", period = 3600 }]]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 13
      width  = 12
      height = 7
      properties = {
        title    = "Top 10 sources by NAT bytes per 5 minutes (Contributor Insights: every source, no cap)"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 300
        legend   = { position = "right" }
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
        title    = "Top 10 SourceIp metrics by NAT cost, USD per hour; sources beyond max_sources are in SourceIp=other (${local.mi_note})"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 3600
        legend   = { position = "right" }
        metrics  = [[{ id = "topcost", expression = local.mi_top_source_cost, label = "", period = 3600 }]]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 20
      width  = 12
      height = 7
      properties = {
        title    = "Top 10 (source, destination) pairs by NAT bytes per 5 minutes (Contributor Insights)"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 300
        legend   = { position = "right" }
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
        title  = "Top 20 (source, destination) by NAT bytes with cost, over the dashboard's time range (Logs Insights over the source detail lines)"
        view   = "table"
        region = local.region
        query  = local.logs_top_sources
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 27 + local.inv_dy
      width  = 12
      height = 6
      properties = {
        title    = "NAT bytes per hour by destination; S3 and DYNAMODB count any region (${local.mi_note})"
        view     = "timeSeries"
        stacked  = true
        region   = local.region
        timezone = local.utc
        period   = 3600
        metrics  = [[{ id = "destbytes", expression = local.mi_dest_bytes, label = "", period = 3600 }]]
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 27 + local.inv_dy
      width  = 12
      height = 6
      properties = {
        title    = "NAT cost per hour by destination, USD (${local.mi_note})"
        view     = "timeSeries"
        stacked  = true
        region   = local.region
        timezone = local.utc
        period   = 3600
        metrics  = [[{ id = "destcost", expression = local.mi_dest_cost, label = "", period = 3600 }]]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 33 + local.inv_dy
      width  = 24
      height = 6
      properties = {
        title    = "Coverage per NAT gateway per 15 minutes: NatBytes / (BytesInFromSource + BytesOutToSource), %"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 900
        yAxis    = { left = { min = 0, showUnits = false } }
        annotations = {
          horizontal = [
            { label = "fully metered", value = 100 },
            { label = "coverage alarm (3 hours)", value = var.min_coverage * 100, color = "#d62728" },
          ]
        }
        metrics = local.coverage_metrics
      }
    },
    {
      type   = "text"
      x      = 0
      y      = 39 + local.inv_dy
      width  = 24
      height = 1
      properties = {
        markdown = local.s3_enabled ? "## Processor health: function ${local.dash_fn}, flow-log object queue ${local.flow_log_queue_name}, failed-event queue ${local.dash_queue} (5-minute periods)" : "## Processor health: function ${local.dash_fn}, failed-event queue ${local.dash_queue} (5-minute periods)"
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 40 + local.inv_dy
      width  = 8
      height = 6
      properties = {
        title    = "Function invocations, errors, throttles per 5 minutes"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 300
        stat     = "Sum"
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
      y      = 40 + local.inv_dy
      width  = 8
      height = 6
      properties = {
        title    = "Function duration (ms)"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 300
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
      y      = 40 + local.inv_dy
      width  = 8
      height = 6
      properties = {
        title    = "Lambda's asynchronous queue: events received, dropped, lost; oldest event (s)"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 300
        metrics = [
          ["AWS/Lambda", "AsyncEventsReceived", "FunctionName", local.dash_fn, { stat = "Sum", label = "received" }],
          ["AWS/Lambda", "AsyncEventsDropped", "FunctionName", local.dash_fn, { stat = "Sum", label = "dropped (to the failed-event queue)" }],
          ["AWS/Lambda", "DestinationDeliveryFailures", "FunctionName", local.dash_fn, { stat = "Sum", label = "lost (destination delivery failures)" }],
          ["AWS/Lambda", "AsyncEventAge", "FunctionName", local.dash_fn, { id = "agems", stat = "Maximum", visible = false }],
          [{ id = "age", expression = "agems / 1000", label = "oldest event, s", yAxis = "right" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 46 + local.inv_dy
      width  = 8
      height = 6
      properties = {
        title    = "Failed events waiting for replay (on-failure queue)"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 300
        stat     = "Maximum"
        metrics = [
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", local.dash_queue, { label = "events in queue" }],
          ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", local.dash_queue, { label = "age of oldest (s)", yAxis = "right" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 8
      y      = 46 + local.inv_dy
      width  = 8
      height = 6
      properties = {
        title    = "Flow records counted, and lines that failed to parse, per 5 minutes"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 300
        stat     = "Sum"
        metrics = [
          [local.ns, "RecordsCounted", { label = "counted (NAT traversals)" }],
          [local.ns, "ParseErrors", { label = "parse errors", yAxis = "right" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 16
      y      = 46 + local.inv_dy
      width  = 8
      height = 6
      properties = {
        title    = "Flow records skipped per 5 minutes, by reason (${local.mi_note})"
        view     = "timeSeries"
        stacked  = true
        region   = local.region
        timezone = local.utc
        period   = 300
        metrics  = [[{ id = "skipped", expression = local.mi_skipped_reason, label = "", period = 300 }]]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 52 + local.inv_dy
      width  = 8
      height = 6
      properties = {
        title    = "Ingest lag: processing time - end of the flow record (s)"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 300
        metrics = [
          [local.ns, "IngestLag", { stat = "Average", label = "average" }],
          [local.ns, "IngestLag", { stat = "Maximum", label = "max" }],
        ]
      }
    },
  ]

  # The alarm status widget holds 1 to 100 alarms: none when every alarm is
  # disabled.
  alarm_widget = length(local.dashboard_alarm_arns) == 0 ? [] : [{
    type   = "alarm"
    x      = 0
    y      = 58 + local.inv_dy
    width  = 24
    height = 6
    properties = {
      title  = "natmeter alarms"
      alarms = local.dashboard_alarm_arns
    }
  }]
}

# How flow logs reach the function, in the last row beside the ingest lag: the
# subscription's delivery (AWS/Logs) on the CloudWatch Logs path, the object
# queue and its dead-letter queue (AWS/SQS) on the S3 path, where there is no
# log group and no subscription to read. A list of one or none each (a
# conditional needs one type on both sides; two widgets have two).
locals {
  subscription_widgets = [for w in [
    {
      type   = "metric"
      x      = 8
      y      = 52 + local.inv_dy
      width  = 16
      height = 6
      properties = {
        title    = "Subscription delivery to the function per 5 minutes (AWS/Logs, filter ${local.subscription_name})"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 300
        metrics = [
          [{ id = "forwarded", expression = "SEARCH('{AWS/Logs,DestinationType,FilterName,LogGroupName} MetricName=\"ForwardedLogEvents\" FilterName=\"${local.subscription_name}\"', 'Sum', 300)", label = "forwarded log events" }],
          [{ id = "errors", expression = "SEARCH('{AWS/Logs,DestinationType,FilterName,LogGroupName} MetricName=\"DeliveryErrors\" FilterName=\"${local.subscription_name}\"', 'Sum', 300)", label = "delivery errors" }],
          [{ id = "throttled", expression = "SEARCH('{AWS/Logs,DestinationType,FilterName,LogGroupName} MetricName=\"DeliveryThrottling\" FilterName=\"${local.subscription_name}\"', 'Sum', 300)", label = "delivery throttling" }],
        ]
      }
    },
  ] : w if !local.s3_enabled]

  # NumberOfMessagesSent counts S3's notifications (one per new object);
  # ApproximateNumberOfMessagesNotVisible the ones being processed (received,
  # not yet deleted).
  object_queue_widgets = [for w in [
    {
      type   = "metric"
      x      = 8
      y      = 52 + local.inv_dy
      width  = 16
      height = 6
      properties = {
        title    = "Flow-log objects from S3 per 5 minutes (queue ${local.flow_log_queue_name}): new, waiting, being processed, in the dead-letter queue; oldest waiting (s)"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 300
        metrics = [
          ["AWS/SQS", "NumberOfMessagesSent", "QueueName", local.flow_log_queue_name, { stat = "Sum", label = "new objects (S3 notifications)" }],
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", local.flow_log_queue_name, { stat = "Maximum", label = "waiting" }],
          ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", local.flow_log_queue_name, { stat = "Maximum", label = "being processed" }],
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", local.flow_log_dlq_name, { stat = "Maximum", label = "failed: in the dead-letter queue" }],
          ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", local.flow_log_queue_name, { stat = "Maximum", label = "oldest waiting, s", yAxis = "right" }],
        ]
      }
    },
  ] : w if local.s3_enabled]
}

# Workloads (EKS), only with the inventory (eks_cluster_log_group_name): a block
# of inv_dy rows right below the source widgets; everything under it moves down
# by as much. Namespace and Workload are open sets, like SourceIp: SEARCH finds
# the series of the exact dimension set {Namespace} or {Namespace, Workload}
# (a graph shows at most 500), SORT(..., SUM, DESC, 10) keeps the ten largest
# over the time range ("CloudWatch search expression syntax", "Metric math
# syntax and functions"). The namespace is double-quoted in the schema, as a
# name with non-alphanumeric characters must be. Values the function writes
# besides real namespaces: "(node)" (bytes from node IPs: SNAT or hostNetwork),
# "(unresolved)" (no pod or node held the address at the time) and "other"
# (beyond its per-invocation cap).
locals {
  inv_y  = 27
  inv_dy = local.inventory_enabled ? 21 : 0

  inv_search_ns = format("SEARCH('{\"%s\",Namespace} MetricName=\"NatCost\"', 'Sum', 3600)", local.ns)
  inv_search_wl = format("SEARCH('{\"%s\",Namespace,Workload} MetricName=\"NatCost\"', 'Sum', 3600)", local.ns)
  inv_search_fw = format("SEARCH('{AWS/Logs,DestinationType,FilterName,LogGroupName} MetricName=\"ForwardedBytes\" FilterName=\"%s\"', 'Sum', 3600)", local.eks_audit_subscription_name)

  # Built whether or not the inventory is on (a for-expression evaluates its
  # whole collection), so every reference in it must hold without it: the
  # rule's name through one(), the log group's name through a local.
  inventory_widgets = [for w in [
    {
      type   = "text"
      x      = 0
      y      = local.inv_y
      width  = 24
      height = 1
      properties = {
        markdown = "## Workloads (EKS): NAT spend by namespace and workload, from the pod inventory built out of the audit log of `${local.eks_log_group_name}`. `(node)`: bytes from node IPs (SNAT, hostNetwork pods); `(unresolved)`: no pod or node held the address at the time; `other`: beyond the function's per-invocation cap."
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = local.inv_y + 1
      width  = 12
      height = 7
      properties = {
        title    = "Top 10 namespaces by NAT cost over the time range, USD per hour"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 3600
        legend   = { position = "right" }
        metrics = [
          [{ id = "ns", expression = local.inv_search_ns, visible = false }],
          [{ id = "topns", expression = "SORT(ns, SUM, DESC, 10)", label = "" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = local.inv_y + 1
      width  = 12
      height = 7
      properties = {
        title    = "Top 10 workloads by NAT cost over the time range, USD per hour"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 3600
        legend   = { position = "right" }
        metrics = [
          [{ id = "wl", expression = local.inv_search_wl, visible = false }],
          [{ id = "topwl", expression = "SORT(wl, SUM, DESC, 10)", label = "" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = local.inv_y + 8
      width  = 12
      height = 7
      properties = {
        title    = "Top 10 (namespace, workload) by NAT bytes per 5 minutes (Contributor Insights: every workload, no cap)"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 300
        legend   = { position = "right" }
        insightRule = {
          maxContributorCount = 10
          orderBy             = "Sum"
          ruleName            = one(aws_cloudwatch_contributor_insight_rule.top_workloads[*].rule_name)
        }
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = local.inv_y + 8
      width  = 12
      height = 7
      properties = {
        title    = "NAT bytes per hour: all, attributed to nodes (SNAT hides the pod), unresolved; shares in % on the right"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 3600
        stat     = "Sum"
        metrics = [
          [local.ns, "NatBytes", { id = "all", label = "all NAT bytes" }],
          [local.ns, "NatNodeBytes", { id = "node", label = "attributed to nodes" }],
          [local.ns, "NatUnresolvedBytes", { id = "unres", label = "unresolved" }],
          [{ id = "nodeshare", expression = "100 * FILL(node, 0) / all", label = "nodes, % of all", yAxis = "right" }],
          [{ id = "unresshare", expression = "100 * FILL(unres, 0) / all", label = "unresolved, % of all", yAxis = "right" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = local.inv_y + 15
      width  = 24
      height = 6
      properties = {
        title    = "Control plane log group ${local.eks_log_group_name}: bytes ingested per hour (billed, every log type enabled), and bytes the audit filter ${local.eks_audit_subscription_name} forwards to the function"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 3600
        stat     = "Sum"
        metrics = [
          ["AWS/Logs", "IncomingBytes", "LogGroupName", local.eks_log_group_name, { id = "ingested", label = "ingested (billed as CloudWatch Logs ingestion)" }],
          [{ id = "forwarded", expression = local.inv_search_fw, label = "forwarded to natmeter" }],
        ]
      }
    },
  ] : w if local.inventory_enabled]
}

# Cross-AZ data transfer, only with var.subnets (NATMETER_SUBNETS): a row of
# xaz_dy rows right below the NAT cost by gateway, at xaz_y; every widget at or
# below that row (the inventory block and the alarm widget included) moves
# down by as much. The function prices a byte between a source and its NAT
# gateway in another AZ at the inter-AZ rate, once per crossing byte, on top
# of NAT processing (NatCrossAzBytes, NatCrossAzCost; by [] and NatGatewayId).
locals {
  xaz_y  = 13
  xaz_dy = local.cross_az_enabled ? 6 : 0

  cross_az_by_gateway_metrics = [
    for id in var.nat_gateway_ids : [local.ns, "NatCrossAzCost", "NatGatewayId", id, { label = id }]
  ]

  cross_az_widgets = [for w in [
    {
      type   = "metric"
      x      = 0
      y      = local.xaz_y
      width  = 12
      height = 6
      properties = {
        title    = "Cross-AZ surcharge by NAT gateway: sources in another AZ than their gateway, at the inter-AZ rate (USD per hour)"
        view     = "timeSeries"
        stacked  = true
        region   = local.region
        timezone = local.utc
        period   = 3600
        stat     = "Sum"
        metrics  = local.cross_az_by_gateway_metrics
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = local.xaz_y
      width  = 12
      height = 6
      properties = {
        title    = "NAT processing cost and the cross-AZ surcharge on top (USD per hour); cross-AZ bytes, % of NAT bytes on the right"
        view     = "timeSeries"
        region   = local.region
        timezone = local.utc
        period   = 3600
        stat     = "Sum"
        metrics = [
          [local.ns, "NatCost", { id = "proc", label = "NAT processing, USD" }],
          [local.ns, "NatCrossAzCost", { id = "xazcost", label = "cross-AZ surcharge, USD" }],
          [local.ns, "NatCrossAzBytes", { id = "xazbytes", visible = false }],
          [local.ns, "NatBytes", { id = "natbytes", visible = false }],
          [{ id = "xazshare", expression = "100 * FILL(xazbytes, 0) / natbytes", label = "cross-AZ bytes, % of NAT bytes", yAxis = "right" }],
        ]
      }
    },
  ] : w if local.cross_az_enabled]

  # Every widget from xaz_y down, moved below the cross-AZ row (by 0 without it).
  dashboard_widgets_placed = [
    for w in concat(local.dashboard_widgets, local.subscription_widgets, local.object_queue_widgets, local.inventory_widgets, local.alarm_widget) :
    merge(w, { y = w.y >= local.xaz_y ? w.y + local.xaz_dy : w.y })
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    # A week by default (within Metrics Insights' two weeks); "today" and "this
    # month" have their own ranges. inherit: every graph keeps its period.
    start          = "-P7D"
    periodOverride = "inherit"
    # In reading order: the cross-AZ row between what sits above and below it.
    widgets = concat(
      [for w in local.dashboard_widgets_placed : w if w.y < local.xaz_y],
      local.cross_az_widgets,
      [for w in local.dashboard_widgets_placed : w if w.y >= local.xaz_y],
    )
  })
}
