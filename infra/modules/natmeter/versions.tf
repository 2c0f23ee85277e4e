terraform {
  # 1.5: the oldest release this module is checked against (validation blocks,
  # lifecycle preconditions, optional object attributes are all older).
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # aws_cloudwatch_contributor_insight_rule first shipped in the 5.8x line
      # (provider PR #41373, February 2025); 5.90 leaves a margin. Nothing in
      # this module uses an argument that 6.x removed (flow logs use
      # log_destination, never log_group_name).
      version = ">= 5.90.0"
    }
  }
}
