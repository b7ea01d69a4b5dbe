//! Master-key authorization (reference §8). Only the master key is known to a dev node: with no
//! master key every route is open; with one, every route but `/health` needs `Bearer <key>`.

use crate::errors::ApiError;

pub fn check(master_key: Option<&str>, authorization: Option<&str>) -> Result<(), ApiError> {
    let Some(master_key) = master_key else {
        return Ok(());
    };
    let missing = || {
        ApiError::new(
            401,
            "missing_authorization_header",
            "auth",
            "The Authorization header is missing. It must use the bearer authorization method.",
        )
    };
    let header = authorization.ok_or_else(missing)?;
    let (scheme, token) = header.split_once(' ').unwrap_or((header, ""));
    if scheme != "Bearer" {
        return Err(missing());
    }
    if token.trim() == master_key && !master_key.is_empty() {
        Ok(())
    } else {
        Err(ApiError::new(403, "invalid_api_key", "auth", "The provided API key is invalid."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_rules() {
        assert!(check(None, None).is_ok());
        assert_eq!(check(Some("k"), None).unwrap_err().status, 401);
        assert_eq!(check(Some("k"), Some("Basic k")).unwrap_err().code, "missing_authorization_header");
        assert_eq!(check(Some("k"), Some("bearer k")).unwrap_err().status, 401);
        assert_eq!(check(Some("k"), Some("Bearer")).unwrap_err().code, "invalid_api_key");
        assert_eq!(check(Some("k"), Some("Bearer x")).unwrap_err().status, 403);
        assert!(check(Some("k"), Some("Bearer k")).is_ok());
    }
}

// ---- API keys (meilisearch-auth) ----

use std::time::SystemTime;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::jsoncheck::At;
use crate::timefmt::{parse_date, rfc3339};

/// Every action a key may name (`*`, wildcards by family, and single actions).
pub const ACTIONS: &[&str] = &[
    "*",
    "search",
    "documents.*",
    "documents.add",
    "documents.get",
    "documents.delete",
    "indexes.*",
    "indexes.create",
    "indexes.get",
    "indexes.update",
    "indexes.delete",
    "indexes.swap",
    "indexes.compact",
    "tasks.*",
    "tasks.cancel",
    "tasks.delete",
    "tasks.get",
    "tasks.compact",
    "settings.*",
    "settings.get",
    "settings.update",
    "stats.*",
    "stats.get",
    "metrics.*",
    "metrics.get",
    "dumps.*",
    "dumps.create",
    "snapshots.*",
    "snapshots.create",
    "version",
    "keys.create",
    "keys.get",
    "keys.update",
    "keys.delete",
    "experimental.get",
    "experimental.update",
    "export",
    "network.get",
    "network.update",
    "chatCompletions",
    "chats.*",
    "chats.get",
    "chats.delete",
    "chatsSettings.*",
    "chatsSettings.get",
    "chatsSettings.update",
    "*.get",
    "webhooks.get",
    "webhooks.update",
    "webhooks.delete",
    "webhooks.create",
    "webhooks.*",
    "fields.post",
];

/// HMAC-SHA256 (RFC 2104) over SHA-256's 64-byte blocks.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// The key value of a uid: hex(HMAC-SHA256(key = master key, message = hyphenated lowercase uid)).
pub fn key_for(master_key: &str, uid: &str) -> String {
    hmac_sha256(master_key.as_bytes(), uid.to_ascii_lowercase().as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A random UUID v4 (hyphenated, lowercase). Not cryptographic: a dev node only needs uniqueness.
pub fn new_uuid_v4() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    for half in bytes.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos());
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// Whether `s` is a hyphenated UUID v4 (any case).
fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { *c == b'-' } else { c.is_ascii_hexdigit() })
        && b[14] == b'4'
}

#[derive(Clone, Debug)]
pub struct ApiKey {
    pub name: Option<String>,
    pub description: Option<String>,
    pub key: String,
    pub uid: String,
    pub actions: Vec<String>,
    pub indexes: Vec<String>,
    pub expires_at: Option<SystemTime>,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

impl ApiKey {
    pub fn view(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "key": self.key,
            "uid": self.uid,
            "actions": self.actions,
            "indexes": self.indexes,
            "expiresAt": self.expires_at.map(rfc3339),
            "createdAt": rfc3339(self.created_at),
            "updatedAt": rfc3339(self.updated_at),
        })
    }

    fn allows_action(&self, action: &str) -> bool {
        self.actions.iter().any(|a| {
            a == "*"
                || a == action
                || (a == "*.get" && action.ends_with(".get"))
                || a.strip_suffix(".*").is_some_and(|family| action.split('.').next() == Some(family))
        })
    }

    fn allows_index(&self, index: &str) -> bool {
        self.indexes.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => index.starts_with(prefix),
            None => p == index,
        })
    }
}

/// The default keys a node with a master key starts with (their uids differ per node, like
/// separate Meilisearch instances).
pub fn default_keys(master_key: &str) -> Vec<ApiKey> {
    let defaults: [(&str, &str, &[&str]); 4] = [
        ("Default Search API Key", "Use it to search from the frontend", &["search"]),
        (
            "Default Admin API Key",
            "Use it for anything that is not a search operation. Caution! Do not expose it on a public frontend",
            &["*"],
        ),
        (
            "Default Read-Only Admin API Key",
            "Use it to read information across the whole database. Caution! Do not expose this key on a public frontend",
            &["*.get", "keys.get"],
        ),
        ("Default Chat API Key", "Use it to chat and search from the frontend", &["chatCompletions", "search"]),
    ];
    let now = SystemTime::now();
    defaults
        .iter()
        .map(|(name, description, actions)| {
            let uid = new_uuid_v4();
            ApiKey {
                name: Some(name.to_string()),
                description: Some(description.to_string()),
                key: key_for(master_key, &uid),
                uid,
                actions: actions.iter().map(|a| a.to_string()).collect(),
                indexes: vec!["*".to_string()],
                expires_at: None,
                created_at: now,
                updated_at: now,
            }
        })
        .collect()
}

fn invalid_key() -> ApiError {
    ApiError::new(403, "invalid_api_key", "auth", "The provided API key is invalid.")
}

/// What a request may see: everything, or the indexes matching a key's patterns.
#[derive(Clone, Debug, PartialEq)]
pub enum Scope {
    All,
    Indexes(Vec<String>),
}

impl Scope {
    pub fn covers(&self, index: Option<&str>) -> bool {
        match (self, index) {
            (Scope::All, _) => true,
            // Tasks of no index (swaps, task management, exports) only show to unrestricted keys.
            (Scope::Indexes(_), None) => false,
            (Scope::Indexes(patterns), Some(i)) => patterns.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => i.starts_with(prefix),
                None => p == i,
            }),
        }
    }
}

/// Authorization for one route: the master key passes everything; an API key must be unexpired,
/// name the action (or a wildcard of it) and, for index routes, cover the index. Returns what
/// listings may show.
pub fn check_action(
    master_key: Option<&str>,
    keys: &[ApiKey],
    authorization: Option<&str>,
    action: &str,
    index: Option<&str>,
) -> Result<Scope, ApiError> {
    match check(master_key, authorization) {
        Ok(()) => return Ok(Scope::All),
        Err(e) if e.status == 401 => return Err(e),
        Err(_) => {}
    }
    let token = authorization.and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("").trim();
    let key = keys.iter().find(|k| k.key == token).ok_or_else(invalid_key)?;
    if key.expires_at.is_some_and(|e| e <= SystemTime::now()) {
        return Err(invalid_key());
    }
    if !key.allows_action(action) {
        return Err(invalid_key());
    }
    if let Some(index) = index {
        if !key.allows_index(index) {
            return Err(invalid_key());
        }
    }
    if key.indexes.iter().any(|i| i == "*") {
        Ok(Scope::All)
    } else {
        Ok(Scope::Indexes(key.indexes.clone()))
    }
}

fn optional_string(obj: &Map<String, Value>, field: &str, code: &'static str) -> Result<Option<String>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => At::new(code, format!(".{field}")).string(v).map(|s| Some(s.to_string())),
    }
}

/// `POST /keys`: validates the body and builds the key (value derived from the uid).
pub fn create_key(master_key: &str, existing: &[ApiKey], body: &Value) -> Result<ApiKey, ApiError> {
    let obj = At::new("bad_request", "")
        .object_with(body, &["description", "name", "uid", "actions", "indexes", "expiresAt"])?;
    let description = optional_string(obj, "description", "invalid_api_key_description")?;
    let name = optional_string(obj, "name", "invalid_api_key_name")?;
    let uid = match optional_string(obj, "uid", "invalid_api_key_uid")? {
        None => new_uuid_v4(),
        Some(u) if is_uuid_v4(&u) => u.to_ascii_lowercase(),
        Some(u) => {
            return Err(ApiError::invalid(
                "invalid_api_key_uid",
                format!("Invalid value at `.uid`: invalid character: expected an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-], found `{}` at 1", u.chars().next().unwrap_or(' ')),
            ))
        }
    };
    let actions = match obj.get("actions") {
        None => return Err(ApiError::invalid("missing_api_key_actions", "Missing field `actions`")),
        Some(v) => At::new("invalid_api_key_actions", ".actions").strings(v)?,
    };
    for (i, a) in actions.iter().enumerate() {
        if !ACTIONS.contains(&a.as_str()) {
            return Err(At::new("invalid_api_key_actions", format!(".actions[{i}]")).unknown_value(a, ACTIONS));
        }
    }
    let indexes = match obj.get("indexes") {
        None => return Err(ApiError::invalid("missing_api_key_indexes", "Missing field `indexes`")),
        Some(v) => At::new("invalid_api_key_indexes", ".indexes").strings(v)?,
    };
    for (i, index) in indexes.iter().enumerate() {
        let bare = index.strip_suffix('*').unwrap_or(index);
        if !(index == "*" || bare.is_empty() || crate::routes::check_index_uid(bare).is_ok()) {
            return Err(ApiError::invalid(
                "invalid_api_key_indexes",
                format!("Invalid value at `.indexes[{i}]`: `{index}` is not a valid index uid pattern. Index uid patterns can be an integer or a string containing only alphanumeric characters, hyphens (-), underscores (_), and optionally end with a star (*)."),
            ));
        }
    }
    let expires_at = match obj.get("expiresAt") {
        None => return Err(ApiError::invalid("missing_api_key_expires_at", "Missing field `expiresAt`")),
        Some(Value::Null) => None,
        Some(v) => {
            let bad = || {
                ApiError::invalid(
                    "invalid_api_key_expires_at",
                    format!("Invalid value at `.expiresAt`: `{}` is not a valid date. It should follow the RFC 3339 format to represents a date or datetime in the future or specified as a null value. e.g. 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'.", v.as_str().unwrap_or(&v.to_string())),
                )
            };
            let (at, _) = v.as_str().and_then(parse_date).ok_or_else(bad)?;
            if at <= SystemTime::now() {
                return Err(bad());
            }
            Some(at)
        }
    };
    let key = key_for(master_key, &uid);
    if existing.iter().any(|k| k.uid == uid) {
        return Err(ApiError::new(
            409,
            "api_key_already_exists",
            "invalid_request",
            format!("`uid` field value `{uid}` is already an existing API key."),
        ));
    }
    let now = SystemTime::now();
    Ok(ApiKey { name, description, key, uid, actions, indexes, expires_at, created_at: now, updated_at: now })
}

/// `PATCH /keys/{key}`: only `name` and `description` may change.
pub fn update_key(key: &mut ApiKey, body: &Value) -> Result<(), ApiError> {
    let obj = At::new("bad_request", "").object(body)?;
    for field in ["uid", "actions", "indexes", "expiresAt", "key", "createdAt", "updatedAt"] {
        if obj.contains_key(field) {
            let code = match field {
                "uid" => "immutable_api_key_uid",
                "actions" => "immutable_api_key_actions",
                "indexes" => "immutable_api_key_indexes",
                "expiresAt" => "immutable_api_key_expires_at",
                "key" => "immutable_api_key_key",
                "createdAt" => "immutable_api_key_created_at",
                _ => "immutable_api_key_updated_at",
            };
            return Err(ApiError::invalid(
                code,
                format!("Immutable field `{field}`: expected one of `description`, `name`"),
            ));
        }
    }
    let obj = At::new("bad_request", "").object_with(body, &["description", "name"])?;
    if obj.contains_key("description") {
        key.description = optional_string(obj, "description", "invalid_api_key_description")?;
    }
    if obj.contains_key("name") {
        key.name = optional_string(obj, "name", "invalid_api_key_name")?;
    }
    key.updated_at = SystemTime::now();
    Ok(())
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        // Keys longer than a block are hashed first (RFC 4231 case 6).
        let mac = hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    }

    #[test]
    fn uuids_and_actions() {
        let u = new_uuid_v4();
        assert!(is_uuid_v4(&u), "{u}");
        assert_ne!(u, new_uuid_v4());
        let k = ApiKey {
            name: None,
            description: None,
            key: String::new(),
            uid: u,
            actions: vec!["documents.*".into(), "*.get".into()],
            indexes: vec!["mov*".into()],
            expires_at: None,
            created_at: SystemTime::now(),
            updated_at: SystemTime::now(),
        };
        assert!(k.allows_action("documents.add") && k.allows_action("tasks.get") && !k.allows_action("search"));
        assert!(k.allows_index("movies") && !k.allows_index("books"));
    }
}
