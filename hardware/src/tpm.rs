//! The shared TPM connection: one thread owns the ESAPI context and runs
//! requests in order.
//!
//! `tss_esapi::Context` is not `Send` (it holds raw libtss2 pointers), and a
//! TPM executes one command at a time anyway, so every request is a closure
//! sent to the owning thread over a channel. Callers block until their
//! request has run; async callers wrap calls in `spawn_blocking`. No lock is
//! ever held across an `.await` because there is no lock.

use std::str::FromStr;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use tss_esapi::Context;
use tss_esapi::constants::CapabilityType;
use tss_esapi::handles::{ObjectHandle, TpmHandle};
use tss_esapi::structures::CapabilityData;
use tss_esapi::tcti_ldr::TctiNameConf;

use crate::ak::LoadedAk;
use crate::ek::EkSlot;
use crate::error::TpmError;

/// First handle of the transient-object range (TPM 2.0 Part 2, §7.4: TPM_HT_TRANSIENT).
const TRANSIENT_FIRST: u32 = 0x8000_0000;
/// Upper bound on handles listed in one GetCapability call.
const MAX_HANDLES: u32 = 64;

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// State living on the owning thread.
pub(crate) struct Session {
    pub(crate) context: Context,
    /// EK handles in use (persistent handle or a primary we created), by kind.
    pub(crate) ek_handles: Vec<EkSlot>,
    /// The most recently loaded AK, kept loaded for repeated quotes.
    pub(crate) loaded_ak: Option<LoadedAk>,
}

/// A connection to a TPM, shareable between threads and tasks (clone it).
///
/// Dropping the last clone closes the connection and joins the owning thread.
#[derive(Clone)]
pub struct Tpm {
    shared: Arc<Shared>,
}

struct Shared {
    tcti: String,
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Tpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tpm")
            .field("tcti", &self.shared.tcti)
            .finish_non_exhaustive()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Closing the channel ends the owner's loop; joining makes the close
        // synchronous, so a caller that drops its `Tpm` can reconnect at once.
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        if let Ok(mut thread) = self.thread.lock()
            && let Some(handle) = thread.take()
        {
            let _ = handle.join();
        }
    }
}

/// Parses a TCTI string, refusing anything libtss2 would read differently.
///
/// Accepted: `device:/dev/tpmrm0`, `swtpm:path=/run/x.sock`,
/// `swtpm:host=127.0.0.1,port=2321`, `mssim:host=…,port=…`, `tabrmd:…`.
pub fn parse_tcti(tcti: &str) -> Result<TctiNameConf, TpmError> {
    let bad = || TpmError::BadTcti {
        tcti: tcti.to_owned(),
    };
    // tss-esapi ignores keys it does not know; an unknown key would silently
    // connect somewhere else, so only the documented keys are allowed.
    let (name, conf) = tcti.split_once(':').unwrap_or((tcti, ""));
    let allowed: &[&str] = match name {
        "device" => &[],
        "swtpm" => &["path", "host", "port"],
        "mssim" => &["host", "port"],
        "tabrmd" => &["bus_name", "bus_type"],
        _ => return Err(bad()),
    };
    if name != "device" && !conf.is_empty() {
        for pair in conf.split(',') {
            let key = pair.split_once('=').map(|(k, _)| k).ok_or_else(bad)?;
            if !allowed.contains(&key) {
                return Err(bad());
            }
        }
    }
    TctiNameConf::from_str(tcti).map_err(|_| bad())
}

impl Tpm {
    /// Opens the TPM behind `tcti` and flushes transient objects that a
    /// killed process may have left behind (swtpm has only three slots and no
    /// resource manager; under `/dev/tpmrm0` the list is always empty).
    pub fn open(tcti: &str) -> Result<Self, TpmError> {
        let conf = parse_tcti(tcti)?;
        let (sender, receiver) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), TpmError>>(1);
        let tcti_owned = tcti.to_owned();
        let thread = std::thread::Builder::new()
            .name("keyward-tpm".into())
            .spawn(move || {
                let mut session = match open_session(&tcti_owned, conf) {
                    Ok(session) => {
                        let _ = ready_tx.send(Ok(()));
                        session
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = receiver.recv() {
                    job(&mut session);
                }
                session.release_all();
            })
            .map_err(|source| TpmError::Io {
                path: "keyward-tpm thread".into(),
                source,
            })?;
        let tpm = Self {
            shared: Arc::new(Shared {
                tcti: tcti.to_owned(),
                sender: Mutex::new(Some(sender)),
                thread: Mutex::new(Some(thread)),
            }),
        };
        ready_rx.recv().map_err(|_| TpmError::Closed)??;
        Ok(tpm)
    }

    /// The TCTI this connection was opened with.
    pub fn tcti(&self) -> &str {
        &self.shared.tcti
    }

    /// Runs `f` on the owning thread and waits for its result.
    pub(crate) fn call<R, F>(&self, f: F) -> Result<R, TpmError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Session) -> Result<R, TpmError> + Send + 'static,
    {
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |session| {
            let _ = reply_tx.send(f(session));
        });
        {
            let sender = self.shared.sender.lock().map_err(|_| TpmError::Closed)?;
            sender
                .as_ref()
                .ok_or(TpmError::Closed)?
                .send(job)
                .map_err(|_| TpmError::Closed)?;
        }
        reply_rx.recv().map_err(|_| TpmError::Closed)?
    }

    /// Reads `len` random bytes from the TPM's RNG.
    pub fn random(&self, len: usize) -> Result<Vec<u8>, TpmError> {
        self.call(move |s| {
            let mut out = Vec::with_capacity(len);
            while out.len() < len {
                let want = (len - out.len()).min(32);
                let chunk = s
                    .context
                    .get_random(want)
                    .map_err(TpmError::command("GetRandom"))?;
                if chunk.is_empty() {
                    return Err(TpmError::UnexpectedResponse {
                        what: "GetRandom returned nothing",
                    });
                }
                out.extend_from_slice(chunk.value());
            }
            out.truncate(len);
            Ok(out)
        })
    }
}

fn open_session(tcti: &str, conf: TctiNameConf) -> Result<Session, TpmError> {
    let context = Context::new(conf).map_err(|source| TpmError::Open {
        tcti: tcti.to_owned(),
        source,
    })?;
    let mut session = Session {
        context,
        ek_handles: Vec::new(),
        loaded_ak: None,
    };
    session.flush_stale_transients()?;
    Ok(session)
}

impl Session {
    /// Flushes every transient object currently loaded in the TPM.
    fn flush_stale_transients(&mut self) -> Result<(), TpmError> {
        let (data, _more) = self
            .context
            .get_capability(CapabilityType::Handles, TRANSIENT_FIRST, MAX_HANDLES)
            .map_err(TpmError::command("GetCapability(handles)"))?;
        let CapabilityData::Handles(handles) = data else {
            return Err(TpmError::UnexpectedResponse {
                what: "GetCapability did not return handles",
            });
        };
        for handle in handles.iter() {
            if let TpmHandle::Transient(_) = handle {
                let object = self
                    .context
                    .execute_without_session(|ctx| ctx.tr_from_tpm_public(*handle))
                    .map_err(TpmError::command("TR_FromTPMPublic"))?;
                self.context
                    .flush_context(object)
                    .map_err(TpmError::command("FlushContext"))?;
            }
        }
        Ok(())
    }

    /// Flushes what this session loaded and closes persistent-handle references.
    fn release_all(&mut self) {
        if let Some(ak) = self.loaded_ak.take() {
            let _ = self.context.flush_context(ObjectHandle::from(ak.handle));
        }
        for slot in std::mem::take(&mut self.ek_handles) {
            let mut object = ObjectHandle::from(slot.handle);
            if slot.persistent {
                let _ = self.context.tr_close(&mut object);
            } else {
                let _ = self.context.flush_context(object);
            }
        }
    }
}
