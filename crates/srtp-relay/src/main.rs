//! `srtp-relay`: the relay process and its tools.
//!
//! - `serve`: runs the relay with its HTTPS control API (mutual TLS, roles) and the
//!   rtpengine-compatible ng listener. With no configuration it runs on loopback and, on first
//!   run, generates development certificates into its state folder.
//! - `keygen`: prints a fresh `a=crypto` line.
//! - `dev-certs`: writes a development CA, server certificate and one client certificate per
//!   role.
//! - `ctl`: sends one request to the API with a client certificate.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use srtp_core::sdes::CryptoAttribute;
use srtp_core::{MasterKey, Mki, Profile};
use srtp_relay::config::{Config, LogFormat};
use srtp_relay::control::certs::{dev_client_name, write_dev_certs, DevCertPaths};
use srtp_relay::control::client::ApiClient;
use srtp_relay::control::roles::Role;
use srtp_relay::control::server::{ApiAuth, Server};
use srtp_relay::control::tls::{self, ServerTlsFiles};

/// An SRTP media relay: forwards, transcrypts and bridges secure voice and video, driven over
/// a mutually authenticated HTTPS API or the rtpengine ng protocol.
#[derive(Debug, Parser)]
#[command(name = "srtp-relay", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the relay (defaults: media and API on 127.0.0.1, ng on 127.0.0.1:2223).
    Serve(ServeArgs),
    /// Print a fresh `a=crypto` line (RFC 4568) with a random key.
    Keygen {
        /// The crypto suite.
        #[arg(long, default_value = "AES_CM_128_HMAC_SHA1_80")]
        profile: String,
        /// The attribute tag.
        #[arg(long, default_value_t = 1)]
        tag: u32,
        /// Add an MKI of this many bytes (value 1), as Microsoft peers send.
        #[arg(long)]
        mki: Option<usize>,
        /// Add a key lifetime of 2^N packets.
        #[arg(long, value_name = "N")]
        lifetime_pow2: Option<u32>,
    },
    /// Write a development CA, a server certificate for localhost/127.0.0.1/::1 and one
    /// client certificate per role (CN srtp-relay-<role>).
    DevCerts {
        /// The folder to write into.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Send one request to the HTTPS API, e.g. `ctl GET /v1/calls`.
    Ctl(CtlArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// State folder (development certificates).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// API listening address.
    #[arg(long)]
    api_listen: Option<SocketAddr>,
    /// ng listening address.
    #[arg(long)]
    ng_listen: Option<SocketAddr>,
    /// Do not run the ng listener.
    #[arg(long)]
    no_ng: bool,
    /// Address media sockets bind to.
    #[arg(long)]
    media_bind: Option<IpAddr>,
    /// Address written into SDP (behind NAT).
    #[arg(long)]
    advertise: Option<IpAddr>,
    /// Media port range, MIN-MAX.
    #[arg(long, value_parser = parse_range)]
    ports: Option<(u16, u16)>,
    /// Worker threads (0: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// How workers receive and send: auto, uring or epoll.
    #[arg(long)]
    io: Option<String>,
    /// Log format.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long)]
    log_level: Option<String>,
    /// Seconds calls may continue after SIGTERM.
    #[arg(long)]
    drain_secs: Option<u64>,
    /// Serve the API over plain HTTP with no authentication (every client is admin). Binds
    /// loopback only. For local experiments, never for deployment.
    #[arg(long)]
    danger_plaintext_api: bool,
}

#[derive(Debug, Args)]
struct CtlArgs {
    /// The API address.
    #[arg(long, default_value = "127.0.0.1:8443")]
    api: SocketAddr,
    /// Use the development client certificate of this role from the state folder.
    #[arg(long, default_value = "admin")]
    role: String,
    /// State folder holding the development certificates.
    #[arg(long, default_value = srtp_relay::config::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Client certificate (PEM), instead of the development one.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// CA to check the server against.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The server's name in its certificate.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// Talk plain HTTP to a `--danger-plaintext-api` relay.
    #[arg(long)]
    plaintext: bool,
    /// GET, POST, PATCH or DELETE.
    method: String,
    /// For example /v1/calls, /v1/calls/1, /healthz, /metrics.
    path: String,
    /// JSON body; `-` reads it from standard input.
    body: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Keygen {
            profile,
            tag,
            mki,
            lifetime_pow2,
        } => keygen(&profile, tag, mki, lifetime_pow2),
        Command::DevCerts { out, force } => {
            if DevCertPaths::in_dir(&out).exist() && !force {
                bail!(
                    "{} already holds certificates (use --force to replace them)",
                    out.display()
                );
            }
            write_dev_certs(&out)?;
            println!("wrote development certificates to {}", out.display());
            print_usage(&out);
            Ok(())
        }
        Command::Ctl(args) => ctl(args),
    }
}

fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| "expected MIN-MAX, e.g. 30000-39999".to_string())?;
    let p = |x: &str| {
        x.trim()
            .parse::<u16>()
            .map_err(|_| format!("{x:?} is not a port"))
    };
    Ok((p(a)?, p(b)?))
}

fn keygen(profile: &str, tag: u32, mki: Option<usize>, pow2: Option<u32>) -> anyhow::Result<()> {
    let Some(profile) = Profile::from_sdes_name(profile) else {
        let names: Vec<_> = Profile::ALL.iter().map(|p| p.sdes_name()).collect();
        bail!(
            "unknown profile {profile:?}; expected one of {}",
            names.join(", ")
        );
    };
    let mut key = MasterKey::generate(profile);
    if let Some(len) = mki {
        key = key.with_mki(Mki::new(1, len).context("--mki: expected 1 to 128 bytes")?);
    }
    if let Some(n) = pow2 {
        if !(1..=48).contains(&n) {
            bail!("--lifetime-pow2: expected 1 to 48");
        }
        key = key.with_lifetime(1u64 << n);
    }
    println!("a={}", CryptoAttribute::new(tag, profile, key));
    Ok(())
}

/// The configuration from the file (or defaults) with the command line applied.
fn load_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(d) = &args.state_dir {
        config.state_dir = Some(d.clone());
    }
    if let Some(a) = args.api_listen {
        config.api.listen = a;
    }
    if let Some(a) = args.ng_listen {
        config.ng.listen = a;
    }
    if args.no_ng {
        config.ng.enabled = false;
    }
    if let Some(a) = args.media_bind {
        config.media.bind = a;
    }
    if let Some(a) = args.advertise {
        config.media.advertise = Some(a);
    }
    if let Some((lo, hi)) = args.ports {
        config.media.port_min = lo;
        config.media.port_max = hi;
    }
    if let Some(w) = args.workers {
        config.media.workers = w;
    }
    if let Some(io) = &args.io {
        config.media.io = io.clone();
    }
    if let Some(f) = args.log_format {
        config.log.format = f;
    }
    if let Some(l) = &args.log_level {
        config.log.level = l.clone();
    }
    if let Some(s) = args.drain_secs {
        config.drain.deadline_secs = s;
    }
    if args.danger_plaintext_api {
        config.api.danger_plaintext = true;
    }
    config.validate()?;
    Ok(config)
}

/// What the API authenticates with. With no certificate configured (and no plaintext flag)
/// it uses the development certificates in the state folder, generating them on first run.
fn resolve_auth(config: &Config, first_run: bool) -> anyhow::Result<ApiAuth> {
    if let (Some(cert), Some(key)) = (&config.api.cert, &config.api.key) {
        return Ok(ApiAuth {
            files: Some(ServerTlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: config.api.client_ca.clone().unwrap_or_default(),
                crls: config.api.crls.clone(),
            }),
            roles: config.api.roles.clone(),
        });
    }
    if config.api.danger_plaintext || !config.api.enabled {
        return Ok(ApiAuth {
            files: None,
            roles: BTreeMap::new(),
        });
    }
    let dir = config.state_dir();
    let paths = DevCertPaths::in_dir(&dir);
    if !paths.exist() {
        if !first_run {
            bail!("development certificates missing from {}", dir.display());
        }
        write_dev_certs(&dir)
            .with_context(|| format!("generating certificates in {}", dir.display()))?;
        println!(
            "First run: generated development certificates in {}",
            dir.display()
        );
        print_usage(&dir);
    }
    let mut roles = config.api.roles.clone();
    if roles.is_empty() {
        roles = Role::ALL
            .into_iter()
            .map(|r| (dev_client_name(r), r))
            .collect();
    }
    let mut crls = config.api.crls.clone();
    if crls.is_empty() && paths.crl.is_file() {
        crls.push(paths.crl.clone());
    }
    Ok(ApiAuth {
        files: Some(ServerTlsFiles {
            cert: paths.server_cert,
            key: paths.server_key,
            client_ca: config.api.client_ca.clone().unwrap_or(paths.ca),
            crls,
        }),
        roles,
    })
}

fn print_usage(dir: &Path) {
    let (cert, key) = DevCertPaths::client(dir, Role::Admin);
    println!(
        "  CA: {ca}\n  client certificates: {dir}/client-<admin|operator|auditor|metrics>.pem (+ .key)\n\
         Try:\n  srtp-relay ctl --state-dir {dir} --role admin GET /healthz\n  \
         curl --cacert {ca} --cert {cert} --key {key} https://localhost:8443/v1/calls",
        ca = dir.join("ca.pem").display(),
        dir = dir.display(),
        cert = cert.display(),
        key = key.display(),
    );
}

fn init_logging(config: &Config) {
    let level: tracing::Level = config.log.level.parse().unwrap_or(tracing::Level::INFO);
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    init_logging(&config);
    let auth = resolve_auth(&config, true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(args, config, auth))
}

async fn run(args: ServeArgs, config: Config, auth: ApiAuth) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // The handlers first: once the server answers, a supervisor may signal it (a reload
    // right after start), and an unhandled SIGHUP would end the process.
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let server = Server::start(&config, &auth).await?;
    if auth.files.is_none() && config.api.enabled {
        tracing::warn!(
            "the API runs WITHOUT TLS or authentication (--danger-plaintext-api): every \
             client is admin"
        );
    }
    if let Some(a) = server.api_addr() {
        let scheme = if auth.files.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(listen = %a, "api listening ({scheme})");
    }
    if let Some(a) = server.ng_addr() {
        tracing::info!(listen = %a, "ng listening (unauthenticated: keep it on loopback or a private network)");
    }
    tracing::info!(
        bind = %config.media.bind,
        ports = %format!("{}-{}", config.media.port_min, config.media.port_max),
        "media"
    );
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let reloaded = load_config(&args).and_then(|c| resolve_auth(&c, false));
                match reloaded.map(|a| server.reload(&a).map(|()| a)) {
                    Ok(Ok(a)) => tracing::info!(roles = a.roles.len(), "reloaded certificates and roles"),
                    Ok(Err(e)) => tracing::error!(error = %e, "reload failed; keeping the old certificates"),
                    Err(e) => tracing::error!(error = %e, "reload failed; keeping the old configuration"),
                }
            }
            _ = term.recv() => {
                let deadline = Duration::from_secs(config.drain.deadline_secs);
                tracing::info!(calls = server.control().relay().calls().len(), deadline_secs = config.drain.deadline_secs, "SIGTERM: draining");
                let cut = server.drain(deadline).await;
                tracing::info!(cut, "drained; stopped");
                return Ok(());
            }
            _ = int.recv() => {
                tracing::info!("SIGINT: stopping");
                server.stop().await;
                return Ok(());
            }
        }
    }
}

fn ctl(args: CtlArgs) -> anyhow::Result<()> {
    let body = match args.body.as_deref() {
        Some("-") => Some(std::io::read_to_string(std::io::stdin())?),
        other => other.map(str::to_owned),
    };
    let client = if args.plaintext {
        ApiClient::plaintext(args.api)
    } else {
        let (cert, key) = match (&args.cert, &args.key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => {
                let role = Role::ALL
                    .into_iter()
                    .find(|r| r.as_str() == args.role)
                    .with_context(|| {
                        format!(
                            "--role: expected admin, operator, auditor or metrics, not {:?}",
                            args.role
                        )
                    })?;
                DevCertPaths::client(&args.state_dir, role)
            }
        };
        let ca = args
            .ca
            .clone()
            .unwrap_or_else(|| args.state_dir.join("ca.pem"));
        let config = tls::client_config(&ca, Some((&cert, &key)))?;
        ApiClient::tls(args.api, &args.server_name, config)?
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let method = args.method.to_ascii_uppercase();
    let response = runtime.block_on(client.request(&method, &args.path, body.as_deref()))?;
    eprintln!("HTTP {}", response.status);
    if !response.body.is_empty() {
        println!("{}", response.body);
    }
    if response.status >= 400 {
        std::process::exit(1);
    }
    Ok(())
}
