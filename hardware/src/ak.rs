//! The attestation key (AK): a restricted signing key under the EK.
//!
//! The AK's private part leaves the TPM only wrapped by the EK (it is
//! `fixedTPM`), so the blob file is not secret in the cryptographic sense,
//! but it is bound to this TPM: loading it elsewhere fails.
//!
//! AK file format (our own, versioned; tpm2-tools keeps the two halves in
//! separate files):
//!
//! ```text
//! "KWAK" | version u8 (1) | EK kind u8 (1 = RSA-2048, 2 = ECC P-384)
//!        | u16 length | TPMT_PUBLIC | u16 length | TPM2B_PRIVATE buffer
//! ```
//! All integers big-endian, lengths capped, no trailing bytes.

use std::path::Path;

use tss_esapi::abstraction::{AsymmetricAlgorithmSelection, ak};
use tss_esapi::handles::{KeyHandle, ObjectHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, SignatureSchemeAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::structures::{Private, Public};
use tss_esapi::traits::{Marshall, UnMarshall};

use crate::ek::{EkKind, marshal_tpm2b_public, spki_der};
use crate::error::TpmError;
use crate::tpm::{Session, Tpm};

const MAGIC: &[u8; 4] = b"KWAK";
const VERSION: u8 = 1;
/// Largest TPMT_PUBLIC we accept (TPM 2.0 Part 2: TPMT_PUBLIC fits in 1 KiB for RSA-4096).
const MAX_PUBLIC: usize = 1024;
/// Largest TPM2B_PRIVATE buffer (TPM 2.0 Part 2, §12.3.7: sizeof(_PRIVATE)).
const MAX_PRIVATE: usize = 1024;

/// The AK's key type and signing scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AkAlgorithm {
    /// RSA-2048 with RSASSA-PKCS1-v1_5 / SHA-256: what Keylime and tpm2-tools accept.
    #[default]
    RsaSsaSha256,
    /// ECC NIST P-256 with ECDSA / SHA-256.
    EcdsaP256Sha256,
}

/// An AK: its public area, its EK-wrapped private area, and the EK it lives under.
#[derive(Clone)]
pub struct AkBlob {
    ek_kind: EkKind,
    public: Public,
    private: Private,
}

impl std::fmt::Debug for AkBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AkBlob")
            .field("ek_kind", &self.ek_kind)
            .finish_non_exhaustive()
    }
}

/// The public facts about an AK that a verifier is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AkPublic {
    /// TPM2B_PUBLIC, marshalled (what `tpm2_createak -u` writes).
    pub tpm2b_public: Vec<u8>,
    /// DER SubjectPublicKeyInfo (what `tpm2_createak -f pem` writes, before PEM armour).
    pub spki_der: Vec<u8>,
    /// TPM name: nameAlg || H(TPMT_PUBLIC).
    pub name: Vec<u8>,
}

/// An AK loaded in the TPM, identified by its public area.
pub(crate) struct LoadedAk {
    pub(crate) handle: KeyHandle,
    public: Public,
}

impl AkBlob {
    /// The EK this AK was created under.
    pub fn ek_kind(&self) -> EkKind {
        self.ek_kind
    }

    /// Public facts (no TPM needed).
    pub fn public(&self) -> Result<AkPublic, TpmError> {
        let tpmt = self
            .public
            .marshall()
            .map_err(|_| TpmError::MalformedAkFile {
                what: "public area does not marshal",
            })?;
        let (alg, digest) = match self.public.name_hashing_algorithm() {
            HashingAlgorithm::Sha256 => (0x000B_u16, &ring::digest::SHA256),
            HashingAlgorithm::Sha384 => (0x000C, &ring::digest::SHA384),
            _ => {
                return Err(TpmError::MalformedAkFile {
                    what: "unsupported name algorithm",
                });
            }
        };
        // TPM 2.0 Part 1, §16: Name = nameAlg || H_nameAlg(TPMT_PUBLIC).
        let mut name = alg.to_be_bytes().to_vec();
        name.extend_from_slice(ring::digest::digest(digest, &tpmt).as_ref());
        Ok(AkPublic {
            tpm2b_public: marshal_tpm2b_public(&self.public)?,
            spki_der: spki_der(&self.public)?,
            name,
        })
    }

    /// Encodes the blob in the AK file format.
    pub fn to_bytes(&self) -> Result<Vec<u8>, TpmError> {
        let public = self
            .public
            .marshall()
            .map_err(|_| TpmError::MalformedAkFile {
                what: "public area does not marshal",
            })?;
        let private = self.private.value();
        let mut out = Vec::with_capacity(10 + public.len() + private.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(match self.ek_kind {
            EkKind::Rsa2048 => 1,
            EkKind::EccP384 => 2,
        });
        for part in [public.as_slice(), private] {
            let len = u16::try_from(part.len()).map_err(|_| TpmError::MalformedAkFile {
                what: "part longer than 65535 bytes",
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part);
        }
        Ok(out)
    }

    /// Decodes the AK file format, bounded and strict.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TpmError> {
        let bad = |what| TpmError::MalformedAkFile { what };
        let (magic, rest) = bytes.split_at_checked(4).ok_or(bad("truncated header"))?;
        if magic != MAGIC {
            return Err(bad("not an AK file"));
        }
        let (&[version, kind], rest) = rest
            .split_first_chunk::<2>()
            .ok_or(bad("truncated header"))?;
        if version != VERSION {
            return Err(bad("unsupported version"));
        }
        let ek_kind = match kind {
            1 => EkKind::Rsa2048,
            2 => EkKind::EccP384,
            _ => return Err(bad("unknown EK kind")),
        };
        let (public, rest) = take_part(rest, MAX_PUBLIC).ok_or(bad("bad public part"))?;
        let (private, rest) = take_part(rest, MAX_PRIVATE).ok_or(bad("bad private part"))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        let public = Public::unmarshall(public).map_err(|_| bad("public area does not parse"))?;
        let private = Private::try_from(private.to_vec()).map_err(|_| bad("private too long"))?;
        Ok(Self {
            ek_kind,
            public,
            private,
        })
    }

    /// Writes the AK file (mode 0600: it names this host's TPM key).
    pub fn save(&self, path: &Path) -> Result<(), TpmError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| TpmError::Io {
            path: path.to_owned(),
            source,
        };
        let bytes = self.to_bytes()?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Reads an AK file.
    pub fn load(path: &Path) -> Result<Self, TpmError> {
        let bytes = std::fs::read(path).map_err(|source| TpmError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }
}

fn take_part(bytes: &[u8], cap: usize) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    if len == 0 || len > cap {
        return None;
    }
    rest.split_at_checked(len)
}

impl Session {
    /// Loads `blob` under its EK, reusing the handle when it is already loaded.
    pub(crate) fn load_ak(&mut self, blob: &AkBlob) -> Result<KeyHandle, TpmError> {
        if let Some(loaded) = &self.loaded_ak
            && loaded.public == blob.public
        {
            return Ok(loaded.handle);
        }
        if let Some(old) = self.loaded_ak.take() {
            self.context
                .flush_context(ObjectHandle::from(old.handle))
                .map_err(TpmError::command("FlushContext(AK)"))?;
        }
        let ek = self.ek_handle(blob.ek_kind)?;
        let handle = ak::load_ak(
            &mut self.context,
            ek,
            None,
            blob.private.clone(),
            blob.public.clone(),
        )
        .map_err(TpmError::command("Load(AK)"))?;
        self.loaded_ak = Some(LoadedAk {
            handle,
            public: blob.public.clone(),
        });
        Ok(handle)
    }
}

impl Tpm {
    /// Creates a new AK under the EK of `ek_kind`.
    pub fn create_ak(&self, ek_kind: EkKind, algorithm: AkAlgorithm) -> Result<AkBlob, TpmError> {
        self.call(move |s| {
            let ek = s.ek_handle(ek_kind)?;
            let (key_alg, scheme) = match algorithm {
                AkAlgorithm::RsaSsaSha256 => (
                    AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
                    SignatureSchemeAlgorithm::RsaSsa,
                ),
                AkAlgorithm::EcdsaP256Sha256 => (
                    AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
                    SignatureSchemeAlgorithm::EcDsa,
                ),
            };
            let created = ak::create_ak_2(
                &mut s.context,
                ek,
                HashingAlgorithm::Sha256,
                key_alg,
                scheme,
                None,
                None,
            )
            .map_err(TpmError::command("Create(AK)"))?;
            Ok(AkBlob {
                ek_kind,
                public: created.out_public,
                private: created.out_private,
            })
        })
    }

    /// Loads `blob` and returns its public facts as the TPM reports them.
    /// Fails when the blob was made by another TPM.
    pub fn load_ak(&self, blob: &AkBlob) -> Result<AkPublic, TpmError> {
        let blob = blob.clone();
        self.call(move |s| {
            let handle = s.load_ak(&blob)?;
            let (public, name, _) = s
                .context
                .execute_without_session(|ctx| ctx.read_public(handle))
                .map_err(TpmError::command("ReadPublic(AK)"))?;
            Ok(AkPublic {
                tpm2b_public: marshal_tpm2b_public(&public)?,
                spki_der: spki_der(&public)?,
                name: name.value().to_vec(),
            })
        })
    }
}
