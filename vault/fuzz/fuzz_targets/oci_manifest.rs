//! Registry manifests and indexes are attacker-controlled (whoever can push
//! to the repository): both parsers on arbitrary bytes. The first byte picks
//! the response's `Content-Type`: none, or one of the four accepted kinds.
#![no_main]
use keyward_vault::oci::manifest::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, fuzz_entry,
};

const CONTENT_TYPES: [Option<&str>; 5] = [
    None,
    Some(OCI_MANIFEST),
    Some(OCI_INDEX),
    Some(DOCKER_MANIFEST),
    Some(DOCKER_MANIFEST_LIST),
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    let _ = fuzz_entry(bytes, content_type);
});
