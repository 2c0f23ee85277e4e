//! The S3 events the function accepts besides subscription batches, told apart by their shape
//! (docs/s3.md §1): a direct S3 notification, SQS messages carrying notifications (or an
//! `s3:TestEvent`, or an SNS envelope or EventBridge event around one), an EventBridge
//! `Object Created` event, and an S3 Batch Operations job's tasks. Pure: JSON in, the objects
//! to read out, and the answers each shape expects.

use serde_json::{json, Value};

/// One object to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// The key as S3 stores it (notifications' URL encoding undone).
    pub key: String,
    pub etag: Option<String>,
    pub size: Option<u64>,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum S3Event {
    /// `{"Records":[{"eventSource":"aws:s3",…}]}`: the objects created (other event names are
    /// not objects to read and are left out).
    Notification(Vec<ObjectRef>),
    /// `s3:TestEvent`: S3 checking the destination when a notification is configured.
    Test,
    /// `{"Records":[{"eventSource":"aws:sqs","messageId",…,"body"}]}`.
    Sqs(Vec<SqsMessage>),
    /// `"detail-type":"Object Created"`.
    EventBridge(ObjectRef),
    /// `{"invocationSchemaVersion","invocationId","job","tasks"}`.
    Batch(BatchJob),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SqsMessage {
    pub message_id: String,
    /// The objects the message names (none for a test event), or why its body is not an S3
    /// event.
    pub objects: Result<Vec<ObjectRef>, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BatchJob {
    pub schema: String,
    pub invocation_id: String,
    pub tasks: Vec<BatchTask>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BatchTask {
    pub task_id: String,
    pub object: Result<ObjectRef, String>,
}

/// How one task or message ended, for the answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultCode {
    Succeeded,
    /// Worth retrying (throttling, S3 or the metrics unavailable, another invocation reading it).
    TemporaryFailure,
    /// Retrying cannot help (no such key, a corrupt object).
    PermanentFailure,
}

impl ResultCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultCode::Succeeded => "Succeeded",
            ResultCode::TemporaryFailure => "TemporaryFailure",
            ResultCode::PermanentFailure => "PermanentFailure",
        }
    }
}

/// The event's S3 shape, or `None` when it has none of them (then it is judged as a
/// subscription event, and its error names that shape).
pub fn parse(event: &[u8]) -> Option<S3Event> {
    let v: Value = serde_json::from_slice(event).ok()?;
    if let Some(records) = v.get("Records").and_then(Value::as_array) {
        // Only a record that says where it comes from makes a shape: `{"Records":[]}` (a
        // misconfigured trigger) is no S3 event and fails as the bad event it is.
        let source = records
            .first()
            .and_then(|r| r.get("eventSource"))
            .and_then(Value::as_str);
        return match source {
            Some("aws:sqs") => Some(S3Event::Sqs(records.iter().map(sqs_message).collect())),
            Some("aws:s3") => notification(records).ok().map(S3Event::Notification),
            _ => None,
        };
    }
    if is_test_event(&v) {
        return Some(S3Event::Test);
    }
    if v.get("detail-type").is_some() {
        return eventbridge(&v).ok().map(S3Event::EventBridge);
    }
    if v.get("invocationSchemaVersion").is_some() && v.get("tasks").is_some() {
        return batch(&v).map(S3Event::Batch);
    }
    None
}

fn is_test_event(v: &Value) -> bool {
    v.get("Event").and_then(Value::as_str) == Some("s3:TestEvent")
}

/// A queue message's objects: its body is a notification, a test event, an EventBridge event
/// (an EventBridge rule targeting the queue) or an SNS envelope around one of them.
fn sqs_message(r: &Value) -> SqsMessage {
    let message_id = r
        .get("messageId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let body = r.get("body").and_then(Value::as_str).unwrap_or_default();
    SqsMessage {
        message_id,
        objects: objects_in_body(body, 0),
    }
}

fn objects_in_body(body: &str, depth: u8) -> Result<Vec<ObjectRef>, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| {
        format!("message body is not JSON ({e}); expected an S3 event notification")
    })?;
    if is_test_event(&v) {
        return Ok(Vec::new());
    }
    if let Some(records) = v.get("Records").and_then(Value::as_array) {
        return notification(records);
    }
    if v.get("detail-type").is_some() {
        return eventbridge(&v).map(|o| vec![o]);
    }
    if let (Some("Notification"), Some(msg), true) = (
        v.get("Type").and_then(Value::as_str),
        v.get("Message").and_then(Value::as_str),
        depth == 0,
    ) {
        return objects_in_body(msg, 1);
    }
    Err(format!(
        "message body is not an S3 event notification (no Records, Event or detail-type): {}",
        preview(body)
    ))
}

fn preview(s: &str) -> String {
    let mut p: String = s.chars().take(120).collect();
    if p.len() < s.len() {
        p.push('…');
    }
    p
}

/// The created objects of a notification's records; a record without bucket or key is an
/// error naming its index.
fn notification(records: &[Value]) -> Result<Vec<ObjectRef>, String> {
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let name = r
            .get("eventName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !name.starts_with("ObjectCreated:") {
            continue;
        }
        let s3 = r
            .get("s3")
            .ok_or_else(|| format!("Records[{i}] has no s3"))?;
        let bucket = s3
            .pointer("/bucket/name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("Records[{i}] has no s3.bucket.name"))?;
        let key = s3
            .pointer("/object/key")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("Records[{i}] has no s3.object.key"))?;
        out.push(ObjectRef {
            bucket: bucket.to_string(),
            key: url_decode(key, true).map_err(|e| format!("Records[{i}] s3.object.key: {e}"))?,
            etag: s3
                .pointer("/object/eTag")
                .and_then(Value::as_str)
                .map(|e| e.trim_matches('"').to_string()),
            size: s3.pointer("/object/size").and_then(Value::as_u64),
        });
    }
    Ok(out)
}

/// EventBridge's S3 events carry the key as S3 stores it: no URL encoding to undo.
fn eventbridge(v: &Value) -> Result<ObjectRef, String> {
    let kind = v
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind != "Object Created" {
        return Err(format!(
            "EventBridge event of detail-type {kind:?}; only \"Object Created\" names an object to read"
        ));
    }
    let d = v.get("detail").ok_or("EventBridge event without detail")?;
    let bucket = d
        .pointer("/bucket/name")
        .and_then(Value::as_str)
        .ok_or("EventBridge event without detail.bucket.name")?;
    let key = d
        .pointer("/object/key")
        .and_then(Value::as_str)
        .ok_or("EventBridge event without detail.object.key")?;
    Ok(ObjectRef {
        bucket: bucket.to_string(),
        key: key.to_string(),
        etag: d
            .pointer("/object/etag")
            .and_then(Value::as_str)
            .map(|e| e.trim_matches('"').to_string()),
        size: d.pointer("/object/size").and_then(Value::as_u64),
    })
}

/// A Batch Operations job's tasks: schema 1.0 names the bucket by ARN, 2.0 by name; keys are
/// URL-encoded as in the job's manifest.
fn batch(v: &Value) -> Option<BatchJob> {
    let schema = v.get("invocationSchemaVersion")?.as_str()?.to_string();
    let invocation_id = v
        .get("invocationId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let tasks = v
        .get("tasks")?
        .as_array()?
        .iter()
        .enumerate()
        .map(|(i, t)| BatchTask {
            task_id: t
                .get("taskId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            object: batch_task(t).map_err(|e| format!("tasks[{i}]: {e}")),
        })
        .collect();
    Some(BatchJob {
        schema,
        invocation_id,
        tasks,
    })
}

fn batch_task(t: &Value) -> Result<ObjectRef, String> {
    let bucket = match (
        t.get("s3Bucket").and_then(Value::as_str),
        t.get("s3BucketArn").and_then(Value::as_str),
    ) {
        (Some(b), _) => b.to_string(),
        (None, Some(arn)) => arn
            .rsplit(":::")
            .next()
            .filter(|b| !b.is_empty() && arn.contains(":::"))
            .ok_or_else(|| format!("s3BucketArn {arn:?} is not arn:PARTITION:s3:::BUCKET"))?
            .to_string(),
        (None, None) => return Err("no s3Bucket or s3BucketArn".into()),
    };
    let key = t.get("s3Key").and_then(Value::as_str).ok_or("no s3Key")?;
    Ok(ObjectRef {
        bucket,
        key: url_decode(key, true).map_err(|e| format!("s3Key: {e}"))?,
        etag: None,
        size: None,
    })
}

/// Undoes URL encoding (`%XX`, and `+` for a space when `plus`).
pub fn url_decode(s: &str, plus: bool) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("{s:?} has a bad %-escape at byte {i}"))?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} does not decode to UTF-8"))
}

/// The answer to a Batch Operations invocation: one result per task, in task order.
pub fn batch_response(job: &BatchJob, results: &[(ResultCode, String)]) -> Value {
    let results: Vec<Value> = job
        .tasks
        .iter()
        .zip(results)
        .map(|(t, (code, text))| {
            json!({"taskId": t.task_id, "resultCode": code.as_str(), "resultString": text})
        })
        .collect();
    json!({
        "invocationSchemaVersion": job.schema,
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": job.invocation_id,
        "results": results,
    })
}

/// The answer to an SQS batch: the messages to deliver again (ReportBatchItemFailures).
pub fn sqs_response(failed: &[&str]) -> Value {
    let items: Vec<Value> = failed
        .iter()
        .map(|id| json!({"itemIdentifier": id}))
        .collect();
    json!({"batchItemFailures": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification_json(key: &str) -> String {
        json!({"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
            "eventTime":"2026-11-30T12:05:00.000Z","eventName":"ObjectCreated:Put",
            "s3":{"s3SchemaVersion":"1.0","bucket":{"name":"flow-logs","arn":"arn:aws:s3:::flow-logs"},
            "object":{"key":key,"size":1234,"eTag":"0123abcd","sequencer":"0055AED6DCD90281E5"}}}]})
        .to_string()
    }

    #[test]
    fn a_notification_names_its_objects_with_the_key_decoded() {
        let ev = notification_json("AWSLogs/1/vpcflowlogs/us-east-1/my+logs%2Bx%20y.log.gz");
        let Some(S3Event::Notification(o)) = parse(ev.as_bytes()) else {
            panic!("not a notification")
        };
        assert_eq!(o[0].bucket, "flow-logs");
        assert_eq!(
            o[0].key,
            "AWSLogs/1/vpcflowlogs/us-east-1/my logs+x y.log.gz"
        );
        assert_eq!(
            (o[0].etag.as_deref(), o[0].size),
            (Some("0123abcd"), Some(1234))
        );
    }

    #[test]
    fn sqs_messages_carry_notifications_tests_and_envelopes() {
        let test = json!({"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-30T12:00:00.000Z","Bucket":"flow-logs","RequestId":"R","HostId":"H"}).to_string();
        let sns = json!({"Type":"Notification","Message": notification_json("k%3D1")}).to_string();
        let ev = json!({"Records":[
            {"messageId":"m1","eventSource":"aws:sqs","body": notification_json("a.log.gz")},
            {"messageId":"m2","eventSource":"aws:sqs","body": test},
            {"messageId":"m3","eventSource":"aws:sqs","body": sns},
            {"messageId":"m4","eventSource":"aws:sqs","body": "{\"hello\":1}"},
        ]});
        let Some(S3Event::Sqs(m)) = parse(ev.to_string().as_bytes()) else {
            panic!("not sqs")
        };
        assert_eq!(m[0].objects.as_ref().unwrap()[0].key, "a.log.gz");
        assert_eq!(m[1].objects, Ok(vec![]));
        assert_eq!(m[2].objects.as_ref().unwrap()[0].key, "k=1");
        assert!(m[3]
            .objects
            .as_ref()
            .unwrap_err()
            .contains("not an S3 event"));
        assert_eq!(m[3].message_id, "m4");
    }

    #[test]
    fn eventbridge_and_batch_operations() {
        let eb = json!({"version":"0","id":"x","detail-type":"Object Created","source":"aws.s3",
            "detail":{"bucket":{"name":"b"},"object":{"key":"a b+c.log.gz","size":5,"etag":"e1"}}});
        assert_eq!(
            parse(eb.to_string().as_bytes()),
            Some(S3Event::EventBridge(ObjectRef {
                bucket: "b".into(),
                key: "a b+c.log.gz".into(),
                etag: Some("e1".into()),
                size: Some(5)
            }))
        );
        let v1 = json!({"invocationSchemaVersion":"1.0","invocationId":"inv","job":{"id":"j"},
            "tasks":[{"taskId":"t1","s3Key":"x%20y.log.gz","s3VersionId":null,"s3BucketArn":"arn:aws:s3:::bkt"}]});
        let Some(S3Event::Batch(job)) = parse(v1.to_string().as_bytes()) else {
            panic!()
        };
        assert_eq!(job.tasks[0].object.as_ref().unwrap().bucket, "bkt");
        assert_eq!(job.tasks[0].object.as_ref().unwrap().key, "x y.log.gz");
        let r = batch_response(&job, &[(ResultCode::PermanentFailure, "no".into())]);
        assert_eq!(r["results"][0]["resultCode"], "PermanentFailure");
        assert_eq!(
            (
                r["invocationId"].as_str(),
                r["invocationSchemaVersion"].as_str()
            ),
            (Some("inv"), Some("1.0"))
        );
        let v2 = json!({"invocationSchemaVersion":"2.0","invocationId":"i","job":{"id":"j","userArguments":{}},
            "tasks":[{"taskId":"t","s3Bucket":"b2","s3Key":"k","s3VersionId":"1"}, {"taskId":"u"}]});
        let Some(S3Event::Batch(job)) = parse(v2.to_string().as_bytes()) else {
            panic!()
        };
        assert_eq!(job.tasks[0].object.as_ref().unwrap().bucket, "b2");
        assert!(job.tasks[1]
            .object
            .as_ref()
            .unwrap_err()
            .contains("tasks[1]"));
    }

    #[test]
    fn other_shapes_are_not_s3() {
        assert_eq!(parse(br#"{"awslogs":{"data":"x"}}"#), None);
        assert_eq!(parse(b"not json"), None);
        assert_eq!(
            parse(br#"{"Records":[{"eventSource":"aws:kinesis"}]}"#),
            None
        );
        assert_eq!(parse(br#"{"Event":"s3:TestEvent"}"#), Some(S3Event::Test));
    }

    #[test]
    fn url_decoding() {
        assert_eq!(url_decode("a+b%2B%C3%A9", true).unwrap(), "a b+é");
        assert_eq!(url_decode("a+b", false).unwrap(), "a+b");
        assert!(url_decode("%zz", true).is_err());
        assert!(url_decode("%", true).is_err());
    }
}
