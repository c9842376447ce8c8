//! Building a path from an EK certificate to a trust anchor, under a budget.

use super::cert::{Certificate, SignatureAlgorithm};
use super::signature;
use super::store::EkTrustStore;
use super::{EkError, EkPolicy, ExpiryPolicy};

/// Most CA certificates between the EK certificate and its trust anchor.
/// TPM vendors use one (Infineon, STMicro, Google) or none; four leaves room
/// for cross-signing without letting a crafted bundle send the search deep.
pub const MAX_CHAIN_INTERMEDIATES: usize = 4;

/// Most signature verifications one chain search may perform. Every
/// candidate issuer costs one, whether or not it leads to an anchor.
pub const MAX_SIGNATURE_CHECKS: usize = 32;

/// What a chain search needs besides the certificate it starts from.
pub(crate) struct Search<'a> {
    pub(crate) store: &'a EkTrustStore,
    pub(crate) supplied: &'a [Certificate],
    pub(crate) policy: &'a EkPolicy,
    pub(crate) time: i64,
    /// Signature verifications left.
    pub(crate) budget: usize,
}

impl<'a> Search<'a> {
    /// Finds issuers for `child` until a trust anchor is reached. On success
    /// `path` holds the CA certificates above the EK certificate, the anchor
    /// last. Depth-first: anchors are tried before intermediates, supplied
    /// intermediates before the store's; the first error met is reported
    /// unless the budget runs out, which ends the search at once.
    pub(crate) fn extend(
        &mut self,
        child: &Certificate,
        path: &mut Vec<&'a Certificate>,
    ) -> Result<(), EkError> {
        let mut first_error = None;

        let store = self.store;
        for anchor in store.roots.iter().filter(|c| c.subject == child.issuer) {
            match self.accept_issuer(anchor, child, path.len()) {
                Ok(()) => {
                    path.push(anchor);
                    return Ok(());
                }
                Err(EkError::BudgetExhausted) => return Err(EkError::BudgetExhausted),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }

        let supplied = self.supplied;
        let candidates = supplied
            .iter()
            .chain(store.intermediates.iter())
            .filter(|c| c.subject == child.issuer)
            // A certificate appears at most once in a path, which also stops
            // loops between cross-signed CAs.
            .filter(|c| !path.iter().any(|p| p.der == c.der))
            .fold(Vec::<&'a Certificate>::new(), |mut unique, c| {
                // The same certificate sent by the host and held by the store
                // is tried once.
                if !unique.iter().any(|u| u.der == c.der) {
                    unique.push(c);
                }
                unique
            });
        for intermediate in candidates {
            if path.len() >= MAX_CHAIN_INTERMEDIATES {
                first_error.get_or_insert(EkError::ChainTooLong {
                    max: MAX_CHAIN_INTERMEDIATES,
                });
                break;
            }
            let step = self
                .accept_issuer(intermediate, child, path.len())
                .and_then(|()| {
                    path.push(intermediate);
                    let above = self.extend(intermediate, path);
                    if above.is_err() {
                        path.pop();
                    }
                    above
                });
            match step {
                Ok(()) => return Ok(()),
                Err(EkError::BudgetExhausted) => return Err(EkError::BudgetExhausted),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }

        Err(first_error.unwrap_or_else(|| {
            let issuer = child.issuer_name.clone();
            if path.is_empty() {
                EkError::UnknownIssuer { issuer }
            } else {
                EkError::UntrustedRoot { issuer }
            }
        }))
    }

    /// Checks that `issuer` may have issued `child`, with `below` CA
    /// certificates between `issuer` and the EK certificate.
    fn accept_issuer(
        &mut self,
        issuer: &Certificate,
        child: &Certificate,
        below: usize,
    ) -> Result<(), EkError> {
        let subject = || issuer.subject_name.clone();
        // RFC 5280 §4.2.1.9: only certificates with cA TRUE may issue; the
        // check applies to trust anchors too, which the store verified on load.
        if !issuer.is_ca() {
            return Err(EkError::NotCa { subject: subject() });
        }
        // RFC 5280 §4.2.1.3: with keyUsage present, the key may verify
        // certificate signatures only if keyCertSign is set.
        if issuer.key_cert_sign == Some(false) {
            return Err(EkError::MissingKeyCertSign { subject: subject() });
        }
        // RFC 5280 §4.2.1.9: pathLenConstraint is the most non-self-issued
        // intermediates that may follow this certificate in the path.
        if let Some(path_len) = issuer.basic_constraints.and_then(|bc| bc.path_len)
            && usize::try_from(path_len).is_ok_and(|max| below > max)
        {
            return Err(EkError::PathLenExceeded {
                subject: subject(),
                path_len,
            });
        }
        check_validity(issuer, self.time, self.policy)?;

        if child.signature_algorithm == SignatureAlgorithm::RsaPkcs1Sha1
            && !self.policy.allow_sha1_signatures
        {
            return Err(EkError::SignatureAlgorithmNotAllowed {
                subject: child.subject_name.clone(),
                algorithm: child.signature_algorithm,
            });
        }
        self.budget = self.budget.checked_sub(1).ok_or(EkError::BudgetExhausted)?;
        if !signature::verify(
            child.signature_algorithm,
            &issuer.public_key,
            &child.tbs,
            &child.signature,
        ) {
            return Err(EkError::BadSignature {
                subject: child.subject_name.clone(),
            });
        }
        Ok(())
    }
}

/// RFC 5280 §4.1.2.5: a certificate is valid from notBefore through notAfter
/// inclusive. notAfter is enforced only under [`ExpiryPolicy::Enforce`].
pub(crate) fn check_validity(
    cert: &Certificate,
    time: i64,
    policy: &EkPolicy,
) -> Result<(), EkError> {
    if time < cert.not_before {
        return Err(EkError::NotYetValid {
            subject: cert.subject_name.clone(),
            not_before: cert.not_before,
        });
    }
    if time > cert.not_after && policy.expiry == ExpiryPolicy::Enforce {
        return Err(EkError::Expired {
            subject: cert.subject_name.clone(),
            not_after: cert.not_after,
        });
    }
    Ok(())
}
