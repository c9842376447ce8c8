//! Harnesses shared by the end-to-end tests in `tests/`: real peers
//! (an OCI registry, …) started as child processes on loopback in temp dirs,
//! stopped and reaped on drop.
pub mod firmware;
pub mod postgres;
pub mod registry;
