//! Release policy in Cedar: the last check before a secret leaves the vault.
//!
//! # What it does
//! - Holds the Cedar schema ([`DEFAULT_SCHEMA`] unless the operator replaces
//!   it) and a named set of policy documents; every document is parsed and
//!   strictly validated against the schema before it is stored, and a schema
//!   change that would invalidate a stored document is refused
//!   ([`PolicyStore::replace_schema`]).
//! - Answers one question per attested request ([`PolicyStore::authorize`]):
//!   may this workload (principal `Keyward::Workload`, built from the verified
//!   attestation facts) perform this action (`release` or `renew`) on this
//!   secret (resource `Keyward::Secret`, uid = the secret path), with this
//!   context (attestation time, host, optional on-behalf-of user)?
//! - Names the policies that decided, as `<document name>/<n>` where `n` is
//!   the policy's position in its document, so the audit record can say
//!   "forbidden by prod/0".
//!
//! # Semantics
//! Default deny: nothing is released unless a `permit` is satisfied and no
//! `forbid` is. A policy whose evaluation errors (integer overflow, a missing
//! entity) is skipped, as Cedar specifies: an erroring `permit` never allows
//! and an erroring `forbid` never denies. Since documents are validated
//! strictly, the usual sources of errors (absent optional attributes, tags
//! read without `hasTag`) are refused at insert time; what remains (overflow)
//! is reported in [`Decision::errors`].
//!
//! # Host labels
//! Cedar records need declared attributes, and host labels are arbitrary
//! operator-chosen keys, so labels are Cedar *entity tags* on the workload
//! (`entity Workload … tags String`): a policy reads them with
//! `principal.hasTag("env") && principal.getTag("env") == "prod"` (the
//! validator refuses `getTag` without the `hasTag` guard).
//!
//! # What it does not do
//! It does not verify anything: the [`WorkloadFacts`] come from the verified
//! attestation proofs and the [`OnBehalfOf`] user from [`crate::obo`]. It
//! does not store documents (the caller persists text and re-inserts it at
//! start), and it supports no Cedar templates (no linking API exists here).
//!
//! Cedar itself (`cedar-policy`, no extension types) does the parsing,
//! validation and evaluation; this module only maps Keyward's facts into
//! Cedar entities and caches what can be cached: the schema, the validator,
//! the combined policy set and the entity type and action names.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};

use crate::obo::OnBehalfOf;

/// Largest policy document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Most policies in one document.
pub const MAX_POLICIES_PER_DOCUMENT: usize = 200;
/// Longest document name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// Largest schema accepted, in bytes.
pub const MAX_SCHEMA_BYTES: usize = 256 * 1024;
/// Deepest bracket nesting accepted in a document or schema. Cedar's parser
/// recurses on nesting; operators do not write 64-deep expressions, and the
/// bound keeps a pathological document from exhausting the stack.
pub const MAX_NESTING: usize = 64;

/// The Cedar namespace every Keyward entity type and action lives in.
pub const NAMESPACE: &str = "Keyward";

/// Keyward's Cedar schema (human syntax).
///
/// `Workload` is the attested workload: `host` is the host id, the `image_*`
/// and `model_*` attributes come from the verified artifact records (a signer
/// is the certificate identity for keyless signatures, `key:<id>` for managed
/// keys; the model attributes are empty strings for workloads without a
/// model). Host labels are tags. `Secret` is the resource; its uid is the
/// secret path.
pub const DEFAULT_SCHEMA: &str = r#"namespace Keyward {
  entity Workload = {
    host: String,
    host_name: String,
    image_digest: String,
    image_reference: String,
    image_signer: String,
    model_name: String,
    model_digest: String,
    model_signer: String,
    instance_id: String,
  } tags String;

  entity Secret = {
    path: String,
    engine: String,
  };

  type User = {
    subject: String,
    issuer: String,
    scopes: Set<String>,
  };

  action release, renew appliesTo {
    principal: Workload,
    resource: Secret,
    context: {
      attested_at: Long,
      host_id: String,
      user?: User,
    },
  };
}
"#;

/// The image signer [`EXAMPLE_POLICY`] names (a keyless Sigstore identity).
pub const EXAMPLE_IMAGE_SIGNER: &str =
    "https://github.com/example/agent/.github/workflows/release.yml@refs/heads/main";
/// The model signer [`EXAMPLE_POLICY`] names (a managed key).
pub const EXAMPLE_MODEL_SIGNER: &str = "key:model-release";

/// A readable example: workloads running an image and a model signed by the
/// given identities may obtain and renew the demo secrets, except from hosts
/// labelled `env=quarantine`. Replace the two signer strings
/// ([`EXAMPLE_IMAGE_SIGNER`], [`EXAMPLE_MODEL_SIGNER`]) with your own.
pub const EXAMPLE_POLICY: &str = r#"// Demo secrets for the signed agent image running the signed model.
permit (
  principal is Keyward::Workload,
  action in [Keyward::Action::"release", Keyward::Action::"renew"],
  resource is Keyward::Secret
)
when {
  resource.path like "kv/demo/*" &&
  principal.image_signer == "https://github.com/example/agent/.github/workflows/release.yml@refs/heads/main" &&
  principal.model_signer == "key:model-release"
};

// Never from a quarantined host, whatever else permits it.
forbid (principal, action, resource)
when { principal.hasTag("env") && principal.getTag("env") == "quarantine" };
"#;

/// Why a schema or policy document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Document names are 1..=128 bytes of `[A-Za-z0-9_.-]` (no `/`: it
    /// separates the name from the policy number in policy ids).
    #[error("invalid policy document name {name:?}")]
    InvalidName {
        /// The refused name (bounded: at most the first 128 bytes).
        name: String,
    },
    /// The document or schema text is larger than the cap.
    #[error("text of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Brackets nest deeper than [`MAX_NESTING`].
    #[error("brackets nest deeper than {max}")]
    TooDeep {
        /// The cap.
        max: usize,
    },
    /// The document holds more policies than [`MAX_POLICIES_PER_DOCUMENT`].
    #[error("document holds {count} policies, more than {max}")]
    TooManyPolicies {
        /// Policies found.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// The document is not valid Cedar policy syntax.
    #[error("policy syntax: {}", messages.join("; "))]
    Parse {
        /// Cedar's messages.
        messages: Vec<String>,
    },
    /// The document contains templates (`?principal` / `?resource` slots);
    /// Keyward has no template-linking API.
    #[error("policy templates are not supported ({count} found)")]
    Templates {
        /// Templates found.
        count: usize,
    },
    /// The document does not validate (strict mode) against the schema.
    #[error("policy document {name:?} does not validate: {}", messages.join("; "))]
    Validation {
        /// The document.
        name: String,
        /// Cedar's validation errors.
        messages: Vec<String>,
    },
    /// The schema text is not a valid Cedar schema.
    #[error("schema: {}", messages.join("; "))]
    Schema {
        /// Cedar's messages.
        messages: Vec<String>,
    },
    /// The schema lacks an entity type or action Keyward's requests use.
    #[error("schema does not declare {missing}")]
    SchemaIncomplete {
        /// What is missing, as a Cedar name (`Keyward::Action::"renew"`).
        missing: String,
    },
    /// A stored document would not validate under the proposed schema.
    #[error("schema refused: stored policy document {name:?} would not validate: {}", messages.join("; "))]
    SchemaIncompatible {
        /// The stored document.
        name: String,
        /// Cedar's validation errors under the new schema.
        messages: Vec<String>,
    },
}

/// The action a workload asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Obtain the secret (a new lease).
    Release,
    /// Renew an existing lease.
    Renew,
}

impl Action {
    /// The Cedar action id (`Keyward::Action::"<id>"`).
    pub fn cedar_id(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Renew => "renew",
        }
    }
}

/// What attestation established about the workload; becomes the Cedar
/// principal. All strings are taken as verified facts (they come from the
/// attestation proofs, not from the request body).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadFacts {
    /// The enrolled host's id (`principal.host`, `context.host_id`).
    pub host_id: String,
    /// The host's display name.
    pub host_name: String,
    /// The host's labels (Cedar tags on the principal).
    pub host_labels: BTreeMap<String, String>,
    /// `sha256:…` of the image the launch record names.
    pub image_digest: String,
    /// The image reference the launch record names.
    pub image_reference: String,
    /// Who signed the image: certificate identity, or `key:<id>`.
    pub image_signer: String,
    /// The model name, empty without a model.
    pub model_name: String,
    /// `sha256:…` model version id, empty without a model.
    pub model_digest: String,
    /// Who signed the model, empty without a model.
    pub model_signer: String,
    /// The instance id from the launch record (also the principal's uid).
    pub instance_id: String,
}

/// One authorization question.
#[derive(Debug, Clone, Copy)]
pub struct ReleaseRequest<'a> {
    /// The attested workload.
    pub workload: &'a WorkloadFacts,
    /// What it asks to do.
    pub action: Action,
    /// The secret path (the resource's uid and `resource.path`).
    pub path: &'a str,
    /// The secrets engine serving the path (`kv`, `identity`, `database`).
    pub engine: &'a str,
    /// When the evidence was verified, Unix seconds (`context.attested_at`).
    pub attested_at: u64,
    /// The user the workload acts for, verified by [`crate::obo`].
    pub user: Option<&'a OnBehalfOf>,
}

/// The answer, with what the audit record needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is allowed.
    pub allowed: bool,
    /// The determining policies (`name/n`), sorted: the satisfied permits
    /// when allowed, the satisfied forbids when denied by one, empty when no
    /// permit applied.
    pub policies: Vec<String>,
    /// Policies whose evaluation failed (skipped), and request-construction
    /// failures; each message starts with the policy id when there is one.
    pub errors: Vec<String>,
}

impl Decision {
    /// One line for the audit record.
    pub fn reason(&self) -> String {
        let mut reason = if self.allowed {
            format!("permitted by {}", self.policies.join(", "))
        } else if self.policies.is_empty() {
            "no policy permits".to_owned()
        } else {
            format!("forbidden by {}", self.policies.join(", "))
        };
        if !self.errors.is_empty() {
            reason.push_str(&format!(
                " ({} error{}: {})",
                self.errors.len(),
                if self.errors.len() == 1 { "" } else { "s" },
                self.errors.join("; ")
            ));
        }
        reason
    }

    fn denied_by_error(message: String) -> Self {
        Self {
            allowed: false,
            policies: Vec::new(),
            errors: vec![message],
        }
    }
}

/// One stored document: its text and its parsed, renamed, validated policies.
struct Document {
    text: String,
    policies: PolicySet,
}

/// Names resolved once per schema rather than per request.
struct Names {
    workload: EntityTypeName,
    secret: EntityTypeName,
    release: EntityUid,
    renew: EntityUid,
}

/// The schema, the policy documents, and the cached Cedar objects
/// [`PolicyStore::authorize`] needs.
pub struct PolicyStore {
    schema_text: String,
    schema: Schema,
    validator: Validator,
    names: Names,
    documents: BTreeMap<String, Document>,
    /// Union of every document's policies, rebuilt on insert and remove.
    combined: PolicySet,
    authorizer: Authorizer,
}

impl fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyStore")
            .field("documents", &self.documents.keys().collect::<Vec<_>>())
            .field("policies", &self.combined.num_of_policies())
            .finish_non_exhaustive()
    }
}

impl PolicyStore {
    /// A store with this schema and no policies (so everything is denied).
    pub fn new(schema_text: &str) -> Result<Self, PolicyError> {
        let (schema, names) = parse_schema(schema_text)?;
        Ok(Self {
            schema_text: schema_text.to_owned(),
            validator: Validator::new(schema.clone()),
            schema,
            names,
            documents: BTreeMap::new(),
            combined: PolicySet::new(),
            authorizer: Authorizer::new(),
        })
    }

    /// The current schema text.
    pub fn schema_text(&self) -> &str {
        &self.schema_text
    }

    /// Parses `text` and validates it strictly against the current schema,
    /// as it would be stored under `name`, without storing it.
    pub fn validate(&self, name: &str, text: &str) -> Result<(), PolicyError> {
        self.prepare(name, text).map(|_| ())
    }

    /// Validates and stores `text` under `name`, replacing any document of
    /// that name.
    pub fn insert(&mut self, name: &str, text: &str) -> Result<(), PolicyError> {
        let policies = self.prepare(name, text)?;
        self.documents.insert(
            name.to_owned(),
            Document {
                text: text.to_owned(),
                policies,
            },
        );
        self.rebuild();
        Ok(())
    }

    /// Removes a document; returns whether it existed.
    pub fn remove(&mut self, name: &str) -> bool {
        let existed = self.documents.remove(name).is_some();
        if existed {
            self.rebuild();
        }
        existed
    }

    /// The stored document names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.documents.keys().cloned().collect()
    }

    /// The text of a stored document.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.documents.get(name).map(|d| d.text.as_str())
    }

    /// Replaces the schema, refusing one under which a stored document would
    /// not validate (the error names the first such document).
    pub fn replace_schema(&mut self, schema_text: &str) -> Result<(), PolicyError> {
        let (schema, names) = parse_schema(schema_text)?;
        let validator = Validator::new(schema.clone());
        for (name, document) in &self.documents {
            let messages = validation_messages(&validator, &document.policies);
            if !messages.is_empty() {
                return Err(PolicyError::SchemaIncompatible {
                    name: name.clone(),
                    messages,
                });
            }
        }
        self.schema_text = schema_text.to_owned();
        self.schema = schema;
        self.validator = validator;
        self.names = names;
        Ok(())
    }

    /// Decides a request. Default deny; evaluation errors never allow.
    pub fn authorize(&self, request: &ReleaseRequest<'_>) -> Decision {
        let (principal, resource, entities) = match self.entities(request) {
            Ok(built) => built,
            Err(message) => return Decision::denied_by_error(message),
        };
        let context = match context(request) {
            Ok(context) => context,
            Err(message) => return Decision::denied_by_error(message),
        };
        let action = match request.action {
            Action::Release => self.names.release.clone(),
            Action::Renew => self.names.renew.clone(),
        };
        let cedar_request =
            match Request::new(principal, action, resource, context, Some(&self.schema)) {
                Ok(r) => r,
                Err(e) => return Decision::denied_by_error(format!("request: {e}")),
            };
        let response = self
            .authorizer
            .is_authorized(&cedar_request, &self.combined, &entities);
        let diagnostics = response.diagnostics();
        let mut policies: Vec<String> = diagnostics.reason().map(ToString::to_string).collect();
        policies.sort();
        let errors = diagnostics.errors().map(ToString::to_string).collect();
        Decision {
            allowed: response.decision() == cedar_policy::Decision::Allow,
            policies,
            errors,
        }
    }

    /// Parse, bound, rename and validate one document.
    fn prepare(&self, name: &str, text: &str) -> Result<PolicySet, PolicyError> {
        check_name(name)?;
        check_text(text, MAX_DOCUMENT_BYTES)?;
        let parsed = PolicySet::from_str(text).map_err(|errors| PolicyError::Parse {
            messages: errors.iter().map(ToString::to_string).collect(),
        })?;
        if parsed.num_of_templates() > 0 {
            return Err(PolicyError::Templates {
                count: parsed.num_of_templates(),
            });
        }
        let count = parsed.num_of_policies();
        if count > MAX_POLICIES_PER_DOCUMENT {
            return Err(PolicyError::TooManyPolicies {
                count,
                max: MAX_POLICIES_PER_DOCUMENT,
            });
        }
        let renamed = rename(name, &parsed)?;
        let messages = validation_messages(&self.validator, &renamed);
        if messages.is_empty() {
            Ok(renamed)
        } else {
            Err(PolicyError::Validation {
                name: name.to_owned(),
                messages,
            })
        }
    }

    fn rebuild(&mut self) {
        let mut combined = PolicySet::new();
        for document in self.documents.values() {
            for policy in document.policies.policies() {
                // Ids are `<name>/<n>` and names are unique, so `add` cannot
                // meet a duplicate; were it to, the policy would be missing,
                // which can only deny more.
                let _ = combined.add(policy.clone());
            }
        }
        self.combined = combined;
    }

    /// The principal and resource uids, and the entity store holding them
    /// (checked against the schema; Cedar adds the schema's action entities).
    fn entities(
        &self,
        request: &ReleaseRequest<'_>,
    ) -> Result<(EntityUid, EntityUid, Entities), String> {
        let facts = request.workload;
        let principal = EntityUid::from_type_name_and_id(
            self.names.workload.clone(),
            EntityId::new(&facts.instance_id),
        );
        let string = |s: &str| RestrictedExpression::new_string(s.to_owned());
        let attrs = [
            ("host", string(&facts.host_id)),
            ("host_name", string(&facts.host_name)),
            ("image_digest", string(&facts.image_digest)),
            ("image_reference", string(&facts.image_reference)),
            ("image_signer", string(&facts.image_signer)),
            ("model_name", string(&facts.model_name)),
            ("model_digest", string(&facts.model_digest)),
            ("model_signer", string(&facts.model_signer)),
            ("instance_id", string(&facts.instance_id)),
        ]
        .map(|(k, v)| (k.to_owned(), v));
        let tags = facts
            .host_labels
            .iter()
            .map(|(k, v)| (k.clone(), string(v)));
        let workload = Entity::new_with_tags(principal.clone(), attrs, [], tags)
            .map_err(|e| format!("workload entity: {e}"))?;

        let resource = EntityUid::from_type_name_and_id(
            self.names.secret.clone(),
            EntityId::new(request.path),
        );
        let secret_attrs: HashMap<String, RestrictedExpression> = HashMap::from([
            ("path".to_owned(), string(request.path)),
            ("engine".to_owned(), string(request.engine)),
        ]);
        let secret = Entity::new(resource.clone(), secret_attrs, Default::default())
            .map_err(|e| format!("secret entity: {e}"))?;

        let entities = Entities::from_entities([workload, secret], Some(&self.schema))
            .map_err(|e| format!("entities: {e}"))?;
        Ok((principal, resource, entities))
    }
}

/// `context` for a request: `{attested_at, host_id, user?}`.
fn context(request: &ReleaseRequest<'_>) -> Result<Context, String> {
    let attested_at = i64::try_from(request.attested_at)
        .map_err(|_| format!("attested_at {} exceeds Cedar's Long", request.attested_at))?;
    let mut pairs = vec![
        (
            "attested_at".to_owned(),
            RestrictedExpression::new_long(attested_at),
        ),
        (
            "host_id".to_owned(),
            RestrictedExpression::new_string(request.workload.host_id.clone()),
        ),
    ];
    if let Some(user) = request.user {
        let scopes = RestrictedExpression::new_set(
            user.scopes
                .iter()
                .map(|s| RestrictedExpression::new_string(s.clone())),
        );
        let record = RestrictedExpression::new_record([
            (
                "subject".to_owned(),
                RestrictedExpression::new_string(user.subject.clone()),
            ),
            (
                "issuer".to_owned(),
                RestrictedExpression::new_string(user.issuer.clone()),
            ),
            ("scopes".to_owned(), scopes),
        ])
        .map_err(|e| format!("context.user: {e}"))?;
        pairs.push(("user".to_owned(), record));
    }
    Context::from_pairs(pairs).map_err(|e| format!("context: {e}"))
}

/// Parses a schema and checks it declares what requests use.
fn parse_schema(schema_text: &str) -> Result<(Schema, Names), PolicyError> {
    check_text(schema_text, MAX_SCHEMA_BYTES)?;
    let (schema, _warnings) =
        Schema::from_cedarschema_str(schema_text).map_err(|e| PolicyError::Schema {
            messages: vec![e.to_string()],
        })?;
    let type_name = |local: &str| {
        let full = format!("{NAMESPACE}::{local}");
        let name = EntityTypeName::from_str(&full).map_err(|_| PolicyError::SchemaIncomplete {
            missing: full.clone(),
        })?;
        if schema.entity_types().any(|t| *t == name) {
            Ok(name)
        } else {
            Err(PolicyError::SchemaIncomplete { missing: full })
        }
    };
    let workload = type_name("Workload")?;
    let secret = type_name("Secret")?;
    let action = |action: Action| {
        let full = format!("{NAMESPACE}::Action::\"{}\"", action.cedar_id());
        let uid = EntityUid::from_str(&full).map_err(|_| PolicyError::SchemaIncomplete {
            missing: full.clone(),
        })?;
        if schema.actions().any(|a| *a == uid) {
            Ok(uid)
        } else {
            Err(PolicyError::SchemaIncomplete { missing: full })
        }
    };
    let names = Names {
        release: action(Action::Release)?,
        renew: action(Action::Renew)?,
        workload,
        secret,
    };
    Ok((schema, names))
}

/// Gives each policy the id `<name>/<n>`, `n` its position in the document.
///
/// `PolicySet::from_str` numbers policies `policy0`, `policy1`, … in source
/// order (documented in `cedar-policy`); the number is taken from that id.
fn rename(name: &str, parsed: &PolicySet) -> Result<PolicySet, PolicyError> {
    let mut renamed = PolicySet::new();
    for policy in parsed.policies() {
        let id = policy.id().to_string();
        let Some(number) = id
            .strip_prefix("policy")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            return Err(PolicyError::Parse {
                messages: vec![format!("unexpected policy id {id:?} from the Cedar parser")],
            });
        };
        let new_id = PolicyId::new(format!("{name}/{number}"));
        renamed
            .add(policy.new_id(new_id))
            .map_err(|e| PolicyError::Parse {
                messages: vec![e.to_string()],
            })?;
    }
    Ok(renamed)
}

fn validation_messages(validator: &Validator, policies: &PolicySet) -> Vec<String> {
    validator
        .validate(policies, ValidationMode::Strict)
        .validation_errors()
        .map(ToString::to_string)
        .collect()
}

fn check_name(name: &str) -> Result<(), PolicyError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    if name.is_empty() || name.len() > MAX_NAME_BYTES || !name.bytes().all(allowed) {
        return Err(PolicyError::InvalidName {
            name: name.chars().take(MAX_NAME_BYTES).collect(),
        });
    }
    Ok(())
}

/// Size and nesting bounds, checked before Cedar's parser sees the text.
///
/// Nesting counts `(`, `[` and `{` outside string literals and `//` comments
/// (Cedar has no other comment form), so brackets quoted in a string do not
/// count against the bound.
fn check_text(text: &str, max: usize) -> Result<(), PolicyError> {
    if text.len() > max {
        return Err(PolicyError::TooLarge {
            len: text.len(),
            max,
        });
    }
    let mut depth = 0usize;
    let mut bytes = text.bytes().peekable();
    while let Some(b) = bytes.next() {
        match b {
            b'"' => {
                // String literal: skip to the closing quote, honouring `\`.
                while let Some(c) = bytes.next() {
                    match c {
                        b'\\' => {
                            bytes.next();
                        }
                        b'"' => break,
                        _ => {}
                    }
                }
            }
            b'/' if bytes.peek() == Some(&b'/') => {
                for c in bytes.by_ref() {
                    if c == b'\n' {
                        break;
                    }
                }
            }
            b'(' | b'[' | b'{' => {
                depth = depth.saturating_add(1);
                if depth > MAX_NESTING {
                    return Err(PolicyError::TooDeep { max: MAX_NESTING });
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const SIGNER: &str = "https://github.com/acme/agent/.github/workflows/release.yml@refs/tags/v1";

    fn store() -> PolicyStore {
        PolicyStore::new(DEFAULT_SCHEMA).unwrap()
    }

    fn facts() -> WorkloadFacts {
        WorkloadFacts {
            host_id: "host-1".into(),
            host_name: "gpu-node-1".into(),
            host_labels: BTreeMap::from([
                ("env".to_owned(), "prod".to_owned()),
                ("zone".to_owned(), "eu-1".to_owned()),
            ]),
            image_digest: format!("sha256:{}", "ab".repeat(32)),
            image_reference: "registry.example/acme/agent:v1".into(),
            image_signer: SIGNER.into(),
            model_name: "summariser".into(),
            model_digest: format!("sha256:{}", "cd".repeat(32)),
            model_signer: "key:model-release".into(),
            instance_id: "inst-0001".into(),
        }
    }

    fn request<'a>(
        facts: &'a WorkloadFacts,
        path: &'a str,
        user: Option<&'a OnBehalfOf>,
    ) -> ReleaseRequest<'a> {
        ReleaseRequest {
            workload: facts,
            action: Action::Release,
            path,
            engine: "kv",
            attested_at: 1_800_000_000,
            user,
        }
    }

    fn signer_policy() -> String {
        format!(
            r#"permit (principal, action == Keyward::Action::"release", resource)
               when {{ principal.image_signer == "{SIGNER}" && resource.path like "kv/app/*" }};"#
        )
    }

    #[test]
    fn default_schema_and_example_policy_are_valid() {
        let mut store = store();
        store.insert("example", EXAMPLE_POLICY).unwrap();
        let mut f = facts();
        f.image_signer = EXAMPLE_IMAGE_SIGNER.into();
        assert!(EXAMPLE_POLICY.contains(EXAMPLE_IMAGE_SIGNER));
        assert!(EXAMPLE_POLICY.contains(EXAMPLE_MODEL_SIGNER));
        let decision = store.authorize(&request(&f, "kv/demo/db", None));
        assert!(decision.allowed, "{}", decision.reason());
        assert_eq!(decision.policies, vec!["example/0"]);
        // Outside the demo prefix: nothing permits.
        assert!(!store.authorize(&request(&f, "kv/prod/db", None)).allowed);
        // A quarantined host: the forbid decides.
        f.host_labels.insert("env".into(), "quarantine".into());
        let decision = store.authorize(&request(&f, "kv/demo/db", None));
        assert!(!decision.allowed);
        assert_eq!(decision.reason(), "forbidden by example/1");
    }

    #[test]
    fn allows_by_image_signer() {
        let mut store = store();
        store.insert("app", &signer_policy()).unwrap();
        let f = facts();
        let decision = store.authorize(&request(&f, "kv/app/db", None));
        assert!(decision.allowed);
        assert_eq!(decision.policies, vec!["app/0"]);
        assert!(decision.errors.is_empty());
        assert_eq!(decision.reason(), "permitted by app/0");

        // Tampered: another signer.
        let mut other = facts();
        other.image_signer = "key:someone-else".into();
        let decision = store.authorize(&request(&other, "kv/app/db", None));
        assert!(!decision.allowed);
        assert_eq!(decision.reason(), "no policy permits");
    }

    #[test]
    fn default_deny() {
        let store = store();
        let f = facts();
        let decision = store.authorize(&request(&f, "kv/app/db", None));
        assert!(!decision.allowed);
        assert!(decision.policies.is_empty());
        assert_eq!(decision.reason(), "no policy permits");

        // A permit for another action does not carry over to renew.
        let mut store = store;
        store.insert("app", &signer_policy()).unwrap();
        let mut renew = request(&f, "kv/app/db", None);
        renew.action = Action::Renew;
        assert!(!store.authorize(&renew).allowed);
    }

    #[test]
    fn forbid_overrides_permit() {
        let mut store = store();
        store.insert("app", &signer_policy()).unwrap();
        store
            .insert(
                "prod",
                r#"forbid (principal, action, resource) when { resource.path == "kv/app/root" };"#,
            )
            .unwrap();
        let f = facts();
        assert!(store.authorize(&request(&f, "kv/app/db", None)).allowed);
        let decision = store.authorize(&request(&f, "kv/app/root", None));
        assert!(!decision.allowed);
        assert_eq!(decision.policies, vec!["prod/0"]);
        assert_eq!(decision.reason(), "forbidden by prod/0");
        // Removing the forbid restores the permit.
        assert!(store.remove("prod"));
        assert!(!store.remove("prod"));
        assert!(store.authorize(&request(&f, "kv/app/root", None)).allowed);
    }

    #[test]
    fn policy_on_host_label() {
        let mut store = store();
        store
            .insert(
                "labels",
                r#"// second policy in the document
                permit (principal, action, resource) when { false };
                permit (principal, action, resource)
                when { principal.hasTag("env") && principal.getTag("env") == "prod" };"#,
            )
            .unwrap();
        let f = facts();
        let decision = store.authorize(&request(&f, "kv/x", None));
        assert!(decision.allowed);
        assert_eq!(decision.policies, vec!["labels/1"]);

        let mut staging = facts();
        staging.host_labels.insert("env".into(), "staging".into());
        assert!(!store.authorize(&request(&staging, "kv/x", None)).allowed);
        let mut unlabelled = facts();
        unlabelled.host_labels.clear();
        let decision = store.authorize(&request(&unlabelled, "kv/x", None));
        assert!(!decision.allowed);
        assert!(decision.errors.is_empty());
    }

    #[test]
    fn getting_a_tag_without_has_tag_is_refused() {
        let err = store()
            .validate(
                "labels",
                r#"permit (principal, action, resource) when { principal.getTag("env") == "prod" };"#,
            )
            .unwrap_err();
        assert!(matches!(err, PolicyError::Validation { ref name, .. } if name == "labels"));
    }

    #[test]
    fn on_behalf_of_user_scope() {
        let mut store = store();
        store
            .insert(
                "obo",
                r#"permit (principal, action, resource)
                when { context has user && context.user.scopes.contains("db:read") };"#,
            )
            .unwrap();
        let f = facts();
        let with_scope = OnBehalfOf {
            subject: "alice".into(),
            issuer: "https://idp.example".into(),
            scopes: vec!["openid".into(), "db:read".into()],
        };
        let decision = store.authorize(&request(&f, "kv/x", Some(&with_scope)));
        assert!(decision.allowed);
        assert_eq!(decision.policies, vec!["obo/0"]);

        let decision = store.authorize(&request(&f, "kv/x", None));
        assert!(!decision.allowed);
        assert!(decision.errors.is_empty());

        let without_scope = OnBehalfOf {
            scopes: vec!["db:write".into()],
            ..with_scope
        };
        let decision = store.authorize(&request(&f, "kv/x", Some(&without_scope)));
        assert!(!decision.allowed);
        assert_eq!(decision.reason(), "no policy permits");
    }

    #[test]
    fn invalid_policy_text_is_a_parse_error() {
        let err = store()
            .insert("bad", "permit (principal, action, resource) when {")
            .unwrap_err();
        let PolicyError::Parse { messages } = err else {
            panic!("expected Parse, got {err:?}");
        };
        assert!(!messages.is_empty());
    }

    #[test]
    fn unknown_attribute_is_a_validation_error() {
        let mut store = store();
        let err = store
            .insert(
                "typo",
                r#"permit (principal, action, resource) when { principal.image_signr == "x" };"#,
            )
            .unwrap_err();
        let PolicyError::Validation { name, messages } = &err else {
            panic!("expected Validation, got {err:?}");
        };
        assert_eq!(name, "typo");
        assert!(
            messages.iter().any(|m| m.contains("image_signr")),
            "{messages:?}"
        );
        assert!(store.names().is_empty());
        // Unguarded optional attribute: refused too.
        let err = store
            .validate(
                "obo",
                r#"permit (principal, action, resource) when { context.user.subject == "a" };"#,
            )
            .unwrap_err();
        assert!(matches!(err, PolicyError::Validation { .. }), "{err:?}");
    }

    #[test]
    fn bounds_and_names() {
        let store = store();
        let big = format!("// {}\n", "x".repeat(MAX_DOCUMENT_BYTES));
        assert_eq!(
            store.validate("big", &big),
            Err(PolicyError::TooLarge {
                len: big.len(),
                max: MAX_DOCUMENT_BYTES
            })
        );
        let many = "permit (principal, action, resource) when { false };\n"
            .repeat(MAX_POLICIES_PER_DOCUMENT + 1);
        assert_eq!(
            store.validate("many", &many),
            Err(PolicyError::TooManyPolicies {
                count: MAX_POLICIES_PER_DOCUMENT + 1,
                max: MAX_POLICIES_PER_DOCUMENT
            })
        );
        let exactly = "permit (principal, action, resource) when { false };\n"
            .repeat(MAX_POLICIES_PER_DOCUMENT);
        store.validate("many", &exactly).unwrap();
        let deep = format!(
            "permit (principal, action, resource) when {{ {}true{} }};",
            "(".repeat(10_000),
            ")".repeat(10_000)
        );
        assert_eq!(
            store.validate("deep", &deep),
            Err(PolicyError::TooDeep { max: MAX_NESTING })
        );
        // Brackets inside strings and comments do not count.
        let quoted = format!(
            "// {}\npermit (principal, action, resource) when {{ resource.path == \"{}\\\"\" }};",
            "(".repeat(100),
            "[".repeat(100)
        );
        store.validate("quoted", &quoted).unwrap();
        for bad in ["", "a/b", "with space", &"n".repeat(MAX_NAME_BYTES + 1)] {
            assert!(
                matches!(
                    store.validate(bad, "permit (principal, action, resource);"),
                    Err(PolicyError::InvalidName { .. })
                ),
                "{bad:?}"
            );
        }
        let err = store
            .validate("tpl", "permit (principal == ?principal, action, resource);")
            .unwrap_err();
        assert_eq!(err, PolicyError::Templates { count: 1 });
    }

    #[test]
    fn insert_replace_text_and_names() {
        let mut store = store();
        store.insert("b", &signer_policy()).unwrap();
        store
            .insert("a", "forbid (principal, action, resource);")
            .unwrap();
        assert_eq!(store.names(), vec!["a", "b"]);
        assert_eq!(store.text("b"), Some(signer_policy().as_str()));
        assert_eq!(store.text("c"), None);
        let f = facts();
        assert!(!store.authorize(&request(&f, "kv/app/db", None)).allowed);
        // Replacing `a` with a harmless document lets `b` decide.
        store
            .insert("a", "forbid (principal, action, resource) when { false };")
            .unwrap();
        assert!(store.authorize(&request(&f, "kv/app/db", None)).allowed);
        // A refused insert leaves the stored document untouched.
        assert!(store.insert("a", "nonsense").is_err());
        assert!(store.authorize(&request(&f, "kv/app/db", None)).allowed);
        assert_eq!(
            store.text("a"),
            Some("forbid (principal, action, resource) when { false };")
        );
    }

    #[test]
    fn replace_schema_refuses_an_incompatible_schema() {
        let mut store = store();
        store.insert("app", &signer_policy()).unwrap();
        store
            .insert(
                "models",
                r#"permit (principal, action, resource) when { principal.model_signer == "key:m" };"#,
            )
            .unwrap();
        let without_model_signer = DEFAULT_SCHEMA.replace("    model_signer: String,\n", "");
        assert_ne!(without_model_signer, DEFAULT_SCHEMA);
        let err = store.replace_schema(&without_model_signer).unwrap_err();
        let PolicyError::SchemaIncompatible { name, messages } = &err else {
            panic!("expected SchemaIncompatible, got {err:?}");
        };
        assert_eq!(name, "models");
        assert!(
            messages.iter().any(|m| m.contains("model_signer")),
            "{messages:?}"
        );
        assert_eq!(store.schema_text(), DEFAULT_SCHEMA);

        // A compatible extension is accepted and used.
        let extended = DEFAULT_SCHEMA.replace(
            "    engine: String,\n",
            "    engine: String,\n    team: String,\n",
        );
        store.replace_schema(&extended).unwrap();
        assert_eq!(store.schema_text(), extended);
        // ...but the requests no longer carry `team`, so they fail to build
        // and deny with the reason rather than allow.
        let f = facts();
        let decision = store.authorize(&request(&f, "kv/app/db", None));
        assert!(!decision.allowed);
        assert_eq!(decision.errors.len(), 1, "{decision:?}");
    }

    #[test]
    fn schema_errors() {
        assert!(matches!(
            PolicyStore::new("namespace Keyward { entity"),
            Err(PolicyError::Schema { .. })
        ));
        let no_renew = DEFAULT_SCHEMA.replace("action release, renew", "action release");
        assert_eq!(
            PolicyStore::new(&no_renew).unwrap_err(),
            PolicyError::SchemaIncomplete {
                missing: r#"Keyward::Action::"renew""#.into()
            }
        );
        let renamed = DEFAULT_SCHEMA
            .replace("entity Secret", "entity Secrets")
            .replace("resource: Secret", "resource: Secrets");
        assert_eq!(
            PolicyStore::new(&renamed).unwrap_err(),
            PolicyError::SchemaIncomplete {
                missing: "Keyward::Secret".into()
            }
        );
    }

    #[test]
    fn evaluation_error_is_reported_and_never_allows() {
        let mut store = store();
        // Validates (Long + Long), overflows at evaluation for attested_at > 0.
        store
            .insert(
                "overflow",
                r#"permit (principal, action, resource)
                when { context.attested_at + 9223372036854775807 > 0 };"#,
            )
            .unwrap();
        let f = facts();
        let decision = store.authorize(&request(&f, "kv/x", None));
        assert!(!decision.allowed);
        assert!(decision.policies.is_empty());
        assert_eq!(decision.errors.len(), 1);
        assert!(
            decision.errors[0].contains("overflow/0"),
            "{:?}",
            decision.errors
        );
        assert!(
            decision
                .reason()
                .starts_with("no policy permits (1 error: ")
        );

        // An erroring forbid does not deny either (Cedar semantics): the
        // permit decides and the error is still reported.
        store.remove("overflow");
        store.insert("app", &signer_policy()).unwrap();
        store
            .insert(
                "overflow",
                r#"forbid (principal, action, resource)
                when { context.attested_at + 9223372036854775807 > 0 };"#,
            )
            .unwrap();
        let decision = store.authorize(&request(&f, "kv/app/db", None));
        assert!(decision.allowed);
        assert_eq!(decision.errors.len(), 1);
    }

    #[test]
    fn attested_at_beyond_long_denies() {
        let mut store = store();
        store
            .insert("all", "permit (principal, action, resource);")
            .unwrap();
        let f = facts();
        let mut r = request(&f, "kv/x", None);
        assert!(store.authorize(&r).allowed);
        r.attested_at = u64::MAX;
        let decision = store.authorize(&r);
        assert!(!decision.allowed);
        assert_eq!(decision.errors.len(), 1);
    }

    /// Throughput on the hot path: `cargo test --release -p keyward-vault
    /// --lib release_policy::tests::authorize_speed -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement, not a check"]
    fn authorize_speed() {
        let mut store = store();
        store.insert("example", EXAMPLE_POLICY).unwrap();
        store.insert("app", &signer_policy()).unwrap();
        let f = facts();
        let user = OnBehalfOf {
            subject: "alice".into(),
            issuer: "https://idp.example".into(),
            scopes: vec!["db:read".into()],
        };
        let r = request(&f, "kv/app/db", Some(&user));
        let n = 20_000u32;
        let start = std::time::Instant::now();
        let mut allowed = 0u32;
        for _ in 0..n {
            if store.authorize(&r).allowed {
                allowed += 1;
            }
        }
        let elapsed = start.elapsed();
        assert_eq!(allowed, n);
        println!(
            "authorize: {:?} per call, {:.0}/s",
            elapsed / n,
            f64::from(n) / elapsed.as_secs_f64()
        );
    }
}
