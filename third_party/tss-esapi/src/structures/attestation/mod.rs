// Copyright 2022 Contributors to the Parsec project.
// SPDX-License-Identifier: Apache-2.0
pub mod attest;
pub mod attest_info;
pub mod certify_info;
pub mod command_audit_info;
pub mod creation_info;
pub mod nv_certify_info;
pub mod nv_digest_certify_info;
pub mod quote_info;
pub mod session_audit_info;
pub mod time_attest_info;
