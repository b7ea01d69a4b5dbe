//! Reading the records back from the JSON they are stored as (`records.rs`), by hand.
//!
//! Writing them stays with serde's derive, which is small. Reading is not: a derived
//! `Deserialize` is a visitor per record type compiled into serde_json's parser, 92 KB of the
//! module for fourteen records (20 KB for `JobRecord` alone), all of it compiled by V8 in every
//! Envoy at load. Here one visitor, shared by every record, reads an object's members (names
//! borrowed from the bytes, values as `serde_json::Value`, the parser the module has anyway), and
//! each record takes its members out of that list. It costs a few KB more than going through a
//! `Value` map and reads a record twice as fast: natively 2.5–3.8 µs a record against 2.0–2.4 µs
//! for the derive, where the `Value` map took 5.6–7.0 µs.
//!
//! The rules are serde's for the derived types, so a record reads the same whichever wrote it:
//! a member that is required must be there with the right type; an `Option` member may be
//! missing or `null`; a member with a default takes it when missing; unknown members are
//! ignored. `tests` checks each record against the derive on the same JSON.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::records::{
    DriftSchedule, FrozenRecord, IndexRecord, JobRecord, Lease, LogEntry, NodeLag, NodeTaskInfo, OpenTask, Phase,
    ProposeOutcome, TaskMiroir, TaskRecord, VerifyResult,
};
use crate::core::sorted_map::SortedMap;

/// A value read back from its JSON; None when the JSON does not hold one.
pub trait FromJson: Sized {
    fn from_json(value: Value) -> Option<Self>;

    /// Reads a `Self` from JSON bytes. A record overrides it to read its members straight from
    /// the bytes, with their names borrowed (`Members::parse`), not through a `Value` map, which
    /// allocates every member's name and a tree node for it.
    fn decode(bytes: &[u8]) -> Option<Self> {
        Self::from_json(serde_json::from_slice::<Value>(bytes).ok()?)
    }
}

/// Parses `bytes` and reads a `T` from them.
pub fn decode<T: FromJson>(bytes: &[u8]) -> Option<T> {
    T::decode(bytes)
}

/// A record's own members, read from an object: a record implements this, and `record!` makes
/// it a `FromJson` both ways (from a `Value` inside another record, from bytes at the top).
trait FromMembers: Sized {
    fn from_members(m: &mut Members<'_>) -> Option<Self>;
}

macro_rules! record {
    ($($record:ty),*) => {$(
        impl FromJson for $record {
            fn from_json(value: Value) -> Option<Self> {
                Self::from_members(&mut Members::of(value)?)
            }
            fn decode(bytes: &[u8]) -> Option<Self> {
                Self::from_members(&mut Members::parse(bytes)?)
            }
        }
    )*};
}

record!(Lease, FrozenRecord, IndexRecord, NodeLag, LogEntry, JobRecord, OpenTask, ProposeOutcome, NodeTaskInfo,
    TaskMiroir, TaskRecord, VerifyResult, DriftSchedule);

/// A JSON object's members, taken out one at a time (a record has a handful: a list is faster
/// to search than a map is to build).
struct Members<'de>(Vec<(Cow<'de, str>, Value)>);

impl<'de> Members<'de> {
    fn of(value: Value) -> Option<Members<'de>> {
        match value {
            Value::Object(members) => Some(Members(members.into_iter().map(|(k, v)| (Cow::Owned(k), v)).collect())),
            _ => None,
        }
    }

    /// The object at the top of `bytes`, its member names borrowed from them where they have no
    /// escapes. A name given twice keeps its last value, as a `Value` map does.
    fn parse(bytes: &'de [u8]) -> Option<Members<'de>> {
        serde_json::from_slice(bytes).ok()
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        let at = self.0.iter().rposition(|(k, _)| k == key)?;
        Some(self.0.swap_remove(at).1)
    }

    /// A member that must be there.
    fn required<T: FromJson>(&mut self, key: &str) -> Option<T> {
        T::from_json(self.take(key)?)
    }

    /// A member that may be missing or `null`: Some(None) then, None when it holds something else.
    fn optional<T: FromJson>(&mut self, key: &str) -> Option<Option<T>> {
        match self.take(key) {
            None | Some(Value::Null) => Some(None),
            Some(value) => T::from_json(value).map(Some),
        }
    }

    /// A member that takes `T`'s default when missing (`#[serde(default)]`).
    fn or_default<T: FromJson + Default>(&mut self, key: &str) -> Option<T> {
        match self.take(key) {
            None => Some(T::default()),
            Some(value) => T::from_json(value),
        }
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MembersVisitor)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::new();
        while let Some(Name(name)) = access.next_key()? {
            members.push((name, access.next_value::<Value>()?));
        }
        Ok(Members(members))
    }
}

/// A member's name, borrowed from the bytes unless it had to be unescaped.
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
        Ok(Name(Cow::Borrowed(name)))
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(Name(Cow::Owned(name.to_string())))
    }
}

impl FromJson for Value {
    fn from_json(value: Value) -> Option<Self> {
        Some(value)
    }
}

impl FromJson for u64 {
    fn from_json(value: Value) -> Option<Self> {
        value.as_u64()
    }
}

impl FromJson for u32 {
    fn from_json(value: Value) -> Option<Self> {
        u32::try_from(value.as_u64()?).ok()
    }
}

impl FromJson for u16 {
    fn from_json(value: Value) -> Option<Self> {
        u16::try_from(value.as_u64()?).ok()
    }
}

impl FromJson for bool {
    fn from_json(value: Value) -> Option<Self> {
        value.as_bool()
    }
}

impl FromJson for String {
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl<T: FromJson> FromJson for Option<T> {
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            value => T::from_json(value).map(Some),
        }
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::Array(items) => items.into_iter().map(T::from_json).collect(),
            _ => None,
        }
    }
}

impl FromJson for Map<String, Value> {
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::Object(members) => Some(members),
            _ => None,
        }
    }
}

impl<T: FromJson> FromJson for SortedMap<String, T> {
    fn from_json(value: Value) -> Option<Self> {
        let Value::Object(members) = value else { return None };
        members.into_iter().map(|(k, v)| Some((k, T::from_json(v)?))).collect()
    }
}

impl FromJson for Phase {
    fn from_json(value: Value) -> Option<Self> {
        Some(match value.as_str()? {
            "idle" => Phase::Idle,
            "propose" => Phase::Propose,
            "wait" => Phase::Wait,
            "verify" => Phase::Verify,
            "repair" => Phase::Repair,
            "frozen" => Phase::Frozen,
            _ => return None,
        })
    }
}

impl FromMembers for Lease {
    fn from_members(m: &mut Members<'_>) -> Option<Self> {
        Some(Lease { owner: m.required("owner")?, expires_ms: m.required("expires_ms")? })
    }
}

impl FromMembers for FrozenRecord {
    fn from_members(m: &mut Members<'_>) -> Option<Self> {
        Some(FrozenRecord {
            reason: m.required("reason")?,
            nodes: m.required("nodes")?,
            fingerprints: m.required("fingerprints")?,
            at_ms: m.required("at_ms")?,
            task_uid: m.optional("task_uid")?,
        })
    }
}

impl FromMembers for IndexRecord {
    fn from_members(m: &mut Members<'_>) -> Option<Self> {
        Some(IndexRecord {
            rev: m.or_default("rev")?,
            version: m.required("version")?,
            fingerprint: m.optional("fingerprint")?,
            node_versions: m.or_default("node_versions")?,
            node_fingerprints: m.or_default("node_fingerprints")?,
            phase: m.required("phase")?,
            frozen: m.optional("frozen")?,
            lease: m.optional("lease")?,
            queue: m.required("queue")?,
            queued_seq: m.or_default("queued_seq")?,
            out_of_sync: m.or_default("out_of_sync")?,
            swap_fence: m.optional("swap_fence")?,
        })
    }
}

impl FromMembers for NodeLag {
    fn from_members(m: &mut Members<'_>) -> Option<Self> {
        Some(NodeLag { why: m.required("why")?, replay_from: m.optional("replay_from")? })
    }
}

impl FromMembers for LogEntry {
    fn from_members(m: &mut Members<'_>) -> Option<Self> {
        Some(LogEntry { uid: m.required("uid")?, bytes: m.required("bytes")? })
    }
}

impl FromMembers for JobRecord {
    fn from_members(m: &mut Members<'_>) -> Option<Self> {
        Some(JobRecord {
            task_uid: m.required("task_uid")?,
            index: m.required("index")?,
            method: m.required("method")?,
            path: m.required("path")?,
            setting_key: m.optional("setting_key")?,
            body: m.optional("body")?,
            content_type: m.optional("content_type")?,
            authorization: m.optional("authorization")?,
            origin_worker: m.required("origin_worker")?,
            enqueued_ms: m.required("enqueued_ms")?,
            targets: m.optional("targets")?,
            drift_repair: m.or_default("drift_repair")?,
            lifts_freeze: m.or_default("lifts_freeze")?,
            mirror: m.optional("mirror")?,
            node_paths: m.optional("node_paths")?,
            resync: m.optional("resync")?,
            holds: m.optional("holds")?,
            deletes_later: m.optional("deletes_later")?,
            cancels_unsent: m.optional("cancels_unsent")?,
        })
    }
}

impl FromMembers for OpenTask {
    fn from_members(m: &mut Members<'_>) -> Option<Self> {
        Some(OpenTask {
            uid: m.required("uid")?,
            nodes: m.required("nodes")?,
            authorization: m.optional("authorization")?,
            kind: m.or_default("kind")?,
            deletes_later: m.or_default("deletes_later")?,
        })
    }
}

impl FromMembers for ProposeOutcome {
    fn from_members(m: &mut Members<'_>) -> Option<Self> {
        let kind: String = m.required("kind")?;
        if kind == "accepted" {
            return Some(ProposeOutcome::Accepted);
        }
        let (status, body, content_type) = (m.required("status")?, m.required("body")?, m.optional("content_type")?);
        match kind.as_str() {
            "answered" => Some(ProposeOutcome::Answered { status, body, content_type }),
            "rejected" => Some(ProposeOutcome::Rejected { status, body, content_type }),
            _ => None,
        }
    }
}

impl FromMembers for NodeTaskInfo {
    fn from_members(m: &mut Members<'_>) -> Option<Self> {
        Some(NodeTaskInfo {
            node: m.required("node")?,
            task_uid: m.optional("task_uid")?,
            status: m.optional("status")?,
            fingerprint: m.optional("fingerprint")?,
        })
    }
}

impl FromMembers for TaskMiroir {
    fn from_members(m: &mut Members<'_>) -> Option<Self> {
        Some(TaskMiroir {
            phase: m.required("phase")?,
            settings_version: m.optional("settings_version")?,
            nodes: m.required("nodes")?,
            repair_attempts: m.required("repair_attempts")?,
            frozen: m.required("frozen")?,
        })
    }
}

impl FromMembers for TaskRecord {
    fn from_members(m: &mut Members<'_>) -> Option<Self> {
        Some(TaskRecord {
            uid: m.required("uid")?,
            index_uid: m.required("index_uid")?,
            kind: match m.take("kind") {
                None => super::records::settings_update(),
                Some(kind) => String::from_json(kind)?,
            },
            status: m.required("status")?,
            details: m.required("details")?,
            error: m.optional("error")?,
            enqueued_ms: m.required("enqueued_ms")?,
            started_ms: m.optional("started_ms")?,
            finished_ms: m.optional("finished_ms")?,
            propose: m.optional("propose")?,
            miroir: m.required("miroir")?,
            auth_hash: m.optional("auth_hash")?,
            custom_metadata: m.optional("custom_metadata")?,
            canceled_by: m.optional("canceled_by")?,
        })
    }
}

impl FromMembers for VerifyResult {
    fn from_members(m: &mut Members<'_>) -> Option<Self> {
        Some(VerifyResult {
            at_ms: m.required("at_ms")?,
            converged: m.required("converged")?,
            fingerprints: m.required("fingerprints")?,
            detail: m.required("detail")?,
            repair_task: m.optional("repair_task")?,
        })
    }
}

impl FromMembers for DriftSchedule {
    fn from_members(m: &mut Members<'_>) -> Option<Self> {
        Some(DriftSchedule { lease: m.optional("lease")?, next_run_ms: m.required("next_run_ms")? })
    }
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use serde_json::json;

    use super::*;

    /// `text` reads the same by hand as with serde's derive (`records.rs` derives `Deserialize`
    /// in tests only, as this oracle): the same record, or refused by both.
    fn agree<T: FromJson + DeserializeOwned + PartialEq + std::fmt::Debug>(text: &str) -> Option<T> {
        let by_hand = decode::<T>(text.as_bytes());
        let by_serde = serde_json::from_str::<T>(text).ok();
        assert_eq!(by_hand, by_serde, "{text}");
        by_hand
    }

    /// A record written with serde reads back as itself.
    fn round_trip<T: FromJson + Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(record: &T) {
        let text = serde_json::to_string(record).unwrap();
        assert_eq!(agree::<T>(&text).as_ref(), Some(record), "{text}");
    }

    fn full_job() -> JobRecord {
        JobRecord {
            task_uid: 7,
            index: "movies".into(),
            method: "PATCH".into(),
            path: "/indexes/movies/settings?x=1".into(),
            setting_key: Some("stopWords".into()),
            body: Some("[\"the\",\"\\u00e9\"]".into()),
            content_type: Some("application/json".into()),
            authorization: Some("Bearer k".into()),
            origin_worker: "w1".into(),
            enqueued_ms: 12,
            targets: Some(vec!["n2".into()]),
            drift_repair: true,
            lifts_freeze: true,
            mirror: Some("documentAdditionOrUpdate".into()),
            node_paths: Some([("n1".to_string(), "/tasks/cancel?uids=3".to_string())].into()),
            resync: Some("n3".into()),
            holds: Some(vec!["a".into(), "b".into()]),
            deletes_later: Some(vec![4, 5]),
            cancels_unsent: Some(vec![6]),
        }
    }

    fn full_index() -> IndexRecord {
        IndexRecord {
            rev: 9,
            version: 3,
            fingerprint: Some("ab".into()),
            node_versions: [("n1".to_string(), 3), ("n2".to_string(), 2)].into(),
            node_fingerprints: [("n1".to_string(), Some("ab".to_string())), ("n2".to_string(), None)].into(),
            phase: Phase::Frozen,
            frozen: Some(FrozenRecord {
                reason: "repair failed".into(),
                nodes: vec!["n2".into()],
                fingerprints: [("n2".to_string(), None)].into(),
                at_ms: 44,
                task_uid: Some(7),
            }),
            lease: Some(Lease { owner: "w1".into(), expires_ms: 99 }),
            queue: vec![7, 8],
            queued_seq: 8,
            out_of_sync: [("n3".to_string(), NodeLag { why: "missed 6".into(), replay_from: Some(6) })].into(),
            swap_fence: Some(10),
        }
    }

    fn full_task() -> TaskRecord {
        TaskRecord {
            uid: 7,
            index_uid: "movies".into(),
            kind: "documentAdditionOrUpdate".into(),
            status: "failed".into(),
            details: json!({"receivedDocuments": 2, "ratio": 0.5}),
            error: Some(json!({"code": "x"})),
            enqueued_ms: 1,
            started_ms: Some(2),
            finished_ms: Some(3),
            propose: Some(ProposeOutcome::Rejected { status: 400, body: "{}".into(), content_type: None }),
            miroir: TaskMiroir {
                phase: "frozen".into(),
                settings_version: Some(3),
                nodes: vec![NodeTaskInfo { node: "n1".into(), task_uid: Some(4), status: Some("failed".into()), fingerprint: None }],
                repair_attempts: 2,
                frozen: true,
            },
            auth_hash: Some("h".into()),
            custom_metadata: Some("m".into()),
            canceled_by: Some(8),
        }
    }

    #[test]
    fn every_record_reads_back_as_written() {
        round_trip(&full_job());
        round_trip(&JobRecord::default());
        round_trip(&full_index());
        round_trip(&IndexRecord::default());
        round_trip(&full_task());
        for propose in [ProposeOutcome::Accepted, ProposeOutcome::Answered { status: 200, body: "b".into(), content_type: Some("t".into()) }] {
            round_trip(&TaskRecord { propose: Some(propose), error: None, ..full_task() });
        }
        round_trip(&OpenTask { uid: 1, nodes: [("n1".to_string(), 5)].into(), authorization: None, kind: "k".into(), deletes_later: vec![2] });
        round_trip(&VerifyResult { at_ms: 1, converged: false, fingerprints: [("n1".to_string(), None)].into(), detail: "d".into(), repair_task: Some(3) });
        round_trip(&DriftSchedule { lease: Some(Lease { owner: "w".into(), expires_ms: 2 }), next_run_ms: 5 });
        round_trip(&DriftSchedule::default());
        round_trip(&vec![LogEntry { uid: 1, bytes: 2 }]);
        round_trip(&SortedMap::<String, Vec<String>>::from([("n1".to_string(), vec!["movies".to_string()])]));
        round_trip(&vec!["a".to_string()]);
        round_trip(&u64::MAX);
        round_trip(&true);
    }

    #[test]
    fn missing_members_follow_serdes_rules() {
        // Defaults and absent options: a record written before a member existed.
        let old = agree::<IndexRecord>(r#"{"version":2,"fingerprint":null,"phase":"idle","queue":[],"extra":1}"#).unwrap();
        assert_eq!(old, IndexRecord { version: 2, ..IndexRecord::default() });
        let task = agree::<TaskRecord>(
            r#"{"uid":1,"index_uid":"i","status":"succeeded","details":null,"enqueued_ms":0,
                "miroir":{"phase":"idle","nodes":[],"repair_attempts":0,"frozen":false}}"#,
        )
        .unwrap();
        assert_eq!(task.kind, "settingsUpdate", "tasks written before the kind existed were settings tasks");
        assert_eq!(task.details, Value::Null);
        // Refused alike: a required member missing, a wrong type, a default member set to null,
        // an unknown phase, a number out of range.
        for text in [
            r#"{"fingerprint":null,"phase":"idle","queue":[]}"#,
            r#"{"version":"2","phase":"idle","queue":[]}"#,
            r#"{"version":2,"phase":"idle","queue":[],"rev":null}"#,
            r#"{"version":2,"phase":"paused","queue":[]}"#,
            r#"{"version":-1,"phase":"idle","queue":[]}"#,
            r#"{"version":2,"phase":"idle","queue":[1.5]}"#,
            r#"[2,"idle"]"#,
        ] {
            assert_eq!(decode::<IndexRecord>(text.as_bytes()), None, "{text}");
        }
        assert_eq!(agree::<TaskMiroir>(r#"{"phase":"p","nodes":[],"repair_attempts":4294967296,"frozen":false}"#), None);
        assert_eq!(agree::<ProposeOutcome>(r#"{"kind":"answered","status":70000,"body":""}"#), None);
        assert_eq!(agree::<ProposeOutcome>(r#"{"kind":"unknown"}"#), None);
    }
}
