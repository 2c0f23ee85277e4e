# natmeter on NAT gateways that already exist, without a VPC-wide flow log:
# the module creates one flow log per NAT gateway ENI (its recommended format,
# 60-second aggregation) and encrypts everything with a customer managed key.
# With flow_log_destination = "s3" the flow logs go to the module's bucket
# instead, and the key policy also lets the log delivery service and S3 use
# the key.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

# The key policy: the account administers the key through IAM; CloudWatch Logs
# encrypts the log groups; CloudWatch alarms publish to the encrypted topic.
data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_111:This is a KMS key policy: Resource "*" means this key only, and the account-root statement is AWS's default key policy, which hands authorization to IAM.
  #checkov:skip=CKV_AWS_356:This is a KMS key policy: Resource "*" means this key only; key policies cannot name the key's own ARN before it exists.
  #checkov:skip=CKV_AWS_109:This is a KMS key policy: kms:* for the account root is AWS's default key policy (IAM decides who in the account may manage the key).
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncrypts"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:*"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }

  # S3 path: flow logs write SSE-KMS objects into the bucket (VPC user guide,
  # SSE-KMS for flow logs), and S3 sends notifications to the encrypted queue
  # (SQS developer guide, KMS permissions for AWS services). Both for this
  # account's resources only.
  dynamic "statement" {
    for_each = var.flow_log_destination == "s3" ? [1] : []

    content {
      sid       = "FlowLogDeliveryEncrypts"
      actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["delivery.logs.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [data.aws_caller_identity.current.account_id]
      }
    }
  }

  dynamic "statement" {
    for_each = var.flow_log_destination == "s3" ? [1] : []

    content {
      sid       = "S3NotifiesEncryptedQueue"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["s3.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [data.aws_caller_identity.current.account_id]
      }
    }
  }
}

resource "aws_kms_key" "natmeter" {
  description             = "natmeter ${var.name}: log groups, failed-event queue, alarm topic, function environment"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
}

module "natmeter" {
  source = "../../modules/natmeter"

  name       = var.name
  lambda_zip = "${path.root}/../../../target/lambda/bootstrap/bootstrap.zip"

  create_nat_flow_logs = true
  flow_log_destination = var.flow_log_destination
  nat_gateway_ids      = var.nat_gateway_ids
  kms_key_arn          = aws_kms_key.natmeter.arn

  daily_cost_alarm_usd = var.daily_cost_alarm_usd
  alarm_emails         = var.alarm_emails
}
