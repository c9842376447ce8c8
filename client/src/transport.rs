//! One HTTP exchange with the vault: the request (with the session token and
//! a fresh proof of possession when given), a size-bounded read of the
//! answer, and the mapping of statuses onto [`ClientError`].

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::{ClientError, Unreachable};

/// Largest answer read from the vault.
pub(crate) const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Where the vault puts its request id.
const REQUEST_ID_HEADER: &str = "x-request-id";
/// The proof-of-possession header.
const POP_HEADER: &str = "keyward-pop";

/// The session credentials of one request.
pub(crate) struct Auth<'a> {
    pub(crate) token: &'a str,
    pub(crate) proof: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<String>,
}

/// POSTs `body` to `url`; returns the 2xx answer's bytes.
pub(crate) async fn post(
    http: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    auth: Option<Auth<'_>>,
    is_attest: bool,
) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    let mut request = http.post(url);
    if !body.is_empty() {
        request = request.header(CONTENT_TYPE, "application/json");
    }
    if let Some(auth) = auth {
        let mut bearer =
            HeaderValue::from_str(&format!("Bearer {}", auth.token)).map_err(|_| {
                ClientError::Protocol {
                    what: "session token is not a valid header value",
                }
            })?;
        // Keeps it out of reqwest's and hyper's debug output.
        bearer.set_sensitive(true);
        let proof = HeaderValue::from_str(&auth.proof).map_err(|_| ClientError::Protocol {
            what: "proof is not a valid header value",
        })?;
        request = request
            .header(AUTHORIZATION, bearer)
            .header(POP_HEADER, proof);
    }
    let mut response = request.body(body).send().await.map_err(transport)?;
    let status = response.status();
    let request_id = response
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut bytes = Zeroizing::new(Vec::new());
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if bytes.len().saturating_add(chunk.len()) > MAX_RESPONSE_BYTES {
            return Err(ClientError::Protocol {
                what: "answer larger than 1 MiB",
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    if status.is_success() {
        return Ok(bytes);
    }
    let code = status.as_u16();
    if status.is_server_error() {
        return Err(ClientError::Unreachable {
            cause: Unreachable::ServerError { status: code },
        });
    }
    if code == 401 || code == 403 {
        return Err(ClientError::Denied { request_id });
    }
    let message = serde_json::from_slice::<ErrorBody>(&bytes)
        .ok()
        .and_then(|b| b.errors.into_iter().next())
        .unwrap_or_default()
        .chars()
        .take(1024)
        .collect::<String>();
    if code == 400 && is_attest {
        return Err(ClientError::EvidenceRejected { message });
    }
    Err(ClientError::Refused {
        status: code,
        message,
    })
}

fn transport(error: reqwest::Error) -> ClientError {
    ClientError::Unreachable {
        cause: Unreachable::Transport(error),
    }
}
