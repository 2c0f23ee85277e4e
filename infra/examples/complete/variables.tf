variable "region" {
  description = "AWS Region of the example VPC and of natmeter."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "Variable region must be an AWS Region name such as us-east-1."
  }
}

variable "az_letters" {
  description = "Availability Zones of the VPC, by letter within the region (one private subnet, public subnet and NAT gateway each)."
  type        = list(string)
  default     = ["a", "b", "c"]

  validation {
    condition     = length(var.az_letters) >= 1 && length(var.az_letters) <= 6 && alltrue([for l in var.az_letters : can(regex("^[a-z]$", l))])
    error_message = "Variable az_letters must list 1 to 6 single lower-case zone letters, such as [\"a\", \"b\", \"c\"]."
  }
}

variable "name" {
  description = "Name of the example VPC and of the natmeter deployment."
  type        = string
  default     = "natmeter-demo"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,40}$", var.name))
    error_message = "Variable name must be 1-40 characters of A-Z, a-z, 0-9, '_' or '-'."
  }
}

variable "alarm_email" {
  description = "Email address that receives the natmeter alarms (confirm the subscription AWS sends). Null for no email."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "Variable alarm_email must be null or an email address."
  }
}

variable "daily_cost_alarm_usd" {
  description = "Alarm when the NAT gateway processing cost of the trailing 24 hours exceeds this many USD."
  type        = number
  default     = 10

  validation {
    condition     = var.daily_cost_alarm_usd > 0
    error_message = "Variable daily_cost_alarm_usd must be greater than 0."
  }
}

variable "eks_cluster_name" {
  description = "Name of an EKS cluster that runs in the example's private subnets and sends its audit log to CloudWatch Logs (/aws/eks/<name>/cluster). Null: no workload inventory."
  type        = string
  default     = null

  validation {
    condition     = var.eks_cluster_name == null || can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$", var.eks_cluster_name))
    error_message = "Variable eks_cluster_name must be null or an EKS cluster name: 1-100 letters, digits, '-' or '_', starting with a letter or digit."
  }
}
