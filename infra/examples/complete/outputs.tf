output "dashboard_url" {
  description = "The natmeter dashboard in the CloudWatch console."
  value       = "https://${var.region}.console.aws.amazon.com/cloudwatch/home?region=${var.region}#dashboards/dashboard/${module.natmeter.dashboard_name}"
}

output "flow_log_group_name" {
  description = "The VPC flow log group natmeter is subscribed to."
  value       = module.natmeter.source_log_group_name
}

output "subscription_filter_pattern" {
  description = "Filter pattern that lets only the NAT gateway ENIs' records through to the function."
  value       = module.natmeter.subscription_filter_pattern
}

output "function_log_group_name" {
  description = "Log group of the function, with its source detail lines (Logs Insights: filter natmeter = \"source\")."
  value       = module.natmeter.function_log_group_name
}

output "failed_events_queue_url" {
  description = "Queue of events the function failed on, for replay."
  value       = module.natmeter.failed_events_queue_url
}

output "nat_gateways" {
  description = "The NAT gateways natmeter meters, with ENI, private IPs and AZ ID."
  value       = module.natmeter.nat_gateways
}

output "metric_namespace" {
  description = "CloudWatch namespace of this deployment's natmeter metrics (NatMeter/<name>)."
  value       = module.natmeter.metric_namespace
}

output "inventory_table_name" {
  description = "DynamoDB table of natmeter's EKS workload inventory; null without eks_cluster_name."
  value       = module.natmeter.inventory_table_name
}
