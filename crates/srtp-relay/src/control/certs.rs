//! Development certificates: a CA, a server certificate for the loopback names, one client
//! certificate per role, and a CRL. For local use and tests; production deployments bring
//! certificates from their own CA.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};

use super::roles::Role;

/// Why certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// A certificate and its private key, PEM-encoded.
#[derive(Clone)]
pub struct Pem {
    /// The certificate.
    pub cert: String,
    /// The private key (PKCS#8).
    pub key: String,
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pem").finish_non_exhaustive()
    }
}

/// A certificate authority that issues server and client certificates and CRLs.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate and key.
    pub pem: Pem,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

/// The common name of the development client certificate for a role.
pub fn dev_client_name(role: Role) -> String {
    format!("srtp-relay-{role}")
}

impl Ca {
    /// A new self-signed CA named `name`, valid for ten years.
    ///
    /// # Errors
    /// [`CertError::Generate`].
    pub fn new(name: &str) -> Result<Self, CertError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = days_from_now(-1);
        params.not_after = days_from_now(3650);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let pem = Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        };
        Ok(Self {
            issuer: Issuer::new(params, key),
            pem,
        })
    }

    /// A server certificate for `localhost`, `127.0.0.1` and `::1` (and `extra` names),
    /// valid for a year.
    ///
    /// # Errors
    /// [`CertError::Generate`].
    pub fn server(&self, extra: &[String]) -> Result<Pem, CertError> {
        let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        names.extend(extra.iter().cloned());
        let mut params = CertificateParams::new(names)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "srtp-relay");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = days_from_now(-1);
        params.not_after = days_from_now(365);
        self.sign(params)
    }

    /// A client certificate with subject CN `name` (also a DNS SAN when it is a valid DNS
    /// name), valid from `not_before` to `not_after` days from now, with serial `serial`.
    ///
    /// # Errors
    /// [`CertError::Generate`].
    pub fn client(
        &self,
        name: &str,
        serial: u64,
        not_before: i64,
        not_after: i64,
    ) -> Result<Pem, CertError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        if let Ok(dns) = name.to_string().try_into() {
            params.subject_alt_names = vec![SanType::DnsName(dns)];
        }
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = days_from_now(not_before);
        params.not_after = days_from_now(not_after);
        self.sign(params)
    }

    /// A CRL (PEM) revoking the given serial numbers, valid for 30 days.
    ///
    /// # Errors
    /// [`CertError::Generate`].
    pub fn crl(&self, revoked: &[u64]) -> Result<String, CertError> {
        let params = CertificateRevocationListParams {
            this_update: days_from_now(-1),
            next_update: days_from_now(30),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|&s| RevokedCertParams {
                    serial_number: SerialNumber::from(s),
                    revocation_time: days_from_now(-1),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.pem()?)
    }

    fn sign(&self, params: CertificateParams) -> Result<Pem, CertError> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// The files [`write_dev_certs`] creates, relative to its folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevCertPaths {
    /// The CA certificate (`ca.pem`): the client CA, and the root clients trust.
    pub ca: PathBuf,
    /// The server certificate (`server.pem`).
    pub server_cert: PathBuf,
    /// The server key (`server.key`).
    pub server_key: PathBuf,
    /// An empty CRL of the CA (`crl.pem`).
    pub crl: PathBuf,
}

impl DevCertPaths {
    /// The paths under `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            crl: dir.join("crl.pem"),
        }
    }

    /// The client certificate and key of a role under `dir`.
    pub fn client(dir: &Path, role: Role) -> (PathBuf, PathBuf) {
        (
            dir.join(format!("client-{role}.pem")),
            dir.join(format!("client-{role}.key")),
        )
    }

    /// Whether the server's files all exist.
    pub fn exist(&self) -> bool {
        [&self.ca, &self.server_cert, &self.server_key]
            .iter()
            .all(|p| p.is_file())
    }
}

/// Generates a CA, a server certificate and a client certificate per role (CN
/// `srtp-relay-<role>`) into `dir`, private keys readable by the owner only.
///
/// # Errors
/// [`CertError`].
pub fn write_dev_certs(dir: &Path) -> Result<DevCertPaths, CertError> {
    let write = |path: PathBuf, text: &str, secret: bool| -> Result<(), CertError> {
        write_file(&path, text, secret).map_err(|source| CertError::Write { path, source })
    };
    fs::create_dir_all(dir).map_err(|source| CertError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let ca = Ca::new("srtp-relay development CA")?;
    let paths = DevCertPaths::in_dir(dir);
    write(paths.ca.clone(), &ca.pem.cert, false)?;
    write(dir.join("ca.key"), &ca.pem.key, true)?;
    let server = ca.server(&[])?;
    write(paths.server_cert.clone(), &server.cert, false)?;
    write(paths.server_key.clone(), &server.key, true)?;
    for (i, role) in Role::ALL.into_iter().enumerate() {
        let pem = ca.client(&dev_client_name(role), 100 + i as u64, -1, 365)?;
        let (cert, key) = DevCertPaths::client(dir, role);
        write(cert, &pem.cert, false)?;
        write(key, &pem.key, true)?;
    }
    write(paths.crl.clone(), &ca.crl(&[])?, false)?;
    Ok(paths)
}

fn write_file(path: &Path, text: &str, secret: bool) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let _ = secret;
    std::io::Write::write_all(&mut options.open(path)?, text.as_bytes())
}

/// Now plus `days` (negative for the past).
fn days_from_now(days: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::days(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_certs_are_written() {
        let dir = std::env::temp_dir().join(format!("srtp-relay-certs-{}", std::process::id()));
        let paths = write_dev_certs(&dir).unwrap();
        assert!(paths.exist());
        let (cert, _) = DevCertPaths::client(&dir, Role::Auditor);
        assert!(fs::read_to_string(cert)
            .unwrap()
            .contains("BEGIN CERTIFICATE"));
        let _ = fs::remove_dir_all(&dir);
    }
}
