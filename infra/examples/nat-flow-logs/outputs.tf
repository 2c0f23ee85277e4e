output "dashboard_name" {
  description = "Name of the natmeter CloudWatch dashboard."
  value       = module.natmeter.dashboard_name
}

output "nat_flow_log_ids" {
  description = "IDs of the flow logs created on the NAT gateway ENIs."
  value       = module.natmeter.nat_flow_log_ids
}

output "log_format" {
  description = "Format of the NAT flow logs, as the function parses it."
  value       = module.natmeter.log_format
}

output "metric_namespace" {
  description = "CloudWatch namespace of this deployment's natmeter metrics (NatMeter/<name>)."
  value       = module.natmeter.metric_namespace
}

output "flow_log_bucket_name" {
  description = "Bucket of the NAT flow logs and the function's results with flow_log_destination = \"s3\"; null otherwise."
  value       = module.natmeter.flow_log_bucket_name
}
