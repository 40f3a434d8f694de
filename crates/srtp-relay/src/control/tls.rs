//! TLS for the control API: rustls with the `ring` provider, TLS 1.3 and 1.2 only, client
//! certificates required and checked against the configured CA and CRLs (RFC 5280 §6, via
//! rustls's `WebPkiClientVerifier`), and the client identities a role is looked up by.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::roles::Compare;

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the expected kind.
    #[error("{path}: expected {expected}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was looked for.
        expected: &'static str,
    },
    /// rustls refused the material.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier could not be built (no CA, bad CRL).
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Paths of the server's TLS material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// Certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA of client certificates (PEM, one or more).
    pub client_ca: PathBuf,
    /// CRLs of that CA (PEM or DER).
    pub crls: Vec<PathBuf>,
}

/// The crypto provider used everywhere: `ring`.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A server configuration that requires a client certificate chained to the CA, valid now
/// and not revoked by the CRLs.
///
/// # Errors
/// [`TlsError`] naming the file at fault.
pub fn server_config(files: &ServerTlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certs(&files.cert)?;
    let key = private_key(&files.key)?;
    let mut roots = RootCertStore::empty();
    for ca in certs(&files.client_ca)? {
        roots.add(ca)?;
    }
    let mut crls = Vec::new();
    for path in &files.crls {
        crls.extend(crl(path)?);
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .with_crls(crls)
        .build()?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration trusting `ca` and presenting `cert` and `key` (none for a client
/// without a certificate, which a relay refuses).
///
/// # Errors
/// [`TlsError`] naming the file at fault.
pub fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in certs(ca)? {
        roots.add(c)?;
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder.with_client_auth_cert(certs(cert)?, private_key(key)?)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The identities of a client certificate a role may be mapped from, in lookup order, each
/// with how it compares: the subject's common names, then the DNS, URI, e-mail and IP
/// subject alternative names. Empty for a certificate that does not parse (the verifier
/// accepted it, so that does not happen in practice).
pub fn identities(cert: &CertificateDer<'_>) -> Vec<(String, Compare)> {
    let Ok((_, x509)) = X509Certificate::from_der(cert.as_ref()) else {
        return Vec::new();
    };
    let host = |s: String| (s, Compare::IgnoreAsciiCase);
    let mut out: Vec<(String, Compare)> = x509
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(|s| host(s.to_owned())))
        .collect();
    if let Ok(Some(san)) = x509.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(s) => out.push(host((*s).to_owned())),
                GeneralName::URI(s) | GeneralName::RFC822Name(s) => {
                    out.push(((*s).to_owned(), Compare::Exact))
                }
                GeneralName::IPAddress(b) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                        out.push(host(std::net::Ipv4Addr::from(v4).to_string()));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                        out.push(host(std::net::Ipv6Addr::from(v6).to_string()));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = read(path)?;
    let list: Vec<_> = CertificateDer::pem_slice_iter(&data)
        .filter_map(Result::ok)
        .collect();
    if list.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            expected: "a PEM certificate",
        });
    }
    Ok(list)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let data = read(path)?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|_| TlsError::Pem {
        path: path.to_owned(),
        expected: "a PEM private key",
    })
}

fn crl(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let data = read(path)?;
    let pem: Vec<_> = CertificateRevocationListDer::pem_slice_iter(&data)
        .filter_map(Result::ok)
        .collect();
    if !pem.is_empty() {
        return Ok(pem);
    }
    // Not PEM: a DER CRL is an ASN.1 SEQUENCE.
    if data.first() == Some(&0x30) {
        return Ok(vec![CertificateRevocationListDer::from(data)]);
    }
    Err(TlsError::Pem {
        path: path.to_owned(),
        expected: "a CRL (PEM or DER)",
    })
}
