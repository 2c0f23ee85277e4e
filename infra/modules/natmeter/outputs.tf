output "function_name" {
  description = "Name of the natmeter function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the natmeter function."
  value       = aws_lambda_function.this.arn
}

output "function_role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.function.arn
}

output "function_log_group_name" {
  description = "Log group of the function: its structured logs and the source detail lines (one JSON object per minute, source, NAT gateway, direction and destination, with \"natmeter\": \"source\")."
  value       = aws_cloudwatch_log_group.function.name
}

output "failed_events_queue_url" {
  description = "URL of the SQS queue that holds events the function failed on after Lambda's retries (on-failure destination records, kept 14 days), for replay."
  value       = aws_sqs_queue.failed_events.url
}

output "failed_events_queue_arn" {
  description = "ARN of the failed-event queue."
  value       = aws_sqs_queue.failed_events.arn
}

output "source_log_group_name" {
  description = "Log group the function is subscribed to: flow_log_group_name, or the dedicated NAT flow log group when create_nat_flow_logs is true; null with flow_log_destination = \"s3\"."
  value       = local.s3_enabled ? null : local.source_log_group_name
}

output "subscription_filter_pattern" {
  description = "Filter pattern of the subscription: a term OR of the NAT gateway ENI IDs (?\"eni-...\" ?\"eni-...\"), or \"\" (every record) with create_nat_flow_logs (the dedicated log group holds NAT ENIs only), when the format has no interface-id, or when the pattern would exceed 1024 characters (more than 41 ENIs); null with flow_log_destination = \"s3\" (no subscription)."
  value       = one(aws_cloudwatch_log_subscription_filter.flow_logs[*].filter_pattern)
}

output "log_format" {
  description = "Flow log format the function parses (NATMETER_LOG_FORMAT)."
  value       = local.log_format
}

output "nat_gateways" {
  description = "The NAT gateways as configured in the function (NATMETER_NAT_GATEWAYS): id, ENI, private IPs and Availability Zone ID of each. Empty with discover_nat_gateways: the function describes them itself (natmeter discover prints what it sees)."
  value       = local.nat_gateways
}

output "nat_flow_log_ids" {
  description = "IDs of the dedicated NAT ENI flow logs by NAT gateway key (nat_gateway_keys, or the gateway IDs), to the log group or to the bucket (flow_log_destination); empty unless create_nat_flow_logs is true."
  value       = merge({ for k, fl in aws_flow_log.nat : k => fl.id }, { for k, fl in aws_flow_log.nat_s3 : k => fl.id })
}

output "flow_log_bucket_name" {
  description = "Bucket of the S3 path (flow_log_destination = \"s3\"): the one the module created, or flow_log_bucket_name. The flow logs are under AWSLogs/, the function's results under results_prefix (NATMETER_RESULTS_BUCKET). Null on the CloudWatch Logs path."
  value       = local.flow_log_bucket_name
}

output "flow_log_bucket_arn" {
  description = "ARN of that bucket: the log_destination for a flow log of your own (at the bucket's root, no subfolder); null on the CloudWatch Logs path."
  value       = local.flow_log_bucket_arn
}

output "flow_log_queue_arn" {
  description = "ARN of the SQS queue that S3 notifies of every new flow-log object and the function consumes (add it to your own bucket notification with create_flow_log_bucket_notification = false); null on the CloudWatch Logs path."
  value       = one(aws_sqs_queue.flow_log_objects[*].arn)
}

output "flow_log_dead_letter_queue_url" {
  description = "URL of the dead-letter queue of flow-log objects the function failed on 5 times (kept 14 days; redrive them to the queue once fixed); null on the CloudWatch Logs path."
  value       = one(aws_sqs_queue.flow_log_objects_dlq[*].url)
}

output "results_prefix" {
  description = "Key prefix of the function's results in the bucket (NATMETER_RESULTS_PREFIX): <results_prefix>hour=YYYY-MM-DDTHH/nat_gateway=<id>/<hash>.json; null on the CloudWatch Logs path."
  value       = local.s3_enabled ? var.results_prefix : null
}

output "objects_table_name" {
  description = "DynamoDB table in which the function records the flow-log objects it metered (NATMETER_OBJECTS_TABLE): the inventory table when eks_cluster_log_group_name is set, otherwise <name>-objects; null on the CloudWatch Logs path."
  value       = local.s3_enabled ? local.objects_table_name : null
}

output "metric_namespace" {
  description = "CloudWatch namespace of this instance's metrics (metric_namespace, or \"NatMeter/<name>\"): the only namespace its dashboard and alarms read."
  value       = local.metric_namespace
}

output "emf_namespace" {
  description = "Namespace of the EMF copy of the metrics when sink is \"both\" (\"<metric_namespace>/emf\", NATMETER_EMF_NAMESPACE); null otherwise. Neither the dashboard nor the alarms read it."
  value       = local.emf_namespace
}

output "contributor_insight_rule_names" {
  description = "Names of the Contributor Insights rules over the source detail lines: top sources, and top (source, destination) pairs, by NAT bytes; with eks_cluster_log_group_name also top (namespace, workload) pairs."
  value = concat([
    aws_cloudwatch_contributor_insight_rule.top_sources.rule_name,
    aws_cloudwatch_contributor_insight_rule.top_source_destinations.rule_name,
  ], aws_cloudwatch_contributor_insight_rule.top_workloads[*].rule_name)
}

output "inventory_table_name" {
  description = "DynamoDB table of the EKS workload inventory (NATMETER_INVENTORY_TABLE); null without eks_cluster_log_group_name."
  value       = one(aws_dynamodb_table.inventory[*].name)
}

output "inventory_table_arn" {
  description = "ARN of the inventory table, the only table the function's role may read and write; null without eks_cluster_log_group_name."
  value       = one(aws_dynamodb_table.inventory[*].arn)
}

output "eks_audit_filter_pattern" {
  description = "JSON filter pattern of the subscription on eks_cluster_log_group_name: pods create and delete (no subresource), pods/status and nodes/status patch and update; null without eks_cluster_log_group_name."
  value       = one(aws_cloudwatch_log_subscription_filter.eks_audit[*].filter_pattern)
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms notify (created by the module unless alarm_topic_arn was given)."
  value       = local.alarm_topic_arn
}

output "alarm_arns" {
  description = "ARNs of the alarms by key (null when disabled in alarm_enabled or not on this path): daily_cost, hourly_cost_anomaly, function_error_rate, failed_events, async_events_dropped, destination_delivery_failures, async_event_age, delivery_errors and delivery_throttling (CloudWatch Logs path), failed_objects (S3 path); silent_failure and coverage map each NAT gateway key to its alarm."
  value = {
    daily_cost                    = one(aws_cloudwatch_metric_alarm.daily_cost[*].arn)
    hourly_cost_anomaly           = one(aws_cloudwatch_metric_alarm.hourly_cost_anomaly[*].arn)
    function_error_rate           = one(aws_cloudwatch_metric_alarm.function_error_rate[*].arn)
    failed_events                 = one(aws_cloudwatch_metric_alarm.failed_events[*].arn)
    async_events_dropped          = one(aws_cloudwatch_metric_alarm.async_events_dropped[*].arn)
    destination_delivery_failures = one(aws_cloudwatch_metric_alarm.destination_delivery_failures[*].arn)
    async_event_age               = one(aws_cloudwatch_metric_alarm.async_event_age[*].arn)
    delivery_errors               = one(aws_cloudwatch_metric_alarm.delivery_errors[*].arn)
    delivery_throttling           = one(aws_cloudwatch_metric_alarm.delivery_throttling[*].arn)
    failed_objects                = one(aws_cloudwatch_metric_alarm.failed_objects[*].arn)
    silent_failure                = { for k, a in aws_cloudwatch_metric_alarm.silent_failure : k => a.arn }
    coverage                      = { for k, a in aws_cloudwatch_metric_alarm.coverage : k => a.arn }
  }
}
