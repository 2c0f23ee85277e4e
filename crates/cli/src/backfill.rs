//! `natmeter backfill`: the S3 Batch Operations job that runs the function over months of flow-log
//! objects already in S3 (docs/s3.md §5). The job is AWS's own distributed engine: its manifest
//! generator lists the objects under one prefix per day, and it invokes the function once per
//! object with the Batch Operations event (crates/lambda/src/s3event.rs), keeping a report of the
//! tasks that failed. The Terraform provider has no resource for a job, so natmeter prints the
//! `aws s3control create-job` command that creates it.

use std::fmt::Write as _;

use natmeter_core::civil::{civil_from_days as civil, days_from_civil, days_in_month};
use serde_json::json;

#[derive(clap::Args, Debug, Clone)]
pub struct BackfillArgs {
    /// The bucket the flow logs are delivered to.
    #[arg(long)]
    pub bucket: String,
    /// The flow log's destination prefix (what comes before `AWSLogs/`), if any.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// First day, YYYY-MM-DD (UTC).
    #[arg(long)]
    pub from: String,
    /// Last day, YYYY-MM-DD (UTC), included.
    #[arg(long)]
    pub to: String,
    /// The account that owns the flow logs (in their key layout).
    #[arg(long)]
    pub account: String,
    /// The flow logs' region (in their key layout).
    #[arg(long)]
    pub region: String,
    /// The natmeter function to invoke.
    #[arg(long, value_name = "ARN")]
    pub function_arn: String,
    /// The role Batch Operations assumes: it reads the objects, invokes the function and writes
    /// the report (docs/s3.md §5 lists its permissions).
    #[arg(long, value_name = "ARN")]
    pub role_arn: String,
    /// Hive-compatible keys (`aws-account-id=…/aws-service=vpcflowlogs/aws-region=…/year=…`).
    #[arg(long)]
    pub hive: bool,
    /// Where the job's report of failed tasks goes (default: the flow-log bucket).
    #[arg(long)]
    pub report_bucket: Option<String>,
    #[arg(long, default_value = "natmeter/batch-reports/")]
    pub report_prefix: String,
    /// The job's priority among the account's Batch Operations jobs.
    #[arg(long, default_value_t = 10)]
    pub priority: u32,
}

/// A day as days since the epoch, from `YYYY-MM-DD`.
fn day(s: &str, flag: &str) -> anyhow::Result<i64> {
    let bad = || anyhow::anyhow!("--{flag} {s:?}: expected a date YYYY-MM-DD");
    let mut it = s.trim().splitn(3, '-');
    let mut part = |len: usize| -> anyhow::Result<i64> {
        let p = it.next().filter(|p| p.len() == len).ok_or_else(bad)?;
        p.parse::<i64>().map_err(|_| bad())
    };
    let (y, m, d) = (part(4)?, part(2)?, part(2)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(bad());
    }
    Ok(days_from_civil(y, m, d))
}

/// Most days one job takes: a year of daily prefixes. Longer backfills are several jobs.
pub const MAX_DAYS: i64 = 366;

/// The key prefix of one day's objects, as S3 delivery writes them.
pub fn day_prefix(a: &BackfillArgs, day: i64) -> String {
    let (y, m, d) = civil(day);
    let base = if a.prefix.is_empty() || a.prefix.ends_with('/') {
        a.prefix.clone()
    } else {
        format!("{}/", a.prefix)
    };
    if a.hive {
        format!(
            "{base}AWSLogs/aws-account-id={}/aws-service=vpcflowlogs/aws-region={}/year={y:04}/month={m:02}/day={d:02}/",
            a.account, a.region
        )
    } else {
        format!(
            "{base}AWSLogs/{}/vpcflowlogs/{}/{y:04}/{m:02}/{d:02}/",
            a.account, a.region
        )
    }
}

/// The command, as a shell line.
pub fn command(a: &BackfillArgs) -> anyhow::Result<String> {
    let (from, to) = (day(&a.from, "from")?, day(&a.to, "to")?);
    if to < from {
        anyhow::bail!("--to {} is before --from {}", a.to, a.from);
    }
    if to - from + 1 > MAX_DAYS {
        anyhow::bail!(
            "{} days: one job takes at most {MAX_DAYS} daily prefixes; split the range into several jobs",
            to - from + 1
        );
    }
    if !a.account.bytes().all(|b| b.is_ascii_digit()) || a.account.len() != 12 {
        anyhow::bail!("--account {:?}: expected a 12-digit account id", a.account);
    }
    let prefixes: Vec<String> = (from..=to).map(|d| day_prefix(a, d)).collect();
    let operation = json!({"LambdaInvoke": {
        "FunctionArn": a.function_arn,
        "InvocationSchemaVersion": "2.0",
        "UserArguments": {"natmeter": "backfill"},
    }});
    let generator = json!({"S3JobManifestGenerator": {
        "ExpectedBucketOwner": a.account,
        "SourceBucket": format!("arn:aws:s3:::{}", a.bucket),
        "EnableManifestOutput": false,
        "Filter": {"KeyNameConstraint": {"MatchAnyPrefix": prefixes}},
    }});
    let report = json!({
        "Bucket": format!("arn:aws:s3:::{}", a.report_bucket.as_deref().unwrap_or(&a.bucket)),
        "Prefix": a.report_prefix.trim_end_matches('/'),
        "Format": "Report_CSV_20180820",
        "Enabled": true,
        "ReportScope": "FailedTasksOnly",
    });
    let q = |v: &serde_json::Value| format!("'{}'", v.to_string().replace('\'', "'\\''"));
    let mut out = String::new();
    let _ = write!(
        out,
        "aws s3control create-job --region {} --account-id {} --no-confirmation-required --priority {} \\\n  --role-arn {} \\\n  --operation {} \\\n  --manifest-generator {} \\\n  --report {} \\\n  --description {}",
        a.region,
        a.account,
        a.priority,
        a.role_arn,
        q(&operation),
        q(&generator),
        q(&report),
        q(&json!(format!("natmeter backfill {}..{}", a.from, a.to))),
    );
    Ok(out)
}

pub fn run(a: BackfillArgs) -> anyhow::Result<()> {
    let c = command(&a)?;
    println!("{c}");
    let (from, to) = (day(&a.from, "from")?, day(&a.to, "to")?);
    eprintln!(
        "natmeter: {} days of objects under s3://{}/{}…; the function writes records older than 14 days as results objects under its NATMETER_RESULTS_PREFIX (set NATMETER_RESULTS_BUCKET), and `natmeter report` over them merges them (docs/s3.md §4-5)",
        to - from + 1,
        a.bucket,
        day_prefix(&a, from).split("AWSLogs/").next().unwrap_or_default()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> BackfillArgs {
        BackfillArgs {
            bucket: "flow-logs".into(),
            prefix: "vpc".into(),
            from: "2024-02-28".into(),
            to: "2024-03-01".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:natmeter".into(),
            role_arn: "arn:aws:iam::123456789012:role/natmeter-backfill".into(),
            hive: false,
            report_bucket: None,
            report_prefix: "natmeter/batch-reports/".into(),
            priority: 10,
        }
    }

    /// The JSON arguments of the printed command, unquoted as a shell would.
    fn arg(cmd: &str, flag: &str) -> serde_json::Value {
        let at = cmd.find(&format!("--{flag} '")).unwrap() + flag.len() + 4;
        let end = cmd[at..].find("' ").map_or(cmd.len() - 1, |e| at + e);
        serde_json::from_str(&cmd[at..end]).unwrap()
    }

    #[test]
    fn one_prefix_per_day_across_a_leap_day() {
        let c = command(&args()).unwrap();
        let g = arg(&c, "manifest-generator");
        let p = &g["S3JobManifestGenerator"]["Filter"]["KeyNameConstraint"]["MatchAnyPrefix"];
        assert_eq!(
            p,
            &json!([
                "vpc/AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/02/28/",
                "vpc/AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/02/29/",
                "vpc/AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/03/01/"
            ])
        );
        assert_eq!(
            arg(&c, "operation")["LambdaInvoke"]["InvocationSchemaVersion"],
            "2.0"
        );
        assert_eq!(arg(&c, "report")["ReportScope"], "FailedTasksOnly");
        assert!(
            c.starts_with("aws s3control create-job --region us-east-1 --account-id 123456789012")
        );
    }

    #[test]
    fn hive_keys_and_bad_ranges() {
        let mut a = args();
        a.hive = true;
        a.prefix = String::new();
        let first = day_prefix(&a, day("2026-11-30", "from").unwrap());
        assert_eq!(first, "AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2026/month=11/day=30/");
        a.to = "2024-02-01".into();
        assert!(command(&a).unwrap_err().to_string().contains("before"));
        a.to = "2023-02-29".into();
        assert!(command(&a).unwrap_err().to_string().contains("--to"));
        a.from = "2020-01-01".into();
        a.to = "2022-01-01".into();
        assert!(command(&a).unwrap_err().to_string().contains("366"));
        assert_eq!(civil(day("1970-01-01", "x").unwrap()), (1970, 1, 1));
        assert_eq!(civil(day("2000-02-29", "x").unwrap()), (2000, 2, 29));
    }
}
