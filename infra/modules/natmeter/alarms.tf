# Alarms: NAT spend (trailing 24 hours over a threshold; hourly cost above its
# anomaly band), the processor (function errors, failed events waiting in the
# queue) and silent failure (a NAT gateway carries traffic that natmeter does
# not see). All notify the alarm topic on ALARM and on OK.
#
# natmeter publishes datapoints at the minute of the flow, minutes after the
# fact (flow logs arrive about 5-10 minutes late). Missing data is therefore
# "notBreaching" everywhere: an idle NAT gateway and a late batch must not page.

locals {
  alarm_actions = [local.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "daily_cost" {
  alarm_name        = "${var.name}-nat-cost-24h"
  alarm_description = "NAT gateway processing cost metered by natmeter over the trailing 24 hours is above ${var.daily_cost_alarm_usd} USD. Open the ${var.name} dashboard: top sources and destinations show who is spending."

  namespace   = var.metric_namespace
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
  alarm_name        = "${var.name}-nat-cost-hourly-anomaly"
  alarm_description = "Hourly NAT gateway cost metered by natmeter is above its anomaly-detection band (${var.anomaly_band_width} standard deviations) in 2 of the last 3 hours. The model needs about two weeks of history before it is reliable."

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
      namespace   = var.metric_namespace
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

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  alarm_name        = "${var.name}-function-errors"
  alarm_description = "The natmeter function ${var.name} failed invocations in the last 5 minutes. Lambda retries them twice, then sends them to the ${var.name}-failed-events queue. See the function's log group for the error."

  namespace   = "AWS/Lambda"
  metric_name = "Errors"
  statistic   = "Sum"
  period      = 300
  dimensions = {
    FunctionName = aws_lambda_function.this.function_name
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

resource "aws_cloudwatch_metric_alarm" "failed_events" {
  alarm_name        = "${var.name}-failed-events-queued"
  alarm_description = "Flow log batches that natmeter ${var.name} could not process after Lambda's retries are waiting in the ${var.name}-failed-events queue (kept 14 days). Their NAT bytes are missing from the metrics until they are replayed."

  namespace   = "AWS/SQS"
  metric_name = "ApproximateNumberOfMessagesVisible"
  statistic   = "Maximum"
  period      = 300
  dimensions = {
    QueueName = aws_sqs_queue.failed_events.name
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

# One per NAT gateway: a gateway that carries traffic while natmeter meters
# nothing for it for an hour (four 15-minute windows in a row) means its flow
# log, the subscription or the function is broken, and its spend is invisible.
resource "aws_cloudwatch_metric_alarm" "silent_failure" {
  count = length(var.nat_gateway_ids)

  alarm_name        = "${var.name}-silent-${var.nat_gateway_ids[count.index]}"
  alarm_description = "NAT gateway ${var.nat_gateway_ids[count.index]} carried traffic (AWS/NATGateway) for an hour while natmeter ${var.name} metered none of it (NatBytes). Check the flow log of its ENI, the subscription filter and the function's errors."

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
        NatGatewayId = var.nat_gateway_ids[count.index]
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
        NatGatewayId = var.nat_gateway_ids[count.index]
      }
    }
  }

  metric_query {
    id = "metered"

    metric {
      namespace   = var.metric_namespace
      metric_name = "NatBytes"
      period      = 900
      stat        = "Sum"
      dimensions = {
        NatGatewayId = var.nat_gateway_ids[count.index]
      }
    }
  }

  metric_query {
    id          = "silent"
    expression  = "IF(FILL(natin, 0) + FILL(natout, 0) > ${var.silent_failure_min_bytes} AND FILL(metered, 0) == 0, 1, 0)"
    label       = "1 when the gateway carried traffic that natmeter did not meter"
    return_data = true
  }

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = var.tags
}
