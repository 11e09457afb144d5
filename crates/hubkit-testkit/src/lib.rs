//! Helpers for hubkit's integration tests: an HTTPS client that verifies the hub's
//! certificate against a given PEM file (so tests exercise real TLS), speaks HTTP/1.1 or
//! HTTP/2, and can also write raw bytes for malformed requests. The [`mqtt`] module contains
//! MQTT brokers, clients and a fault-injecting proxy.

#![deny(missing_docs)]

pub mod mqtt;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// An HTTPS client for one hub address.
#[derive(Clone)]
pub struct HttpsClient {
    address: SocketAddr,
    connector: TlsConnector,
    http2: bool,
}

/// A response read in full.
#[derive(Debug)]
pub struct TestResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body.
    pub body: Bytes,
}

impl TestResponse {
    /// Parses the body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "body is not JSON ({err}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Returns a header as text, or "" when missing.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }
}

impl HttpsClient {
    /// Creates a client that trusts only the certificate in `cert_pem` and checks that it
    /// is valid for `localhost`.
    pub fn trusting(address: SocketAddr, cert_pem: &Path) -> anyhow::Result<HttpsClient> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(cert_pem).context("read certificate")? {
            roots.add(cert.context("parse certificate")?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(HttpsClient {
            address,
            connector: TlsConnector::from(Arc::new(config)),
            http2: false,
        })
    }

    /// Returns a copy of this client that negotiates HTTP/2 through ALPN.
    pub fn with_http2(&self) -> HttpsClient {
        let mut config = (*self.connector.config().clone()).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        HttpsClient {
            address: self.address,
            connector: TlsConnector::from(Arc::new(config)),
            http2: true,
        }
    }

    async fn connect(&self) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.address).await?;
        let name = ServerName::try_from("localhost")?;
        Ok(self.connector.connect(name, tcp).await?)
    }

    /// Opens a TLS connection whose socket receive buffer is `receive_buffer` bytes, writes
    /// `raw` and returns the stream unread, so a test can play a client that stops reading.
    pub async fn open_raw(
        &self,
        raw: &[u8],
        receive_buffer: u32,
    ) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(receive_buffer)?;
        let tcp = socket.connect(self.address).await?;
        let name = ServerName::try_from("localhost")?;
        let mut stream = self.connector.connect(name, tcp).await?;
        stream.write_all(raw).await?;
        stream.flush().await?;
        Ok(stream)
    }

    /// Sends one request on a new connection and reads the whole response.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> anyhow::Result<TestResponse> {
        let authority = format!("localhost:{}", self.address.port());
        let mut builder = Request::builder().method(method);
        if self.http2 {
            builder = builder.uri(format!("https://{authority}{path_and_query}"));
        } else {
            builder = builder.uri(path_and_query).header("host", authority);
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(Full::new(body.into()))?;
        let stream = TokioIo::new(self.connect().await?);
        let response = if self.http2 {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), stream).await?;
            tokio::spawn(connection);
            sender.send_request(request).await?
        } else {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(stream).await?;
            tokio::spawn(connection);
            sender.send_request(request).await?
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(TestResponse {
            status,
            headers,
            body,
        })
    }

    /// Sends a GET with no body.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> anyhow::Result<TestResponse> {
        self.send(Method::GET, path, headers, Bytes::new()).await
    }

    /// Writes `raw` bytes over a new TLS connection and returns what the server sends
    /// back until it closes the connection or `wait` passes without data.
    pub async fn send_raw(&self, raw: &[u8], wait: Duration) -> anyhow::Result<Vec<u8>> {
        let mut stream = self.connect().await?;
        stream.write_all(raw).await?;
        stream.flush().await?;
        let mut received = Vec::new();
        let mut buffer = [0u8; 8192];
        loop {
            match tokio::time::timeout(wait, stream.read(&mut buffer)).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
                Ok(Err(err)) if received.is_empty() => return Err(err.into()),
                Ok(Err(_)) => break,
            }
        }
        Ok(received)
    }

    /// Opens a connection, sends a GET and returns the response head and body stream, for
    /// Server-Sent Events.
    pub async fn open_stream(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<http::Response<hyper::body::Incoming>> {
        let mut builder = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header("host", format!("localhost:{}", self.address.port()));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(Full::new(Bytes::new()))?;
        let stream = TokioIo::new(self.connect().await?);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(stream).await?;
        tokio::spawn(connection);
        Ok(sender.send_request(request).await?)
    }
}
