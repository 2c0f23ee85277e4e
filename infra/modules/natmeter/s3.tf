# The S3 delivery path (flow_log_destination = "s3"): flow logs written to a
# bucket as 5-minute objects, each new object notified to an SQS queue, the
# queue drained by the function through an event source mapping; the function
# keeps what CloudWatch would refuse (records older than 14 days) as results
# objects under results_prefix and remembers the objects it metered in a
# DynamoDB table (S3 notifications are at least once). Nothing here exists on the CloudWatch Logs path. The bucket's
# own configuration (public access block, ownership, encryption, lifecycle,
# delivery policy) exists only for the bucket the module creates: an existing
# bucket (flow_log_bucket_name) keeps its owner's configuration.

locals {
  s3_enabled             = var.flow_log_destination == "s3"
  create_flow_log_bucket = local.s3_enabled && var.flow_log_bucket_name == null

  # Null on the CloudWatch Logs path.
  flow_log_bucket_name = local.s3_enabled ? (local.create_flow_log_bucket ? aws_s3_bucket.flow_logs[0].bucket : var.flow_log_bucket_name) : null
  flow_log_bucket_arn  = local.s3_enabled ? (local.create_flow_log_bucket ? aws_s3_bucket.flow_logs[0].arn : "arn:${local.partition}:s3:::${var.flow_log_bucket_name}") : null

  # Where flow logs write in a bucket, with either prefix style (VPC user
  # guide, "Flow log files"): AWSLogs/<account>/vpcflowlogs/... or, Hive
  # compatible, AWSLogs/aws-account-id=<account>/aws-service=vpcflowlogs/....
  # The notification, the function's read permission and the lifecycle rule
  # all use this prefix, so flow logs must be delivered to the bucket's root
  # (no subfolder in the destination ARN).
  flow_log_key_prefix = "AWSLogs/"

  # Lambda developer guide, "Using Lambda with Amazon SQS": a visibility
  # timeout of at least six times the function's timeout, plus the batching
  # window, leaves room for Lambda's retries of a throttled batch before the
  # messages become visible again. At most 5,700 s here (timeout <= 900,
  # window <= 300), within SQS's 43,200.
  flow_log_queue_visibility_timeout = 6 * var.timeout + var.sqs_batching_window_seconds

  # A message received this often without being deleted (the function failed
  # on the object, or reported it in batchItemFailures) goes to the dead-letter
  # queue; Lambda's guide recommends at least 5, so that a throttled batch is
  # not dead-lettered.
  flow_log_queue_max_receive_count = 5

  # Known at plan time, for the alarms and the dashboard on either path.
  flow_log_queue_name = "${var.name}-flow-log-objects"
  flow_log_dlq_name   = "${var.name}-flow-log-objects-dlq"

  # The same table schema as the inventory's (pk, sk, TTL expires_at): the
  # inventory table when there is one, otherwise a table of its own.
  objects_table_name = local.inventory_enabled ? aws_dynamodb_table.inventory[0].name : one(aws_dynamodb_table.objects[*].name)
  objects_table_arn  = local.inventory_enabled ? aws_dynamodb_table.inventory[0].arn : one(aws_dynamodb_table.objects[*].arn)
}

# ---------------------------------------------------------------------------
# The bucket (unless flow_log_bucket_name names an existing one)
# ---------------------------------------------------------------------------

# A generated name (bucket_prefix, at most 37 characters, plus a unique
# suffix): bucket names are global, and a name derived only from var.name and
# the account could be taken by anyone first. var.name may hold upper-case
# letters and underscores, which bucket names may not.
#
# force_destroy stays false: unlike the inventory, which the audit log
# rebuilds, raw flow logs and results are data; a destroy stops at a bucket
# that still holds objects (README, "Delivering flow logs to S3").
resource "aws_s3_bucket" "flow_logs" {
  count = local.create_flow_log_bucket ? 1 : 0

  bucket_prefix = "natmeter-${substr(lower(replace(var.name, "_", "-")), 0, 27)}-"
  tags          = var.tags
  #checkov:skip=CKV_AWS_21:Versioning is off on purpose: flow-log objects are written once by the log delivery service under unique keys, results are derived from them and can be rebuilt while the flow logs are kept, and with versioning every lifecycle expiration would leave a noncurrent copy that is billed until a second rule removes it.
  #checkov:skip=CKV_AWS_18:Server access logging needs a second bucket the module would have to own; access to this one is limited by its policy (log delivery writes, TLS only) and the function's role, and CloudTrail data events record object access if the account enables them.
  #checkov:skip=CKV_AWS_144:Cross-region replication would double the storage of raw flow logs that natmeter has already turned into metrics and results; the Region holding the VPC is where they are read.
  #checkov:skip=CKV_AWS_145:Encrypted with var.kms_key_arn (SSE-KMS) when the caller gives one, otherwise SSE-S3. A CMK needs a key policy for delivery.logs.amazonaws.com that only the key's owner can grant.
}

resource "aws_s3_bucket_public_access_block" "flow_logs" {
  count = local.create_flow_log_bucket ? 1 : 0

  bucket                  = aws_s3_bucket.flow_logs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# ACLs off: the log delivery service writes with the canned ACL
# bucket-owner-full-control (the bucket policy requires it), which S3 accepts
# under BucketOwnerEnforced, and every object belongs to the bucket's owner.
resource "aws_s3_bucket_ownership_controls" "flow_logs" {
  count = local.create_flow_log_bucket ? 1 : 0

  bucket = aws_s3_bucket.flow_logs[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# SSE-S3 by default; SSE-KMS with the module's key when given, with an S3
# Bucket Key so that 5-minute objects and their reads do not each call KMS.
resource "aws_s3_bucket_server_side_encryption_configuration" "flow_logs" {
  count = local.create_flow_log_bucket ? 1 : 0

  bucket = aws_s3_bucket.flow_logs[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

# Flow logs and results expire separately: raw flow logs are large and have
# been metered within minutes; results are small and worth keeping for
# comparisons. Incomplete multipart uploads are removed after a day.
resource "aws_s3_bucket_lifecycle_configuration" "flow_logs" {
  count = local.create_flow_log_bucket ? 1 : 0

  bucket = aws_s3_bucket.flow_logs[0].id

  rule {
    id     = "flow-logs"
    status = "Enabled"

    filter {
      prefix = local.flow_log_key_prefix
    }

    expiration {
      days = var.flow_log_retention_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  rule {
    id     = "results"
    status = "Enabled"

    filter {
      prefix = var.results_prefix
    }

    expiration {
      days = var.results_retention_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# The policy of the VPC user guide, "Amazon S3 bucket permissions for flow
# logs": the log delivery service may put objects with the canned ACL
# bucket-owner-full-control, and read the bucket's ACL and list it (without
# ListBucket its checks show up as AccessDenied in CloudTrail), both only on
# behalf of this account's log deliveries in this Region (aws:SourceAccount,
# aws:SourceArn: the confused-deputy protection the guide recommends). Writes
# only under AWSLogs/<account>/ or its Hive-compatible form, the two prefixes
# a flow log of this account writes at the bucket's root. Every request
# without TLS is denied.
#
# The guide also says that creating a flow log attaches AWS's version of this
# policy, replacing the bucket's, when the creator owns the bucket and may put
# its policy: the flow logs (aws_flow_log.nat_s3) depend on this policy, so
# that it grants the delivery before any flow log is created.
data "aws_iam_policy_document" "flow_log_bucket" {
  count = local.create_flow_log_bucket ? 1 : 0

  statement {
    sid     = "AWSLogDeliveryWrite"
    actions = ["s3:PutObject"]
    resources = [
      "${aws_s3_bucket.flow_logs[0].arn}/${local.flow_log_key_prefix}${local.account_id}/*",
      "${aws_s3_bucket.flow_logs[0].arn}/${local.flow_log_key_prefix}aws-account-id=${local.account_id}/*",
    ]

    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-acl"
      values   = ["bucket-owner-full-control"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:*"]
    }
  }

  statement {
    sid       = "AWSLogDeliveryAclCheck"
    actions   = ["s3:GetBucketAcl", "s3:ListBucket"]
    resources = [aws_s3_bucket.flow_logs[0].arn]

    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:*"]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.flow_logs[0].arn, "${aws_s3_bucket.flow_logs[0].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "flow_logs" {
  count = local.create_flow_log_bucket ? 1 : 0

  bucket = aws_s3_bucket.flow_logs[0].id
  policy = data.aws_iam_policy_document.flow_log_bucket[0].json

  # S3 aborts concurrent configuration changes of one bucket
  # (OperationAborted): the public access block first, then the policy.
  depends_on = [aws_s3_bucket_public_access_block.flow_logs]
}

# ---------------------------------------------------------------------------
# Dedicated NAT flow logs into the bucket (create_nat_flow_logs = true)
# ---------------------------------------------------------------------------

# Keyed by local.nat_keys like aws_flow_log.nat, with the same format and
# aggregation. S3 delivery needs no IAM role (the bucket policy above lets the
# log delivery service write); objects are partitioned per hour.
resource "aws_flow_log" "nat_s3" {
  for_each = var.create_nat_flow_logs && local.s3_enabled ? local.nat_index : {}

  eni_id                   = data.aws_nat_gateway.this[each.value].network_interface_id
  traffic_type             = "ALL"
  log_destination_type     = "s3"
  log_destination          = local.flow_log_bucket_arn
  log_format               = local.nat_flow_log_format
  max_aggregation_interval = 60
  tags                     = merge(var.tags, { Name = "${var.name}-${var.nat_gateway_ids[each.value]}" })

  destination_options {
    file_format                = var.flow_log_file_format
    hive_compatible_partitions = var.flow_log_hive_compatible_partitions
    per_hour_partition         = true
  }

  depends_on = [aws_s3_bucket_policy.flow_logs]
}

# ---------------------------------------------------------------------------
# S3 -> SQS -> the function
# ---------------------------------------------------------------------------

# Objects the function failed on flow_log_queue_max_receive_count times, kept
# 14 days (the maximum) for inspection and redrive. SQS keeps a message's
# original enqueue time when it moves it here, so this queue keeps messages
# longer than the source queue.
resource "aws_sqs_queue" "flow_log_objects_dlq" {
  count = local.s3_enabled ? 1 : 0

  name                              = local.flow_log_dlq_name
  message_retention_seconds         = 1209600
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 300
  tags                              = var.tags
}

# One message per new flow-log object. Encrypted: SSE-SQS by default (S3 can
# send to it without KMS permissions); with kms_key_arn the key policy must
# let s3.amazonaws.com use the key (kms:GenerateDataKey, kms:Decrypt).
resource "aws_sqs_queue" "flow_log_objects" {
  count = local.s3_enabled ? 1 : 0

  name                              = local.flow_log_queue_name
  visibility_timeout_seconds        = local.flow_log_queue_visibility_timeout
  message_retention_seconds         = 345600 # 4 days: the dead-letter queue keeps longer
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 300
  tags                              = var.tags

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.flow_log_objects_dlq[0].arn
    maxReceiveCount     = local.flow_log_queue_max_receive_count
  })
}

# S3 may send to the queue only for this bucket of this account (S3 user
# guide, "Granting permissions to publish event notification messages to a
# destination": aws:SourceArn and aws:SourceAccount).
data "aws_iam_policy_document" "flow_log_queue" {
  count = local.s3_enabled ? 1 : 0

  statement {
    sid       = "S3FlowLogObjectCreated"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.flow_log_objects[0].arn]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.flow_log_bucket_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sqs_queue_policy" "flow_log_objects" {
  count = local.s3_enabled ? 1 : 0

  queue_url = aws_sqs_queue.flow_log_objects[0].url
  policy    = data.aws_iam_policy_document.flow_log_queue[0].json
}

# Every object created under AWSLogs/, .log.gz (plain-text) and .log.parquet
# alike: a rule takes a single suffix, and flow logs write nothing else under
# AWSLogs/, so the prefix is the whole filter (the function skips an object it
# cannot read). The results are outside AWSLogs/ (results_prefix may not be
# under it): they never trigger the function. S3 sends a test message when the
# configuration is saved, so the queue policy comes first. S3 keeps one
# notification configuration per bucket, which this resource replaces whole:
# create_flow_log_bucket_notification = false leaves an existing bucket's
# configuration to its owner.
resource "aws_s3_bucket_notification" "flow_logs" {
  count = local.s3_enabled && var.create_flow_log_bucket_notification ? 1 : 0

  bucket = local.create_flow_log_bucket ? aws_s3_bucket.flow_logs[0].id : var.flow_log_bucket_name

  queue {
    id            = local.flow_log_queue_name
    queue_arn     = aws_sqs_queue.flow_log_objects[0].arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = local.flow_log_key_prefix
  }

  depends_on = [aws_sqs_queue_policy.flow_log_objects]
}

# Lambda polls the queue and invokes the function synchronously with up to
# sqs_batch_size messages. ReportBatchItemFailures: the function names the
# messages (objects) it failed on, and only those become visible again and are
# retried; the rest are deleted. The role needs the queue permissions before
# the mapping can be created.
resource "aws_lambda_event_source_mapping" "flow_log_objects" {
  count = local.s3_enabled ? 1 : 0

  event_source_arn                   = aws_sqs_queue.flow_log_objects[0].arn
  function_name                      = aws_lambda_function.this.arn
  batch_size                         = var.sqs_batch_size
  maximum_batching_window_in_seconds = var.sqs_batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]
  enabled                            = true
  tags                               = var.tags

  depends_on = [aws_iam_role_policy.function]

  lifecycle {
    precondition {
      # CreateEventSourceMapping: "When you set BatchSize to a value greater
      # than 10, you must set MaximumBatchingWindowInSeconds to at least 1."
      condition     = var.sqs_batch_size <= 10 || var.sqs_batching_window_seconds >= 1
      error_message = "With sqs_batch_size above 10, Lambda requires sqs_batching_window_seconds of at least 1."
    }
  }
}

# ---------------------------------------------------------------------------
# Which objects were metered (without the inventory table)
# ---------------------------------------------------------------------------

# The same schema, TTL, recovery and encryption as the inventory table
# (inventory.tf), whose table is used instead when the inventory is on. Small
# and on demand: a few items per flow-log object.
resource "aws_dynamodb_table" "objects" {
  count = local.s3_enabled && !local.inventory_enabled ? 1 : 0

  name         = "${var.name}-objects"
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
