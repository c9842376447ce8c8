//! TPM2_ActivateCredential: the host side of proving that an AK lives in the
//! same TPM as the EK.

use tss_esapi::constants::SessionType;
use tss_esapi::handles::AuthHandle;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{Digest, DigestList, EncryptedSecret, IdObject, SymmetricDefinition};
use zeroize::Zeroizing;

use crate::ak::AkBlob;
use crate::error::TpmError;
use crate::tpm::Tpm;

/// Largest TPM2B_ID_OBJECT / TPM2B_ENCRYPTED_SECRET payload accepted.
const MAX_BLOB: usize = 1024;

/// TCG EK Credential Profile 2.5, §B.6: PolicyA/PolicyC digests that the
/// high-range (SHA-384) EK templates OR together after PolicySecret.
const POLICY_A_SHA384: [u8; 48] = [
    0x8b, 0xbf, 0x22, 0x66, 0x53, 0x7c, 0x17, 0x1c, 0xb5, 0x6e, 0x40, 0x3c, 0x4d, 0xc1, 0xd4, 0xb6,
    0x4f, 0x43, 0x26, 0x11, 0xdc, 0x38, 0x6e, 0x6f, 0x53, 0x20, 0x50, 0xc3, 0x27, 0x8c, 0x93, 0x0e,
    0x14, 0x3e, 0x8b, 0xb1, 0x13, 0x38, 0x24, 0xcc, 0xb4, 0x31, 0x05, 0x38, 0x71, 0xc6, 0xdb, 0x53,
];
const POLICY_C_SHA384: [u8; 48] = [
    0xd6, 0x03, 0x2c, 0xe6, 0x1f, 0x2f, 0xb3, 0xc2, 0x40, 0xeb, 0x3c, 0xf6, 0xa3, 0x32, 0x37, 0xef,
    0x2b, 0x6a, 0x16, 0xf4, 0x29, 0x3c, 0x22, 0xb4, 0x55, 0xe2, 0x61, 0xcf, 0xfd, 0x21, 0x7a, 0xd5,
    0xb4, 0x94, 0x7c, 0x2d, 0x73, 0xe6, 0x30, 0x05, 0xee, 0xd2, 0xdc, 0x2b, 0x35, 0x93, 0xd1, 0x65,
];

impl Tpm {
    /// Recovers the secret the verifier bound to `ak`'s name with MakeCredential.
    ///
    /// `credential_blob` is the TPM2B_ID_OBJECT buffer and `encrypted_secret`
    /// the TPM2B_ENCRYPTED_SECRET buffer (both without their size prefix).
    /// The TPM refuses (integrity check) when the blob was made for another
    /// name or another EK.
    pub fn activate_credential(
        &self,
        ak: &AkBlob,
        credential_blob: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, TpmError> {
        if credential_blob.len() > MAX_BLOB || encrypted_secret.len() > MAX_BLOB {
            return Err(TpmError::InvalidArgument {
                what: "credential larger than 1 KiB",
            });
        }
        let id_object = IdObject::try_from(credential_blob.to_vec()).map_err(|_| {
            TpmError::InvalidArgument {
                what: "credential blob",
            }
        })?;
        let secret = EncryptedSecret::try_from(encrypted_secret.to_vec()).map_err(|_| {
            TpmError::InvalidArgument {
                what: "encrypted secret",
            }
        })?;
        let ak = ak.clone();
        self.call(move |s| {
            let ak_handle = s.load_ak(&ak)?;
            let ek_handle = s.ek_handle(ak.ek_kind())?;
            let (ek_public, _, _) = s
                .context
                .execute_without_session(|ctx| ctx.read_public(ek_handle))
                .map_err(TpmError::command("ReadPublic(EK)"))?;
            let name_alg = ek_public.name_hashing_algorithm();
            // The EK's authPolicy is PolicySecret(TPM_RH_ENDORSEMENT), in the
            // high-range templates ORed with PolicyC (EK Credential Profile §B.6).
            let policy = s
                .context
                .start_auth_session(
                    None,
                    None,
                    None,
                    SessionType::Policy,
                    SymmetricDefinition::AES_128_CFB,
                    name_alg,
                )
                .map_err(TpmError::command("StartAuthSession"))?
                .ok_or(TpmError::UnexpectedResponse {
                    what: "no policy session",
                })?;
            let result = (|| {
                let policy_session =
                    PolicySession::try_from(policy).map_err(|_| TpmError::UnexpectedResponse {
                        what: "not a policy session",
                    })?;
                s.context
                    .execute_with_nullauth_session(|ctx| {
                        ctx.policy_secret(
                            policy_session,
                            AuthHandle::Endorsement,
                            Default::default(),
                            Default::default(),
                            Default::default(),
                            None,
                        )
                    })
                    .map_err(TpmError::command("PolicySecret"))?;
                if name_alg == HashingAlgorithm::Sha384 {
                    let mut digests = DigestList::new();
                    for d in [POLICY_A_SHA384, POLICY_C_SHA384] {
                        let d = Digest::try_from(d.to_vec()).map_err(|_| {
                            TpmError::InvalidArgument {
                                what: "policy digest",
                            }
                        })?;
                        digests.add(d).map_err(|_| TpmError::InvalidArgument {
                            what: "policy digest",
                        })?;
                    }
                    s.context
                        .policy_or(policy_session, digests)
                        .map_err(TpmError::command("PolicyOR"))?;
                }
                s.context
                    .execute_with_sessions(
                        (Some(AuthSession::Password), Some(policy), None),
                        |ctx| ctx.activate_credential(ak_handle, ek_handle, id_object, secret),
                    )
                    .map_err(TpmError::command("ActivateCredential"))
            })();
            // Always release the session slot (swtpm has three).
            let _ = s
                .context
                .flush_context(tss_esapi::handles::SessionHandle::from(policy).into());
            let digest = result?;
            Ok(Zeroizing::new(digest.value().to_vec()))
        })
    }
}
