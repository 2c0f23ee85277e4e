# The optional EKS workload inventory (eks_cluster_log_group_name): a second
# subscription filter, on the cluster's control plane log group, passes the
# audit events that say which pod or node holds which address; the function
# keeps what they say in a DynamoDB table of its own and attributes NAT bytes
# to namespaces, workloads, pods and nodes (docs/attribution.md §4.2). Nothing
# here exists without the variable.

locals {
  inventory_enabled = var.eks_cluster_log_group_name != null

  # "" only when the inventory is off: no resource below is created then, and
  # the widgets that name the group are left out of the dashboard.
  eks_log_group_name          = var.eks_cluster_log_group_name == null ? "" : var.eks_cluster_log_group_name
  eks_log_group_arn           = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.eks_log_group_name}"
  eks_audit_subscription_name = "${var.name}-eks-audit"

  # Subscription filter pattern over the Kubernetes audit events (one JSON
  # object per log event, as EKS writes them): only
  #   pods create and delete (the pod itself, no subresource),
  #   pods/status patch and update (kubelet: phase, podIP, hostIP),
  #   nodes/status patch and update (kubelet: the node's addresses).
  # CloudWatch Logs user guide, "Filter pattern syntax", JSON log events:
  # selectors start at $; = compares a value node exactly (case sensitive);
  # NOT EXISTS is true only if the property is absent from the event; && binds
  # tighter than ||, parentheses group. Kubernetes omits an empty
  # objectRef.subresource (omitempty), so a plain pods create or delete has
  # none, while pods/exec, pods/attach, pods/portforward, pods/binding and
  # pods/eviction creates carry theirs and do not match. get, list and watch
  # never match: they make up most of an audit log and say nothing the
  # inventory needs. A JSON pattern names no fields, so CloudWatch attaches no
  # extractedFields to the delivered events (only space-delimited patterns
  # extract fields). tests/infra/test_tf_inventory.py evaluates it on
  # EKS-shaped events; PutSubscriptionFilter takes at most 1024 characters.
  eks_audit_filter_pattern = format("{ %s }", join(" || ", [
    "($.objectRef.resource = \"pods\" && $.objectRef.subresource NOT EXISTS && ($.verb = \"create\" || $.verb = \"delete\"))",
    "($.objectRef.resource = \"pods\" && $.objectRef.subresource = \"status\" && ($.verb = \"patch\" || $.verb = \"update\"))",
    "($.objectRef.resource = \"nodes\" && $.objectRef.subresource = \"status\" && ($.verb = \"patch\" || $.verb = \"update\"))",
  ]))

  # Contributor Insights over the source detail lines, which carry Namespace,
  # Workload, Pod and Node when the inventory is on: every workload, no cap.
  workload_rule_definition = jsonencode({
    Schema        = { Name = "CloudWatchLogRule", Version = 1 }
    LogGroupNames = [aws_cloudwatch_log_group.function.name]
    LogFormat     = "JSON"
    Contribution = {
      Keys    = ["$.Namespace", "$.Workload"]
      ValueOf = "$.NatBytes"
      Filters = [{ Match = "$.natmeter", In = ["source"] }]
    }
    AggregateOn = "Sum"
  })
}

# The inventory: items keyed by pk/sk (the function's schema), each with a TTL
# of inventory_retention_hours in expires_at. On demand: its traffic follows
# the cluster's pod churn, a few writes per pod start and stop. Without
# deletion protection, like everything in this module: it holds a window of
# inventory_retention_hours that the audit log rebuilds as pods change, and a
# destroy of the module must not stop at it.
resource "aws_dynamodb_table" "inventory" {
  count = local.inventory_enabled ? 1 : 0

  name         = "${var.name}-inventory"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  # DynamoDB encrypts every table at rest; enabled means "with a KMS key":
  # var.kms_key_arn when given, otherwise the AWS owned key (no KMS charges).
  server_side_encryption {
    enabled     = var.kms_key_arn != null
    kms_key_arn = var.kms_key_arn
  }

  deletion_protection_enabled = false

  tags = var.tags
  #checkov:skip=CKV_AWS_119:Encrypted with var.kms_key_arn when the caller gives one; otherwise with DynamoDB's AWS owned key, like every table (encryption at rest cannot be turned off). A CMK needs a key policy for DynamoDB that only the key's owner can grant.
}

resource "aws_lambda_permission" "eks_audit" {
  count = local.inventory_enabled ? 1 : 0

  statement_id   = "AllowCloudWatchLogsEksAudit"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this.function_name
  principal      = "logs.amazonaws.com"
  source_arn     = "${local.eks_log_group_arn}:*"
  source_account = local.account_id
}

# The second subscription filter of the module, on the cluster's log group. A
# log group takes at most two: when it has two already (log forwarders often
# use one), PutSubscriptionFilter fails with LimitExceededException (README,
# "Two subscription filters per log group").
resource "aws_cloudwatch_log_subscription_filter" "eks_audit" {
  count = local.inventory_enabled ? 1 : 0

  name            = local.eks_audit_subscription_name
  log_group_name  = var.eks_cluster_log_group_name
  filter_pattern  = local.eks_audit_filter_pattern
  destination_arn = aws_lambda_function.this.arn

  depends_on = [aws_lambda_permission.eks_audit]
}

# Its own terraform_data, so that turning the inventory on or off never
# replaces the two source rules (main.tf) and their history.
resource "terraform_data" "workload_rule_definition" {
  count = local.inventory_enabled ? 1 : 0

  input = local.workload_rule_definition
}

resource "aws_cloudwatch_contributor_insight_rule" "top_workloads" {
  count = local.inventory_enabled ? 1 : 0

  rule_name       = "${var.name}-top-workloads"
  rule_state      = "ENABLED"
  rule_definition = local.workload_rule_definition
  tags            = var.tags

  lifecycle {
    replace_triggered_by = [terraform_data.workload_rule_definition[count.index]]
  }
}
