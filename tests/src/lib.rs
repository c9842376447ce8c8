//! End-to-end tests across the Keyward crates live in `tests/`; this
//! library is empty on purpose.
