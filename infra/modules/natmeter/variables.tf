# Inputs of the natmeter module. Every variable is typed, described and, where a
# bad value is possible, validated here so that a mistake fails at plan time
# with a message that names the variable, instead of at apply time (or worse, as
# a function that starts and then rejects its own configuration).

variable "name" {
  description = "Name of this deployment. Used for the function, its role, queue, topic, dashboard, Contributor Insights rules and alarms (as a prefix)."
  type        = string

  validation {
    # The tightest of the names derived from it: SQS queue names (80), IAM role
    # names (64 with the suffixes added here) and dashboard names ([A-Za-z0-9_-]).
    condition     = can(regex("^[A-Za-z0-9_-]{1,40}$", var.name))
    error_message = "Variable name must be 1-40 characters of A-Z, a-z, 0-9, '_' or '-' (it prefixes IAM, SQS and dashboard names)."
  }
}

variable "lambda_zip" {
  description = "Path to the function package built by `make package` (target/lambda/bootstrap/bootstrap.zip): a zip holding the `bootstrap` executable for the chosen architecture."
  type        = string

  validation {
    condition     = endswith(var.lambda_zip, ".zip") && fileexists(var.lambda_zip)
    error_message = "Variable lambda_zip must be the path of an existing .zip file (run `make package` first; it writes target/lambda/bootstrap/bootstrap.zip)."
  }
}

variable "architecture" {
  description = "Instruction set of the function: arm64 (Graviton, cheaper per GB-second) or x86_64. Must match the binary inside lambda_zip."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "Variable architecture must be \"arm64\" or \"x86_64\"."
  }
}

variable "memory_size" {
  description = "Memory of the function in MB. Lambda gives CPU in proportion to it; the function itself needs little (its target is a peak under 16 MB for a 1 MB batch)."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240 && floor(var.memory_size) == var.memory_size
    error_message = "Variable memory_size must be a whole number of MB between 128 and 10240."
  }
}

variable "timeout" {
  description = "Function timeout in seconds. The function stops retrying PutMetricData as this deadline nears and then fails the invocation, so Lambda retries the event."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout >= 10 && var.timeout <= 900 && floor(var.timeout) == var.timeout
    error_message = "Variable timeout must be a whole number of seconds between 10 and 900."
  }
}

variable "reserved_concurrent_executions" {
  description = "Reserved concurrency of the function; -1 leaves it unreserved. CloudWatch Logs invokes the function asynchronously: a throttled event stays in Lambda's asynchronous event queue, which retries it for up to maximum_event_age_seconds (6 hours by default) and then sends it to the failed-event queue. A small reservation therefore delays metering instead of losing data, as long as the backlog clears within that age (the async event age alarm says when it does not). 0 stops the function: Lambda then drops every event at once, to the failed-event queue."
  type        = number
  default     = -1

  validation {
    condition     = var.reserved_concurrent_executions >= -1 && floor(var.reserved_concurrent_executions) == var.reserved_concurrent_executions
    error_message = "Variable reserved_concurrent_executions must be -1 (unreserved) or a whole number >= 0."
  }
}

variable "nat_gateway_ids" {
  description = "IDs of the NAT gateways to meter (nat-...). The module looks up each one's network interface, private IPs (secondary ones too) and Availability Zone ID. At most 20 (Lambda's 4 KB environment). The per-gateway flow logs and alarms are keyed by nat_gateway_keys, or by these IDs when nat_gateway_keys is null."
  type        = list(string)

  validation {
    # 20: the gateways, their IPs and the log format must fit in Lambda's 4 KB
    # of environment variables (about 100 bytes per gateway). A region has at
    # most one NAT gateway per AZ and VPC in the usual layouts; meter more VPCs
    # with more instances of this module.
    condition     = length(var.nat_gateway_ids) >= 1 && length(var.nat_gateway_ids) <= 20
    error_message = "Variable nat_gateway_ids must list between 1 and 20 NAT gateway IDs (use one module instance per VPC for more)."
  }

  validation {
    condition     = alltrue([for id in var.nat_gateway_ids : can(regex("^nat-[0-9a-f]{8,17}$", id))])
    error_message = "Every entry of nat_gateway_ids must be a NAT gateway ID such as nat-0a1b2c3d4e5f67890."
  }

  validation {
    condition     = length(distinct(var.nat_gateway_ids)) == length(var.nat_gateway_ids)
    error_message = "Variable nat_gateway_ids must not list a NAT gateway twice."
  }
}

variable "nat_gateway_keys" {
  description = "Stable keys of the NAT gateways, one per entry of nat_gateway_ids and in the same order (for example the Availability Zone names). They key the dedicated flow logs and the per-gateway alarms in the Terraform state, so reordering, adding or removing a gateway touches only that gateway's resources. Null uses the NAT gateway IDs themselves as keys, which needs the IDs to be known at plan time: set keys when the IDs come from resources created in the same apply (module.vpc.natgw_ids of a new VPC), or the plan fails with \"Invalid for_each argument\"."
  type        = list(string)
  default     = null

  validation {
    # Same number as nat_gateway_ids: a precondition of the function checks it
    # (Terraform 1.5 validations can only see their own variable).
    condition     = var.nat_gateway_keys == null || try(length(var.nat_gateway_keys) >= 1 && alltrue([for k in var.nat_gateway_keys : can(regex("^[A-Za-z0-9_.-]{1,64}$", k))]), false)
    error_message = "Variable nat_gateway_keys must be null or a list of keys of 1-64 characters of A-Z, a-z, 0-9, '_', '.' or '-', one per NAT gateway."
  }

  validation {
    condition     = var.nat_gateway_keys == null || try(length(distinct(var.nat_gateway_keys)) == length(var.nat_gateway_keys), false)
    error_message = "Variable nat_gateway_keys must not repeat a key."
  }
}

variable "discover_nat_gateways" {
  description = "Let the function describe the NAT gateways of nat_gateway_ids itself (ec2:DescribeNatGateways, ec2:DescribeSubnets) at cold start and again when a batch comes from an ENI it does not know, instead of freezing their ENIs and IPs into its environment at plan time. Needed for regional NAT gateways (availability_mode = \"regional\"), whose ENIs are not known at plan time and change as they expand into new AZs; useful for gateways that gain secondary IPs. Requires vpc_id. The subscription filter then passes every record (\"\"): the function skips other ENIs' batches by their log stream name. The function also describes the VPC's subnets, for cross-AZ pricing, unless subnets is given. Not with create_nat_flow_logs (its flow logs are per ENI)."
  type        = bool
  default     = false
}

variable "vpc_id" {
  description = "The VPC of the NAT gateways (vpc-...), required with discover_nat_gateways: the function describes the gateways of nat_gateway_ids in it (NATMETER_VPC_IDS, NATMETER_NAT_GATEWAY_IDS) and its subnets, and the module takes the Region from it."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "Variable vpc_id must be null or a VPC ID such as vpc-0a1b2c3d4e5f67890."
  }
}

variable "ip_ranges_url" {
  description = "Where the function reads AWS's ip-ranges.json at cold start (NATMETER_IP_RANGES_URL), to name each destination by service and region and to fill in the service of records whose pkt-*-aws-service is \"-\". Null: the function's default, https://ip-ranges.amazonaws.com/ip-ranges.json (the function is not in a VPC, so it reaches it); \"\": read none. A URL that cannot be read is logged and the function meters without it."
  type        = string
  default     = null

  validation {
    condition     = var.ip_ranges_url == null || var.ip_ranges_url == "" || can(regex("^https?://[^/\\s]+(/\\S*)?$", var.ip_ranges_url))
    error_message = "Variable ip_ranges_url must be null, \"\" or an http:// or https:// URL."
  }
}

variable "remote_prefixes" {
  description = "Name internet destinations by the remote's /24 (IPv6 /48) in the source detail lines (NATMETER_REMOTE_PREFIXES=on), so that Logs Insights and Contributor Insights can show each source's top internet networks. Each network is a detail line of its own: more log ingestion. Needs pkt-* fields in the flow log format."
  type        = bool
  default     = false
}

variable "flow_log_group_name" {
  description = "Name of an existing CloudWatch Logs group that receives VPC flow logs covering the NAT gateway ENIs (for example the VPC-wide flow log of terraform-aws-modules/vpc). Leave null when create_nat_flow_logs is true or flow_log_destination is \"s3\". The module adds a subscription filter to it: a log group takes at most two, so the group must have at most one already."
  type        = string
  default     = null

  validation {
    condition     = var.flow_log_group_name == null || can(regex("^[.\\-_/#A-Za-z0-9]{1,512}$", var.flow_log_group_name))
    error_message = "Variable flow_log_group_name must be a CloudWatch Logs group name: 1-512 characters of A-Z, a-z, 0-9, '.', '-', '_', '/' or '#'."
  }
}

variable "flow_log_format" {
  description = "Log format of the flow log in flow_log_group_name, exactly as configured on it (AWS syntax, `$${field} $${field} ...`; in HCL write `$$${field}`). CloudWatch delivery has no header line, so the function must be told. Must contain srcaddr, dstaddr and bytes. The default is AWS's default (version 2) format. Ignored when create_nat_flow_logs is true: the module then uses its own format (output log_format)."
  type        = string
  default     = "$${version} $${account-id} $${interface-id} $${srcaddr} $${dstaddr} $${srcport} $${dstport} $${protocol} $${packets} $${bytes} $${start} $${end} $${action} $${log-status}"

  validation {
    condition     = can(regex("^[$][{][a-z0-9-]+[}]( [$][{][a-z0-9-]+[}])*$", var.flow_log_format))
    error_message = "Variable flow_log_format must be flow log fields written $${field-name}, separated by single spaces (in HCL: $$${field-name})."
  }

  validation {
    # Without these three no record can be recognised as a NAT traversal
    # (docs/attribution.md §2); pkt-srcaddr and pkt-dstaddr are strongly
    # recommended on top (attribution to the original pod IP).
    condition = alltrue([
      for required in ["srcaddr", "dstaddr", "bytes"] :
      contains([for m in regexall("[$][{]([a-z0-9-]+)[}]", var.flow_log_format) : m[0]], required)
    ])
    error_message = "Variable flow_log_format must contain at least $${srcaddr}, $${dstaddr} and $${bytes} (add $${pkt-srcaddr} $${pkt-dstaddr} for attribution to pod IPs)."
  }
}

variable "create_nat_flow_logs" {
  description = "Create a dedicated flow log on each NAT gateway ENI (the module's recommended format, 60-second aggregation) into a dedicated log group, and meter that instead of flow_log_group_name. Costs CloudWatch Logs ingestion for the NAT ENIs only. With flow_log_destination = \"s3\" the flow logs go to the bucket instead (flow_log_file_format, hourly partitions), without a log group or a role."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------
# Delivery to S3 (flow_log_destination = "s3", s3.tf)
# ---------------------------------------------------------------------------

variable "flow_log_destination" {
  description = "Where the flow logs natmeter meters are delivered. \"cloudwatch\": a CloudWatch Logs group (flow_log_group_name, or the dedicated NAT flow log group of create_nat_flow_logs) to which the function is subscribed. \"s3\": an S3 bucket (created by the module, or flow_log_bucket_name) that notifies an SQS queue of every flow-log object under AWSLogs/; the function reads each object from the queue, writes its results under results_prefix in the same bucket and publishes the same metrics. With create_nat_flow_logs = true the dedicated NAT flow logs go to the bucket; otherwise point your own flow log at it (output flow_log_bucket_arn). README, \"Delivering flow logs to S3\"."
  type        = string
  default     = "cloudwatch"

  validation {
    condition     = contains(["cloudwatch", "s3"], var.flow_log_destination)
    error_message = "Variable flow_log_destination must be \"cloudwatch\" or \"s3\"."
  }
}

variable "flow_log_bucket_name" {
  description = "With flow_log_destination = \"s3\": the name of an existing bucket in the function's account and Region that receives the flow logs at its root (keys AWSLogs/...). The module then adds only the bucket's event notification (create_flow_log_bucket_notification) and leaves its policy, encryption and lifecycle to you: the bucket policy must let delivery.logs.amazonaws.com write (README, \"Delivering flow logs to S3\"). Null: the module creates the bucket, with its public access block, ownership controls, encryption, lifecycle and delivery policy."
  type        = string
  default     = null

  validation {
    # S3 general purpose bucket naming rules: 3-63 characters of lower-case
    # letters, digits, dots and hyphens, a letter or digit at both ends, no two
    # adjacent dots, not formatted as an IP address.
    condition     = var.flow_log_bucket_name == null || try(can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.flow_log_bucket_name)) && !can(regex("[.][.]", var.flow_log_bucket_name)) && !can(regex("^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$", var.flow_log_bucket_name)), false)
    error_message = "Variable flow_log_bucket_name must be null or an S3 bucket name: 3-63 lower-case letters, digits, '.' or '-', starting and ending with a letter or digit, without '..', not an IP address."
  }
}

variable "create_flow_log_bucket_notification" {
  description = "With flow_log_destination = \"s3\": create the bucket's event notification (s3:ObjectCreated:* under AWSLogs/ to the module's queue). S3 keeps one notification configuration per bucket and aws_s3_bucket_notification replaces it whole: for an existing bucket (flow_log_bucket_name) that already notifies something else, set false and add the queue (output flow_log_queue_arn) with the prefix AWSLogs/ to the configuration you manage. Must stay true for the bucket the module creates."
  type        = bool
  default     = true
}

variable "flow_log_file_format" {
  description = "With flow_log_destination = \"s3\" and create_nat_flow_logs = true: the file format of the dedicated NAT flow logs, \"parquet\" (smaller, cheaper to query with Athena) or \"plain-text\" (gzip text with a header line). The function reads both."
  type        = string
  default     = "parquet"

  validation {
    condition     = contains(["parquet", "plain-text"], var.flow_log_file_format)
    error_message = "Variable flow_log_file_format must be \"parquet\" or \"plain-text\" (the values of the flow log's destination_options.file_format)."
  }
}

variable "flow_log_hive_compatible_partitions" {
  description = "With flow_log_destination = \"s3\" and create_nat_flow_logs = true: Hive-compatible prefixes for the dedicated NAT flow logs (AWSLogs/aws-account-id=.../aws-service=vpcflowlogs/aws-region=.../year=.../month=.../day=.../hour=...) instead of AWSLogs/<account>/vpcflowlogs/<region>/YYYY/MM/DD/HH/. Either way the objects are under AWSLogs/ and partitioned per hour."
  type        = bool
  default     = false
}

variable "flow_log_retention_days" {
  description = "With flow_log_destination = \"s3\" and the bucket the module creates: days after which the flow-log objects (under AWSLogs/) expire. natmeter has turned them into metrics and results within minutes; keep them longer for Athena queries (natmeter athena-sql) or audits."
  type        = number
  default     = 90

  validation {
    condition     = var.flow_log_retention_days >= 1 && var.flow_log_retention_days <= 3650 && floor(var.flow_log_retention_days) == var.flow_log_retention_days
    error_message = "Variable flow_log_retention_days must be a whole number of days between 1 and 3650."
  }
}

variable "results_prefix" {
  description = "With flow_log_destination = \"s3\": the key prefix under which the function writes its results in the bucket (NATMETER_RESULTS_PREFIX): what CloudWatch would refuse as metrics (records older than 14 days, such as a backfill or a late redrive), as natmeter.report/v1 objects, one per hour and NAT gateway of each flow-log object: <results_prefix>hour=YYYY-MM-DDTHH/nat_gateway=<id>/<hash>.json (<hash>: a digest of the flow-log object, so that a retry rewrites the same keys). It must end with '/' and must not be under AWSLogs/, whose new objects trigger the function."
  type        = string
  default     = "natmeter/results/"

  validation {
    # S3's safe key characters only (no spaces or characters S3 would need
    # URL-encoded in an ARN); never under AWSLogs/, or every result would
    # notify the queue and invoke the function on its own output.
    condition     = can(regex("^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*/$", var.results_prefix)) && length(var.results_prefix) <= 512 && !startswith(var.results_prefix, "AWSLogs/")
    error_message = "Variable results_prefix must be a key prefix such as \"natmeter/results/\": at most 512 characters of A-Z, a-z, 0-9 and !_.*'()- in '/'-separated parts, ending with '/', not starting with '/' and not under \"AWSLogs/\" (where new objects invoke the function)."
  }
}

variable "results_retention_days" {
  description = "With flow_log_destination = \"s3\" and the bucket the module creates: days after which the results objects under results_prefix expire, separately from the flow logs (flow_log_retention_days). Results are small JSON reports; the default keeps a year and a month for year-over-year comparisons."
  type        = number
  default     = 400

  validation {
    condition     = var.results_retention_days >= 1 && var.results_retention_days <= 3650 && floor(var.results_retention_days) == var.results_retention_days
    error_message = "Variable results_retention_days must be a whole number of days between 1 and 3650."
  }
}

variable "sqs_batch_size" {
  description = "With flow_log_destination = \"s3\": the most flow-log object notifications (SQS messages, one object each) the event source mapping hands the function in one invocation (1-10000). Each object can be up to 75 MB: raise the function's timeout and memory_size with it. Above 10, sqs_batching_window_seconds must be at least 1 (Lambda's rule)."
  type        = number
  default     = 10

  validation {
    condition     = var.sqs_batch_size >= 1 && var.sqs_batch_size <= 10000 && floor(var.sqs_batch_size) == var.sqs_batch_size
    error_message = "Variable sqs_batch_size must be a whole number between 1 and 10000 (Lambda's limit for standard queues)."
  }
}

variable "sqs_batching_window_seconds" {
  description = "With flow_log_destination = \"s3\": how long (0-300 seconds) Lambda gathers notifications before invoking the function with fewer than sqs_batch_size (MaximumBatchingWindowInSeconds). Flow logs are delivered every 5 minutes, so a short wait collects the objects of several gateways into one invocation (fewer invocations and PutMetricData requests) at little cost in freshness. The queue's visibility timeout is 6 x timeout + this window."
  type        = number
  default     = 30

  validation {
    condition     = var.sqs_batching_window_seconds >= 0 && var.sqs_batching_window_seconds <= 300 && floor(var.sqs_batching_window_seconds) == var.sqs_batching_window_seconds
    error_message = "Variable sqs_batching_window_seconds must be a whole number of seconds between 0 and 300."
  }
}

variable "eks_cluster_log_group_name" {
  description = "Control plane log group of an EKS cluster in the same account and Region, /aws/eks/<cluster>/cluster, with the audit log type enabled. Set, the module subscribes the function to the pod and node events of its audit log (a second subscription filter, JSON pattern) and gives it a DynamoDB table for the inventory it builds from them, so that NAT bytes are attributed to namespaces, workloads, pods and nodes (README, \"EKS workloads\"). A log group takes at most two subscription filters. Null: no inventory."
  type        = string
  default     = null

  validation {
    # EKS cluster names: 1-100 characters of letters, digits, '-' and '_',
    # starting with a letter or digit (CreateCluster, name).
    condition     = var.eks_cluster_log_group_name == null || can(regex("^/aws/eks/[A-Za-z0-9][A-Za-z0-9_-]{0,99}/cluster$", var.eks_cluster_log_group_name))
    error_message = "Variable eks_cluster_log_group_name must be null or the control plane log group of an EKS cluster, /aws/eks/<cluster name>/cluster (a cluster name is 1-100 letters, digits, '-' or '_', starting with a letter or digit)."
  }
}

variable "inventory_retention_hours" {
  description = "Retention of the workload inventory in whole hours (1-8760), NATMETER_INVENTORY_RETENTION_HOURS: the function sets each item's TTL attribute (expires_at) this far ahead, and DynamoDB deletes expired items some time after that. Used only with eks_cluster_log_group_name."
  type        = number
  default     = 24

  validation {
    condition     = var.inventory_retention_hours >= 1 && var.inventory_retention_hours <= 8760 && floor(var.inventory_retention_hours) == var.inventory_retention_hours
    error_message = "Variable inventory_retention_hours must be a whole number of hours between 1 and 8760."
  }
}

variable "metric_namespace" {
  description = "CloudWatch namespace of the metrics the function publishes (NATMETER_NAMESPACE), and the only one the dashboard and the alarms read. Null means \"NatMeter/<name>\": every instance of the module has its own namespace, so instances in one account (one per VPC) never add up each other's traffic. Give each instance a different one if you set it. The function's PutMetricData permission is limited to it."
  type        = string
  default     = null

  validation {
    # Quotes would break the Metrics Insights queries of the dashboard; AWS/ is
    # reserved for AWS services; 251 leaves room for the "/emf" suffix of the
    # EMF copy (sink = "both") within CloudWatch's 255.
    condition     = var.metric_namespace == null || try(can(regex("^[A-Za-z0-9_./#:-]{1,251}$", var.metric_namespace)) && !startswith(var.metric_namespace, "AWS/") && !startswith(var.metric_namespace, ":"), false)
    error_message = "Variable metric_namespace must be null or 1-251 characters of A-Z, a-z, 0-9, '_', '.', '/', '#', ':' or '-', must not start with ':' and must not start with \"AWS/\"."
  }
}

variable "price_per_gb" {
  description = "NAT gateway data processing price in USD per GB (2^30 bytes), NATMETER_PRICE_PER_GB. Null uses the function's built-in price table for the region (the function refuses to start in a region it has no price for)."
  type        = number
  default     = null

  validation {
    condition     = var.price_per_gb == null || (try(var.price_per_gb > 0, false) && try(var.price_per_gb < 1, false))
    error_message = "Variable price_per_gb must be null or a price in USD per GB greater than 0 and below 1 (us-east-1 is 0.045)."
  }
}

variable "private_cidrs" {
  description = "Private address ranges (NATMETER_PRIVATE_CIDRS). Used to tell the private side of a NAT gateway from the public side when the flow log format has no pkt-* fields."
  type        = list(string)
  default     = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"]

  validation {
    condition     = length(var.private_cidrs) >= 1 && alltrue([for c in var.private_cidrs : can(cidrhost(c, 0))])
    error_message = "Variable private_cidrs must be a non-empty list of CIDR blocks such as 10.0.0.0/8."
  }
}

variable "subnets" {
  description = "The VPC's subnets with their Availability Zone IDs, [{ cidr = \"10.0.32.0/19\", az_id = \"use1-az1\" }, ...] (NATMETER_SUBNETS). Given, the function finds the AZ of each source and prices the bytes between a source and a NAT gateway in another AZ at the inter-AZ data transfer rate ($0.01/GB in us-east-1, once per crossing byte), as NatCrossAzBytes and NatCrossAzCost, and the dashboard shows them. The gateways' own AZ IDs are looked up from their subnets. Sources outside every subnet (and every byte when this is empty) are not priced for crossing. Empty (the default): no cross-AZ pricing. The entries count against Lambda's 4 KB environment (about 45 bytes each)."
  type = list(object({
    cidr  = string
    az_id = string
  }))
  default = []

  validation {
    condition     = alltrue([for s in var.subnets : can(cidrhost(s.cidr, 0))])
    error_message = "Every entry of subnets must have a cidr that is a CIDR block such as 10.0.32.0/19."
  }

  validation {
    # AZ IDs, not names: use1-az1 is the same zone in every account, us-east-1a
    # is not. Local Zones have a middle part (usw2-lax1-az1).
    condition     = alltrue([for s in var.subnets : can(regex("^[a-z]{2,5}[0-9]+(-[a-z]+[0-9]+)?-az[0-9]+$", s.az_id))])
    error_message = "Every entry of subnets must have an az_id that is an Availability Zone ID such as use1-az1 (aws_subnet's availability_zone_id, not the zone name us-east-1a)."
  }

  validation {
    condition     = length(distinct([for s in var.subnets : s.cidr])) == length(var.subnets)
    error_message = "Variable subnets must not list a cidr twice."
  }
}

variable "sink" {
  description = "Where the function sends metrics (NATMETER_SINK): cloudwatch (PutMetricData into metric_namespace), emf (Embedded Metric Format lines on stdout, which CloudWatch Logs turns into metrics in metric_namespace) or both. With both, the EMF copy goes to its own namespace, \"<metric_namespace>/emf\" (NATMETER_EMF_NAMESPACE), because CloudWatch turns EMF lines into metrics too and one namespace would count every datum twice; the dashboard and the alarms read metric_namespace only."
  type        = string
  default     = "cloudwatch"

  validation {
    condition     = contains(["cloudwatch", "emf", "both"], var.sink)
    error_message = "Variable sink must be \"cloudwatch\", \"emf\" or \"both\"."
  }
}

variable "max_sources" {
  description = "Per-invocation cap on distinct SourceIp metric series (NATMETER_MAX_SOURCES); the rest is summed under SourceIp=other. Every SourceIp value is a custom metric at about $0.30 a month. The Contributor Insights rules see every source regardless."
  type        = number
  default     = 20

  validation {
    condition     = var.max_sources >= 0 && var.max_sources <= 500 && floor(var.max_sources) == var.max_sources
    error_message = "Variable max_sources must be a whole number between 0 and 500 (the function's own limit)."
  }
}

variable "min_source_share" {
  description = "A source gets its own SourceIp series only with at least this share (0-1) of an invocation's bytes (NATMETER_MIN_SOURCE_SHARE). Custom metrics are billed per distinct value per hour, so without a floor the tail of small sources rotates through the capped series and multiplies the metric bill; 0 restores the plain top max_sources."
  type        = number
  default     = 0.05

  validation {
    condition     = var.min_source_share >= 0 && var.min_source_share <= 1
    error_message = "Variable min_source_share must be a fraction between 0 and 1."
  }
}

variable "maximum_event_age_seconds" {
  description = "How long Lambda's asynchronous event queue keeps retrying an event that is throttled or meets a Lambda system error (60-21600 seconds). After this age, or after 2 retries of a function error, the event and the error go to the failed-event queue. The async event age alarm fires at event_age_alarm_fraction of it."
  type        = number
  default     = 21600

  validation {
    condition     = var.maximum_event_age_seconds >= 60 && var.maximum_event_age_seconds <= 21600 && floor(var.maximum_event_age_seconds) == var.maximum_event_age_seconds
    error_message = "Variable maximum_event_age_seconds must be a whole number of seconds between 60 and 21600 (Lambda's limits)."
  }
}

variable "daily_cost_alarm_usd" {
  description = "Alarm threshold: NAT gateway processing cost in USD over the trailing 24 hours, as metered by natmeter (NatCost)."
  type        = number

  validation {
    condition     = var.daily_cost_alarm_usd > 0
    error_message = "Variable daily_cost_alarm_usd must be greater than 0."
  }
}

variable "anomaly_band_width" {
  description = "Width of the anomaly-detection band of the hourly cost alarm, in standard deviations. Wider means fewer, surer alerts."
  type        = number
  default     = 3

  validation {
    condition     = var.anomaly_band_width >= 1 && var.anomaly_band_width <= 10
    error_message = "Variable anomaly_band_width must be between 1 and 10 standard deviations."
  }
}

variable "silent_failure_min_bytes" {
  description = "The silent-failure alarm of a NAT gateway fires when, for an hour, every 15-minute window had more than this many bytes through the gateway (AWS/NATGateway BytesInFromSource + BytesOutToSource) while natmeter metered none (NatBytes)."
  type        = number
  default     = 1048576

  validation {
    condition     = var.silent_failure_min_bytes >= 0
    error_message = "Variable silent_failure_min_bytes must be 0 or more bytes."
  }
}

variable "min_coverage" {
  description = "The coverage alarm of a NAT gateway fires when natmeter metered (NatBytes of the gateway) less than this share (0-1) of what the gateway itself processed from and to its sources (AWS/NATGateway BytesInFromSource + BytesOutToSource) over 3 hours. Flow records are best effort and the last minutes arrive late, so 1 is never reached exactly."
  type        = number
  default     = 0.8

  validation {
    condition     = var.min_coverage > 0 && var.min_coverage <= 1
    error_message = "Variable min_coverage must be a share greater than 0 and at most 1."
  }
}

variable "coverage_min_bytes" {
  description = "The coverage alarm of a NAT gateway judges only 3-hour windows in which the gateway processed more than this many bytes from and to its sources; quieter windows count as covered (a few late or skipped flow records would otherwise page)."
  type        = number
  default     = 104857600

  validation {
    condition     = var.coverage_min_bytes >= 0
    error_message = "Variable coverage_min_bytes must be 0 or more bytes."
  }
}

variable "function_error_rate_percent" {
  description = "The function error alarm fires when more than this percentage of the function's invocations failed in each of three consecutive 5-minute periods. One failed invocation that Lambda's retries fix does not page; errors that last do."
  type        = number
  default     = 5

  validation {
    condition     = var.function_error_rate_percent >= 0 && var.function_error_rate_percent < 100
    error_message = "Variable function_error_rate_percent must be at least 0 and below 100."
  }
}

variable "event_age_alarm_fraction" {
  description = "The async event age alarm fires when the oldest event in Lambda's asynchronous queue for the function (AsyncEventAge, Maximum over 5 minutes) is older than this fraction (0-1) of maximum_event_age_seconds: the backlog is on its way to the failed-event queue."
  type        = number
  default     = 0.5

  validation {
    condition     = var.event_age_alarm_fraction > 0 && var.event_age_alarm_fraction < 1
    error_message = "Variable event_age_alarm_fraction must be greater than 0 and below 1."
  }
}

variable "alarm_name_prefix" {
  description = "Prefix of every alarm name. Null means \"<name>-\"."
  type        = string
  default     = null

  validation {
    # CloudWatch takes 255 characters of alarm name; the longest suffix added
    # here is "destination-delivery-failures" plus a 64-character key.
    condition     = var.alarm_name_prefix == null || try(length(var.alarm_name_prefix) >= 1 && length(var.alarm_name_prefix) <= 150 && can(regex("^[ -~]+$", var.alarm_name_prefix)), false)
    error_message = "Variable alarm_name_prefix must be null or 1-150 printable ASCII characters."
  }
}

variable "alarm_enabled" {
  description = "Which alarms to create, by key; a key left out is created. Keys: daily_cost, hourly_cost_anomaly, function_error_rate, failed_events, async_events_dropped, destination_delivery_failures, async_event_age, delivery_errors and delivery_throttling (both on the CloudWatch Logs path only), failed_objects (flow_log_destination = \"s3\" only), silent_failure (one per NAT gateway) and coverage (one per NAT gateway). Example: { hourly_cost_anomaly = false }."
  type        = map(bool)
  default     = {}

  validation {
    condition = alltrue([for k in keys(var.alarm_enabled) : contains([
      "daily_cost", "hourly_cost_anomaly", "function_error_rate", "failed_events", "async_events_dropped",
      "destination_delivery_failures", "async_event_age", "delivery_errors", "delivery_throttling",
      "failed_objects", "silent_failure", "coverage",
    ], k)])
    error_message = "Every key of alarm_enabled must be one of daily_cost, hourly_cost_anomaly, function_error_rate, failed_events, async_events_dropped, destination_delivery_failures, async_event_age, delivery_errors, delivery_throttling, failed_objects, silent_failure, coverage."
  }
}

variable "alarm_emails" {
  description = "Email addresses subscribed to the alarm topic. Each address must confirm the subscription from the email AWS sends."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alarm_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "Every entry of alarm_emails must be an email address."
  }
}

variable "alarm_topic_arn" {
  description = "ARN of an existing SNS topic for alarm notifications. Null makes the module create one. Alarms notify it on ALARM and on OK."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\\.fifo)?$", var.alarm_topic_arn))
    error_message = "Variable alarm_topic_arn must be null or an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)."
  }
}

variable "log_retention_days" {
  description = "Retention in days of the log groups the module creates (the function's, and the NAT flow log group when create_nat_flow_logs is true)."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "Variable log_retention_days must be one of the values CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key that encrypts the log groups, the failed-event queue, the alarm topic, the function's environment and the inventory table (eks_cluster_log_group_name); with flow_log_destination = \"s3\" also the bucket the module creates (SSE-KMS, with an S3 Bucket Key), the object queues and the objects table. Its key policy must allow logs.<region>.amazonaws.com and cloudwatch.amazonaws.com, and DynamoDB on behalf of the function's role when a table is used; on the S3 path also delivery.logs.amazonaws.com (flow logs writing SSE-KMS objects) and s3.amazonaws.com (kms:GenerateDataKey and kms:Decrypt, to send notifications to the encrypted queue). Null uses AWS-owned encryption (SSE-S3 for the bucket, SSE-SQS for the queues; the topic then stays unencrypted: CloudWatch alarms cannot publish to a topic under the AWS managed aws/sns key)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.kms_key_arn))
    error_message = "Variable kms_key_arn must be null or a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID); aliases are not accepted by every service here."
  }
}

variable "tags" {
  description = "Tags added to every resource the module creates that supports tags."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")])
    error_message = "Every tag key must be 1-128 characters and not start with \"aws:\", and every value at most 256 characters (variable tags)."
  }
}
