# The setup of the seed article: a VPC from terraform-aws-modules/vpc with one
# NAT gateway per AZ and a VPC flow log delivered to CloudWatch Logs with
# 60-second aggregation and a custom format carrying the pkt-* and
# pkt-*-aws-service fields, plus natmeter subscribed to that flow log.
#
# Build the function first (repository root): make package

# The zones are named, not "the first three available": a zone AWS adds later
# must not move subnets or NAT gateways.
data "aws_availability_zones" "selected" {
  state = "available"

  filter {
    name   = "zone-name"
    values = [for letter in var.az_letters : "${var.region}${letter}"]
  }
}

locals {
  azs  = data.aws_availability_zones.selected.names
  cidr = "10.0.0.0/16"

  # In HCL "$${" writes a literal "${". natmeter needs the same string.
  flow_log_format = "$${region} $${vpc-id} $${az-id} $${subnet-id} $${instance-id} $${interface-id} $${flow-direction} $${srcaddr} $${dstaddr} $${srcport} $${dstport} $${pkt-srcaddr} $${pkt-dstaddr} $${pkt-src-aws-service} $${pkt-dst-aws-service} $${traffic-path} $${packets} $${bytes} $${action}"
}

module "vpc" {
  #checkov:skip=CKV_TF_1:The example follows the seed article and issue: the registry module terraform-aws-modules/vpc at ~> 5.5. Registry sources take a version, not a commit hash; pin an exact version (or a git source at a commit) in production.
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 5.5"

  name = var.name
  cidr = local.cidr
  azs  = local.azs

  private_subnets = [for i, _ in local.azs : cidrsubnet(local.cidr, 4, i)]
  public_subnets  = [for i, _ in local.azs : cidrsubnet(local.cidr, 8, i + 48)]

  enable_nat_gateway     = true
  single_nat_gateway     = false
  one_nat_gateway_per_az = true

  enable_flow_log                                 = true
  flow_log_destination_type                       = "cloud-watch-logs"
  create_flow_log_cloudwatch_log_group            = true
  create_flow_log_cloudwatch_iam_role             = true
  flow_log_traffic_type                           = "ALL"
  flow_log_max_aggregation_interval               = 60
  flow_log_log_format                             = local.flow_log_format
  flow_log_cloudwatch_log_group_name_prefix       = "/aws/vpc-flow-log/"
  flow_log_cloudwatch_log_group_retention_in_days = 14
}

module "natmeter" {
  source = "../../modules/natmeter"

  name       = var.name
  lambda_zip = "${path.root}/../../../target/lambda/bootstrap/bootstrap.zip"

  # The log group's name, taken from the module's output so that Terraform
  # creates the log group before subscribing to it.
  flow_log_group_name = trimsuffix(split(":log-group:", module.vpc.vpc_flow_log_destination_arn)[1], ":*")
  flow_log_format     = local.flow_log_format
  nat_gateway_ids     = module.vpc.natgw_ids
  # The NAT gateways are created in the same apply, so their IDs are unknown at
  # plan time: key the per-gateway flow logs and alarms by their AZs instead
  # (one NAT gateway per AZ, in the order of local.azs).
  nat_gateway_keys = local.azs

  # The private subnets and their AZ IDs: natmeter then prices the bytes of a
  # source that reaches a NAT gateway in another AZ at the inter-AZ rate
  # (module README, "Cross-AZ data transfer"). With one NAT gateway per AZ this
  # stays near zero unless a route table points across zones; it is what a
  # single_nat_gateway VPC pays on top of NAT processing.
  subnets = [for s in module.vpc.private_subnet_objects : { cidr = s.cidr_block, az_id = s.availability_zone_id }]

  daily_cost_alarm_usd = var.daily_cost_alarm_usd
  alarm_emails         = var.alarm_email == null ? [] : [var.alarm_email]

  # An EKS cluster in these private subnets, with its audit log enabled:
  # natmeter then names namespaces and workloads (module README, "EKS
  # workloads"). Null (the default) leaves the inventory out.
  eks_cluster_log_group_name = var.eks_cluster_name == null ? null : "/aws/eks/${var.eks_cluster_name}/cluster"
}
