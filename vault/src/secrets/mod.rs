//! Secrets engines: what a released secret is made of.
//!
//! - [`identity`]: ES256 workload identity tokens, with OIDC discovery and
//!   a JWKS for anyone verifying them;
//! - [`database`]: one fresh PostgreSQL role per release.
//!
//! Engines do not authorize: the release path (`crate::release`) decides
//! whether a workload gets a secret; engines make and destroy it.
pub mod database;
pub mod identity;
