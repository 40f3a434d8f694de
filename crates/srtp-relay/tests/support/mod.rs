//! Shared by the control-plane tests: certificates on disk, a running relay process in the
//! test, SRTP endpoints on loopback sockets.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use srtp_core::sdes::CryptoAttribute;
use srtp_core::{Session, MAX_TRAILER_LEN};
use srtp_relay::config::Config;
use srtp_relay::control::certs::{Ca, Pem};
use srtp_relay::control::client::ApiClient;
use srtp_relay::control::roles::Role;
use srtp_relay::control::server::{ApiAuth, Server};
use srtp_relay::control::tls::{self, ServerTlsFiles};

/// Serial number of the client certificate the CRL revokes.
pub const REVOKED_SERIAL: u64 = 999;

/// A temporary folder removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "srtp-relay-test-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Certificates for a test: the relay's CA and server certificate, clients per role and the
/// awkward ones.
pub struct Pki {
    pub dir: TempDir,
    pub files: ServerTlsFiles,
    pub ca: PathBuf,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let dir = TempDir::new(name);
        let ca = Ca::new("test CA").unwrap();
        let server = ca.server(&[]).unwrap();
        let ca_path = dir.write("ca.pem", &ca.pem.cert);
        let files = ServerTlsFiles {
            cert: dir.write("server.pem", &server.cert),
            key: dir.write("server.key", &server.key),
            client_ca: ca_path.clone(),
            crls: vec![dir.write("crl.pem", &ca.crl(&[REVOKED_SERIAL]).unwrap())],
        };
        let save = |name: &str, pem: Pem| {
            dir.write(&format!("{name}.pem"), &pem.cert);
            dir.write(&format!("{name}.key"), &pem.key);
        };
        for (i, role) in Role::ALL.into_iter().enumerate() {
            save(
                role.as_str(),
                ca.client(&format!("client-{role}"), 10 + i as u64, -1, 30)
                    .unwrap(),
            );
        }
        save("unmapped", ca.client("client-nobody", 20, -1, 30).unwrap());
        save("expired", ca.client("client-admin", 21, -60, -30).unwrap());
        save(
            "revoked",
            ca.client("client-admin", REVOKED_SERIAL, -1, 30).unwrap(),
        );
        let other = Ca::new("another CA").unwrap();
        save(
            "wrong-ca",
            other.client("client-admin", 22, -1, 30).unwrap(),
        );
        Self {
            dir,
            files,
            ca: ca_path,
        }
    }

    pub fn roles() -> BTreeMap<String, Role> {
        Role::ALL
            .into_iter()
            .map(|r| (format!("client-{r}"), r))
            .collect()
    }

    pub fn auth(&self) -> ApiAuth {
        ApiAuth {
            files: Some(self.files.clone()),
            roles: Self::roles(),
        }
    }

    /// A client presenting the certificate saved as `name` (`None`: no certificate).
    pub fn client(&self, server: &Server, name: Option<&str>) -> ApiClient {
        let cert = name.map(|n| {
            (
                self.dir.0.join(format!("{n}.pem")),
                self.dir.0.join(format!("{n}.key")),
            )
        });
        let config = tls::client_config(
            &self.ca,
            cert.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
        )
        .unwrap();
        ApiClient::tls(server.api_addr().unwrap(), "localhost", config).unwrap()
    }
}

/// A configuration on loopback with OS-assigned control ports and the given media ports.
pub fn config(ports: (u16, u16)) -> Config {
    let mut c = Config::default();
    c.api.listen = "127.0.0.1:0".parse().unwrap();
    c.ng.listen = "127.0.0.1:0".parse().unwrap();
    c.media.port_min = ports.0;
    c.media.port_max = ports.1;
    c.media.workers = 1;
    c.media.port_guard_secs = 0;
    c
}

pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// A UDP endpoint on loopback whose receives wait up to 5 s: long enough for a loaded
/// machine where a datagram must arrive (a test that expects none sets a shorter timeout).
pub fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

pub fn recv(s: &UdpSocket) -> Option<Vec<u8>> {
    let mut buf = [0u8; 2048];
    s.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

/// A 20 ms G.711 RTP packet.
pub fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend(ssrc.to_be_bytes());
    p.extend((0..160).map(|i| i as u8 ^ seq as u8));
    p
}

pub fn session(line: &str) -> Session {
    let attr: CryptoAttribute = line.parse().unwrap();
    Session::new(&attr.policy().unwrap()).unwrap()
}

pub fn protect(s: &mut Session, plain: &[u8]) -> Vec<u8> {
    let mut b = plain.to_vec();
    b.resize(plain.len() + MAX_TRAILER_LEN, 0);
    let n = s.protect_rtp(&mut b, plain.len()).unwrap();
    b.truncate(n);
    b
}

/// Sends `count` packets from `from` (protected with `tx` when given) to `to`, and checks
/// that `at` receives each, decrypted with `rx` when given, equal to what was sent.
pub fn flows(
    from: &UdpSocket,
    mut tx: Option<&mut Session>,
    to: SocketAddr,
    at: &UdpSocket,
    mut rx: Option<&mut Session>,
    ssrc: u32,
    count: u16,
) {
    for seq in 0..count {
        let plain = rtp(seq + 1, ssrc);
        let wire = match tx.as_deref_mut() {
            Some(s) => protect(s, &plain),
            None => plain.clone(),
        };
        from.send_to(&wire, to).unwrap();
        let mut got =
            recv(at).unwrap_or_else(|| panic!("packet {seq} not relayed to {:?}", at.local_addr()));
        let out = match rx.as_deref_mut() {
            Some(s) => s
                .unprotect_rtp(&mut got)
                .expect("relay's SRTP must verify")
                .to_vec(),
            None => got,
        };
        assert_eq!(out, plain, "packet {seq}");
    }
}
