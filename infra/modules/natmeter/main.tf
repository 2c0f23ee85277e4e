# natmeter: the function, where its input comes from (subscription filter on the
# flow log group, optionally dedicated NAT flow logs), where failed events go
# (an encrypted SQS on-failure destination), and the Contributor Insights rules
# over its source detail lines. IAM is in iam.tf, the dashboard in dashboard.tf,
# the alarms in alarms.tf, the optional EKS workload inventory in inventory.tf,
# the S3 delivery path (flow_log_destination = "s3") in s3.tf.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

# The data sources are indexed by position (count): they are read again on
# every plan and hold no state worth keeping, so a reordered nat_gateway_ids
# changes nothing real. Everything with state (the dedicated flow logs, the
# per-gateway alarms) is keyed by local.nat_keys instead.
#
# With discover_nat_gateways the function describes the gateways itself
# (docs/topology.md §2): nothing about them is read at plan time (a regional
# gateway has no subnet, and its ENIs change), and the Region comes from the VPC.
data "aws_nat_gateway" "this" {
  count = var.discover_nat_gateways ? 0 : length(var.nat_gateway_ids)
  id    = var.nat_gateway_ids[count.index]
}

data "aws_subnet" "nat" {
  count = var.discover_nat_gateways ? 0 : length(var.nat_gateway_ids)
  id    = data.aws_nat_gateway.this[count.index].subnet_id
}

data "aws_vpc" "this" {
  count = var.vpc_id == null ? 0 : 1
  id    = var.vpc_id
}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id
  # The Region, from the ARN of the first NAT gateway's subnet
  # (arn:PARTITION:ec2:REGION:ACCOUNT:subnet/ID). data.aws_region.current.name
  # is deprecated in provider 6, its replacement .region does not exist in
  # 5.x, and .id is on its way to deprecation as well: an ARN reads the same in
  # every provider version. Known at plan time whenever the gateway IDs are.
  # With discover_nat_gateways, the VPC's ARN (arn:PARTITION:ec2:REGION:ACCOUNT:vpc/ID).
  region = split(":", var.discover_nat_gateways ? one(data.aws_vpc.this[*].arn) : data.aws_subnet.nat[0].arn)[3]

  # Keys of the per-gateway resources: nat_gateway_keys, or the gateway IDs.
  # Keys must be known at plan time (for_each); the values they lead to (IDs,
  # ENIs) need not be.
  nat_keys  = var.nat_gateway_keys == null ? var.nat_gateway_ids : var.nat_gateway_keys
  nat_index = { for i, k in local.nat_keys : k => i if i < length(var.nat_gateway_ids) }

  # Metric identity of this instance: its own namespace, so that two instances
  # in one account (two VPCs, two flow log groups) never sum each other's
  # traffic in a total, a widget or an alarm.
  metric_namespace = var.metric_namespace == null ? "NatMeter/${var.name}" : var.metric_namespace
  # With sink = "both" the EMF copy needs a namespace of its own: CloudWatch
  # Logs turns EMF lines into metrics too, so both sinks in one namespace would
  # count every datum twice (the function refuses that configuration).
  emf_namespace = var.sink == "both" ? "${local.metric_namespace}/emf" : null

  # Cross-AZ pricing (NATMETER_SUBNETS, NatCrossAz* metrics and widgets): with
  # discover_nat_gateways the function describes the subnets itself.
  cross_az_enabled = length(var.subnets) > 0 || var.discover_nat_gateways

  alarm_prefix = var.alarm_name_prefix == null ? "${var.name}-" : var.alarm_name_prefix

  # Format of the dedicated NAT flow logs (create_nat_flow_logs): the 14 default
  # fields in their default order, then what attribution needs: pkt-* for the
  # pod behind the NAT (docs/attribution.md §2-§4), pkt-*-aws-service for the
  # destination, and vpc/subnet/AZ, flow-direction, traffic-path for context.
  nat_flow_log_format = join(" ", [for f in [
    "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
    "protocol", "packets", "bytes", "start", "end", "action", "log-status",
    "vpc-id", "subnet-id", "az-id", "flow-direction", "traffic-path",
    "pkt-srcaddr", "pkt-dstaddr", "pkt-src-aws-service", "pkt-dst-aws-service",
  ] : format("$${%s}", f)])

  log_format = var.create_nat_flow_logs ? local.nat_flow_log_format : var.flow_log_format

  # The dedicated NAT flow logs go to their own log group on the CloudWatch
  # Logs path, to the bucket on the S3 path (s3.tf).
  nat_flow_logs_to_cloudwatch = var.create_nat_flow_logs && !local.s3_enabled

  # "" only when flow_log_group_name is missing (the precondition of the
  # subscription filter then stops the plan with a message that says so) and
  # on the S3 path, which has no log group and no subscription filter.
  source_log_group_name = local.s3_enabled ? "" : (var.create_nat_flow_logs ? aws_cloudwatch_log_group.nat_flow_logs[0].name : (var.flow_log_group_name == null ? "" : var.flow_log_group_name))
  source_log_group_arn  = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.source_log_group_name}"

  # NATMETER_NAT_GATEWAYS: one object per gateway, every private IP included
  # (a NAT gateway may have secondary private IPs; each is a NAT IP). A private
  # gateway's far side is private too, which changes how its records are read
  # without pkt-* fields (docs/attribution.md §3).
  nat_gateways = [for i, ng in data.aws_nat_gateway.this : {
    id                = ng.id
    eni               = ng.network_interface_id
    private_ips       = try(concat([ng.private_ip], ng.secondary_private_ip_addresses), [ng.private_ip])
    az_id             = data.aws_subnet.nat[i].availability_zone_id
    connectivity_type = try(ng.connectivity_type, "public")
  }]

  function_environment = merge(
    {
      NATMETER_LOG_FORMAT       = local.log_format
      NATMETER_PRIVATE_CIDRS    = join(",", var.private_cidrs)
      NATMETER_NAMESPACE        = local.metric_namespace
      NATMETER_SINK             = var.sink
      NATMETER_MAX_SOURCES      = tostring(var.max_sources)
      NATMETER_MIN_SOURCE_SHARE = tostring(var.min_source_share)
    },
    # The gateways: frozen at plan time, or described by the function itself.
    var.discover_nat_gateways ? {
      NATMETER_NAT_GATEWAY_IDS = join(",", var.nat_gateway_ids)
      NATMETER_VPC_IDS         = var.vpc_id == null ? "" : var.vpc_id
      } : {
      NATMETER_NAT_GATEWAYS = jsonencode(local.nat_gateways)
    },
    local.emf_namespace == null ? {} : { NATMETER_EMF_NAMESPACE = local.emf_namespace },
    # Unset means: the function's default ranges URL.
    var.ip_ranges_url == null ? {} : { NATMETER_IP_RANGES_URL = var.ip_ranges_url },
    var.remote_prefixes ? { NATMETER_REMOTE_PREFIXES = "on" } : {},
    # Unset means: the built-in price table, by AWS_REGION.
    var.price_per_gb == null ? {} : { NATMETER_PRICE_PER_GB = tostring(var.price_per_gb) },
    # The workload inventory (inventory.tf): set only with eks_cluster_log_group_name.
    local.inventory_enabled ? {
      NATMETER_INVENTORY_TABLE           = aws_dynamodb_table.inventory[0].name
      NATMETER_INVENTORY_RETENTION_HOURS = tostring(var.inventory_retention_hours)
    } : {},
    # Cross-AZ pricing (var.subnets): set only when subnets are given. The
    # gateways' az_id (NATMETER_NAT_GATEWAYS) comes from their subnets above.
    length(var.subnets) > 0 ? { NATMETER_SUBNETS = jsonencode(var.subnets) } : {},
    # The S3 path (s3.tf): where records too old for CloudWatch are kept as
    # results objects, and the table that remembers which objects were
    # metered (S3 notifications are at least once).
    local.s3_enabled ? {
      NATMETER_RESULTS_BUCKET = local.flow_log_bucket_name
      NATMETER_RESULTS_PREFIX = var.results_prefix
      NATMETER_OBJECTS_TABLE  = local.objects_table_name
    } : {},
  )

  # Subscription filter pattern: pass only the records of the NAT gateway ENIs.
  # A term OR, ?"eni-a" ?"eni-b" (CloudWatch Logs user guide, "Filter pattern
  # syntax": a question mark before each term matches events that contain any
  # of them; terms with characters other than letters and digits go in double
  # quotes). Unlike a space-delimited pattern ([version, account_id, ...]) a
  # term pattern extracts no fields, so CloudWatch attaches no extractedFields
  # to the events it delivers (about 2.9x the payload with a 19-field format).
  # Terms match anywhere in the line; an ENI ID appears only in the
  # interface-id field of a flow record.
  #
  # Each ENI costs 24 characters (?"eni-" + 17 hex digits + ") plus a space:
  # 41 ENIs make exactly 1,024 characters, PutSubscriptionFilter's limit. The
  # module accepts at most 20 gateways (one ENI each), so the pattern always
  # fits; beyond the limit, and for a format without interface-id (no ENI in
  # the records), it falls back to "" (every record): the function still skips
  # other ENIs' batches by their log stream name, at the price of being invoked
  # for them. The dedicated NAT flow log group holds NAT ENIs only: "".
  log_format_fields      = [for m in regexall("[$][{]([a-z0-9-]+)[}]", local.log_format) : m[0]]
  nat_enis               = [for ng in data.aws_nat_gateway.this : ng.network_interface_id]
  nat_eni_filter_pattern = join(" ", [for eni in local.nat_enis : format("?\"%s\"", eni)])
  filter_pattern_fits    = contains(local.log_format_fields, "interface-id") && length(local.nat_eni_filter_pattern) <= 1024
  # With discover_nat_gateways the ENIs are not known at plan time (a regional
  # gateway gains one per AZ it expands into): every record, "".
  filter_pattern = (var.create_nat_flow_logs || var.discover_nat_gateways) ? "" : (local.filter_pattern_fits ? local.nat_eni_filter_pattern : "")

  function_log_group_name = "/aws/lambda/${var.name}"
  subscription_name       = "${var.name}-nat-enis"
}

# ---------------------------------------------------------------------------
# The function
# ---------------------------------------------------------------------------

# /aws/lambda/<name>. If it already exists (the function ran before, outside
# Terraform or before a destroy that Lambda outlived by writing to it again),
# CreateLogGroup fails with ResourceAlreadyExistsException: import it (README,
# "An existing log group").
resource "aws_cloudwatch_log_group" "function" {
  name              = local.function_log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
  #checkov:skip=CKV_AWS_158:Encrypted with var.kms_key_arn when the caller gives one; otherwise CloudWatch Logs' own encryption at rest applies. A CMK needs a key policy for logs.<region>.amazonaws.com that only the key's owner can grant.
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days (default 30): these are operational logs and per-source detail lines billed per GB-month; a one-year floor is the caller's policy to set.
}

resource "aws_lambda_function" "this" {
  function_name    = var.name
  description      = "natmeter: attributes NAT gateway bytes in VPC flow logs to source IPs and publishes NAT cost metrics"
  role             = aws_iam_role.function.arn
  filename         = var.lambda_zip
  source_code_hash = filebase64sha256(var.lambda_zip)
  handler          = "bootstrap"
  runtime          = "provided.al2023"
  architectures    = [var.architecture]
  memory_size      = var.memory_size
  timeout          = var.timeout
  kms_key_arn      = var.kms_key_arn

  reserved_concurrent_executions = var.reserved_concurrent_executions

  environment {
    variables = local.function_environment
  }

  # Text: stdout lines reach the log group unchanged, so the source detail lines
  # stay plain JSON objects for Contributor Insights and Logs Insights.
  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function.name
  }

  tracing_config {
    mode = "PassThrough"
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.function]

  lifecycle {
    precondition {
      # Lambda rejects more than 4 KB of environment variables (keys and values);
      # the JSON encoding slightly overestimates them.
      condition     = length(jsonencode(local.function_environment)) <= 4096
      error_message = "The function's environment (flow log format, NAT gateways with their private IPs, and subnets) exceeds Lambda's 4 KB limit: list fewer subnets (only those whose traffic reaches the NAT gateways, or wider CIDRs per AZ), or meter fewer NAT gateways per module instance."
    }

    precondition {
      condition     = !var.discover_nat_gateways || (var.vpc_id != null && !var.create_nat_flow_logs)
      error_message = "With discover_nat_gateways, set vpc_id (the VPC of the NAT gateways) and leave create_nat_flow_logs false (its flow logs are created per ENI, which discovery does not know at plan time: meter a VPC flow log through flow_log_group_name)."
    }

    precondition {
      condition     = var.nat_gateway_keys == null || try(length(var.nat_gateway_keys) == length(var.nat_gateway_ids), false)
      error_message = "Variable nat_gateway_keys must hold exactly one key per entry of nat_gateway_ids, in the same order."
    }

    # The S3 path reads objects, not a log group; S3-only inputs on the
    # CloudWatch Logs path are a mistake, not something to ignore quietly.
    precondition {
      condition     = var.flow_log_destination == "cloudwatch" || var.flow_log_group_name == null
      error_message = "With flow_log_destination = \"s3\" the function reads flow-log objects from the bucket, not a log group: leave flow_log_group_name null (create_nat_flow_logs = true delivers dedicated NAT flow logs to the bucket; otherwise point your own flow log at the bucket, output flow_log_bucket_arn)."
    }

    precondition {
      condition     = var.flow_log_destination == "s3" || var.flow_log_bucket_name == null
      error_message = "Variable flow_log_bucket_name is used only with flow_log_destination = \"s3\": set flow_log_destination = \"s3\" to meter the flow logs delivered to that bucket, or leave flow_log_bucket_name null."
    }

    precondition {
      condition     = var.create_flow_log_bucket_notification || var.flow_log_bucket_name != null
      error_message = "Variable create_flow_log_bucket_notification = false is for an existing bucket whose notification configuration you manage (flow_log_bucket_name): the bucket the module creates always notifies the module's queue."
    }
  }

  #checkov:skip=CKV_AWS_116:Failed asynchronous events go to the SQS on-failure destination of aws_lambda_function_event_invoke_config.this, which keeps the event together with the error; a dead-letter queue as well would hold a second copy.
  #checkov:skip=CKV_AWS_117:The function calls only CloudWatch APIs. Inside a VPC it would need a NAT gateway or interface endpoints for them: metering NAT traffic must not create NAT traffic.
  #checkov:skip=CKV_AWS_115:Concurrency is var.reserved_concurrent_executions (default unreserved): reserving by default fails in accounts with a small concurrency quota (new accounts have 10). Throttled asynchronous events wait in Lambda's event queue for up to maximum_event_age_seconds, then go to the failed-event queue.
  #checkov:skip=CKV_AWS_173:The environment holds no secrets (flow log format, NAT IDs, CIDRs, namespace). It is encrypted with var.kms_key_arn when given, otherwise with Lambda's AWS-owned key.
  #checkov:skip=CKV_AWS_272:The package is built from this repository by `make package` and deployed by path; AWS Signer code signing would need a signing profile and a signed S3 object the module does not own.
}

# Asynchronous invocations (CloudWatch Logs invokes asynchronously). Lambda
# keeps the event in its own queue: a function error is retried twice (about 1
# and 2 minutes later); a throttle or a Lambda system error is retried with
# backoff until the event is maximum_event_age_seconds old. Then the event and
# the error go to the queue below, from which they can be replayed.
resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = var.maximum_event_age_seconds

  destination_config {
    on_failure {
      destination = aws_sqs_queue.failed_events.arn
    }
  }

  depends_on = [aws_iam_role_policy.function]
}

resource "aws_sqs_queue" "failed_events" {
  name                              = "${var.name}-failed-events"
  message_retention_seconds         = 1209600 # 14 days, the maximum: time to notice, fix and replay
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 300
  tags                              = var.tags
}

# ---------------------------------------------------------------------------
# Input: flow log records of the NAT gateway ENIs
# ---------------------------------------------------------------------------

# Only on the CloudWatch Logs path (flow_log_destination = "cloudwatch"); both
# were single resources before the S3 path existed: keep them in the state.
moved {
  from = aws_lambda_permission.logs
  to   = aws_lambda_permission.logs[0]
}

moved {
  from = aws_cloudwatch_log_subscription_filter.flow_logs
  to   = aws_cloudwatch_log_subscription_filter.flow_logs[0]
}

resource "aws_lambda_permission" "logs" {
  count = local.s3_enabled ? 0 : 1

  statement_id   = "AllowCloudWatchLogsSubscription"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this.function_name
  principal      = "logs.amazonaws.com"
  source_arn     = "${local.source_log_group_arn}:*"
  source_account = local.account_id
}

# A log group takes at most two subscription filters. When the flow log group
# has two already, PutSubscriptionFilter fails with LimitExceededException:
# see the README ("Two subscription filters per log group").
resource "aws_cloudwatch_log_subscription_filter" "flow_logs" {
  count = local.s3_enabled ? 0 : 1

  name            = local.subscription_name
  log_group_name  = local.source_log_group_name
  filter_pattern  = local.filter_pattern
  destination_arn = aws_lambda_function.this.arn

  depends_on = [aws_lambda_permission.logs]

  lifecycle {
    precondition {
      condition     = var.create_nat_flow_logs != (var.flow_log_group_name != null)
      error_message = "Set exactly one input: flow_log_group_name (an existing flow log group) or create_nat_flow_logs = true (dedicated NAT flow logs), or deliver the flow logs to S3 instead (flow_log_destination = \"s3\")."
    }
  }
}

# Optional dedicated flow logs on the NAT gateway ENIs only (to the bucket
# instead on the S3 path: aws_flow_log.nat_s3 in s3.tf).
resource "aws_cloudwatch_log_group" "nat_flow_logs" {
  count = local.nat_flow_logs_to_cloudwatch ? 1 : 0

  name              = "/aws/vpc-flow-log/${var.name}-nat-gateways"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
  #checkov:skip=CKV_AWS_158:Encrypted with var.kms_key_arn when the caller gives one; otherwise CloudWatch Logs' own encryption at rest applies. A CMK needs a key policy for logs.<region>.amazonaws.com that only the key's owner can grant.
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days (default 30): raw flow records are billed per GB-month and natmeter has already turned them into metrics; a one-year floor is the caller's policy to set.
}

# Keyed by local.nat_keys, so a reordered or shortened nat_gateway_ids replaces
# only the flow logs of the gateways that really changed.
resource "aws_flow_log" "nat" {
  for_each = local.nat_flow_logs_to_cloudwatch ? local.nat_index : {}

  eni_id                   = data.aws_nat_gateway.this[each.value].network_interface_id
  traffic_type             = "ALL"
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.nat_flow_logs[0].arn
  iam_role_arn             = aws_iam_role.flow_logs[0].arn
  log_format               = local.nat_flow_log_format
  max_aggregation_interval = 60
  tags                     = merge(var.tags, { Name = "${var.name}-${var.nat_gateway_ids[each.value]}" })

  depends_on = [aws_iam_role_policy.flow_logs]
}

# ---------------------------------------------------------------------------
# Contributor Insights over the source detail lines
# ---------------------------------------------------------------------------

# The function writes one JSON object per (minute, source, NAT gateway,
# direction, destination) on stdout, discriminated by "natmeter": "source".
# Unlike SourceIp metrics these are not capped by max_sources, so the rules rank
# every source.
locals {
  insight_rule_definitions = {
    top_sources = jsonencode({
      Schema        = { Name = "CloudWatchLogRule", Version = 1 }
      LogGroupNames = [aws_cloudwatch_log_group.function.name]
      LogFormat     = "JSON"
      Contribution = {
        Keys    = ["$.SourceIp"]
        ValueOf = "$.NatBytes"
        Filters = [{ Match = "$.natmeter", In = ["source"] }]
      }
      AggregateOn = "Sum"
    })
    top_source_destinations = jsonencode({
      Schema        = { Name = "CloudWatchLogRule", Version = 1 }
      LogGroupNames = [aws_cloudwatch_log_group.function.name]
      LogFormat     = "JSON"
      Contribution = {
        Keys    = ["$.SourceIp", "$.Destination"]
        ValueOf = "$.NatBytes"
        Filters = [{ Match = "$.natmeter", In = ["source"] }]
      }
      AggregateOn = "Sum"
    })
  }
}

# Some provider versions implement updates of this resource as a no-op, so a
# changed definition would silently not reach AWS: replace the rules instead.
resource "terraform_data" "insight_rule_definitions" {
  input = local.insight_rule_definitions
}

resource "aws_cloudwatch_contributor_insight_rule" "top_sources" {
  rule_name       = "${var.name}-top-sources"
  rule_state      = "ENABLED"
  rule_definition = local.insight_rule_definitions.top_sources
  tags            = var.tags

  lifecycle {
    replace_triggered_by = [terraform_data.insight_rule_definitions]
  }
}

resource "aws_cloudwatch_contributor_insight_rule" "top_source_destinations" {
  rule_name       = "${var.name}-top-source-destinations"
  rule_state      = "ENABLED"
  rule_definition = local.insight_rule_definitions.top_source_destinations
  tags            = var.tags

  lifecycle {
    replace_triggered_by = [terraform_data.insight_rule_definitions]
  }
}

# ---------------------------------------------------------------------------
# Alarm notifications
# ---------------------------------------------------------------------------

resource "aws_sns_topic" "alarms" {
  count = var.alarm_topic_arn == null ? 1 : 0

  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
  #checkov:skip=CKV_AWS_26:Encrypted with var.kms_key_arn when given. The fallback AWS managed key (alias/aws/sns) cannot be used: CloudWatch alarms cannot publish to a topic encrypted with it. Alarm notifications carry alarm names and numbers only.
}

locals {
  alarm_topic_arn = var.alarm_topic_arn == null ? aws_sns_topic.alarms[0].arn : var.alarm_topic_arn
}

# Keyed by address: emails are literals, known at plan time.
resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alarm_emails)

  topic_arn = local.alarm_topic_arn
  protocol  = "email"
  endpoint  = each.value
}
