//! The plugin configuration (docs/operations.md, configuration reference): parsed from the JSON Envoy hands to `on_configure`.
//!
//! Validation is done by hand over `serde_json::Value` rather than with serde derive, so that
//! every refusal names the exact dotted path of the offending key (`nodes[1].cluster`,
//! `settings_broadcast.bogus`) and a reason an operator can act on. A refused configuration makes
//! `on_configure` return false; nothing here can panic, whatever the input.
//!
//! Reasons never echo string values: an operator who mistakenly writes an API key where an
//! environment-variable *name* belongs must not find that key in Envoy's log.

use serde_json::{Map, Value};
use std::fmt;
use std::ops::RangeInclusive;

/// One Meilisearch node: its stable id (used in stat names and task records), the Envoy cluster
/// that reaches only that node (callouts name a cluster, never a host), and the `:authority`
/// sent on callouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub id: String,
    pub cluster: String,
    pub authority: String,
}

/// How a settings write is applied to the fleet (docs/architecture.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Propose to every node in parallel, then verify, commit or repair. The default.
    TwoPhase,
    /// Legacy: node by node, rolling back on the first failure.
    Sequential,
}

/// What the filter does with writes other than settings (docs/operations.md, "Writes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// Every write goes to every node, in one order per index, as one filter task. The default.
    Mirror,
    /// Only settings are broadcast; other writes go to one node (fleets replicated otherwise).
    Passthrough,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConfig {
    /// Bytes of writes kept per index for a node that missed them (catch-up log).
    pub log_max_bytes: u64,
}

pub const DEFAULT_MIRROR_LOG_MAX_BYTES: u64 = 67_108_864;

impl Default for MirrorConfig {
    fn default() -> Self {
        MirrorConfig { log_max_bytes: DEFAULT_MIRROR_LOG_MAX_BYTES }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastConfig {
    pub strategy: Strategy,
    pub propose_timeout_ms: u64,
    pub verify_timeout_s: u64,
    pub task_timeout_s: u64,
    pub max_repair_retries: u32,
    pub repair_backoff_base_ms: u64,
    pub freeze_writes_on_unrepairable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftConfig {
    pub interval_s: u64,
    pub auto_repair: bool,
    /// Settings reads in flight per node during a check (and so index bodies held at once).
    pub max_reads_in_flight: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub nodes: Vec<NodeConfig>,
    pub settings_broadcast: BroadcastConfig,
    pub settings_drift_check: DriftConfig,
    pub routing_header: String,
    pub task_uid_base: u64,
    pub task_retention: u64,
    pub admin_api_key_env: String,
    pub node_api_key_env: String,
    /// Request bodies the filter buffers (settings writes) larger than this are refused with 413.
    pub max_body_bytes: u64,
    pub writes: Writes,
    pub mirror: MirrorConfig,
    pub state: StateConfig,
}

/// Where the filter keeps its state (docs/operations.md, "Choosing a state backend").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    pub backend: Backend,
    /// How long a job's lease outlives its holder's last renewal.
    pub lease_ttl_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Envoy shared data: one gateway, state lost with it. The default.
    SharedData,
    Etcd(EtcdConfig),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// The Envoy cluster that reaches etcd's client port (its JSON gateway).
    pub cluster: String,
    /// Every key the filter keeps in etcd is under this prefix.
    pub prefix: String,
    /// How often each gateway looks for changes made by the others.
    pub poll_ms: u64,
    /// One call to etcd gives up after this long.
    pub timeout_ms: u64,
}

pub const DEFAULT_LEASE_TTL_MS: u64 = 10_000;
pub const DEFAULT_ETCD_PREFIX: &str = "miroir/v1/";
pub const DEFAULT_ETCD_POLL_MS: u64 = 250;
pub const DEFAULT_ETCD_TIMEOUT_MS: u64 = 1_000;

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig { backend: Backend::SharedData, lease_ttl_ms: DEFAULT_LEASE_TTL_MS }
    }
}

impl StateConfig {
    /// A lease is renewed five times per TTL, so one or two late renewals never lose it.
    pub fn lease_renew_ms(&self) -> u64 {
        self.lease_ttl_ms / 5
    }

    pub fn etcd(&self) -> Option<&EtcdConfig> {
        match &self.backend {
            Backend::Etcd(e) => Some(e),
            Backend::SharedData => None,
        }
    }
}

/// Why a configuration was refused: the dotted path of the key and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid plugin configuration: `{}`: {}",
            self.key, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

// Defaults (docs/operations.md, configuration reference).
pub const DEFAULT_PROPOSE_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_VERIFY_TIMEOUT_S: u64 = 60;
pub const DEFAULT_TASK_TIMEOUT_S: u64 = 3_600;
pub const DEFAULT_MAX_REPAIR_RETRIES: u32 = 3;
pub const DEFAULT_REPAIR_BACKOFF_BASE_MS: u64 = 1_000;
pub const DEFAULT_DRIFT_INTERVAL_S: u64 = 300;
pub const DEFAULT_DRIFT_READS_IN_FLIGHT: u64 = 4;
pub const DEFAULT_ROUTING_HEADER: &str = "x-miroir-node";
/// 2^31 − 2^24: the highest base that still leaves 2^24 uids below `i32::MAX`.
pub const DEFAULT_TASK_UID_BASE: u64 = 2_130_706_432;
pub const DEFAULT_TASK_RETENTION: u64 = 1_000;
pub const DEFAULT_ADMIN_API_KEY_ENV: &str = "MIROIR_ADMIN_API_KEY";
pub const DEFAULT_NODE_API_KEY_ENV: &str = "MIROIR_NODE_API_KEY";
/// 10 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10_485_760;

/// Limits. Node ids become stat-name labels, so they are short and label-safe.
pub const MAX_NODES: usize = 256;
const MAX_NODE_ID_LEN: usize = 64;
/// Every filter task uid must fit a signed 32-bit integer (SDKs store it as one) with room for
/// 2^24 tasks above the base.
const TASK_UID_SPACE: u64 = 1 << 24;
const TASK_UID_CEILING: u64 = 1 << 31;
/// The filter's uids must never meet a node's own task uids, which count up from 0: a base below
/// 2^30 (a billion tasks on one node) is refused.
const TASK_UID_FLOOR: u64 = 1 << 30;

/// Header names the filter must never overwrite on a client's request: the routing header is set
/// by the filter, so pointing it at one of these would corrupt the request or its credentials.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "x-miroir-min-settings-version",
    "x-miroir-settings-version",
    "x-miroir-settings-inconsistent",
    // The glue's hold header: set on a pinned read it would send the read to the hold route.
    "x-miroir-hold",
];

impl Default for BroadcastConfig {
    fn default() -> Self {
        BroadcastConfig {
            strategy: Strategy::TwoPhase,
            propose_timeout_ms: DEFAULT_PROPOSE_TIMEOUT_MS,
            verify_timeout_s: DEFAULT_VERIFY_TIMEOUT_S,
            task_timeout_s: DEFAULT_TASK_TIMEOUT_S,
            max_repair_retries: DEFAULT_MAX_REPAIR_RETRIES,
            repair_backoff_base_ms: DEFAULT_REPAIR_BACKOFF_BASE_MS,
            freeze_writes_on_unrepairable: true,
        }
    }
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            interval_s: DEFAULT_DRIFT_INTERVAL_S,
            auto_repair: true,
            max_reads_in_flight: DEFAULT_DRIFT_READS_IN_FLIGHT,
        }
    }
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::TwoPhase => "two_phase",
            Strategy::Sequential => "sequential",
        }
    }
}

/// The key path used when the problem is the document itself (not JSON, not an object).
const ROOT: &str = "(root)";

impl Config {
    /// Parses and validates the plugin configuration. Missing optional keys take their defaults;
    /// anything unknown, mistyped or out of range is refused.
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(err(
                ROOT,
                "is empty; the configuration must list at least `nodes`",
            ));
        }
        let document: Value = serde_json::from_slice(bytes)
            .map_err(|e| err(ROOT, format!("is not valid JSON ({e})")))?;
        let root = as_object(&document, ROOT)?;
        deny_unknown_keys(
            root,
            "",
            &[
                "nodes",
                "settings_broadcast",
                "settings_drift_check",
                "routing_header",
                "task_uid_base",
                "task_retention",
                "admin_api_key_env",
                "node_api_key_env",
                "max_body_bytes",
                "writes",
                "mirror",
                "state",
            ],
        )?;

        let nodes = parse_nodes(root.get("nodes"))?;
        let settings_broadcast = parse_broadcast(root.get("settings_broadcast"))?;
        let settings_drift_check = parse_drift(root.get("settings_drift_check"))?;

        let routing_header = optional_string(root, "", "routing_header", DEFAULT_ROUTING_HEADER)?;
        check_routing_header(&routing_header)?;

        // The base is checked against the ceiling without an addition that could overflow.
        let task_uid_base = optional_u64(
            root,
            "",
            "task_uid_base",
            DEFAULT_TASK_UID_BASE,
            TASK_UID_FLOOR..=TASK_UID_CEILING - TASK_UID_SPACE,
        )?;
        let task_retention = optional_u64(
            root,
            "",
            "task_retention",
            DEFAULT_TASK_RETENTION,
            1..=100_000,
        )?;

        let admin_api_key_env =
            optional_string(root, "", "admin_api_key_env", DEFAULT_ADMIN_API_KEY_ENV)?;
        check_env_name(&admin_api_key_env, "admin_api_key_env")?;
        let node_api_key_env =
            optional_string(root, "", "node_api_key_env", DEFAULT_NODE_API_KEY_ENV)?;
        check_env_name(&node_api_key_env, "node_api_key_env")?;

        let max_body_bytes = optional_u64(
            root,
            "",
            "max_body_bytes",
            DEFAULT_MAX_BODY_BYTES,
            1_024..=104_857_600,
        )?;

        let writes = match root.get("writes") {
            None => Writes::Mirror,
            Some(Value::String(s)) if s == "mirror" => Writes::Mirror,
            Some(Value::String(s)) if s == "passthrough" => Writes::Passthrough,
            Some(Value::String(_)) => return Err(err("writes", "must be \"mirror\" or \"passthrough\"")),
            Some(other) => return Err(wrong_type("writes", "a string", other)),
        };
        let mirror = parse_mirror(root.get("mirror"))?;
        let state = parse_state(root.get("state"))?;

        Ok(Config {
            nodes,
            settings_broadcast,
            settings_drift_check,
            routing_header,
            task_uid_base,
            task_retention,
            admin_api_key_env,
            node_api_key_env,
            max_body_bytes,
            writes,
            mirror,
            state,
        })
    }

    /// The node with this id, if configured.
    pub fn node(&self, id: &str) -> Option<&NodeConfig> {
        self.nodes.iter().find(|n| n.id == id)
    }
}

fn parse_nodes(value: Option<&Value>) -> Result<Vec<NodeConfig>, ConfigError> {
    let list = match value {
        None => return Err(err("nodes", "is required: list every Meilisearch node")),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(wrong_type("nodes", "an array of nodes", other)),
    };
    if list.is_empty() {
        return Err(err("nodes", "must list at least one node"));
    }
    if list.len() > MAX_NODES {
        return Err(err(
            "nodes",
            format!(
                "lists {} nodes; at most {MAX_NODES} are supported",
                list.len()
            ),
        ));
    }

    let mut nodes: Vec<NodeConfig> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let path = format!("nodes[{i}]");
        let object = as_object(item, &path)?;
        deny_unknown_keys(object, &path, &["id", "cluster", "authority"])?;
        let id = required_string(object, &path, "id")?;
        let cluster = required_string(object, &path, "cluster")?;
        let authority = required_string(object, &path, "authority")?;

        if id.len() > MAX_NODE_ID_LEN || !id.bytes().all(is_label_byte) {
            return Err(err(
                join(&path, "id"),
                format!(
                    "must be 1 to {MAX_NODE_ID_LEN} characters from [A-Za-z0-9_-] \
                     (node ids become stat labels)"
                ),
            ));
        }
        if !cluster.bytes().all(is_cluster_byte) {
            return Err(err(
                join(&path, "cluster"),
                "must be an Envoy cluster name using only [A-Za-z0-9_.|:-]",
            ));
        }
        // Sent as `:authority` on every callout: control characters or spaces would make the
        // header invalid (or smuggle another one), so only visible ASCII is accepted.
        if !authority.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(err(
                join(&path, "authority"),
                "must be a host[:port] made of visible ASCII characters (no spaces)",
            ));
        }
        if let Some(j) = nodes.iter().position(|n| n.id == id) {
            return Err(err(
                join(&path, "id"),
                format!("duplicates nodes[{j}].id; node ids must be unique"),
            ));
        }
        if let Some(j) = nodes.iter().position(|n| n.cluster == cluster) {
            return Err(err(
                join(&path, "cluster"),
                format!(
                    "duplicates nodes[{j}].cluster; each node needs its own cluster so a \
                     callout reaches exactly that node"
                ),
            ));
        }
        nodes.push(NodeConfig {
            id,
            cluster,
            authority,
        });
    }
    Ok(nodes)
}

fn parse_broadcast(value: Option<&Value>) -> Result<BroadcastConfig, ConfigError> {
    const PATH: &str = "settings_broadcast";
    let Some(value) = value else {
        return Ok(BroadcastConfig::default());
    };
    let object = as_object(value, PATH)?;
    deny_unknown_keys(
        object,
        PATH,
        &[
            "strategy",
            "propose_timeout_ms",
            "verify_timeout_s",
            "task_timeout_s",
            "max_repair_retries",
            "repair_backoff_base_ms",
            "freeze_writes_on_unrepairable",
        ],
    )?;

    let strategy = match object.get("strategy") {
        None => Strategy::TwoPhase,
        Some(Value::String(s)) if s == "two_phase" => Strategy::TwoPhase,
        Some(Value::String(s)) if s == "sequential" => Strategy::Sequential,
        Some(Value::String(_)) => {
            return Err(err(
                join(PATH, "strategy"),
                "must be \"two_phase\" or \"sequential\"",
            ))
        }
        Some(other) => return Err(wrong_type(&join(PATH, "strategy"), "a string", other)),
    };
    let max_repair_retries = optional_u64(
        object,
        PATH,
        "max_repair_retries",
        u64::from(DEFAULT_MAX_REPAIR_RETRIES),
        0..=100,
    )?;
    let max_repair_retries = u32::try_from(max_repair_retries).map_err(|_| {
        err(
            join(PATH, "max_repair_retries"),
            "must be between 0 and 100",
        )
    })?;

    Ok(BroadcastConfig {
        strategy,
        propose_timeout_ms: optional_u64(
            object,
            PATH,
            "propose_timeout_ms",
            DEFAULT_PROPOSE_TIMEOUT_MS,
            1..=600_000,
        )?,
        verify_timeout_s: optional_u64(
            object,
            PATH,
            "verify_timeout_s",
            DEFAULT_VERIFY_TIMEOUT_S,
            1..=3_600,
        )?,
        task_timeout_s: optional_u64(
            object,
            PATH,
            "task_timeout_s",
            DEFAULT_TASK_TIMEOUT_S,
            1..=604_800,
        )?,
        max_repair_retries,
        repair_backoff_base_ms: optional_u64(
            object,
            PATH,
            "repair_backoff_base_ms",
            DEFAULT_REPAIR_BACKOFF_BASE_MS,
            1..=3_600_000,
        )?,
        freeze_writes_on_unrepairable: optional_bool(
            object,
            PATH,
            "freeze_writes_on_unrepairable",
            true,
        )?,
    })
}

fn parse_drift(value: Option<&Value>) -> Result<DriftConfig, ConfigError> {
    const PATH: &str = "settings_drift_check";
    let Some(value) = value else {
        return Ok(DriftConfig::default());
    };
    let object = as_object(value, PATH)?;
    deny_unknown_keys(object, PATH, &["interval_s", "auto_repair", "max_reads_in_flight"])?;
    Ok(DriftConfig {
        interval_s: optional_u64(
            object,
            PATH,
            "interval_s",
            DEFAULT_DRIFT_INTERVAL_S,
            1..=86_400,
        )?,
        auto_repair: optional_bool(object, PATH, "auto_repair", true)?,
        max_reads_in_flight: optional_u64(
            object,
            PATH,
            "max_reads_in_flight",
            DEFAULT_DRIFT_READS_IN_FLIGHT,
            1..=64,
        )?,
    })
}

fn parse_mirror(value: Option<&Value>) -> Result<MirrorConfig, ConfigError> {
    const PATH: &str = "mirror";
    let Some(value) = value else {
        return Ok(MirrorConfig::default());
    };
    let object = as_object(value, PATH)?;
    deny_unknown_keys(object, PATH, &["log_max_bytes"])?;
    Ok(MirrorConfig {
        log_max_bytes: optional_u64(object, PATH, "log_max_bytes", DEFAULT_MIRROR_LOG_MAX_BYTES, 0..=1_073_741_824)?,
    })
}

fn parse_state(value: Option<&Value>) -> Result<StateConfig, ConfigError> {
    const PATH: &str = "state";
    let Some(value) = value else {
        return Ok(StateConfig::default());
    };
    let object = as_object(value, PATH)?;
    deny_unknown_keys(object, PATH, &["backend", "cluster", "prefix", "lease_ttl_ms", "poll_ms", "timeout_ms"])?;
    let lease_ttl_ms = optional_u64(object, PATH, "lease_ttl_ms", DEFAULT_LEASE_TTL_MS, 1_000..=600_000)?;
    let backend = match optional_string(object, PATH, "backend", "shared_data")?.as_str() {
        "shared_data" => {
            if let Some(key) = ["cluster", "prefix", "poll_ms", "timeout_ms"].iter().find(|k| object.contains_key(**k)) {
                return Err(err(join(PATH, key), "is only for `\"backend\": \"etcd\"`"));
            }
            Backend::SharedData
        }
        "etcd" => {
            if !object.contains_key("cluster") {
                return Err(err("state.cluster", "is required with `\"backend\": \"etcd\"`: the Envoy cluster that reaches etcd"));
            }
            let prefix = optional_string(object, PATH, "prefix", DEFAULT_ETCD_PREFIX)?;
            if !prefix.ends_with('/') || prefix.len() > 128 || !prefix.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(err("state.prefix", "must be printable ASCII, at most 128 bytes, ending with `/`"));
            }
            Backend::Etcd(EtcdConfig {
                cluster: required_string(object, PATH, "cluster")?,
                prefix,
                poll_ms: optional_u64(object, PATH, "poll_ms", DEFAULT_ETCD_POLL_MS, 50..=1_000)?,
                timeout_ms: optional_u64(object, PATH, "timeout_ms", DEFAULT_ETCD_TIMEOUT_MS, 100..=10_000)?,
            })
        }
        _ => return Err(err("state.backend", "must be \"shared_data\" or \"etcd\"")),
    };
    Ok(StateConfig { backend, lease_ttl_ms })
}

fn check_routing_header(name: &str) -> Result<(), ConfigError> {
    if name.starts_with(':') {
        return Err(err(
            "routing_header",
            "must not be a pseudo-header (names starting with `:`)",
        ));
    }
    // Envoy stores header names lower-case; an upper-case name would never match the route's
    // `cluster_header`, so it is refused rather than silently lower-cased.
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(err(
            "routing_header",
            "must be a lower-case HTTP header name using only [a-z0-9-]",
        ));
    }
    // Every `content-*` header describes the body (docs/operations.md reserves them all).
    if RESERVED_HEADERS.contains(&name) || name.starts_with("content-") {
        return Err(err(
            "routing_header",
            "names a header the filter must not overwrite on client requests; pick a dedicated \
             name such as \"x-miroir-node\"",
        ));
    }
    Ok(())
}

fn check_env_name(name: &str, key: &str) -> Result<(), ConfigError> {
    let mut bytes = name.bytes();
    let first_ok = matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_');
    if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(err(
            key,
            "must be the NAME of an environment variable ([A-Za-z_][A-Za-z0-9_]*), never the key \
             itself",
        ));
    }
    Ok(())
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn is_cluster_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'|' | b':' | b'-')
}

// --- small typed accessors that report the full key path ---

fn err(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        reason: reason.into(),
    }
}

/// `parent.key`, or just `key` at the top level.
fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(path: &str, expected: &str, found: &Value) -> ConfigError {
    err(
        path,
        format!("expected {expected}, found {}", json_type_name(found)),
    )
}

fn as_object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, ConfigError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(wrong_type(path, "an object", other)),
    }
}

fn deny_unknown_keys(
    object: &Map<String, Value>,
    path: &str,
    allowed: &[&str],
) -> Result<(), ConfigError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(err(
            join(path, unknown),
            format!("unknown key; allowed here: {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn required_string(
    object: &Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<String, ConfigError> {
    let full = join(path, key);
    match object.get(key) {
        None => Err(err(full, "is required")),
        Some(Value::String(s)) if s.is_empty() => Err(err(full, "must not be empty")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(wrong_type(&full, "a string", other)),
    }
}

fn optional_string(
    object: &Map<String, Value>,
    path: &str,
    key: &str,
    default: &str,
) -> Result<String, ConfigError> {
    match object.get(key) {
        None => Ok(default.to_string()),
        Some(_) => required_string(object, path, key),
    }
}

/// What a JSON number means for an unsigned setting.
enum WholeNumber {
    Value(u64),
    Negative,
    Fractional,
    TooLarge,
}

/// Integers are taken as they are. A float with no fractional part (`5000.0`, `1e3`) is accepted
/// too: Istio hands `pluginConfig` over as a protobuf `Struct`, whose numbers are doubles, and
/// some tools print those with a `.0`. Above 2^53 a double is no longer exact, so it is refused.
fn whole_number(n: &serde_json::Number) -> WholeNumber {
    const EXACT_DOUBLE_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53
    if let Some(v) = n.as_u64() {
        return WholeNumber::Value(v);
    }
    if n.is_i64() {
        return WholeNumber::Negative;
    }
    match n.as_f64() {
        Some(f) if !f.is_finite() || f.fract() != 0.0 => WholeNumber::Fractional,
        Some(f) if f < 0.0 => WholeNumber::Negative,
        // Exact: `f` is whole, non-negative and at most 2^53.
        Some(f) if f <= EXACT_DOUBLE_LIMIT => WholeNumber::Value(f as u64),
        Some(_) => WholeNumber::TooLarge,
        None => WholeNumber::Fractional,
    }
}

fn optional_u64(
    object: &Map<String, Value>,
    path: &str,
    key: &str,
    default: u64,
    range: RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let full = join(path, key);
    let bounds = format!("must be between {} and {}", range.start(), range.end());
    match object.get(key) {
        None => Ok(default),
        Some(Value::Number(n)) => match whole_number(n) {
            WholeNumber::Value(v) if range.contains(&v) => Ok(v),
            WholeNumber::Value(v) => Err(err(full, format!("{bounds}, got {v}"))),
            WholeNumber::Negative | WholeNumber::TooLarge => Err(err(full, bounds)),
            WholeNumber::Fractional => Err(err(
                full,
                "expected a non-negative integer, found a fractional number",
            )),
        },
        Some(other) => Err(wrong_type(&full, "a non-negative integer", other)),
    }
}

fn optional_bool(
    object: &Map<String, Value>,
    path: &str,
    key: &str,
    default: bool,
) -> Result<bool, ConfigError> {
    match object.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(wrong_type(&join(path, key), "a boolean", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full example of docs/operations.md (configuration reference), every key spelled out with its default.
    const DESIGN_EXAMPLE: &str = r#"{
      "nodes": [{"id": "node-0", "cluster": "meili_node_0", "authority": "node-0:7700"}],
      "settings_broadcast": {
        "strategy": "two_phase", "propose_timeout_ms": 5000, "verify_timeout_s": 60,
        "task_timeout_s": 3600, "max_repair_retries": 3, "repair_backoff_base_ms": 1000,
        "freeze_writes_on_unrepairable": true
      },
      "settings_drift_check": {"interval_s": 300, "auto_repair": true},
      "routing_header": "x-miroir-node",
      "task_uid_base": 2130706432, "task_retention": 1000,
      "admin_api_key_env": "MIROIR_ADMIN_API_KEY", "node_api_key_env": "MIROIR_NODE_API_KEY"
    }"#;

    const ONE_NODE: &str = r#"{"id":"node-0","cluster":"meili_node_0","authority":"node-0:7700"}"#;

    fn node(i: usize) -> String {
        format!(r#"{{"id":"node-{i}","cluster":"meili_node_{i}","authority":"node-{i}:7700"}}"#)
    }

    /// A valid document with one node and `extra` top-level members appended.
    fn with(extra: &str) -> String {
        if extra.is_empty() {
            format!(r#"{{"nodes":[{ONE_NODE}]}}"#)
        } else {
            format!(r#"{{"nodes":[{ONE_NODE}],{extra}}}"#)
        }
    }

    fn with_nodes(nodes: &[&str]) -> String {
        format!(r#"{{"nodes":[{}]}}"#, nodes.join(","))
    }

    fn defaults_with_one_node() -> Config {
        Config {
            nodes: vec![NodeConfig {
                id: "node-0".into(),
                cluster: "meili_node_0".into(),
                authority: "node-0:7700".into(),
            }],
            settings_broadcast: BroadcastConfig::default(),
            settings_drift_check: DriftConfig::default(),
            routing_header: "x-miroir-node".into(),
            task_uid_base: 2_130_706_432,
            task_retention: 1_000,
            admin_api_key_env: "MIROIR_ADMIN_API_KEY".into(),
            node_api_key_env: "MIROIR_NODE_API_KEY".into(),
            max_body_bytes: 10_485_760,
            writes: Writes::Mirror,
            mirror: MirrorConfig::default(),
            state: StateConfig::default(),
        }
    }

    #[test]
    fn design_example_and_minimal_document_give_the_documented_defaults() {
        let expected = defaults_with_one_node();
        assert_eq!(
            Config::parse(DESIGN_EXAMPLE.as_bytes()),
            Ok(expected.clone())
        );
        assert_eq!(Config::parse(with("").as_bytes()), Ok(expected.clone()));
        // Spot-check the defaults against the literal numbers of docs/operations.md (configuration reference), not only the consts.
        let b = &expected.settings_broadcast;
        assert_eq!(b.strategy, Strategy::TwoPhase);
        assert_eq!(
            (b.propose_timeout_ms, b.verify_timeout_s, b.task_timeout_s),
            (5000, 60, 3600)
        );
        assert_eq!((b.max_repair_retries, b.repair_backoff_base_ms), (3, 1000));
        assert!(b.freeze_writes_on_unrepairable);
        assert_eq!(expected.settings_drift_check.interval_s, 300);
        assert!(expected.settings_drift_check.auto_repair);
    }

    /// Inputs that must be accepted, with a check on the field they change.
    #[test]
    fn accepted_inputs() {
        type Check = fn(&Config) -> bool;
        let three = with_nodes(&[&node(0), &node(1), &node(2)]);
        let max_nodes: Vec<String> = (0..MAX_NODES).map(node).collect();
        let max_nodes = with_nodes(&max_nodes.iter().map(String::as_str).collect::<Vec<_>>());
        let istio = with_nodes(&[
            r#"{"id":"meili-0","cluster":"outbound|7700||meili-0.search.svc.cluster.local","authority":"meili-0.search.svc.cluster.local:7700"}"#,
        ]);
        let long_id = format!(
            r#"{{"nodes":[{{"id":"{}","cluster":"c","authority":"a"}}]}}"#,
            "a".repeat(64)
        );
        let cases: Vec<(String, Check)> = vec![
            (three, |c| {
                c.nodes.len() == 3 && c.nodes[2].cluster == "meili_node_2"
            }),
            (max_nodes, |c| c.nodes.len() == 256),
            (istio, |c| {
                c.nodes[0].cluster == "outbound|7700||meili-0.search.svc.cluster.local"
            }),
            (long_id, |c| c.nodes[0].id.len() == 64),
            (
                with(r#""settings_broadcast":{"strategy":"sequential"}"#),
                |c| {
                    c.settings_broadcast.strategy == Strategy::Sequential
                        && c.settings_broadcast.propose_timeout_ms == 5000
                },
            ),
            (with(r#""settings_broadcast":{}"#), |c| {
                c.settings_broadcast == BroadcastConfig::default()
            }),
            (
                with(r#""settings_broadcast":{"max_repair_retries":0}"#),
                |c| c.settings_broadcast.max_repair_retries == 0,
            ),
            (with(r#""state":{"backend":"shared_data","lease_ttl_ms":3000}"#), |c| {
                c.state.backend == Backend::SharedData && c.state.lease_ttl_ms == 3000 && c.state.lease_renew_ms() == 600
            }),
            (with(r#""state":{"backend":"etcd","cluster":"etcd"}"#), |c| {
                c.state.etcd().is_some_and(|e| e.cluster == "etcd" && e.prefix == "miroir/v1/" && e.poll_ms == 250 && e.timeout_ms == 1000)
                    && c.state.lease_ttl_ms == 10_000
            }),
            (with(r#""state":{"backend":"etcd","cluster":"e","prefix":"a/b/","poll_ms":50,"timeout_ms":10000}"#), |c| {
                c.state.etcd().is_some_and(|e| e.prefix == "a/b/" && e.poll_ms == 50 && e.timeout_ms == 10_000)
            }),
            (
                with(r#""settings_broadcast":{"max_repair_retries":100}"#),
                |c| c.settings_broadcast.max_repair_retries == 100,
            ),
            (
                with(r#""settings_broadcast":{"propose_timeout_ms":1}"#),
                |c| c.settings_broadcast.propose_timeout_ms == 1,
            ),
            (
                with(r#""settings_broadcast":{"propose_timeout_ms":600000}"#),
                |c| c.settings_broadcast.propose_timeout_ms == 600_000,
            ),
            (
                with(r#""settings_broadcast":{"verify_timeout_s":3600}"#),
                |c| c.settings_broadcast.verify_timeout_s == 3600,
            ),
            (
                with(r#""settings_broadcast":{"task_timeout_s":604800}"#),
                |c| c.settings_broadcast.task_timeout_s == 604_800,
            ),
            (
                with(r#""settings_broadcast":{"repair_backoff_base_ms":3600000}"#),
                |c| c.settings_broadcast.repair_backoff_base_ms == 3_600_000,
            ),
            (
                with(r#""settings_broadcast":{"freeze_writes_on_unrepairable":false}"#),
                |c| !c.settings_broadcast.freeze_writes_on_unrepairable,
            ),
            (
                with(r#""settings_drift_check":{"interval_s":86400,"auto_repair":false}"#),
                |c| {
                    c.settings_drift_check.interval_s == 86_400
                        && !c.settings_drift_check.auto_repair
                },
            ),
            (with(r#""settings_drift_check":{"interval_s":1}"#), |c| {
                c.settings_drift_check.interval_s == 1 && c.settings_drift_check.auto_repair
            }),
            (with(r#""routing_header":"x-node-7""#), |c| {
                c.routing_header == "x-node-7"
            }),
            (with(r#""writes":"passthrough""#), |c| c.writes == Writes::Passthrough),
            (with(r#""writes":"mirror","mirror":{"log_max_bytes":0}"#), |c| {
                c.writes == Writes::Mirror && c.mirror.log_max_bytes == 0
            }),
            (with(r#""task_uid_base":1073741824"#), |c| c.task_uid_base == 1 << 30),
            (with(r#""task_uid_base":2130706432"#), |c| {
                c.task_uid_base == 2_130_706_432
            }),
            (with(r#""task_retention":1"#), |c| c.task_retention == 1),
            (with(r#""task_retention":100000"#), |c| {
                c.task_retention == 100_000
            }),
            (with(r#""max_body_bytes":1024"#), |c| {
                c.max_body_bytes == 1024
            }),
            (with(r#""max_body_bytes":104857600"#), |c| {
                c.max_body_bytes == 104_857_600
            }),
            (with(r#""admin_api_key_env":"_K9""#), |c| {
                c.admin_api_key_env == "_K9"
            }),
            (with(r#""node_api_key_env":"meili_key""#), |c| {
                c.node_api_key_env == "meili_key"
            }),
            // Whole numbers written as doubles (Istio's protobuf Struct) are accepted.
            (
                with(
                    r#""settings_broadcast":{"propose_timeout_ms":5000.0,"max_repair_retries":1e1}"#,
                ),
                |c| {
                    c.settings_broadcast.propose_timeout_ms == 5000
                        && c.settings_broadcast.max_repair_retries == 10
                },
            ),
            (with(r#""task_uid_base":2.130706432e9"#), |c| {
                c.task_uid_base == 2_130_706_432
            }),
            // Whitespace around the document is fine.
            (format!("\n  {}  \n", with("")), |c| c.nodes.len() == 1),
        ];
        for (input, check) in cases {
            match Config::parse(input.as_bytes()) {
                Ok(config) => assert!(check(&config), "check failed for {input}: {config:?}"),
                Err(e) => panic!("{input} was refused: {e}"),
            }
        }
    }

    /// Inputs that must be refused: (input, exact key path, substring of the reason).
    #[test]
    fn refused_inputs() {
        let too_many: Vec<String> = (0..=MAX_NODES).map(node).collect();
        let too_many = with_nodes(&too_many.iter().map(String::as_str).collect::<Vec<_>>());
        let long_id = format!(
            r#"{{"nodes":[{{"id":"{}","cluster":"c","authority":"a"}}]}}"#,
            "a".repeat(65)
        );
        let n = |id: &str, cluster: &str, authority: &str| {
            with_nodes(&[&format!(
                r#"{{"id":{id},"cluster":{cluster},"authority":{authority}}}"#
            )])
        };
        let cases: Vec<(String, &str, &str)> = vec![
            // The document itself.
            (String::new(), "(root)", "empty"),
            ("   \n".into(), "(root)", "empty"),
            ("{".into(), "(root)", "not valid JSON"),
            ("nodes: []".into(), "(root)", "not valid JSON"),
            ("[]".into(), "(root)", "expected an object, found an array"),
            ("null".into(), "(root)", "found null"),
            ("\"x\"".into(), "(root)", "found a string"),
            (r#"{"nodes":[],"bogus":1}"#.into(), "bogus", "unknown key"),
            (with(r#""Nodes":[]"#), "Nodes", "unknown key"),
            // nodes
            ("{}".into(), "nodes", "is required"),
            (r#"{"nodes":{}}"#.into(), "nodes", "expected an array"),
            (r#"{"nodes":null}"#.into(), "nodes", "found null"),
            (r#"{"nodes":[]}"#.into(), "nodes", "at least one node"),
            (too_many, "nodes", "at most 256"),
            (
                r#"{"nodes":["node-0"]}"#.into(),
                "nodes[0]",
                "expected an object",
            ),
            (
                with_nodes(&[
                    &node(0),
                    r#"{"id":"n1","cluster":"c1","authority":"a","weight":1}"#,
                ]),
                "nodes[1].weight",
                "unknown key",
            ),
            (
                with_nodes(&[r#"{"cluster":"c","authority":"a"}"#]),
                "nodes[0].id",
                "is required",
            ),
            (
                with_nodes(&[&node(0), r#"{"id":"n1","authority":"a"}"#]),
                "nodes[1].cluster",
                "is required",
            ),
            (
                with_nodes(&[r#"{"id":"n","cluster":"c"}"#]),
                "nodes[0].authority",
                "is required",
            ),
            (
                n(r#""""#, r#""c""#, r#""a""#),
                "nodes[0].id",
                "must not be empty",
            ),
            (
                n(r#""n""#, r#""""#, r#""a""#),
                "nodes[0].cluster",
                "must not be empty",
            ),
            (
                n(r#""n""#, r#""c""#, r#""""#),
                "nodes[0].authority",
                "must not be empty",
            ),
            (
                n("7", r#""c""#, r#""a""#),
                "nodes[0].id",
                "expected a string, found a number",
            ),
            (
                n(r#""n""#, "[]", r#""a""#),
                "nodes[0].cluster",
                "expected a string",
            ),
            (
                n(r#""n""#, r#""c""#, "null"),
                "nodes[0].authority",
                "expected a string",
            ),
            (
                n(r#""node.0""#, r#""c""#, r#""a""#),
                "nodes[0].id",
                "[A-Za-z0-9_-]",
            ),
            (
                n(r#""node 0""#, r#""c""#, r#""a""#),
                "nodes[0].id",
                "[A-Za-z0-9_-]",
            ),
            (
                n(r#""nöde""#, r#""c""#, r#""a""#),
                "nodes[0].id",
                "[A-Za-z0-9_-]",
            ),
            (long_id, "nodes[0].id", "1 to 64"),
            (
                n(r#""n""#, r#""meili node""#, r#""a""#),
                "nodes[0].cluster",
                "[A-Za-z0-9_.|:-]",
            ),
            (
                n(r#""n""#, r#""meili/node""#, r#""a""#),
                "nodes[0].cluster",
                "[A-Za-z0-9_.|:-]",
            ),
            (
                n(r#""n""#, r#""c""#, r#""node-0:7700\r\nx: y""#),
                "nodes[0].authority",
                "visible ASCII",
            ),
            (
                n(r#""n""#, r#""c""#, r#""node 0""#),
                "nodes[0].authority",
                "visible ASCII",
            ),
            (
                with_nodes(&[
                    &node(0),
                    &node(1),
                    r#"{"id":"node-0","cluster":"other","authority":"a"}"#,
                ]),
                "nodes[2].id",
                "duplicates nodes[0].id",
            ),
            (
                with_nodes(&[
                    &node(0),
                    r#"{"id":"node-1","cluster":"meili_node_0","authority":"a"}"#,
                ]),
                "nodes[1].cluster",
                "duplicates nodes[0].cluster",
            ),
            // settings_broadcast
            (
                with(r#""settings_broadcast":[]"#),
                "settings_broadcast",
                "expected an object",
            ),
            (
                with(r#""settings_broadcast":null"#),
                "settings_broadcast",
                "found null",
            ),
            (
                with(r#""settings_broadcast":{"bogus":1}"#),
                "settings_broadcast.bogus",
                "unknown key",
            ),
            (
                with(r#""settings_broadcast":{"strategy":"parallel"}"#),
                "settings_broadcast.strategy",
                "\"two_phase\" or \"sequential\"",
            ),
            (
                with(r#""settings_broadcast":{"strategy":"TWO_PHASE"}"#),
                "settings_broadcast.strategy",
                "\"two_phase\" or \"sequential\"",
            ),
            (
                with(r#""settings_broadcast":{"strategy":1}"#),
                "settings_broadcast.strategy",
                "expected a string",
            ),
            (
                with(r#""settings_broadcast":{"propose_timeout_ms":0}"#),
                "settings_broadcast.propose_timeout_ms",
                "between 1 and 600000, got 0",
            ),
            (
                with(r#""settings_broadcast":{"propose_timeout_ms":600001}"#),
                "settings_broadcast.propose_timeout_ms",
                "between 1 and 600000",
            ),
            (
                with(r#""settings_broadcast":{"propose_timeout_ms":"5000"}"#),
                "settings_broadcast.propose_timeout_ms",
                "expected a non-negative integer, found a string",
            ),
            (
                with(r#""settings_broadcast":{"propose_timeout_ms":5000.5}"#),
                "settings_broadcast.propose_timeout_ms",
                "found a fractional number",
            ),
            (
                with(r#""settings_broadcast":{"propose_timeout_ms":-2.5}"#),
                "settings_broadcast.propose_timeout_ms",
                "found a fractional number",
            ),
            (
                with(r#""settings_broadcast":{"propose_timeout_ms":-5000.0}"#),
                "settings_broadcast.propose_timeout_ms",
                "between 1 and 600000",
            ),
            (
                with(r#""settings_broadcast":{"verify_timeout_s":0}"#),
                "settings_broadcast.verify_timeout_s",
                "between 1 and 3600",
            ),
            (
                with(r#""settings_broadcast":{"verify_timeout_s":3601}"#),
                "settings_broadcast.verify_timeout_s",
                "between 1 and 3600",
            ),
            (
                with(r#""settings_broadcast":{"task_timeout_s":0}"#),
                "settings_broadcast.task_timeout_s",
                "between 1 and 604800",
            ),
            (
                with(r#""settings_broadcast":{"task_timeout_s":604801}"#),
                "settings_broadcast.task_timeout_s",
                "between 1 and 604800",
            ),
            (
                with(r#""settings_broadcast":{"max_repair_retries":101}"#),
                "settings_broadcast.max_repair_retries",
                "between 0 and 100",
            ),
            (
                with(r#""settings_broadcast":{"max_repair_retries":-1}"#),
                "settings_broadcast.max_repair_retries",
                "between 0 and 100",
            ),
            (
                with(r#""settings_broadcast":{"max_repair_retries":18446744073709551616}"#),
                "settings_broadcast.max_repair_retries",
                "between 0 and 100",
            ),
            (
                with(r#""settings_broadcast":{"repair_backoff_base_ms":0}"#),
                "settings_broadcast.repair_backoff_base_ms",
                "between 1 and 3600000",
            ),
            (
                with(r#""settings_broadcast":{"repair_backoff_base_ms":3600001}"#),
                "settings_broadcast.repair_backoff_base_ms",
                "between 1 and 3600000",
            ),
            (
                with(r#""settings_broadcast":{"freeze_writes_on_unrepairable":"yes"}"#),
                "settings_broadcast.freeze_writes_on_unrepairable",
                "expected a boolean, found a string",
            ),
            (
                with(r#""settings_broadcast":{"freeze_writes_on_unrepairable":1}"#),
                "settings_broadcast.freeze_writes_on_unrepairable",
                "expected a boolean, found a number",
            ),
            // settings_drift_check
            (
                with(r#""settings_drift_check":true"#),
                "settings_drift_check",
                "expected an object",
            ),
            (
                with(r#""settings_drift_check":{"interval":300}"#),
                "settings_drift_check.interval",
                "unknown key",
            ),
            (
                with(r#""settings_drift_check":{"interval_s":0}"#),
                "settings_drift_check.interval_s",
                "between 1 and 86400",
            ),
            (
                with(r#""settings_drift_check":{"interval_s":86401}"#),
                "settings_drift_check.interval_s",
                "between 1 and 86400",
            ),
            (
                with(r#""settings_drift_check":{"auto_repair":null}"#),
                "settings_drift_check.auto_repair",
                "expected a boolean, found null",
            ),
            // routing_header
            (
                with(r#""routing_header":"""#),
                "routing_header",
                "must not be empty",
            ),
            (
                with(r#""routing_header":"X-Miroir-Node""#),
                "routing_header",
                "lower-case",
            ),
            (
                with(r#""routing_header":"x miroir""#),
                "routing_header",
                "lower-case",
            ),
            (
                with(r#""routing_header":"x_miroir""#),
                "routing_header",
                "[a-z0-9-]",
            ),
            (
                with(r#""routing_header":":authority""#),
                "routing_header",
                "pseudo-header",
            ),
            (
                with(r#""routing_header":"authorization""#),
                "routing_header",
                "must not overwrite",
            ),
            (
                with(r#""routing_header":"host""#),
                "routing_header",
                "must not overwrite",
            ),
            (
                with(r#""routing_header":"x-miroir-min-settings-version""#),
                "routing_header",
                "must not overwrite",
            ),
            // Found by tests/prop_config.rs: the reference reserves every `content-*` header,
            // and the hold header would route a pinned read to the hold route.
            (
                with(r#""routing_header":"content-language""#),
                "routing_header",
                "must not overwrite",
            ),
            (
                with(r#""routing_header":"x-miroir-hold""#),
                "routing_header",
                "must not overwrite",
            ),
            (
                with(r#""routing_header":7"#),
                "routing_header",
                "expected a string",
            ),
            // task uids
            (
                with(r#""task_uid_base":0"#),
                "task_uid_base",
                "between 1073741824 and 2130706432",
            ),
            (
                with(r#""task_uid_base":1000"#),
                "task_uid_base",
                "between 1073741824 and 2130706432",
            ),
            (
                with(r#""task_uid_base":2130706433"#),
                "task_uid_base",
                "between 1073741824 and 2130706432",
            ),
            (
                with(r#""task_uid_base":18446744073709551615"#),
                "task_uid_base",
                "between 1073741824",
            ),
            (
                with(r#""settings_drift_check":{"max_reads_in_flight":0}"#),
                "settings_drift_check.max_reads_in_flight",
                "between 1 and 64",
            ),
            (
                with(r#""task_uid_base":1e300"#),
                "task_uid_base",
                "between 1",
            ),
            (
                with(r#""task_uid_base":"2130706432""#),
                "task_uid_base",
                "expected a non-negative integer",
            ),
            (
                with(r#""task_retention":0"#),
                "task_retention",
                "between 1 and 100000",
            ),
            (
                with(r#""task_retention":100001"#),
                "task_retention",
                "between 1 and 100000",
            ),
            // env names
            (
                with(r#""admin_api_key_env":"""#),
                "admin_api_key_env",
                "must not be empty",
            ),
            (with(r#""writes":"Mirror""#), "writes", "\"mirror\" or \"passthrough\""),
            (with(r#""writes":true"#), "writes", "a string"),
            (with(r#""mirror":{"log_max_bytes":-1}"#), "mirror.log_max_bytes", ""),
            (with(r#""mirror":{"log":1}"#), "mirror.log", ""),
            (with(r#""state":{"backend":"redis"}"#), "state.backend", "\"shared_data\" or \"etcd\""),
            (with(r#""state":{"backend":"etcd"}"#), "state.cluster", "is required"),
            (with(r#""state":{"backend":"etcd","cluster":""}"#), "state.cluster", "empty"),
            (with(r#""state":{"cluster":"etcd"}"#), "state.cluster", "only for"),
            (with(r#""state":{"backend":"etcd","cluster":"e","prefix":"nope"}"#), "state.prefix", "ending with"),
            (with(r#""state":{"backend":"etcd","cluster":"e","poll_ms":5000}"#), "state.poll_ms", "between"),
            (with(r#""state":{"lease_ttl_ms":10}"#), "state.lease_ttl_ms", "between"),
            (with(r#""state":{"backend":"etcd","cluster":"e","bogus":1}"#), "state.bogus", "unknown key"),
            (with(r#""state":"etcd""#), "state", ""),
            (
                with(r#""admin_api_key_env":"1KEY""#),
                "admin_api_key_env",
                "NAME of an environment variable",
            ),
            (
                with(r#""admin_api_key_env":"MY-KEY""#),
                "admin_api_key_env",
                "NAME of an environment variable",
            ),
            (
                with(r#""node_api_key_env":"A B""#),
                "node_api_key_env",
                "NAME of an environment variable",
            ),
            (
                with(r#""node_api_key_env":false"#),
                "node_api_key_env",
                "expected a string",
            ),
            // max_body_bytes
            (
                with(r#""max_body_bytes":1023"#),
                "max_body_bytes",
                "between 1024 and 104857600",
            ),
            (
                with(r#""max_body_bytes":104857601"#),
                "max_body_bytes",
                "between 1024 and 104857600",
            ),
        ];
        for (input, key, reason) in cases {
            match Config::parse(input.as_bytes()) {
                Ok(config) => panic!("{input} was accepted: {config:?}"),
                Err(e) => {
                    assert_eq!(e.key, key, "wrong key for {input}: {e}");
                    assert!(
                        e.reason.contains(reason),
                        "reason for {input} lacks {reason:?}: {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn non_utf8_bytes_are_refused_not_panicked_on() {
        let e = Config::parse(&[b'{', 0xff, 0xfe, b'}']).unwrap_err();
        assert_eq!(e.key, "(root)");
    }

    #[test]
    fn display_names_the_key_and_reason() {
        let e = Config::parse(with(r#""settings_broadcast":{"bogus":1}"#).as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid plugin configuration: `settings_broadcast.bogus`: unknown key; allowed here: \
             strategy, propose_timeout_ms, verify_timeout_s, task_timeout_s, max_repair_retries, \
             repair_backoff_base_ms, freeze_writes_on_unrepairable"
        );
    }

    #[test]
    fn reasons_never_echo_string_values() {
        // An operator who pastes the admin key itself where its env-var name belongs.
        let secret = "sk-live-9f8e7d6c5b4a";
        let input = with(&format!(r#""admin_api_key_env":"{secret}""#));
        let e = Config::parse(input.as_bytes()).unwrap_err();
        assert_eq!(e.key, "admin_api_key_env");
        assert!(!e.to_string().contains(secret), "{e}");
    }

    #[test]
    fn node_lookup_by_id() {
        let config = Config::parse(with_nodes(&[&node(0), &node(1)]).as_bytes()).unwrap();
        assert_eq!(
            config.node("node-1").map(|n| n.cluster.as_str()),
            Some("meili_node_1")
        );
        assert_eq!(config.node("node-2"), None);
        assert_eq!(Strategy::Sequential.as_str(), "sequential");
        assert_eq!(Strategy::TwoPhase.as_str(), "two_phase");
    }
}
