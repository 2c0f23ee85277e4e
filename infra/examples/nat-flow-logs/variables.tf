variable "region" {
  description = "AWS Region of the NAT gateways."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "Variable region must be an AWS Region name such as eu-west-1."
  }
}

variable "name" {
  description = "Name of the natmeter deployment."
  type        = string
  default     = "natmeter"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,40}$", var.name))
    error_message = "Variable name must be 1-40 characters of A-Z, a-z, 0-9, '_' or '-'."
  }
}

variable "nat_gateway_ids" {
  description = "IDs of the existing NAT gateways to meter."
  type        = list(string)

  validation {
    condition     = length(var.nat_gateway_ids) >= 1 && alltrue([for id in var.nat_gateway_ids : can(regex("^nat-[0-9a-f]{8,17}$", id))])
    error_message = "Variable nat_gateway_ids must list NAT gateway IDs such as nat-0a1b2c3d4e5f67890."
  }
}

variable "alarm_emails" {
  description = "Email addresses that receive the natmeter alarms."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alarm_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "Variable alarm_emails must hold email addresses only."
  }
}

variable "daily_cost_alarm_usd" {
  description = "Alarm when the NAT gateway processing cost of the trailing 24 hours exceeds this many USD."
  type        = number
  default     = 50

  validation {
    condition     = var.daily_cost_alarm_usd > 0
    error_message = "Variable daily_cost_alarm_usd must be greater than 0."
  }
}

variable "flow_log_destination" {
  description = "Where the NAT flow logs go: \"cloudwatch\" (a log group the function is subscribed to) or \"s3\" (the module's bucket, an SQS queue of new objects, the function reading them)."
  type        = string
  default     = "cloudwatch"

  validation {
    condition     = contains(["cloudwatch", "s3"], var.flow_log_destination)
    error_message = "Variable flow_log_destination must be \"cloudwatch\" or \"s3\"."
  }
}
