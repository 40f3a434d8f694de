//! A client of the HTTPS control API: one TLS connection per request, presenting a client
//! certificate. Used by `srtp-relay ctl` and the tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Why a request failed before an HTTP status came back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Connecting failed.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// The TLS handshake failed (the server refused our certificate, or we refused its).
    #[error("tls: {0}")]
    Tls(std::io::Error),
    /// HTTP failed (a server that refuses the certificate after the TLS 1.3 handshake
    /// closes the connection here).
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The server did not answer in time.
    #[error("timed out")]
    Timeout,
    /// The server name is not a valid DNS name or IP address.
    #[error("invalid server name {0:?}")]
    ServerName(String),
}

/// An API client.
#[derive(Clone, Debug)]
pub struct ApiClient {
    addr: SocketAddr,
    server_name: ServerName<'static>,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
}

/// A response: status and body text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: String,
}

impl ApiClient {
    /// A client of `addr` over TLS with `tls`, checking the server's certificate against
    /// `server_name`.
    ///
    /// # Errors
    /// [`ClientError::ServerName`].
    pub fn tls(
        addr: SocketAddr,
        server_name: &str,
        tls: Arc<ClientConfig>,
    ) -> Result<Self, ClientError> {
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| ClientError::ServerName(server_name.into()))?;
        Ok(Self {
            addr,
            server_name,
            tls: Some(tls),
            timeout: Duration::from_secs(10),
        })
    }

    /// A client of a plaintext API (`--danger-plaintext-api`).
    pub fn plaintext(addr: SocketAddr) -> Self {
        Self {
            addr,
            server_name: ServerName::IpAddress(addr.ip().into()),
            tls: None,
            timeout: Duration::from_secs(10),
        }
    }

    /// Sends one request; `body` is JSON text.
    ///
    /// # Errors
    /// [`ClientError`] when no HTTP response came back.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<ApiResponse, ClientError> {
        tokio::time::timeout(self.timeout, self.exchange(method, path, body))
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<ApiResponse, ClientError> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(ClientError::Connect)?;
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or("").to_owned())))?;
        match &self.tls {
            None => send(tcp, request).await,
            Some(config) => {
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(self.server_name.clone(), tcp)
                    .await
                    .map_err(ClientError::Tls)?;
                send(tls, request).await
            }
        }
    }
}

async fn send<S>(io: S, request: Request<Full<Bytes>>) -> Result<ApiResponse, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    let driver = tokio::spawn(conn);
    let response = sender.send_request(request).await;
    let result = match response {
        Ok(r) => {
            let status = r.status().as_u16();
            let bytes = r.into_body().collect().await?.to_bytes();
            Ok(ApiResponse {
                status,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            })
        }
        Err(e) => Err(e.into()),
    };
    driver.abort();
    result
}
