# Least-privilege roles: the function may write its own log group, publish
# metrics into its own namespace only, send failed events to its own queue and,
# with the EKS inventory, read and write its own table; on the S3 path, read
# the flow-log objects (AWSLogs/ only), read and write its results (results
# prefix only), consume its object queue and use its objects table; the
# optional flow log role may write the dedicated NAT flow log group only (S3
# delivery needs no role: the bucket policy in s3.tf lets the log delivery
# service write).

data "aws_iam_policy_document" "function_assume" {
  statement {
    sid     = "LambdaAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  name               = "${var.name}-function"
  description        = "natmeter function ${var.name}: own log group, own metric namespace, own failed-event queue"
  assume_role_policy = data.aws_iam_policy_document.function_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "function" {
  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }

  # PutMetricData has no resource-level permissions; the namespace condition is
  # how it is scoped: this instance's namespace only. Not needed when metrics go
  # out as EMF log lines only; the EMF copy of sink = "both" needs no IAM
  # either (CloudWatch Logs extracts it from the log lines the function writes).
  dynamic "statement" {
    for_each = var.sink == "emf" ? [] : [local.metric_namespace]

    content {
      sid       = "OwnMetricNamespace"
      actions   = ["cloudwatch:PutMetricData"]
      resources = ["*"]

      condition {
        test     = "StringEquals"
        variable = "cloudwatch:namespace"
        values   = [statement.value]
      }
    }
  }

  statement {
    sid       = "OwnFailedEventQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failed_events.arn]
  }

  # With discover_nat_gateways (docs/topology.md §2): the function describes
  # the NAT gateways and subnets itself. Neither action supports resource-level
  # permissions or condition keys (the Service Authorization Reference lists no
  # resource type for them), so the resource is "*"; both are read-only.
  dynamic "statement" {
    for_each = var.discover_nat_gateways ? [1] : []

    content {
      sid       = "DescribeNatTopology"
      actions   = ["ec2:DescribeNatGateways", "ec2:DescribeSubnets"]
      resources = ["*"]
    }
  }

  # With eks_cluster_log_group_name: the items of its own inventory table
  # (inventory.tf), written as audit events arrive and read back on a cold
  # start. No other table, no index, no stream.
  dynamic "statement" {
    for_each = aws_dynamodb_table.inventory[*].arn

    content {
      sid       = "OwnInventoryTable"
      actions   = ["dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:Scan"]
      resources = [statement.value]
    }
  }

  # The S3 path (s3.tf). Flow-log objects: read only, and only under AWSLogs/,
  # where the flow logs write (never the whole bucket). Results: read and
  # written under results_prefix only. No s3:ListBucket: the function reads
  # the keys the notifications name.
  dynamic "statement" {
    for_each = local.s3_enabled ? [local.flow_log_bucket_arn] : []

    content {
      sid       = "FlowLogObjects"
      actions   = ["s3:GetObject"]
      resources = ["${statement.value}/${local.flow_log_key_prefix}*"]
    }
  }

  dynamic "statement" {
    for_each = local.s3_enabled ? [local.flow_log_bucket_arn] : []

    content {
      sid       = "OwnResults"
      actions   = ["s3:GetObject", "s3:PutObject"]
      resources = ["${statement.value}/${var.results_prefix}*"]
    }
  }

  # What the SQS event source mapping does with the function's role (Lambda
  # developer guide, "Using Lambda with Amazon SQS": execution role
  # permissions).
  dynamic "statement" {
    for_each = aws_sqs_queue.flow_log_objects[*].arn

    content {
      sid       = "OwnFlowLogObjectQueue"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
      resources = [statement.value]
    }
  }

  # Which objects were metered already: the inventory table when there is
  # one, otherwise the objects table (s3.tf).
  dynamic "statement" {
    for_each = local.s3_enabled ? [local.objects_table_arn] : []

    content {
      sid       = "OwnObjectsTable"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      resources = [statement.value]
    }
  }

  # With a customer managed key: decrypt the environment, encrypt messages for
  # the queue; on the S3 path also read SSE-KMS objects and queue messages and
  # write SSE-KMS results.
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "CustomerManagedKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "function" {
  name   = "natmeter"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}

# ---------------------------------------------------------------------------
# Role of the optional dedicated NAT flow logs
# ---------------------------------------------------------------------------

data "aws_iam_policy_document" "flow_logs_assume" {
  count = local.nat_flow_logs_to_cloudwatch ? 1 : 0

  statement {
    sid     = "VpcFlowLogsAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    # Confused-deputy protection recommended by the VPC flow logs guide.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:vpc-flow-log/*"]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  count = local.nat_flow_logs_to_cloudwatch ? 1 : 0

  name               = "${var.name}-nat-flow-logs"
  description        = "VPC flow logs of the NAT gateway ENIs metered by natmeter ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume[0].json
  tags               = var.tags
}

data "aws_iam_policy_document" "flow_logs" {
  count = local.nat_flow_logs_to_cloudwatch ? 1 : 0

  statement {
    sid       = "NatFlowLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.nat_flow_logs[0].arn}:*"]
  }

  statement {
    sid       = "DescribeLogGroups"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  count = local.nat_flow_logs_to_cloudwatch ? 1 : 0

  name   = "nat-flow-logs"
  role   = aws_iam_role.flow_logs[0].id
  policy = data.aws_iam_policy_document.flow_logs[0].json
}
