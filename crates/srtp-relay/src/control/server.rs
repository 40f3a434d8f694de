//! The relay process put together: the media relay, the HTTPS API and the ng listener on
//! one tokio runtime, with reload (SIGHUP) and drain (SIGTERM) as methods, so that `main`
//! only maps signals to them and tests can drive them directly.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::api::{Api, ApiSecurity, TlsState};
use super::ng::Ng;
use super::roles::{Role, RoleMap};
use super::tls::{self, ServerTlsFiles, TlsError};
use super::Control;
use crate::config::Config;
use crate::io::{Relay, RelayError};

/// Why the process could not start or reload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The media relay failed to start.
    #[error("relay: {0}")]
    Relay(#[from] RelayError),
    /// TLS material could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// The API is enabled without TLS files and without `danger_plaintext`.
    #[error("api: no TLS certificate configured (set api.cert, api.key and api.client_ca)")]
    NoTls,
}

/// What the API authenticates with, resolved from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiAuth {
    /// The TLS files; `None` for the plaintext API.
    pub files: Option<ServerTlsFiles>,
    /// Identity to role.
    pub roles: std::collections::BTreeMap<String, Role>,
}

/// A running relay process.
#[derive(Debug)]
pub struct Server {
    control: Arc<Control>,
    api_addr: Option<SocketAddr>,
    ng_addr: Option<SocketAddr>,
    tls: Option<Arc<RwLock<Arc<TlsState>>>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts the relay and its front ends as `config` says, with `auth` for the API. Must
    /// be called within a tokio runtime.
    ///
    /// # Errors
    /// [`ServerError`].
    pub async fn start(config: &Config, auth: &ApiAuth) -> Result<Self, ServerError> {
        let relay = Relay::start(config.relay_config())?;
        let control = Arc::new(Control::new(relay, config.media_address()));
        let (shutdown, watch_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut tls_state = None;
        let mut api_addr = None;
        if config.api.enabled {
            let security = match &auth.files {
                Some(files) => {
                    let state = Arc::new(RwLock::new(Arc::new(load_tls(files, &auth.roles)?)));
                    tls_state = Some(Arc::clone(&state));
                    ApiSecurity::Mtls(state)
                }
                None if config.api.danger_plaintext => ApiSecurity::DangerPlaintext,
                None => return Err(ServerError::NoTls),
            };
            let addr = config.api.listen;
            let listener = TcpListener::bind(addr).await.map_err(bind_error(addr))?;
            api_addr = listener.local_addr().ok();
            let api = Api::new(Arc::clone(&control));
            tasks.push(tokio::spawn(api.serve(
                listener,
                security,
                watch_rx.clone(),
            )));
        }
        let mut ng_addr = None;
        if config.ng.enabled {
            let socket =
                UdpSocket::bind(config.ng.listen)
                    .await
                    .map_err(|source| ServerError::Bind {
                        addr: config.ng.listen,
                        source,
                    })?;
            ng_addr = socket.local_addr().ok();
            let ng = Ng::new(Arc::clone(&control));
            tasks.push(tokio::spawn(ng.serve(socket, watch_rx.clone())));
        }
        Ok(Self {
            control,
            api_addr,
            ng_addr,
            tls: tls_state,
            shutdown,
            tasks,
        })
    }

    /// The API's bound address.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_addr
    }

    /// The ng listener's bound address.
    pub fn ng_addr(&self) -> Option<SocketAddr> {
        self.ng_addr
    }

    /// The shared control.
    pub fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// Reloads certificates, CRLs and the role mapping (SIGHUP). On error the old ones stay.
    ///
    /// # Errors
    /// [`ServerError::Tls`].
    pub fn reload(&self, auth: &ApiAuth) -> Result<(), ServerError> {
        let (Some(state), Some(files)) = (&self.tls, &auth.files) else {
            return Ok(());
        };
        let new = Arc::new(load_tls(files, &auth.roles)?);
        if let Ok(mut s) = state.write() {
            *s = new;
        }
        Ok(())
    }

    /// Drains (SIGTERM): refuses new calls, waits until no call runs or `deadline` passes,
    /// then stops. Returns the number of calls cut at the deadline.
    pub async fn drain(self, deadline: Duration) -> usize {
        self.control.start_draining();
        let end = Instant::now() + deadline;
        let remaining = loop {
            let n = self.control.relay().calls().len();
            if n == 0 || Instant::now() >= end {
                break n;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        self.stop().await;
        remaining
    }

    /// Stops the front ends and the relay (every call ends, its keys are zeroized).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
        // Connections still being served hold the control for a moment.
        let mut control = self.control;
        for _ in 0..50 {
            match Arc::try_unwrap(control) {
                Ok(c) => {
                    c.into_relay().shutdown();
                    return;
                }
                Err(c) => {
                    control = c;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        tracing::warn!("control still in use at shutdown; relay workers left to the exit");
    }
}

fn bind_error(addr: SocketAddr) -> impl FnOnce(std::io::Error) -> ServerError {
    move |source| ServerError::Bind { addr, source }
}

fn load_tls(
    files: &ServerTlsFiles,
    roles: &std::collections::BTreeMap<String, Role>,
) -> Result<TlsState, ServerError> {
    Ok(TlsState {
        config: tls::server_config(files)?,
        roles: RoleMap::new(roles.clone()),
    })
}
