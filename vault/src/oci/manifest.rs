//! OCI image manifests and indexes, parsed only as far as discovery needs.
//!
//! OCI Image Format Specification v1.1: `manifest.md` (image manifest,
//! `artifactType`, `subject`), `image-index.md` (index, also the referrers
//! response), `descriptor.md` (digest, size). Docker's schema 2 manifest and
//! manifest list have the same JSON shape for the fields read here.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::ManifestFailure;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (also the referrers API response).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The `Accept` header of manifest requests: the four kinds above.
pub(crate) const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// The layer media type of legacy simple-signing signatures (cosign
/// `pkg/types`: `SimpleSigningMediaType`).
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// Sigstore bundle media types (protobuf-specs `MediaType`), used as the
/// `artifactType` of bundle referrers and as the bundle layer's media type.
pub const BUNDLE_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
];

pub(crate) fn is_bundle_media_type(media_type: &str) -> bool {
    BUNDLE_MEDIA_TYPES.contains(&media_type)
}

/// Whether a manifest is an image manifest or an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ManifestKind {
    Image,
    Index,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestJson {
    schema_version: u64,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<DescriptorJson>,
    layers: Option<Vec<DescriptorJson>>,
    manifests: Option<Vec<DescriptorJson>>,
}

// `urls` is deliberately not read: descriptors may point at foreign URLs
// (OCI `descriptor.md` "urls"), and following them would let whoever pushes
// a signature make the vault fetch from anywhere.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorJson {
    media_type: String,
    digest: String,
    size: u64,
    artifact_type: Option<String>,
    annotations: Option<BTreeMap<String, String>>,
}

/// A content descriptor with a SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Descriptor {
    pub(crate) media_type: String,
    pub(crate) digest: [u8; 32],
    pub(crate) size: u64,
    pub(crate) artifact_type: Option<String>,
    pub(crate) annotations: BTreeMap<String, String>,
}

/// A manifest or index, with what discovery reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) kind: ManifestKind,
    pub(crate) artifact_type: Option<String>,
    pub(crate) config: Option<Descriptor>,
    pub(crate) layers: Vec<Descriptor>,
    pub(crate) manifests: Vec<Descriptor>,
}

/// Caps for [`parse`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    pub(crate) max_layers: usize,
    pub(crate) max_entries: usize,
}

impl Caps {
    /// The caps of `limits`.
    pub(crate) fn of(limits: &super::Limits) -> Self {
        Self {
            max_layers: limits.max_layers,
            max_entries: limits.max_referrers,
        }
    }
}

fn truncated(text: &str) -> String {
    text.chars().take(200).collect()
}

fn kind_of(
    media_type: Option<&str>,
    content_type: Option<&str>,
) -> Result<ManifestKind, ManifestFailure> {
    // The `mediaType` field is part of the digested content; the
    // Content-Type header is not, so it is only a fallback for manifests
    // that omit the field (allowed by OCI image-spec v1.0).
    let found =
        media_type.or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim()));
    match found {
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => Ok(ManifestKind::Image),
        Some(OCI_INDEX | DOCKER_MANIFEST_LIST) => Ok(ManifestKind::Index),
        other => Err(ManifestFailure::MediaType {
            found: other.map(truncated),
        }),
    }
}

fn descriptor(json: DescriptorJson) -> Result<Descriptor, ManifestFailure> {
    let digest =
        keyward_attest::sigstore::image::parse_image_digest(&json.digest).ok_or_else(|| {
            ManifestFailure::DescriptorDigest {
                digest: truncated(&json.digest),
            }
        })?;
    Ok(Descriptor {
        media_type: json.media_type,
        digest,
        size: json.size,
        artifact_type: json.artifact_type,
        annotations: json.annotations.unwrap_or_default(),
    })
}

/// Parses a manifest or index. Only `schemaVersion` 2 and the four media
/// types above are accepted; every descriptor must carry a SHA-256 digest.
pub(crate) fn parse(
    bytes: &[u8],
    content_type: Option<&str>,
    caps: Caps,
) -> Result<Manifest, ManifestFailure> {
    let json: ManifestJson = serde_json::from_slice(bytes).map_err(|_| ManifestFailure::Json)?;
    if json.schema_version != 2 {
        return Err(ManifestFailure::SchemaVersion {
            found: json.schema_version,
        });
    }
    let kind = kind_of(json.media_type.as_deref(), content_type)?;
    let (config, layers, manifests) = match kind {
        ManifestKind::Image => {
            let (Some(config), Some(layers), None) = (json.config, json.layers, &json.manifests)
            else {
                return Err(ManifestFailure::Shape);
            };
            if layers.len() > caps.max_layers {
                return Err(ManifestFailure::TooManyLayers {
                    count: layers.len(),
                    max: caps.max_layers,
                });
            }
            (Some(config), layers, Vec::new())
        }
        ManifestKind::Index => {
            let (None, None, Some(manifests)) = (&json.config, &json.layers, json.manifests) else {
                return Err(ManifestFailure::Shape);
            };
            if manifests.len() > caps.max_entries {
                return Err(ManifestFailure::TooManyReferrers {
                    count: manifests.len(),
                    max: caps.max_entries,
                });
            }
            (None, Vec::new(), manifests)
        }
    };
    Ok(Manifest {
        kind,
        artifact_type: json.artifact_type,
        config: config.map(descriptor).transpose()?,
        layers: layers
            .into_iter()
            .map(descriptor)
            .collect::<Result<_, _>>()?,
        manifests: manifests
            .into_iter()
            .map(descriptor)
            .collect::<Result<_, _>>()?,
    })
}

/// Both parsers of registry manifests, on arbitrary bytes under the
/// default [`super::Limits`]: whether [`parse`] and [`check_target`]
/// accepted. The entry point of the `oci_manifest` fuzz target
/// (`vault/fuzz`), the only way in from outside the crate; not an API.
#[doc(hidden)]
pub fn fuzz_entry(bytes: &[u8], content_type: Option<&str>) -> [bool; 2] {
    let caps = Caps::of(&super::Limits::default());
    [
        parse(bytes, content_type, caps).is_ok(),
        check_target(bytes, content_type).is_ok(),
    ]
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetJson {
    schema_version: u64,
    media_type: Option<String>,
}

/// Checks that the resolved image is a manifest or index of an accepted
/// kind, without reading its layers (an image may have many; only its
/// digest matters for signatures).
pub(crate) fn check_target(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<ManifestKind, ManifestFailure> {
    let json: TargetJson = serde_json::from_slice(bytes).map_err(|_| ManifestFailure::Json)?;
    if json.schema_version != 2 {
        return Err(ManifestFailure::SchemaVersion {
            found: json.schema_version,
        });
    }
    kind_of(json.media_type.as_deref(), content_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps {
        max_layers: 2,
        max_entries: 2,
    };

    fn digest(byte: char) -> String {
        format!("sha256:{}", byte.to_string().repeat(64))
    }

    fn image(layers: usize) -> String {
        let layer = format!(r#"{{"mediaType":"x","digest":"{}","size":1}}"#, digest('a'));
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"c","digest":"{}","size":2}},"layers":[{}]}}"#,
            digest('b'),
            vec![layer; layers].join(",")
        )
    }

    #[test]
    fn image_manifest_parses() {
        let m = parse(image(2).as_bytes(), None, CAPS).unwrap();
        assert_eq!(m.kind, ManifestKind::Image);
        assert_eq!(m.layers.len(), 2);
        assert_eq!(m.config.as_ref().unwrap().media_type, "c");
        assert_eq!(m.layers[0].digest, [0xaa; 32]);
    }

    #[test]
    fn the_fuzz_entry_runs_both_parsers_under_the_default_limits() {
        // Three layers pass the default caps (not the tests' CAPS of 2).
        assert_eq!(fuzz_entry(image(3).as_bytes(), None), [true, true]);
        // A layer without its digest fails the full parse only: the target
        // check reads no layers.
        let no_digest = image(1).replace(&format!(r#""digest":"{}","#, digest('a')), "");
        assert_eq!(fuzz_entry(no_digest.as_bytes(), None), [false, true]);
        assert_eq!(fuzz_entry(b"{", Some(OCI_MANIFEST)), [false, false]);
    }

    #[test]
    fn too_many_layers_is_rejected() {
        assert_eq!(
            parse(image(3).as_bytes(), None, CAPS),
            Err(ManifestFailure::TooManyLayers { count: 3, max: 2 })
        );
    }

    #[test]
    fn index_parses_and_is_capped() {
        let entry = format!(
            r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"artifactType":"t"}}"#,
            digest('c')
        );
        let index = |n: usize| {
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
                vec![entry.clone(); n].join(",")
            )
        };
        let m = parse(index(2).as_bytes(), None, CAPS).unwrap();
        assert_eq!(m.kind, ManifestKind::Index);
        assert_eq!(m.manifests[0].artifact_type.as_deref(), Some("t"));
        assert_eq!(
            parse(index(3).as_bytes(), None, CAPS),
            Err(ManifestFailure::TooManyReferrers { count: 3, max: 2 })
        );
    }

    #[test]
    fn malformed_manifests_are_rejected() {
        assert_eq!(parse(b"{", None, CAPS), Err(ManifestFailure::Json));
        let v1 = image(1).replace(r#""schemaVersion":2"#, r#""schemaVersion":1"#);
        assert_eq!(
            parse(v1.as_bytes(), None, CAPS),
            Err(ManifestFailure::SchemaVersion { found: 1 })
        );
        let negative = image(1).replace(r#""size":1"#, r#""size":-1"#);
        assert_eq!(
            parse(negative.as_bytes(), None, CAPS),
            Err(ManifestFailure::Json)
        );
        let sha512 = image(1).replace(&digest('a'), &format!("sha512:{}", "a".repeat(128)));
        assert!(matches!(
            parse(sha512.as_bytes(), None, CAPS),
            Err(ManifestFailure::DescriptorDigest { .. })
        ));
        let unknown = image(1).replace(OCI_MANIFEST, "application/json");
        assert_eq!(
            parse(unknown.as_bytes(), None, CAPS),
            Err(ManifestFailure::MediaType {
                found: Some("application/json".to_string())
            })
        );
        let no_layers =
            format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","manifests":[]}}"#);
        assert_eq!(
            parse(no_layers.as_bytes(), None, CAPS),
            Err(ManifestFailure::Shape)
        );
    }

    #[test]
    fn content_type_is_only_a_fallback() {
        let untyped = image(1).replace(&format!(r#""mediaType":"{OCI_MANIFEST}","#), "");
        assert_eq!(
            parse(untyped.as_bytes(), Some(OCI_MANIFEST), CAPS)
                .unwrap()
                .kind,
            ManifestKind::Image
        );
        assert!(matches!(
            parse(untyped.as_bytes(), None, CAPS),
            Err(ManifestFailure::MediaType { found: None })
        ));
        assert_eq!(
            check_target(image(1).as_bytes(), Some(OCI_INDEX)),
            Ok(ManifestKind::Image)
        );
    }
}
