//! `natmeter athena-sql`: the attribution rules as SQL, for flow logs already in S3 and Athena
//! (docs/athena.md).
//!
//! Prints the `CREATE EXTERNAL TABLE` for the configured format (text with its header line, or
//! Parquet; partition projection by day) and one query over it that counts what natmeter counts:
//! the records of the configured NAT ENIs, without NODATA/SKIPDATA, REJECT, public-side (B)/(C)
//! and zero-byte records, and without the lines natmeter refuses (a short line, an address that
//! is not one), as (A) outbound or (D) inbound bytes of the pod (or node) behind the gateway, per
//! hour, gateway, source, direction and destination. The query is written in the SQL that
//! Athena (Trino) and DuckDB share, so the tests run it as written.

use std::fmt::Write as _;

use flowlog::{Column, Field, Format};
use natmeter_core::topology::{Connectivity, Topology};

/// What the table holds.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Storage {
    /// Text objects (`.log.gz`) with a header line.
    Text,
    /// Parquet objects (`.log.parquet`).
    Parquet,
}

#[derive(clap::Args)]
pub struct AthenaArgs {
    /// The table's name.
    #[arg(long, value_name = "T")]
    pub table: String,
    /// Where the flow logs are: s3://bucket/prefix/AWSLogs/ACCOUNT/vpcflowlogs/REGION/
    #[arg(long, value_name = "S3_URL")]
    pub location: Option<String>,
    /// text (the default) or parquet.
    #[arg(long, value_enum, default_value = "text")]
    pub storage: Storage,
    /// Print only the query (the table exists).
    #[arg(long)]
    pub query_only: bool,
    #[command(flatten)]
    pub engine: crate::settings::EngineArgs,
}

/// The Athena/Hive column name of a field: `-` becomes `_`.
fn column(c: &Column) -> String {
    match c {
        Column::Known(f) => f.name().replace('-', "_"),
        Column::Unknown(n) => n.replace('-', "_"),
    }
}

/// The column's type: INT_32 and INT_64 as AWS's Parquet files type them, else string.
fn column_type(c: &Column) -> &'static str {
    match c {
        Column::Known(
            Field::Version
            | Field::SrcPort
            | Field::DstPort
            | Field::Protocol
            | Field::TcpFlags
            | Field::TrafficPath,
        ) => "int",
        Column::Known(Field::Packets | Field::Bytes | Field::Start | Field::End) => "bigint",
        _ => "string",
    }
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A valid table name: Athena's (letters, digits, underscores; lower case).
fn check_table(t: &str) -> anyhow::Result<()> {
    let ok = !t.is_empty()
        && t.len() <= 255
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        anyhow::bail!("--table {t:?}: expected an Athena table name: lower-case letters, digits and underscores");
    }
    Ok(())
}

/// The `CREATE EXTERNAL TABLE` for `format`.
pub fn create_table(table: &str, format: &Format, storage: Storage, location: &str) -> String {
    let location = location.trim_end_matches('/');
    let mut s = String::new();
    let _ = writeln!(s, "CREATE EXTERNAL TABLE IF NOT EXISTS `{table}` (");
    let cols: Vec<String> = format
        .columns()
        .iter()
        .map(|c| format!("  `{}` {}", column(c), column_type(c)))
        .collect();
    let _ = writeln!(s, "{}", cols.join(",\n"));
    let _ = writeln!(s, ")");
    let _ = writeln!(s, "PARTITIONED BY (`date` string)");
    match storage {
        Storage::Text => {
            let _ = writeln!(s, "ROW FORMAT DELIMITED FIELDS TERMINATED BY ' '");
        }
        Storage::Parquet => {
            let _ = writeln!(s, "STORED AS PARQUET");
        }
    }
    let _ = writeln!(s, "LOCATION '{location}/'");
    let _ = writeln!(s, "TBLPROPERTIES (");
    let mut props = Vec::new();
    if storage == Storage::Text {
        props.push("  \"skip.header.line.count\" = \"1\"".to_string());
    }
    props.extend([
        "  \"projection.enabled\" = \"true\"".to_string(),
        "  \"projection.date.type\" = \"date\"".to_string(),
        "  \"projection.date.format\" = \"yyyy/MM/dd\"".to_string(),
        "  \"projection.date.range\" = \"2021/01/01,NOW\"".to_string(),
        "  \"projection.date.interval\" = \"1\"".to_string(),
        "  \"projection.date.interval.unit\" = \"DAYS\"".to_string(),
        format!("  \"storage.location.template\" = \"{location}/${{date}}\""),
    ]);
    let _ = writeln!(s, "{}", props.join(",\n"));
    let _ = writeln!(s, ");");
    s
}

/// An address natmeter reads: IPv4 dotted quad, or anything with a colon (IPv6).
fn valid_ip(col: &str) -> String {
    const OCTET: &str = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    format!(
        "(regexp_like({col}, '^{OCTET}\\.{OCTET}\\.{OCTET}\\.{OCTET}$') OR regexp_like({col}, '^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*$'))"
    )
}

/// The query over `table`: bytes per hour, gateway, source, direction and destination.
pub fn query(table: &str, format: &Format, topo: &Topology) -> anyhow::Result<String> {
    let need = [
        Field::InterfaceId,
        Field::SrcAddr,
        Field::DstAddr,
        Field::PktSrcAddr,
        Field::PktDstAddr,
        Field::Bytes,
        Field::Start,
    ];
    let missing: Vec<&str> = need
        .iter()
        .filter(|f| !format.has(**f))
        .map(|f| f.name())
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "the query needs {} in the flow log format (it has none of: {}). Without pkt-srcaddr/pkt-dstaddr natmeter tells the sides apart by the private CIDR list (docs/attribution.md §3), which this query does not implement; without interface-id or start it cannot tell the gateway or the hour",
            need.iter().map(|f| f.name()).collect::<Vec<_>>().join(", "),
            missing.join(", ")
        );
    }
    if topo.gateways().is_empty() {
        anyhow::bail!("no NAT gateway configured");
    }
    let col = |f: Field| -> String {
        if format.has(f) {
            format!("t.{}", ident(&f.name().replace('-', "_")))
        } else {
            "CAST(NULL AS varchar)".into()
        }
    };
    let last = column(
        format
            .columns()
            .last()
            .expect("a format has at least one column"),
    );
    let mut s = String::new();
    let _ = writeln!(
        s,
        "-- natmeter: NAT-gateway-processed bytes per hour, gateway, source, direction and destination,"
    );
    let _ = writeln!(
        s,
        "-- by the rules of docs/attribution.md §2 (outbound (A), inbound (D); (B) and (C) are the public side)."
    );
    let _ = writeln!(s, "WITH r AS (\n  SELECT");
    // The gateway of each NAT ENI (a regional gateway has several ENIs under one id).
    let _ = writeln!(s, "    CASE {}", col(Field::InterfaceId));
    for g in topo.gateways() {
        let _ = writeln!(s, "      WHEN {} THEN {}", sql_str(&g.eni), sql_str(&g.id));
    }
    let _ = writeln!(s, "    END AS gateway_id,");
    let private: Vec<&str> = topo
        .gateways()
        .iter()
        .filter(|g| g.connectivity_type == Connectivity::Private)
        .map(|g| g.eni.as_str())
        .collect();
    let is_private = if private.is_empty() {
        "false".to_string()
    } else {
        format!(
            "{} IN ({})",
            col(Field::InterfaceId),
            private
                .iter()
                .map(|e| sql_str(e))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let _ = writeln!(s, "    {is_private} AS private_gateway,");
    // (A): dstaddr is this ENI's NAT IP and the packet was headed past it; (D) the mirror.
    let nat_ip_of = |addr: &str| -> String {
        topo.gateways()
            .iter()
            .map(|g| {
                let ips: Vec<String> = g
                    .private_ips
                    .iter()
                    .map(|ip| sql_str(&ip.to_string()))
                    .collect();
                format!(
                    "({} = {} AND {addr} IN ({}))",
                    col(Field::InterfaceId),
                    sql_str(&g.eni),
                    ips.join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    let (src, dst, psrc, pdst) = (
        col(Field::SrcAddr),
        col(Field::DstAddr),
        col(Field::PktSrcAddr),
        col(Field::PktDstAddr),
    );
    let _ = writeln!(
        s,
        "    CASE\n      WHEN ({}) AND {pdst} <> {dst} THEN 'outbound'\n      WHEN ({}) AND {psrc} <> {src} THEN 'inbound'\n    END AS direction,",
        nat_ip_of(&dst),
        nat_ip_of(&src)
    );
    let _ = writeln!(
        s,
        "    {src} AS srcaddr, {dst} AS dstaddr, {psrc} AS pkt_srcaddr, {pdst} AS pkt_dstaddr,"
    );
    let _ = writeln!(
        s,
        "    {} AS pkt_src_aws_service, {} AS pkt_dst_aws_service,",
        col(Field::PktSrcAwsService),
        col(Field::PktDstAwsService)
    );
    let _ = writeln!(
        s,
        "    {} AS bytes, {} AS start_s",
        col(Field::Bytes),
        col(Field::Start)
    );
    let _ = writeln!(s, "  FROM {} t", ident(table));
    let mut wheres = Vec::new();
    if format.has(Field::LogStatus) {
        // NODATA and SKIPDATA first (§7): such records have `-` in most fields.
        wheres.push(format!(
            "({} IS NULL OR {} NOT IN ('NODATA', 'SKIPDATA'))",
            col(Field::LogStatus),
            col(Field::LogStatus)
        ));
    }
    wheres.push(format!(
        "{} IN ({})",
        col(Field::InterfaceId),
        topo.gateways()
            .iter()
            .map(|g| sql_str(&g.eni))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // What natmeter refuses as a parse error: a line with fewer fields than the format (its
    // last column is then empty), or an address that is not one.
    wheres.push(format!("t.{} IS NOT NULL", ident(&last)));
    for a in [&src, &dst, &psrc, &pdst] {
        wheres.push(valid_ip(a));
    }
    if format.has(Field::Action) {
        wheres.push(format!("{} <> 'REJECT'", col(Field::Action)));
    }
    let _ = writeln!(s, "  WHERE {}", wheres.join("\n    AND "));
    let _ = writeln!(s, ")");
    let _ = writeln!(
        s,
        "SELECT\n  start_s - start_s % 3600 AS hour,\n  gateway_id,\n  CASE direction WHEN 'outbound' THEN pkt_srcaddr ELSE pkt_dstaddr END AS source,\n  direction,"
    );
    let unknown = !(format.has(Field::PktSrcAwsService) || format.has(Field::PktDstAwsService));
    if unknown {
        let _ = writeln!(s, "  'UNKNOWN' AS destination,");
    } else {
        let _ = writeln!(
            s,
            "  CASE\n    WHEN COALESCE(CASE direction WHEN 'outbound' THEN pkt_dst_aws_service ELSE pkt_src_aws_service END, '-') <> '-'\n      THEN CASE direction WHEN 'outbound' THEN pkt_dst_aws_service ELSE pkt_src_aws_service END\n    WHEN private_gateway THEN 'PRIVATE'\n    ELSE 'INTERNET'\n  END AS destination,"
        );
    }
    let _ = writeln!(s, "  SUM(bytes) AS bytes");
    let _ = writeln!(s, "FROM r");
    let _ = writeln!(s, "WHERE direction IS NOT NULL AND bytes > 0");
    let _ = writeln!(s, "GROUP BY 1, 2, 3, 4, 5");
    let _ = writeln!(s, "ORDER BY 1, 6 DESC, 2, 3, 4, 5;");
    Ok(s)
}

pub fn run(a: AthenaArgs) -> anyhow::Result<()> {
    check_table(&a.table)?;
    let cfg = a.engine.settings()?;
    let q = query(&a.table, &cfg.format, &cfg.topology)?;
    let mut out = String::new();
    if !a.query_only {
        let location = a.location.as_deref().ok_or_else(|| {
            anyhow::anyhow!("--location s3://bucket/prefix/AWSLogs/ACCOUNT/vpcflowlogs/REGION/ is needed for the CREATE EXTERNAL TABLE (or --query-only)")
        })?;
        if !location.starts_with("s3://") {
            anyhow::bail!("--location {location:?}: expected an s3:// URL");
        }
        out.push_str(&create_table(&a.table, &cfg.format, a.storage, location));
        out.push('\n');
    }
    out.push_str(&q);
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    Ok(stdout.flush()?)
}
