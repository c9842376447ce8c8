//! Boot policy: what a host's boot must look like before it may receive
//! secrets, and its evaluation into a [`VerifiedBootState`].
//!
//! A host's policy is one of:
//! - **golden PCR values** (bank → PCR index → hex digest), compared with the
//!   quoted PCR values; brittle across firmware and kernel updates but exact;
//! - **rules** over a [`VerifiedBootLog`]: Secure Boot on, every measured EFI
//!   application in an allow-list, every measured kernel command line in an
//!   allow-list, optionally a required S-CRTM version.
//!
//! Policies are (de)serializable with serde and reject unknown fields, e.g.
//!
//! ```json
//! {"golden_pcrs": {"sha256": {"0": "24af52a4…", "7": "5fd54361…"}}}
//! {"rules": {"require_secure_boot": true,
//!            "allowed_efi_applications": ["40d6cae0…"],
//!            "allowed_kernel_command_lines": ["/vmlinuz root=/dev/vda1 ro"],
//!            "required_scrtm_version": "GCE Virtual Firmware v1"}}
//! ```
//!
//! Evaluation reports **every** failed rule ([`BootPolicyViolation`]), so the
//! audit log shows the whole reason; success is a [`VerifiedBootState`], the
//! proof the release path takes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::digest::{HashAlg, MAX_PCR_INDEX, PcrValues};
use crate::eventlog::{SecureBoot, Sha256Digest, VerifiedBootLog};

/// A host's boot policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BootPolicy {
    /// Exact PCR values.
    GoldenPcrs(GoldenPcrs),
    /// Rules over the verified boot event log.
    Rules(BootRules),
}

/// A boot policy that cannot be built (or deserialized).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BootPolicyConfigError {
    /// A bank name other than `sha1`, `sha256`, `sha384`, `sha512`.
    #[error("unknown PCR bank {name:?}")]
    UnknownBank {
        /// The name given.
        name: String,
    },
    /// A PCR index that is not a canonical decimal number from 0 to 23.
    #[error("invalid PCR index {index:?}")]
    InvalidPcrIndex {
        /// The index given.
        index: String,
    },
    /// A PCR value that is not hex of the bank's digest length.
    #[error("PCR {index} in bank {alg:?} is not {expected} bytes of hex")]
    InvalidPcrValue {
        /// The bank.
        alg: HashAlg,
        /// The index.
        index: u8,
        /// The bank's digest length.
        expected: usize,
    },
    /// Golden PCR values with no value at all.
    #[error("golden PCR values are empty")]
    EmptyGoldenPcrs,
    /// Rules that check nothing.
    #[error("the boot rules check nothing")]
    EmptyRules,
    /// An allow-list that is present but empty (it would reject every boot).
    #[error("the allow-list {rule} is empty")]
    EmptyAllowList {
        /// The rule's field name.
        rule: &'static str,
    },
}

/// One failed rule, with the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BootRuleFailure {
    /// A golden PCR is not in the quote.
    #[error("PCR {pcr} in bank {alg:?} is not quoted")]
    PcrNotQuoted {
        /// The bank.
        alg: HashAlg,
        /// The PCR index.
        pcr: u8,
    },
    /// A quoted PCR differs from its golden value.
    #[error("PCR {pcr} in bank {alg:?} differs from its golden value")]
    PcrMismatch {
        /// The bank.
        alg: HashAlg,
        /// The PCR index.
        pcr: u8,
        /// The golden value.
        expected: Vec<u8>,
        /// The quoted value.
        quoted: Vec<u8>,
    },
    /// A rules policy was evaluated without a verified boot log.
    #[error("no verified boot log to evaluate the rules against")]
    BootLogMissing,
    /// Secure Boot is required but not established as enabled.
    #[error("Secure Boot is not enabled ({state:?})")]
    SecureBootNotEnabled {
        /// What the log shows.
        state: SecureBoot,
    },
    /// An EFI application allow-list is set but PCR 4 was not verified in the
    /// SHA-256 bank.
    #[error("EFI application digests are not available (PCR 4, SHA-256)")]
    EfiApplicationsNotMeasured,
    /// An EFI application allow-list is set but no application was measured.
    #[error("no EFI application was measured")]
    NoEfiApplication,
    /// A measured EFI application is not allowed.
    #[error("EFI application {digest} (event {event_index}) is not allowed")]
    EfiApplicationNotAllowed {
        /// The event.
        event_index: usize,
        /// Its SHA-256 (Authenticode) digest.
        digest: Sha256Digest,
    },
    /// A kernel command line allow-list is set but no command line was measured.
    #[error("no kernel command line was measured")]
    KernelCommandLineNotMeasured,
    /// A measured kernel command line is not allowed.
    #[error("kernel command line {command_line:?} (event {event_index}) is not allowed")]
    KernelCommandLineNotAllowed {
        /// The event.
        event_index: usize,
        /// The command line.
        command_line: String,
    },
    /// An S-CRTM version is required but none was measured.
    #[error("no S-CRTM version was measured")]
    ScrtmVersionNotMeasured,
    /// A measured S-CRTM version differs from the required one.
    #[error("S-CRTM version {found:?} (event {event_index}) is not the required one")]
    ScrtmVersionMismatch {
        /// The event.
        event_index: usize,
        /// The version measured.
        found: String,
    },
}

/// The boot is outside policy: every failed rule, in rule order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} boot policy rule(s) failed", failures.len())]
pub struct BootPolicyViolation {
    failures: Vec<BootRuleFailure>,
}

impl BootPolicyViolation {
    /// Every failed rule (never empty).
    pub fn failures(&self) -> &[BootRuleFailure] {
        &self.failures
    }
}

/// What a [`VerifiedBootState`] was established from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BootStateBasis {
    /// Golden PCR values matched the quote.
    GoldenPcrs,
    /// Rules held over a verified boot log.
    BootLogRules,
}

/// Proof that a host's boot satisfied its boot policy. Only this module's
/// evaluation makes one; the release path takes it as an argument.
#[derive(Debug, Clone)]
pub struct VerifiedBootState {
    basis: BootStateBasis,
    pcrs: PcrValues,
}

impl VerifiedBootState {
    /// What the decision was based on.
    pub fn basis(&self) -> BootStateBasis {
        self.basis
    }

    /// The quoted PCR values the decision rests on: the golden PCRs, or the
    /// PCRs the boot log was verified against.
    pub fn pcrs(&self) -> &PcrValues {
        &self.pcrs
    }
}

fn verdict(
    failures: Vec<BootRuleFailure>,
    basis: BootStateBasis,
    pcrs: PcrValues,
) -> Result<VerifiedBootState, BootPolicyViolation> {
    if failures.is_empty() {
        Ok(VerifiedBootState { basis, pcrs })
    } else {
        Err(BootPolicyViolation { failures })
    }
}

impl BootPolicy {
    /// Evaluates the policy: golden PCRs against `quoted`, rules against
    /// `boot_log` (a rules policy without a log fails with
    /// [`BootRuleFailure::BootLogMissing`]).
    pub fn evaluate(
        &self,
        quoted: &PcrValues,
        boot_log: Option<&VerifiedBootLog>,
    ) -> Result<VerifiedBootState, BootPolicyViolation> {
        match (self, boot_log) {
            (Self::GoldenPcrs(golden), _) => golden.evaluate(quoted),
            (Self::Rules(rules), Some(log)) => rules.evaluate(log),
            (Self::Rules(_), None) => Err(BootPolicyViolation {
                failures: vec![BootRuleFailure::BootLogMissing],
            }),
        }
    }
}

/// Golden PCR values (at least one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "GoldenPcrsWire", into = "GoldenPcrsWire")]
pub struct GoldenPcrs {
    values: PcrValues,
}

type GoldenPcrsWire = BTreeMap<String, BTreeMap<String, String>>;

impl GoldenPcrs {
    /// Golden values; at least one is required.
    pub fn new(values: PcrValues) -> Result<Self, BootPolicyConfigError> {
        if values.is_empty() {
            return Err(BootPolicyConfigError::EmptyGoldenPcrs);
        }
        Ok(Self { values })
    }

    /// The values.
    pub fn values(&self) -> &PcrValues {
        &self.values
    }

    /// Every golden PCR must be quoted with exactly its golden value.
    pub fn evaluate(&self, quoted: &PcrValues) -> Result<VerifiedBootState, BootPolicyViolation> {
        let mut failures = Vec::new();
        for (alg, pcr, expected) in self.values.iter() {
            match quoted.get(alg, pcr) {
                None => failures.push(BootRuleFailure::PcrNotQuoted { alg, pcr }),
                Some(value) if value != expected => failures.push(BootRuleFailure::PcrMismatch {
                    alg,
                    pcr,
                    expected: expected.to_vec(),
                    quoted: value.to_vec(),
                }),
                Some(_) => {}
            }
        }
        verdict(failures, BootStateBasis::GoldenPcrs, self.values.clone())
    }
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| {
            let [hi, lo] = pair else { return None };
            let value = |d: u8| {
                char::from(d)
                    .to_digit(16)
                    .and_then(|v| u8::try_from(v).ok())
            };
            Some((value(*hi)? << 4) | value(*lo)?)
        })
        .collect()
}

impl TryFrom<GoldenPcrsWire> for GoldenPcrs {
    type Error = BootPolicyConfigError;

    fn try_from(wire: GoldenPcrsWire) -> Result<Self, Self::Error> {
        let mut values = PcrValues::new();
        for (bank, pcrs) in wire {
            let alg = HashAlg::from_name(&bank)
                .ok_or(BootPolicyConfigError::UnknownBank { name: bank.clone() })?;
            for (index_text, hex_value) in pcrs {
                let index = index_text
                    .parse::<u8>()
                    .ok()
                    .filter(|i| *i <= MAX_PCR_INDEX && i.to_string() == index_text)
                    .ok_or(BootPolicyConfigError::InvalidPcrIndex { index: index_text })?;
                let invalid = BootPolicyConfigError::InvalidPcrValue {
                    alg,
                    index,
                    expected: alg.digest_len(),
                };
                let value = parse_hex(&hex_value).ok_or_else(|| invalid.clone())?;
                values
                    .insert(alg, u32::from(index), value)
                    .map_err(|_| invalid)?;
            }
        }
        Self::new(values)
    }
}

impl From<GoldenPcrs> for GoldenPcrsWire {
    fn from(golden: GoldenPcrs) -> Self {
        let mut wire = GoldenPcrsWire::new();
        for (alg, pcr, value) in golden.values.iter() {
            wire.entry(alg.name().to_owned())
                .or_default()
                .insert(pcr.to_string(), crate::eventlog::hex_lower(value));
        }
        wire
    }
}

/// Rules over a verified boot log (at least one rule active).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BootRulesWire", into = "BootRulesWire")]
pub struct BootRules {
    require_secure_boot: bool,
    allowed_efi_applications: Option<BTreeSet<Sha256Digest>>,
    allowed_kernel_command_lines: Option<BTreeSet<String>>,
    required_scrtm_version: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BootRulesWire {
    #[serde(default)]
    require_secure_boot: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allowed_efi_applications: Option<BTreeSet<Sha256Digest>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allowed_kernel_command_lines: Option<BTreeSet<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    required_scrtm_version: Option<String>,
}

impl TryFrom<BootRulesWire> for BootRules {
    type Error = BootPolicyConfigError;

    fn try_from(w: BootRulesWire) -> Result<Self, Self::Error> {
        Self::new(
            w.require_secure_boot,
            w.allowed_efi_applications,
            w.allowed_kernel_command_lines,
            w.required_scrtm_version,
        )
    }
}

impl From<BootRules> for BootRulesWire {
    fn from(r: BootRules) -> Self {
        Self {
            require_secure_boot: r.require_secure_boot,
            allowed_efi_applications: r.allowed_efi_applications,
            allowed_kernel_command_lines: r.allowed_kernel_command_lines,
            required_scrtm_version: r.required_scrtm_version,
        }
    }
}

impl BootRules {
    /// Builds rules; `None` disables a rule. At least one rule must be
    /// active, and an allow-list that is given must not be empty.
    pub fn new(
        require_secure_boot: bool,
        allowed_efi_applications: Option<BTreeSet<Sha256Digest>>,
        allowed_kernel_command_lines: Option<BTreeSet<String>>,
        required_scrtm_version: Option<String>,
    ) -> Result<Self, BootPolicyConfigError> {
        if allowed_efi_applications
            .as_ref()
            .is_some_and(BTreeSet::is_empty)
        {
            return Err(BootPolicyConfigError::EmptyAllowList {
                rule: "allowed_efi_applications",
            });
        }
        if allowed_kernel_command_lines
            .as_ref()
            .is_some_and(BTreeSet::is_empty)
        {
            return Err(BootPolicyConfigError::EmptyAllowList {
                rule: "allowed_kernel_command_lines",
            });
        }
        if !require_secure_boot
            && allowed_efi_applications.is_none()
            && allowed_kernel_command_lines.is_none()
            && required_scrtm_version.is_none()
        {
            return Err(BootPolicyConfigError::EmptyRules);
        }
        Ok(Self {
            require_secure_boot,
            allowed_efi_applications,
            allowed_kernel_command_lines,
            required_scrtm_version,
        })
    }

    /// Evaluates every rule against the log's facts:
    /// - `require_secure_boot`: [`SecureBoot::Enabled`];
    /// - `allowed_efi_applications`: PCR 4 verified in SHA-256, at least one
    ///   application measured, and every one in the set;
    /// - `allowed_kernel_command_lines`: at least one command line measured,
    ///   and every one in the set;
    /// - `required_scrtm_version`: at least one S-CRTM version measured, and
    ///   every one equal to it ([`crate::eventlog::ScrtmVersion::text`]).
    ///
    /// "Every measured item is allowed" is what makes these rules hold up
    /// against measurements appended after boot: extra items can only fail.
    pub fn evaluate(
        &self,
        log: &VerifiedBootLog,
    ) -> Result<VerifiedBootState, BootPolicyViolation> {
        let facts = log.facts();
        let mut failures = Vec::new();
        if self.require_secure_boot && !facts.secure_boot().is_enabled() {
            failures.push(BootRuleFailure::SecureBootNotEnabled {
                state: facts.secure_boot(),
            });
        }
        if let Some(allowed) = &self.allowed_efi_applications {
            match facts.efi_applications() {
                None => failures.push(BootRuleFailure::EfiApplicationsNotMeasured),
                Some([]) => failures.push(BootRuleFailure::NoEfiApplication),
                Some(apps) => failures.extend(
                    apps.iter()
                        .filter(|a| !allowed.contains(&a.digest))
                        .map(|a| BootRuleFailure::EfiApplicationNotAllowed {
                            event_index: a.event_index,
                            digest: a.digest,
                        }),
                ),
            }
        }
        if let Some(allowed) = &self.allowed_kernel_command_lines {
            let lines = facts.kernel_command_lines();
            if lines.is_empty() {
                failures.push(BootRuleFailure::KernelCommandLineNotMeasured);
            }
            failures.extend(
                lines
                    .iter()
                    .filter(|l| !allowed.contains(&l.text))
                    .map(|l| BootRuleFailure::KernelCommandLineNotAllowed {
                        event_index: l.event_index,
                        command_line: l.text.clone(),
                    }),
            );
        }
        if let Some(required) = &self.required_scrtm_version {
            let versions = facts.scrtm_versions();
            if versions.is_empty() {
                failures.push(BootRuleFailure::ScrtmVersionNotMeasured);
            }
            for v in versions {
                let found = v.text();
                if &found != required {
                    failures.push(BootRuleFailure::ScrtmVersionMismatch {
                        event_index: v.event_index,
                        found,
                    });
                }
            }
        }
        verdict(
            failures,
            BootStateBasis::BootLogRules,
            log.verified_pcrs().clone(),
        )
    }
}

#[cfg(test)]
mod tests;
