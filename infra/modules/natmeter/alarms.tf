# Alarms: NAT spend (trailing 24 hours over a threshold; hourly cost above its
# anomaly band), the processor (a sustained function error rate, events Lambda
# gave up on, lost or aging in its asynchronous queue, failed events waiting in
# the on-failure queue, subscription delivery errors and throttling on the
# CloudWatch Logs path, flow-log objects in the dead-letter queue on the S3
# path) and what
# natmeter misses (a NAT gateway carrying traffic that natmeter does not see at
# all, or sees only partly). All notify the alarm topic on ALARM and on OK.
#
# Every alarm has a key in var.alarm_enabled (created unless set to false) and
# a name that starts with var.alarm_name_prefix ("<name>-" by default). The
# namespace read is this instance's own (local.metric_namespace): the alarms of
# two instances never see each other's metrics.
#
# natmeter publishes datapoints at the minute of the flow, minutes after the
# fact (flow logs arrive about 5-10 minutes late). Missing data is therefore
# "notBreaching" everywhere: an idle NAT gateway and a late batch must not page.

locals {
  alarm_actions = [local.alarm_topic_arn]

  alarm_keys = [
    "daily_cost", "hourly_cost_anomaly", "function_error_rate", "failed_events", "async_events_dropped",
    "destination_delivery_failures", "async_event_age", "delivery_errors", "delivery_throttling",
    "failed_objects", "silent_failure", "coverage",
  ]
  alarm_on = { for k in local.alarm_keys : k => lookup(var.alarm_enabled, k, true) }

  alarm_fn    = aws_lambda_function.this.function_name
  alarm_queue = aws_sqs_queue.failed_events.name

  # Where a missing byte may have been lost on the way in, by path (the
  # descriptions of the function error, silent-failure and coverage alarms).
  alarm_function_retries = local.s3_enabled ? "Flow-log objects it failed on are received again after the queue's visibility timeout, and after ${local.flow_log_queue_max_receive_count} receives go to the ${local.flow_log_dlq_name} queue" : "Lambda retries each failed event twice, then sends it to the ${local.alarm_queue} queue"
  alarm_silent_checks    = local.s3_enabled ? "Check the flow log of its ENI, the bucket's event notification to ${local.flow_log_queue_name} and the function's errors." : "Check the flow log of its ENI, the subscription filter and the function's errors."
  alarm_coverage_checks  = local.s3_enabled ? "check that the flow log covers the gateway's ENI, the dead-letter queue ${local.flow_log_dlq_name} and the function's errors." : "check that the flow log covers the gateway's ENI, the failed-event queue and the subscription's delivery errors."

  # AWS/Logs subscription metrics carry LogGroupName, DestinationType and
  # FilterName. A Metrics Insights query selects this subscription by the two
  # names it knows, whatever DestinationType CloudWatch writes for Lambda.
  subscription_where = format("WHERE FilterName = '%s' AND LogGroupName = '%s'", local.subscription_name, local.source_log_group_name)

  # AsyncEventAge is in milliseconds.
  event_age_threshold_s  = floor(var.event_age_alarm_fraction * var.maximum_event_age_seconds)
  event_age_threshold_ms = local.event_age_threshold_s * 1000
}

# Alarms that used to be single resources are counted now (their enable flag):
# keep the existing ones instead of replacing them.
moved {
  from = aws_cloudwatch_metric_alarm.daily_cost
  to   = aws_cloudwatch_metric_alarm.daily_cost[0]
}

moved {
  from = aws_cloudwatch_metric_alarm.hourly_cost_anomaly
  to   = aws_cloudwatch_metric_alarm.hourly_cost_anomaly[0]
}

moved {
  from = aws_cloudwatch_metric_alarm.failed_events
  to   = aws_cloudwatch_metric_alarm.failed_events[0]
}

# ---------------------------------------------------------------------------
# NAT spend
# ---------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "daily_cost" {
  count = local.alarm_on.daily_cost ? 1 : 0

  alarm_name        = "${local.alarm_prefix}nat-cost-24h"
  alarm_description = "NAT gateway processing cost metered by natmeter ${var.name} over the trailing 24 hours is above ${var.daily_cost_alarm_usd} USD. Open the ${var.name} dashboard: top sources and destinations show who is spending."

  namespace   = local.metric_namespace
  metric_name = "NatCost"
  statistic   = "Sum"
  period      = 86400

  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.daily_cost_alarm_usd
  treat_missing_data  = "notBreaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = var.tags
}

resource "aws_cloudwatch_metric_alarm" "hourly_cost_anomaly" {
  count = local.alarm_on.hourly_cost_anomaly ? 1 : 0

  alarm_name        = "${local.alarm_prefix}nat-cost-hourly-anomaly"
  alarm_description = "Hourly NAT gateway cost metered by natmeter ${var.name} is above its anomaly-detection band (${var.anomaly_band_width} standard deviations) in 2 of the last 3 hours. The model needs about two weeks of history before it is reliable."

  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanUpperThreshold"
  threshold_metric_id = "band"
  treat_missing_data  = "notBreaching"

  metric_query {
    id          = "cost"
    label       = "NAT cost per hour (USD)"
    return_data = true

    metric {
      namespace   = local.metric_namespace
      metric_name = "NatCost"
      period      = 3600
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "band"
    expression  = "ANOMALY_DETECTION_BAND(cost, ${var.anomaly_band_width})"
    label       = "Expected hourly NAT cost"
    return_data = true
  }

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = var.tags
}

# ---------------------------------------------------------------------------
# The processor
# ---------------------------------------------------------------------------

# A sustained error rate, not one error: Lambda retries a failed event twice
# (about 1 and 2 minutes later), so a transient failure that a retry fixes
# costs nothing. Three 5-minute periods in a row above the rate mean the
# function keeps failing, and events keep heading for the on-failure queue.
resource "aws_cloudwatch_metric_alarm" "function_error_rate" {
  count = local.alarm_on.function_error_rate ? 1 : 0

  alarm_name        = "${local.alarm_prefix}function-error-rate"
  alarm_description = "More than ${var.function_error_rate_percent} % of the invocations of the natmeter function ${local.alarm_fn} failed in each of the last three 5-minute periods. ${local.alarm_function_retries}. See the function's log group for the error."

  evaluation_periods  = 3
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.function_error_rate_percent
  treat_missing_data  = "notBreaching"

  metric_query {
    id = "errors"

    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Errors"
      period      = 300
      stat        = "Sum"
      dimensions = {
        FunctionName = local.alarm_fn
      }
    }
  }

  metric_query {
    id = "invocations"

    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Invocations"
      period      = 300
      stat        = "Sum"
      dimensions = {
        FunctionName = local.alarm_fn
      }
    }
  }

  metric_query {
    id          = "rate"
    expression  = "IF(FILL(invocations, 0) > 0, 100 * FILL(errors, 0) / FILL(invocations, 0), 0)"
    label       = "Failed invocations, % of invocations"
    return_data = true
  }

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = var.tags
}

resource "aws_cloudwatch_metric_alarm" "failed_events" {
  count = local.alarm_on.failed_events ? 1 : 0

  alarm_name        = "${local.alarm_prefix}failed-events-queued"
  alarm_description = "Flow log batches that natmeter ${var.name} could not process are waiting in the ${local.alarm_queue} queue (kept 14 days). Their NAT bytes are missing from the metrics until they are replayed (module README, \"Failed events and replay\")."

  namespace   = "AWS/SQS"
  metric_name = "ApproximateNumberOfMessagesVisible"
  statistic   = "Maximum"
  period      = 300
  dimensions = {
    QueueName = local.alarm_queue
  }

  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = var.tags
}

# Events that left Lambda's asynchronous queue without a successful
# invocation: retries exhausted or maximum event age reached. With the
# on-failure destination configured they are sent there first, so this alarm
# and failed_events usually fire together; with destination_delivery_failures
# as well, some were lost.
resource "aws_cloudwatch_metric_alarm" "async_events_dropped" {
  count = local.alarm_on.async_events_dropped ? 1 : 0

  alarm_name        = "${local.alarm_prefix}async-events-dropped"
  alarm_description = "Lambda gave up on asynchronous events of the natmeter function ${local.alarm_fn} in the last 5 minutes (2 retries of a function error, or ${var.maximum_event_age_seconds} s of throttling or system errors). They went to the ${local.alarm_queue} queue for replay, unless the destination-delivery-failures alarm fires too: then some are lost."

  namespace   = "AWS/Lambda"
  metric_name = "AsyncEventsDropped"
  statistic   = "Sum"
  period      = 300
  dimensions = {
    FunctionName = local.alarm_fn
  }

  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = var.tags
}

resource "aws_cloudwatch_metric_alarm" "destination_delivery_failures" {
  count = local.alarm_on.destination_delivery_failures ? 1 : 0

  alarm_name        = "${local.alarm_prefix}destination-delivery-failures"
  alarm_description = "Lambda could not write failed events of the natmeter function ${local.alarm_fn} to its on-failure destination ${local.alarm_queue}: those events and their NAT bytes are lost. Check the function role's sqs:SendMessage permission, the queue and its KMS key."

  namespace   = "AWS/Lambda"
  metric_name = "DestinationDeliveryFailures"
  statistic   = "Sum"
  period      = 300
  dimensions = {
    FunctionName = local.alarm_fn
  }

  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = var.tags
}

# Throttles and Lambda system errors are retried from Lambda's asynchronous
# queue until the event is maximum_event_age_seconds old; an old event in the
# queue means a backlog that will end in the on-failure queue.
resource "aws_cloudwatch_metric_alarm" "async_event_age" {
  count = local.alarm_on.async_event_age ? 1 : 0

  alarm_name        = "${local.alarm_prefix}async-event-age"
  alarm_description = "An event waited more than ${local.event_age_threshold_s} s in Lambda's asynchronous queue before the natmeter function ${local.alarm_fn} ran it (AsyncEventAge, maximum): the function is throttled or failing and falls behind. At ${var.maximum_event_age_seconds} s Lambda gives up and sends the event to ${local.alarm_queue}. Check Throttles and the reserved concurrency."

  namespace   = "AWS/Lambda"
  metric_name = "AsyncEventAge"
  statistic   = "Maximum"
  period      = 300
  dimensions = {
    FunctionName = local.alarm_fn
  }

  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.event_age_threshold_ms
  treat_missing_data  = "notBreaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = var.tags
}

# CloudWatch Logs -> the function (the asynchronous Invoke call itself). A
# non-retryable error (AccessDenied, ResourceNotFound) disables the
# subscription for up to 10 minutes and skips the log events of that time; a
# throttled Invoke is retried by CloudWatch Logs for up to 24 hours. Not on
# the S3 path, which has no subscription (failed_objects below instead).
resource "aws_cloudwatch_metric_alarm" "delivery_errors" {
  count = local.alarm_on.delivery_errors && !local.s3_enabled ? 1 : 0

  alarm_name        = "${local.alarm_prefix}subscription-delivery-errors"
  alarm_description = "CloudWatch Logs failed to deliver flow log events to the natmeter function ${local.alarm_fn} (subscription filter ${local.subscription_name} on the flow log group) in the last 5 minutes. A non-retryable error (permission, missing function) pauses the subscription for up to 10 minutes and skips those events: their NAT bytes are missing."

  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"

  metric_query {
    id          = "errors"
    expression  = "SELECT SUM(DeliveryErrors) FROM SCHEMA(\"AWS/Logs\", DestinationType, FilterName, LogGroupName) ${local.subscription_where}"
    period      = 300
    label       = "Delivery errors"
    return_data = true
  }

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = var.tags
}

resource "aws_cloudwatch_metric_alarm" "delivery_throttling" {
  count = local.alarm_on.delivery_throttling && !local.s3_enabled ? 1 : 0

  alarm_name        = "${local.alarm_prefix}subscription-delivery-throttling"
  alarm_description = "CloudWatch Logs was throttled delivering flow log events to the natmeter function ${local.alarm_fn} (subscription filter ${local.subscription_name} on the flow log group) in each of the last 3 periods of 5 minutes. It retries for up to 24 hours; events still undelivered then are lost. This is the Invoke call itself (Lambda's asynchronous queue accepts events even when the function is throttled): check the account's Lambda request quotas."

  evaluation_periods  = 3
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"

  metric_query {
    id          = "throttled"
    expression  = "SELECT SUM(DeliveryThrottling) FROM SCHEMA(\"AWS/Logs\", DestinationType, FilterName, LogGroupName) ${local.subscription_where}"
    period      = 300
    label       = "Throttled deliveries"
    return_data = true
  }

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = var.tags
}

# S3 path: flow-log objects the function failed on
# flow_log_queue_max_receive_count times (s3.tf). Their NAT bytes are missing
# until the messages are redriven to the queue (module README, "Delivering
# flow logs to S3").
resource "aws_cloudwatch_metric_alarm" "failed_objects" {
  count = local.alarm_on.failed_objects && local.s3_enabled ? 1 : 0

  alarm_name        = "${local.alarm_prefix}failed-flow-log-objects"
  alarm_description = "Flow-log objects that natmeter ${var.name} failed on ${local.flow_log_queue_max_receive_count} times are waiting in the ${local.flow_log_dlq_name} queue (kept 14 days). Their NAT bytes are missing from the metrics until the messages are redriven to ${local.flow_log_queue_name} (module README, \"Delivering flow logs to S3\"). See the function's log group for the error."

  namespace   = "AWS/SQS"
  metric_name = "ApproximateNumberOfMessagesVisible"
  statistic   = "Maximum"
  period      = 300
  dimensions = {
    QueueName = local.flow_log_dlq_name
  }

  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = var.tags
}

# ---------------------------------------------------------------------------
# What natmeter does not see, per NAT gateway
# ---------------------------------------------------------------------------
#
# Keyed by local.nat_keys (nat_gateway_keys, or the gateway IDs), so that a
# reordered nat_gateway_ids leaves the alarms of unchanged gateways alone.

# Zero metering: a gateway that carries traffic while natmeter meters nothing
# for it for an hour (four 15-minute windows in a row) means its flow log, the
# subscription or the function is broken, and its spend is invisible.
resource "aws_cloudwatch_metric_alarm" "silent_failure" {
  for_each = local.alarm_on.silent_failure ? local.nat_index : {}

  alarm_name        = "${local.alarm_prefix}silent-${var.nat_gateway_ids[each.value]}"
  alarm_description = "NAT gateway ${var.nat_gateway_ids[each.value]} carried traffic (AWS/NATGateway) for an hour while natmeter ${var.name} metered none of it (NatBytes). ${local.alarm_silent_checks}"

  evaluation_periods  = 4
  datapoints_to_alarm = 4
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"

  metric_query {
    id = "natin"

    metric {
      namespace   = "AWS/NATGateway"
      metric_name = "BytesInFromSource"
      period      = 900
      stat        = "Sum"
      dimensions = {
        NatGatewayId = var.nat_gateway_ids[each.value]
      }
    }
  }

  metric_query {
    id = "natout"

    metric {
      namespace   = "AWS/NATGateway"
      metric_name = "BytesOutToSource"
      period      = 900
      stat        = "Sum"
      dimensions = {
        NatGatewayId = var.nat_gateway_ids[each.value]
      }
    }
  }

  metric_query {
    id = "metered"

    metric {
      namespace   = local.metric_namespace
      metric_name = "NatBytes"
      period      = 900
      stat        = "Sum"
      dimensions = {
        NatGatewayId = var.nat_gateway_ids[each.value]
      }
    }
  }

  metric_query {
    id          = "silent"
    expression  = "IF(((FILL(natin, 0) + FILL(natout, 0)) > ${var.silent_failure_min_bytes}) AND (FILL(metered, 0) == 0), 1, 0)"
    label       = "1 when the gateway carried traffic that natmeter did not meter"
    return_data = true
  }

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = var.tags
}

# Partial loss: what natmeter metered for the gateway over 3 hours, as a share
# of what the gateway itself processed from and to its sources. The
# silent-failure alarm sees only zero; this one sees a flow log that covers
# part of the traffic, a subscription that drops batches, a function that
# fails some of them. 3 hours: natmeter's last 5-10 minutes are always still
# on their way, a small part of a long window.
resource "aws_cloudwatch_metric_alarm" "coverage" {
  for_each = local.alarm_on.coverage ? local.nat_index : {}

  alarm_name        = "${local.alarm_prefix}coverage-${var.nat_gateway_ids[each.value]}"
  alarm_description = "natmeter ${var.name} metered less than a share of ${var.min_coverage} of the bytes NAT gateway ${var.nat_gateway_ids[each.value]} processed from and to its sources over the last 3 hours (NatBytes / (BytesInFromSource + BytesOutToSource)). Part of its traffic is not in the metrics: ${local.alarm_coverage_checks}"

  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = var.min_coverage
  treat_missing_data  = "notBreaching"

  metric_query {
    id = "natin"

    metric {
      namespace   = "AWS/NATGateway"
      metric_name = "BytesInFromSource"
      period      = 10800
      stat        = "Sum"
      dimensions = {
        NatGatewayId = var.nat_gateway_ids[each.value]
      }
    }
  }

  metric_query {
    id = "natout"

    metric {
      namespace   = "AWS/NATGateway"
      metric_name = "BytesOutToSource"
      period      = 10800
      stat        = "Sum"
      dimensions = {
        NatGatewayId = var.nat_gateway_ids[each.value]
      }
    }
  }

  metric_query {
    id = "metered"

    metric {
      namespace   = local.metric_namespace
      metric_name = "NatBytes"
      period      = 10800
      stat        = "Sum"
      dimensions = {
        NatGatewayId = var.nat_gateway_ids[each.value]
      }
    }
  }

  metric_query {
    id          = "coverage"
    expression  = "IF((FILL(natin, 0) + FILL(natout, 0)) > ${var.coverage_min_bytes}, FILL(metered, 0) / (FILL(natin, 0) + FILL(natout, 0)), 1)"
    label       = "Share of the gateway's processed bytes that natmeter metered"
    return_data = true
  }

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = var.tags
}
