//! Prometheus metrics (`GET /metrics`), with `prometheus-client`'s text
//! exposition. Route labels come from a fixed list ([`super::ROUTES`]) so
//! a scanner requesting random paths cannot grow the label set.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Labels of `keyward_http_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: String,
}

/// The vault's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter<u64, AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter<u64, AtomicU64>>::default();
        registry.register(
            "keyward_http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        Self { registry, requests }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn observe(&self, route: &str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                status: status.to_string(),
            })
            .inc();
    }

    /// The text exposition, with `audit_failures` (owned by the audit log)
    /// added as a constant counter at scrape time.
    pub fn encode(&self, audit_failures: u64) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)?;
        let mut audit = Registry::default();
        audit.register(
            "keyward_audit_failures",
            "Audit records that could not be written (requests refused)",
            ConstCounter::new(audit_failures),
        );
        prometheus_client::encoding::text::encode_registry(&mut out, &audit)?;
        prometheus_client::encoding::text::encode_eof(&mut out)?;
        Ok(out)
    }
}
