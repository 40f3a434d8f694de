//! The HTTPS control API: JSON over HTTP/1.1 on rustls, every request authorised by the role
//! of the client certificate (see `docs/api.md` and `docs/openapi.yaml`).
//!
//! | Method and path | Action | Roles |
//! |---|---|---|
//! | `POST /v1/calls` | create a call | admin, operator |
//! | `GET /v1/calls`, `GET /v1/calls/{id}` | read calls | admin, operator, auditor |
//! | `PATCH /v1/calls/{id}` | new remote, re-key, hold/resume | admin, operator |
//! | `DELETE /v1/calls/{id}` | end a call | admin, operator |
//! | `GET /v1/stats` | process totals | admin, auditor |
//! | `GET /metrics` | Prometheus text | admin, metrics |
//! | `GET /healthz` | liveness | every role |
//!
//! Denied requests get `403` with an empty body and a log line. Key material is accepted in
//! create and update requests and returned only as the relay's own `a=crypto` lines (create,
//! and update when the relay re-keys its side); read responses never contain keys.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use srtp_core::sdes::CryptoAttribute;
use srtp_core::{MasterKey, Policy, Profile};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use zeroize::Zeroize;

use super::roles::{Action, Role, RoleMap};
use super::{answer_line, tls, Control, CreateError};
use crate::engine::{
    CallInfo, Counters, EncryptionLevel, Latching, LegInfo, LegUpdate, MediaDirection, Mode,
    Security, SrtpMode,
};
use crate::io::{CallRequest, LegRequest, LocalPorts, RelayError};

/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024;
/// Time allowed for a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How the API authenticates clients.
#[derive(Clone, Debug)]
pub enum ApiSecurity {
    /// Mutual TLS with roles; swap the inner value to reload (SIGHUP).
    Mtls(Arc<RwLock<Arc<TlsState>>>),
    /// Plain HTTP, every request acting as `admin`: only with `--danger-plaintext-api`, and
    /// only on loopback.
    DangerPlaintext,
}

/// The TLS configuration and role mapping in force.
#[derive(Debug)]
pub struct TlsState {
    /// rustls server configuration (certificate, client CA, CRLs).
    pub config: Arc<ServerConfig>,
    /// Identity to role.
    pub roles: RoleMap,
}

/// The API's per-process state: the control and what it remembers of calls it created.
#[derive(Debug)]
pub struct Api {
    control: Arc<Control>,
    calls: Mutex<HashMap<u64, CallMeta>>,
}

/// Every this many calls the API remembers, it forgets those that ended by themselves.
const PRUNE_EVERY: usize = 1024;

/// What the API keeps about a call it created: never keys.
#[derive(Clone, Copy, Debug)]
struct CallMeta {
    ports: [LocalPorts; 2],
    /// The shape of the relay's line per leg it terminates, to re-key with.
    lines: [Option<LineShape>; 2],
}

/// An `a=crypto` line without its key: tag, suite, MKI length, lifetime.
#[derive(Clone, Copy, Debug)]
struct LineShape {
    tag: u32,
    profile: Profile,
    mki_len: Option<usize>,
    lifetime: Option<u64>,
}

impl LineShape {
    fn of(a: &CryptoAttribute) -> Self {
        let first = a.keys.first();
        Self {
            tag: a.tag,
            profile: a.profile,
            mki_len: first.and_then(MasterKey::mki).map(|m| m.len()),
            lifetime: first.and_then(MasterKey::lifetime),
        }
    }

    /// A fresh line of this shape.
    fn generate(&self) -> CryptoAttribute {
        let mut key = MasterKey::generate(self.profile);
        if let Some(m) = self
            .mki_len
            .and_then(|len| srtp_core::Mki::new(1, len).ok())
        {
            key = key.with_mki(m);
        }
        if let Some(l) = self.lifetime {
            key = key.with_lifetime(l);
        }
        CryptoAttribute::new(self.tag, self.profile, key)
    }
}

/// Who sent a request.
#[derive(Clone, Debug)]
struct Client {
    peer: SocketAddr,
    identity: Option<String>,
    role: Option<Role>,
}

impl Api {
    /// An API over `control`.
    pub fn new(control: Arc<Control>) -> Arc<Self> {
        Arc::new(Self {
            control,
            calls: Mutex::new(HashMap::new()),
        })
    }

    /// Accepts connections until `shutdown` turns true.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        security: ApiSecurity,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.changed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "api accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let api = Arc::clone(&self);
            let security = security.clone();
            tokio::spawn(async move { api.connection(stream, peer, security).await });
        }
    }

    async fn connection(
        self: Arc<Self>,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        security: ApiSecurity,
    ) {
        let state = match security {
            ApiSecurity::DangerPlaintext => {
                let client = Client {
                    peer,
                    identity: None,
                    role: Some(Role::Admin),
                };
                return self.http(stream, client).await;
            }
            ApiSecurity::Mtls(state) => match state.read() {
                Ok(s) => Arc::clone(&s),
                Err(_) => return,
            },
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&state.config));
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                self.control
                    .metrics
                    .tls_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%peer, error = %e, "api TLS handshake refused");
                return;
            }
            Err(_) => {
                self.control
                    .metrics
                    .tls_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%peer, "api TLS handshake timed out");
                return;
            }
        };
        let ids = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(tls::identities)
            .unwrap_or_default();
        let role = state
            .roles
            .role(ids.iter().map(|(id, c)| (id.as_str(), *c)));
        let client = Client {
            peer,
            identity: ids.into_iter().next().map(|(id, _)| id),
            role,
        };
        self.http(tls, client).await;
    }

    async fn http<S>(self: Arc<Self>, io: S, client: Client)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = hyper::service::service_fn(move |req| {
            let api = Arc::clone(&self);
            let client = client.clone();
            async move { Ok::<_, Infallible>(api.handle(req, &client).await) }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        if let Err(e) = builder.serve_connection(TokioIo::new(io), service).await {
            tracing::debug!(error = %e, "api connection ended");
        }
    }

    async fn handle(&self, req: Request<Incoming>, client: &Client) -> Response<Full<Bytes>> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let response = match route(&method, &path) {
            None if client.role.is_none() => deny(),
            None => error(StatusCode::NOT_FOUND, "no such endpoint"),
            Some((action, _)) if !client.role.is_some_and(|r| r.allows(action)) => {
                self.control
                    .metrics
                    .api_denied
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    peer = %client.peer,
                    identity = client.identity.as_deref().unwrap_or("-"),
                    role = client.role.map_or("-", Role::as_str),
                    %method,
                    %path,
                    "api request denied"
                );
                deny()
            }
            Some((action, id)) => {
                let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                    Ok(b) => b.to_bytes().to_vec(),
                    Err(_) => {
                        return self.count(error(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "request body too large or unreadable",
                        ))
                    }
                };
                let mut body = body;
                let r = self.dispatch(action, id, &method, &body);
                body.zeroize();
                r
            }
        };
        tracing::info!(
            peer = %client.peer,
            identity = client.identity.as_deref().unwrap_or("-"),
            role = client.role.map_or("-", Role::as_str),
            %method,
            %path,
            status = response.status().as_u16(),
            "api request"
        );
        self.count(response)
    }

    fn count(&self, r: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
        let class = usize::from(r.status().as_u16() / 100).min(5);
        self.control.metrics.api_responses[class].fetch_add(1, Ordering::Relaxed);
        r
    }

    fn dispatch(
        &self,
        action: Action,
        id: Option<u64>,
        method: &Method,
        body: &[u8],
    ) -> Response<Full<Bytes>> {
        match (action, id) {
            (Action::Health, _) => json_response(
                StatusCode::OK,
                &json!({"status": "ok", "draining": self.control.is_draining()}),
            ),
            (Action::Metrics, _) => match self.control.relay().totals() {
                Ok(t) => Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "text/plain; version=0.0.4")
                    .body(Full::new(Bytes::from(metrics_text(&self.control, &t))))
                    .unwrap_or_default(),
                Err(e) => relay_error(&e),
            },
            (Action::ReadStats, _) => match self.control.relay().totals() {
                Ok(t) => json_response(
                    StatusCode::OK,
                    &json!({
                        "calls": self.control.relay().calls().len(),
                        "draining": self.control.is_draining(),
                        "totals": counters_json(&t),
                    }),
                ),
                Err(e) => relay_error(&e),
            },
            (Action::CreateCall, _) => self.create(body),
            (Action::ReadCalls, None) => self.list(),
            (Action::ReadCalls, Some(id)) => match self.control.relay().call(id) {
                Ok(info) => json_response(StatusCode::OK, &self.call_json(id, &info)),
                Err(e) => relay_error(&e),
            },
            (Action::UpdateCall, Some(id)) => self.update(id, body),
            (Action::DeleteCall, Some(id)) => match self.control.relay().delete_call(id) {
                Ok(stats) => {
                    self.forget(id);
                    json_response(
                        StatusCode::OK,
                        &json!({
                            "id": id,
                            "legs": stats.iter().map(|s| counters_json(&s.counters)).collect::<Vec<_>>(),
                        }),
                    )
                }
                Err(e) => relay_error(&e),
            },
            _ => {
                let _ = method;
                error(StatusCode::NOT_FOUND, "no such endpoint")
            }
        }
    }

    fn create(&self, body: &[u8]) -> Response<Full<Bytes>> {
        let mut req: CreateCall = match parse_json(body) {
            Ok(r) => r,
            Err(msg) => return error(StatusCode::BAD_REQUEST, &msg),
        };
        let built = build_call(&req);
        req.zeroize_keys();
        let (request, relay_lines) = match built {
            Ok(b) => b,
            Err(msg) => return error(StatusCode::UNPROCESSABLE_ENTITY, &msg),
        };
        match self.control.create_call(request) {
            Ok(created) => {
                let meta = CallMeta {
                    ports: created.legs,
                    lines: [
                        relay_lines[0].as_ref().map(LineShape::of),
                        relay_lines[1].as_ref().map(LineShape::of),
                    ],
                };
                let grown = self.calls.lock().is_ok_and(|mut c| {
                    c.insert(created.id, meta);
                    c.len() % PRUNE_EVERY == 0
                });
                if grown {
                    // Calls that ended by themselves (inactivity) leave their entries
                    // behind when the client never lists or deletes them.
                    let next = self.control.relay().next_call_id();
                    self.keep_only(&self.control.relay().calls(), next);
                }
                let legs: Vec<Value> = created
                    .legs
                    .iter()
                    .zip(&relay_lines)
                    .map(|(ports, line)| {
                        let mut v = ports_json(ports);
                        if let Some(line) = line {
                            v["crypto"] = Value::String(format!("a={line}"));
                        }
                        v
                    })
                    .collect();
                tracing::info!(call = created.id, "call created");
                json_response(
                    StatusCode::CREATED,
                    &json!({"id": created.id, "legs": legs}),
                )
            }
            Err(CreateError::Draining) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "draining: not accepting new calls",
            ),
            Err(CreateError::Relay(e)) => relay_error(&e),
        }
    }

    fn update(&self, id: u64, body: &[u8]) -> Response<Full<Bytes>> {
        let mut req: UpdateCall = match parse_json(body) {
            Ok(r) => r,
            Err(msg) => return error(StatusCode::BAD_REQUEST, &msg),
        };
        let inbound = req.crypto.as_deref().map(parse_line).transpose();
        req.zeroize_keys();
        let inbound = match inbound {
            Ok(i) => i,
            Err(msg) => return error(StatusCode::UNPROCESSABLE_ENTITY, &msg),
        };
        if req.leg > 1 {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "`leg`: expected 0 or 1");
        }
        let shape = self
            .calls
            .lock()
            .ok()
            .and_then(|c| c.get(&id).and_then(|m| m.lines[usize::from(req.leg)]));
        // A leg's suite is fixed at creation: new keys must be for it (a `_32` line for an
        // `_80` leg has the same key length, and would otherwise be taken silently).
        if let (Some(a), Some(shape)) = (&inbound, shape) {
            if a.profile != shape.profile {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!(
                        "`crypto`: the leg uses {}, a line in {} cannot re-key it \
                         (create a new call to change the suite)",
                        shape.profile.sdes_name(),
                        a.profile.sdes_name()
                    ),
                );
            }
        }
        let relay_line = match (req.rekey_relay, shape) {
            (false, _) => None,
            (true, Some(shape)) => Some(shape.generate()),
            (true, None) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "`rekey_relay`: the relay does not terminate SRTP on this leg",
                )
            }
        };
        let update = LegUpdate {
            remote: req.remote,
            remote_rtcp: req.remote_rtcp,
            inbound_keys: inbound.map(|a| a.keys),
            outbound_keys: relay_line.as_ref().map(|l| l.keys.clone()),
            direction: req.direction.map(MediaDirection::from),
            outbound_cryptex: req.cryptex,
        };
        match self
            .control
            .relay()
            .update_call(id, usize::from(req.leg), update)
        {
            Ok(()) => {
                let mut v = json!({"id": id, "leg": req.leg});
                if let Some(line) = relay_line {
                    v["crypto"] = Value::String(format!("a={line}"));
                }
                json_response(StatusCode::OK, &v)
            }
            Err(e) => relay_error(&e),
        }
    }

    fn list(&self) -> Response<Full<Bytes>> {
        let next = self.control.relay().next_call_id();
        let ids = self.control.relay().calls();
        let calls: Vec<Value> = ids
            .iter()
            .filter_map(|&id| {
                self.control
                    .relay()
                    .call(id)
                    .ok()
                    .map(|i| self.call_json(id, &i))
            })
            .collect();
        self.keep_only(&ids, next);
        json_response(StatusCode::OK, &json!({"calls": calls}))
    }

    /// Forgets the calls not in `live` (sorted ids of the relay's calls, read after `next`,
    /// the next id then), except those created since (ids `next` and up).
    fn keep_only(&self, live: &[u64], next: u64) {
        if let Ok(mut c) = self.calls.lock() {
            c.retain(|id, _| *id >= next || live.binary_search(id).is_ok());
        }
    }

    fn forget(&self, id: u64) {
        if let Ok(mut c) = self.calls.lock() {
            c.remove(&id);
        }
    }

    fn call_json(&self, id: u64, info: &CallInfo) -> Value {
        let ports = self
            .calls
            .lock()
            .ok()
            .and_then(|c| c.get(&id).map(|m| m.ports));
        let now = Instant::now();
        let legs: Vec<Value> = info
            .legs
            .iter()
            .enumerate()
            .map(|(i, l)| leg_json(l, ports.map(|p| p[i]), now))
            .collect();
        json!({"id": id, "mode": mode_name(&info.mode), "legs": legs})
    }
}

/// Maps a request to the action it needs and the call id in its path.
fn route(method: &Method, path: &str) -> Option<(Action, Option<u64>)> {
    let path = path.strip_suffix('/').unwrap_or(path);
    match (method, path) {
        (&Method::GET, "/healthz") => return Some((Action::Health, None)),
        (&Method::GET, "/metrics") => return Some((Action::Metrics, None)),
        (&Method::GET, "/v1/stats") => return Some((Action::ReadStats, None)),
        (&Method::GET, "/v1/calls") => return Some((Action::ReadCalls, None)),
        (&Method::POST, "/v1/calls") => return Some((Action::CreateCall, None)),
        _ => {}
    }
    let id: u64 = path.strip_prefix("/v1/calls/")?.parse().ok()?;
    let action = match *method {
        Method::GET => Action::ReadCalls,
        Method::PATCH => Action::UpdateCall,
        Method::DELETE => Action::DeleteCall,
        _ => return None,
    };
    Some((action, Some(id)))
}

/// `POST /v1/calls`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCall {
    mode: ModeJson,
    legs: [LegJson; 2],
}

impl CreateCall {
    fn zeroize_keys(&mut self) {
        for leg in &mut self.legs {
            if let Some(s) = &mut leg.srtp {
                s.zeroize_keys();
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
enum ModeJson {
    PassThrough {
        /// Check every tag with the legs' keys first; when absent, on exactly when both legs
        /// have keys (a relay holding keys never latches on a packet it did not
        /// authenticate).
        #[serde(default)]
        verify: Option<bool>,
    },
    Transcrypt,
    Bridge {
        #[serde(default)]
        level: LevelJson,
        #[serde(default)]
        gateway: GatewayJson,
        #[serde(default)]
        gateway_tls: bool,
    },
}

#[allow(
    clippy::enum_variant_names,
    reason = "the names of the enterprise levels, as in EncryptionLevel"
)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum LevelJson {
    #[default]
    RequireEncryption,
    SupportEncryption,
    DoNotSupportEncryption,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum GatewayJson {
    #[default]
    Required,
    Optional,
    NotSupported,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LegJson {
    remote: Option<SocketAddr>,
    remote_rtcp: Option<SocketAddr>,
    #[serde(default)]
    rtcp_mux: bool,
    #[serde(default)]
    direction: DirectionJson,
    #[serde(default)]
    latching: LatchingJson,
    /// Absent: plain RTP.
    srtp: Option<SrtpJson>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum DirectionJson {
    #[default]
    Sendrecv,
    Sendonly,
    Recvonly,
    Inactive,
}

impl From<DirectionJson> for MediaDirection {
    fn from(d: DirectionJson) -> Self {
        match d {
            DirectionJson::Sendrecv => Self::SendRecv,
            DirectionJson::Sendonly => Self::SendOnly,
            DirectionJson::Recvonly => Self::RecvOnly,
            DirectionJson::Inactive => Self::Inactive,
        }
    }
}

impl From<MediaDirection> for DirectionJson {
    fn from(d: MediaDirection) -> Self {
        match d {
            MediaDirection::SendRecv => Self::Sendrecv,
            MediaDirection::SendOnly => Self::Sendonly,
            MediaDirection::RecvOnly => Self::Recvonly,
            MediaDirection::Inactive => Self::Inactive,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum LatchingJson {
    Strict,
    #[default]
    Learn,
}

/// A leg's SRTP: the endpoint's `a=crypto` lines (the first usable one is taken), or a
/// profile and base64 `key||salt`; and whether the endpoint announced `a=cryptex` (RFC
/// 9335), so that what the relay sends it has its CSRCs and header extensions encrypted too.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SrtpJson {
    #[serde(default)]
    crypto: Vec<String>,
    profile: Option<String>,
    key: Option<String>,
    #[serde(default)]
    cryptex: bool,
}

/// Shows which keys were given, never the keys.
impl std::fmt::Debug for SrtpJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpJson")
            .field("crypto_lines", &self.crypto.len())
            .field("profile", &self.profile)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("cryptex", &self.cryptex)
            .finish()
    }
}

impl SrtpJson {
    fn zeroize_keys(&mut self) {
        for c in &mut self.crypto {
            c.zeroize();
        }
        if let Some(k) = &mut self.key {
            k.zeroize();
        }
    }

    /// The endpoint's attribute.
    fn attribute(&self) -> Result<CryptoAttribute, String> {
        if let Some(first_ok) = self.crypto.iter().find_map(|l| parse_line(l).ok()) {
            return Ok(first_ok);
        }
        if let Some(line) = self.crypto.first() {
            return parse_line(line);
        }
        let (Some(profile), Some(key)) = (&self.profile, &self.key) else {
            return Err("`srtp`: expected `crypto` lines, or `profile` and `key`".into());
        };
        let profile = Profile::from_sdes_name(profile)
            .ok_or_else(|| format!("`srtp.profile`: unknown suite {profile:?}"))?;
        use base64::Engine as _;
        let mut material = base64::engine::general_purpose::STANDARD
            .decode(key.trim())
            .map_err(|_| "`srtp.key`: expected base64 of key||salt".to_string())?;
        let key = MasterKey::from_key_material(profile, &material);
        material.zeroize();
        let key = key.map_err(|e| format!("`srtp.key`: {e}"))?;
        Ok(CryptoAttribute::new(1, profile, key))
    }
}

/// `PATCH /v1/calls/{id}`. Its `Debug` output hides the `a=crypto` line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateCall {
    leg: u8,
    remote: Option<SocketAddr>,
    remote_rtcp: Option<SocketAddr>,
    direction: Option<DirectionJson>,
    /// The endpoint's new `a=crypto` line (re-key of what it sends).
    crypto: Option<String>,
    /// Generate new keys for what the relay sends to this leg; the new line is returned.
    #[serde(default)]
    rekey_relay: bool,
    /// Whether the endpoint's new SDP carries `a=cryptex` (RFC 9335): what the relay sends
    /// it encrypts CSRCs and header extensions too, or no longer does.
    cryptex: Option<bool>,
}

impl std::fmt::Debug for UpdateCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateCall")
            .field("leg", &self.leg)
            .field("remote", &self.remote)
            .field("remote_rtcp", &self.remote_rtcp)
            .field("direction", &self.direction)
            .field("crypto", &self.crypto.as_ref().map(|_| "<redacted>"))
            .field("rekey_relay", &self.rekey_relay)
            .field("cryptex", &self.cryptex)
            .finish()
    }
}

impl UpdateCall {
    fn zeroize_keys(&mut self) {
        if let Some(c) = &mut self.crypto {
            c.zeroize();
        }
    }
}

fn parse_line(line: &str) -> Result<CryptoAttribute, String> {
    line.parse::<CryptoAttribute>()
        .map_err(|e| format!("`crypto`: {e}"))
}

fn policy(attr: &CryptoAttribute, leg: usize) -> Result<Policy, String> {
    attr.policy().map_err(|e| format!("leg {leg}: {e}"))
}

/// The relay request and, per leg, the relay's own line (legs the relay terminates).
type Built = (CallRequest, [Option<CryptoAttribute>; 2]);

fn build_call(req: &CreateCall) -> Result<Built, String> {
    let keyed = !req.legs.is_empty() && req.legs.iter().all(|l| l.srtp.is_some());
    let mode = match req.mode {
        ModeJson::PassThrough { verify } => Mode::PassThrough {
            verify: verify.unwrap_or(keyed),
        },
        ModeJson::Transcrypt => Mode::Transcrypt,
        ModeJson::Bridge {
            ref level,
            ref gateway,
            gateway_tls,
        } => Mode::Bridge {
            level: match level {
                LevelJson::RequireEncryption => EncryptionLevel::RequireEncryption,
                LevelJson::SupportEncryption => EncryptionLevel::SupportEncryption,
                LevelJson::DoNotSupportEncryption => EncryptionLevel::DoNotSupportEncryption,
            },
            gateway: match gateway {
                GatewayJson::Required => SrtpMode::Required,
                GatewayJson::Optional => SrtpMode::Optional,
                GatewayJson::NotSupported => SrtpMode::NotSupported,
            },
            gateway_tls,
        },
    };
    let terminates = !matches!(mode, Mode::PassThrough { .. });
    let mut endpoint = [None, None];
    for (i, leg) in req.legs.iter().enumerate() {
        if let Some(s) = &leg.srtp {
            endpoint[i] = Some(s.attribute().map_err(|e| format!("leg {i}: {e}"))?);
        }
    }
    let mut relay_lines = [None, None];
    let mut securities = Vec::with_capacity(2);
    for i in 0..2 {
        let security = match &endpoint[i] {
            None => Security::Plain,
            Some(attr) if terminates => {
                let own = answer_line(attr);
                let mut outbound = policy(&own, i)?;
                outbound.cryptex = req.legs[i].srtp.as_ref().is_some_and(|s| s.cryptex);
                let s = Security::Srtp {
                    inbound: policy(attr, i)?,
                    outbound,
                };
                relay_lines[i] = Some(own);
                s
            }
            Some(attr) => {
                // Pass-through: what leaves toward this leg is what the other endpoint sent.
                let other = endpoint[1 - i].as_ref().unwrap_or(attr);
                Security::Srtp {
                    inbound: policy(attr, i)?,
                    outbound: policy(other, i)?,
                }
            }
        };
        securities.push(security);
    }
    let mut legs = req
        .legs
        .iter()
        .zip(securities)
        .map(|(l, security)| LegRequest {
            rtcp_mux: l.rtcp_mux,
            remote: l.remote,
            remote_rtcp: l.remote_rtcp,
            security,
            direction: l.direction.into(),
            latching: match l.latching {
                LatchingJson::Strict => Latching::Strict,
                LatchingJson::Learn => Latching::default(),
            },
        });
    let (Some(a), Some(b)) = (legs.next(), legs.next()) else {
        return Err("`legs`: expected two legs".into());
    };
    Ok((CallRequest { mode, legs: [a, b] }, relay_lines))
}

/// Parses a request body; the error is the message for a 400.
fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| {
        // serde_json's message can quote the offending value, which may be a key: keep
        // only the position and the kind of mistake.
        let kind = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "malformed JSON"
            }
            _ => "unexpected field or value",
        };
        let field = unknown_field(&e.to_string());
        format!("{kind}{field} at line {} column {}", e.line(), e.column())
    })
}

/// The field name in serde's "unknown field `x`" or "missing field `x`" messages (names,
/// never values).
fn unknown_field(message: &str) -> String {
    for prefix in ["unknown field `", "missing field `", "unknown variant `"] {
        if let Some(rest) = message.split(prefix).nth(1) {
            if let Some(name) = rest.split('`').next() {
                if name.len() <= 40
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    return format!(" ({}{name})", &prefix[..prefix.len() - 1]);
                }
            }
        }
    }
    String::new()
}

fn json_response(status: StatusCode, v: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap_or_default()
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "error": message }))
}

fn deny() -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::FORBIDDEN)
        .body(Full::new(Bytes::new()))
        .unwrap_or_default()
}

fn relay_error(e: &RelayError) -> Response<Full<Bytes>> {
    match e {
        RelayError::UnknownCall(_) => error(StatusCode::NOT_FOUND, "no such call"),
        RelayError::PortsExhausted => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no free media port left in the configured range",
        ),
        RelayError::Engine(e) => error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
        RelayError::Io(_) | RelayError::WorkerGone => {
            tracing::error!(error = %e, "relay failure");
            error(StatusCode::INTERNAL_SERVER_ERROR, "relay failure")
        }
    }
}

fn mode_name(mode: &Mode) -> &'static str {
    match mode {
        Mode::PassThrough { verify: false } => "pass-through",
        Mode::PassThrough { verify: true } => "pass-through-verified",
        Mode::Transcrypt => "transcrypt",
        Mode::Bridge { .. } => "bridge",
    }
}

fn ports_json(p: &LocalPorts) -> Value {
    json!({"rtp": p.rtp.to_string(), "rtcp": p.rtcp.map(|a| a.to_string())})
}

fn leg_json(l: &LegInfo, ports: Option<LocalPorts>, now: Instant) -> Value {
    json!({
        "local": ports.as_ref().map(ports_json),
        "remote_rtp": l.remote_rtp.map(|a| a.to_string()),
        "remote_rtcp": l.remote_rtcp.map(|a| a.to_string()),
        "direction": DirectionJson::from(l.direction),
        "srtp": l.srtp,
        "rtcp_mux": l.rtcp_mux,
        "idle_ms": now.saturating_duration_since(l.stats.last_activity).as_millis() as u64,
        "counters": counters_json(&l.stats.counters),
    })
}

fn counters_json(c: &Counters) -> Value {
    json!({
        "packets_in": c.packets_in,
        "bytes_in": c.bytes_in,
        "packets_out": c.packets_out,
        "bytes_out": c.bytes_out,
        "drops": {
            "auth": c.drops.auth,
            "replay": c.drops.replay,
            "policy": c.drops.policy,
            "unknown_source": c.drops.unknown_source,
            "malformed": c.drops.malformed,
        },
    })
}

/// A metric family: name, type, help and `(labels, value)` samples.
type Family<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, u64)>);

/// The Prometheus text exposition (format 0.0.4) of the process.
pub fn metrics_text(control: &Control, t: &Counters) -> String {
    let m = &control.metrics;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let d = &t.drops;
    let families: [Family<'_>; 15] = [
        (
            "calls",
            "gauge",
            "Running calls.",
            vec![("", control.relay().calls().len() as u64)],
        ),
        (
            "draining",
            "gauge",
            "1 while draining after SIGTERM.",
            vec![("", u64::from(control.is_draining()))],
        ),
        (
            "calls_created_total",
            "counter",
            "Calls created.",
            vec![("", get(&m.calls_created))],
        ),
        (
            "ports_exhausted_total",
            "counter",
            "Call creations refused for lack of media ports.",
            vec![("", get(&m.ports_exhausted))],
        ),
        (
            "refused_draining_total",
            "counter",
            "Call creations refused while draining.",
            vec![("", get(&m.refused_draining))],
        ),
        (
            "packets_in_total",
            "counter",
            "Media packets received.",
            vec![("", t.packets_in)],
        ),
        (
            "bytes_in_total",
            "counter",
            "Media bytes received.",
            vec![("", t.bytes_in)],
        ),
        (
            "packets_out_total",
            "counter",
            "Media packets sent.",
            vec![("", t.packets_out)],
        ),
        (
            "bytes_out_total",
            "counter",
            "Media bytes sent.",
            vec![("", t.bytes_out)],
        ),
        (
            "drops_total",
            "counter",
            "Media packets dropped, by reason.",
            vec![
                ("{reason=\"auth\"}", d.auth),
                ("{reason=\"replay\"}", d.replay),
                ("{reason=\"policy\"}", d.policy),
                ("{reason=\"unknown_source\"}", d.unknown_source),
                ("{reason=\"malformed\"}", d.malformed),
            ],
        ),
        (
            "api_responses_total",
            "counter",
            "API responses, by status class.",
            vec![
                ("{class=\"2xx\"}", get(&m.api_responses[2])),
                ("{class=\"4xx\"}", get(&m.api_responses[4])),
                ("{class=\"5xx\"}", get(&m.api_responses[5])),
            ],
        ),
        (
            "api_denied_total",
            "counter",
            "API requests denied by role.",
            vec![("", get(&m.api_denied))],
        ),
        (
            "api_tls_failures_total",
            "counter",
            "API TLS handshakes refused.",
            vec![("", get(&m.tls_failures))],
        ),
        (
            "ng_commands_total",
            "counter",
            "ng commands handled.",
            vec![("", get(&m.ng_commands))],
        ),
        (
            "ng_malformed_total",
            "counter",
            "ng messages that could not be decoded.",
            vec![("", get(&m.ng_malformed))],
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, samples) in families {
        let _ = writeln!(out, "# HELP srtp_relay_{name} {help}");
        let _ = writeln!(out, "# TYPE srtp_relay_{name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "srtp_relay_{name}{labels} {v}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route(&Method::GET, "/v1/calls/7"),
            Some((Action::ReadCalls, Some(7)))
        );
        assert_eq!(
            route(&Method::DELETE, "/v1/calls/7"),
            Some((Action::DeleteCall, Some(7)))
        );
        assert_eq!(route(&Method::PUT, "/v1/calls/7"), None);
        assert_eq!(route(&Method::GET, "/v1/calls/x"), None);
        assert_eq!(
            route(&Method::GET, "/metrics"),
            Some((Action::Metrics, None))
        );
    }

    /// `srtp.cryptex` makes the relay send to that endpoint with cryptex, on that leg only.
    #[test]
    fn cryptex_is_per_leg_outbound() {
        let body = br#"{"mode":{"type":"transcrypt"},"legs":[
            {"srtp":{"profile":"AES_CM_128_HMAC_SHA1_80","key":"WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz","cryptex":true}},
            {"srtp":{"profile":"AES_CM_128_HMAC_SHA1_80","key":"WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"}}]}"#;
        let req = parse_json::<CreateCall>(body).unwrap();
        let (call, _) = build_call(&req).unwrap();
        let cryptex: Vec<bool> = call
            .legs
            .iter()
            .map(|l| match &l.security {
                Security::Srtp { outbound, .. } => outbound.cryptex,
                Security::Plain => panic!("plain leg"),
            })
            .collect();
        assert_eq!(cryptex, [true, false]);
    }

    #[test]
    fn json_errors_never_echo_values() {
        let body = br#"{"mode":{"type":"transcrypt"},"legs":[{"srtp":{"crypto":7}},{}], "x":"inline:SECRET"}"#;
        let Err(text) = parse_json::<CreateCall>(body) else {
            panic!("accepted")
        };
        assert!(!text.contains("SECRET"));
        assert_eq!(
            unknown_field("unknown field `x`, expected one of `mode`"),
            " (unknown field x)"
        );
    }

    /// The API forgets calls that ended without it (inactivity), never one created while it
    /// looked.
    #[test]
    fn forgets_only_calls_that_ended() {
        let relay = crate::io::Relay::start(crate::io::RelayConfig {
            ports: 48000..=48099,
            workers: 1,
            ..Default::default()
        })
        .unwrap();
        let api = Api::new(Arc::new(Control::new(
            relay,
            std::net::Ipv4Addr::LOCALHOST.into(),
        )));
        let relay = api.control.relay();
        let plain = || CallRequest {
            mode: crate::engine::Mode::PassThrough { verify: false },
            legs: [
                LegRequest::new(crate::engine::Security::Plain),
                LegRequest::new(crate::engine::Security::Plain),
            ],
        };
        let (kept, ended) = (
            relay.create_call(plain()).unwrap(),
            relay.create_call(plain()).unwrap(),
        );
        let meta = |ports| CallMeta {
            ports,
            lines: [None, None],
        };
        {
            let mut c = api.calls.lock().unwrap();
            c.insert(kept.id, meta(kept.legs));
            c.insert(ended.id, meta(ended.legs));
        }
        relay.delete_call(ended.id).unwrap();
        let next = relay.next_call_id();
        let live = relay.calls();
        // A call created between the two reads, its entry already there.
        let racing = relay.create_call(plain()).unwrap();
        api.calls
            .lock()
            .unwrap()
            .insert(racing.id, meta(racing.legs));
        api.keep_only(&live, next);
        let mut left: Vec<u64> = api.calls.lock().unwrap().keys().copied().collect();
        left.sort_unstable();
        assert_eq!(left, vec![kept.id, racing.id]);
    }

    #[test]
    fn debug_never_shows_keys() {
        let body = br#"{"mode":{"type":"transcrypt"},"legs":[
            {"srtp":{"crypto":["1 AES_CM_128_HMAC_SHA1_80 inline:SECRETA"]}},
            {"srtp":{"profile":"AES_CM_128_HMAC_SHA1_80","key":"SECRETB"}}]}"#;
        let create = parse_json::<CreateCall>(body).unwrap();
        let update = parse_json::<UpdateCall>(
            br#"{"leg":0,"crypto":"1 AES_CM_128_HMAC_SHA1_80 inline:SECRETC"}"#,
        )
        .unwrap();
        let shown = format!("{create:?} {update:?}");
        for secret in ["SECRETA", "SECRETB", "SECRETC"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
