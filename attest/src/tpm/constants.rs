//! TPM 2.0 constants (TPM 2.0 Library Part 2) and the size caps the parsers
//! enforce.

/// TPM_GENERATED_VALUE (Part 2, §6.2): the magic at the start of every
/// structure the TPM signs itself. A restricted key signs external data only
/// with a ticket from TPM2_Hash, which the TPM refuses for data starting with
/// this value (Part 3, §15.4 and §20.2); that is what stops TPM2_Sign from
/// forging a quote.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;

/// TPM_ST_ATTEST_NV (Part 2, §6.9).
pub const TPM_ST_ATTEST_NV: u16 = 0x8014;
/// TPM_ST_ATTEST_COMMAND_AUDIT.
pub const TPM_ST_ATTEST_COMMAND_AUDIT: u16 = 0x8015;
/// TPM_ST_ATTEST_SESSION_AUDIT.
pub const TPM_ST_ATTEST_SESSION_AUDIT: u16 = 0x8016;
/// TPM_ST_ATTEST_CERTIFY.
pub const TPM_ST_ATTEST_CERTIFY: u16 = 0x8017;
/// TPM_ST_ATTEST_QUOTE.
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;
/// TPM_ST_ATTEST_TIME.
pub const TPM_ST_ATTEST_TIME: u16 = 0x8019;
/// TPM_ST_ATTEST_CREATION.
pub const TPM_ST_ATTEST_CREATION: u16 = 0x801a;
/// TPM_ST_ATTEST_NV_DIGEST.
pub const TPM_ST_ATTEST_NV_DIGEST: u16 = 0x801c;

/// TPM_ALG_RSA (Part 2, §6.3).
pub const TPM_ALG_RSA: u16 = 0x0001;
/// TPM_ALG_HMAC.
pub const TPM_ALG_HMAC: u16 = 0x0005;
/// TPM_ALG_AES.
pub const TPM_ALG_AES: u16 = 0x0006;
/// TPM_ALG_MGF1.
pub const TPM_ALG_MGF1: u16 = 0x0007;
/// TPM_ALG_KEYEDHASH.
pub const TPM_ALG_KEYEDHASH: u16 = 0x0008;
/// TPM_ALG_NULL.
pub const TPM_ALG_NULL: u16 = 0x0010;
/// TPM_ALG_RSASSA (PKCS#1 v1.5 signatures).
pub const TPM_ALG_RSASSA: u16 = 0x0014;
/// TPM_ALG_RSAES (PKCS#1 v1.5 encryption).
pub const TPM_ALG_RSAES: u16 = 0x0015;
/// TPM_ALG_RSAPSS.
pub const TPM_ALG_RSAPSS: u16 = 0x0016;
/// TPM_ALG_OAEP.
pub const TPM_ALG_OAEP: u16 = 0x0017;
/// TPM_ALG_ECDSA.
pub const TPM_ALG_ECDSA: u16 = 0x0018;
/// TPM_ALG_ECDH.
pub const TPM_ALG_ECDH: u16 = 0x0019;
/// TPM_ALG_KDF1_SP800_56A.
pub const TPM_ALG_KDF1_SP800_56A: u16 = 0x0020;
/// TPM_ALG_KDF2.
pub const TPM_ALG_KDF2: u16 = 0x0021;
/// TPM_ALG_KDF1_SP800_108.
pub const TPM_ALG_KDF1_SP800_108: u16 = 0x0022;
/// TPM_ALG_ECC.
pub const TPM_ALG_ECC: u16 = 0x0023;
/// TPM_ALG_SYMCIPHER.
pub const TPM_ALG_SYMCIPHER: u16 = 0x0025;
/// TPM_ALG_CFB.
pub const TPM_ALG_CFB: u16 = 0x0043;

/// Largest digest of a supported hash (SHA-512): the buffer size of
/// TPM2B_DIGEST (Part 2, §10.4.2, `sizeof(TPMU_HA)`).
pub const MAX_DIGEST_SIZE: usize = 64;
/// Buffer size of TPM2B_DATA: `sizeof(TPMT_HA)`, an algorithm identifier
/// plus the largest digest (Part 2, §10.4.3).
pub const MAX_DATA_SIZE: usize = 2 + MAX_DIGEST_SIZE;
/// Buffer size of TPM2B_NAME: `sizeof(TPMU_NAME)`, the larger of a TPMT_HA
/// and a handle (Part 2, §10.5.3).
pub const MAX_NAME_SIZE: usize = 2 + MAX_DIGEST_SIZE;
/// Largest RSA modulus or signature accepted: 4096 bits (TPM2B_PUBLIC_KEY_RSA,
/// Part 2, §11.2.4.5, with MAX_RSA_KEY_BYTES of a 4096-bit TPM).
pub const MAX_RSA_KEY_BYTES: usize = 512;
/// Largest ECC coordinate or signature half accepted: P-384 (TPM2B_ECC_PARAMETER,
/// Part 2, §11.2.5.1; the verifier supports no larger curve).
pub const MAX_ECC_KEY_BYTES: usize = 48;
/// Largest TPMT_PUBLIC accepted: an RSA-4096 object with a SHA-512 policy
/// needs about 600 bytes; TPM2B_PUBLIC has no tighter bound in Part 2.
pub const MAX_PUBLIC_SIZE: usize = 1024;
/// Largest TPMS_ATTEST accepted. The largest arm, TPMS_NV_CERTIFY_INFO, holds
/// up to MAX_NV_BUFFER_SIZE (1024 on common TPMs) bytes of NV data on top of a
/// header of under 200 bytes.
pub const MAX_ATTEST_SIZE: usize = 2048;
/// Most banks in one TPML_PCR_SELECTION. The verifier knows four hash
/// algorithms and rejects a bank listed twice, so more can never be valid.
pub const MAX_PCR_BANKS: usize = 4;
