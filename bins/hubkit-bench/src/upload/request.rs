//! The upload requests of one round: the same body sent to hubkitd and to the transfer
//! ceiling server, and the check of each server's response.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use sha2::{Digest, Sha256};

use crate::load::{self, RequestTemplate, Target};

use super::{UPLOAD_CONTENT_TYPE, client};

/// A server that receives uploads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// hubkitd, which stores each body as a file.
    Hubkitd,
    /// `hubkit-bench baseline --mode tls-discard`, which reads each body and drops it.
    Ceiling,
}

impl Server {
    /// Returns the name that failure messages use for the server.
    pub fn name(self) -> &'static str {
        match self {
            Server::Hubkitd => "hubkitd",
            Server::Ceiling => "the transfer ceiling server",
        }
    }
}

/// An upload to one server: its address, the body with its SHA-256 and the request that
/// carries the body.
pub struct UploadRequest {
    /// Server that receives the upload.
    pub server: Server,
    /// Socket address and TLS server name of the server.
    pub target: Target,
    /// Body bytes.
    pub bytes: Bytes,
    sha256: String,
    pub template: RequestTemplate,
}

impl UploadRequest {
    fn new(server: Server, bytes: Bytes, sha256: String, url: &str) -> anyhow::Result<Self> {
        let (target, uri) = load::parse_target(url)?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(UPLOAD_CONTENT_TYPE));
        let template = load::request_template(&uri, Method::POST, headers, bytes.clone())?;
        Ok(UploadRequest {
            server,
            target,
            bytes,
            sha256,
            template,
        })
    }

    /// Returns the body size in bytes.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Checks the response to one upload with the check of its server. Returns the path of
    /// the file that hubkitd stored, relative to its files folder, and `None` for the
    /// transfer ceiling server, which stores nothing.
    ///
    /// # Errors
    /// Returns the message of the check that failed.
    pub fn check_response(
        &self,
        status: StatusCode,
        body: &[u8],
    ) -> Result<Option<String>, String> {
        match self.server {
            Server::Hubkitd => {
                client::check_response(status, body, self.len(), &self.sha256).map(Some)
            }
            Server::Ceiling => {
                client::check_discard_response(status, body, self.len()).map(|()| None)
            }
        }
    }
}

/// The uploads of one body size: the same bytes to hubkitd and to the transfer ceiling
/// server.
pub struct SizedUploads {
    pub hubkitd: UploadRequest,
    pub ceiling: UploadRequest,
}

impl SizedUploads {
    /// Builds the uploads of `bytes` to the webhook URL `hubkitd_url` and to `ceiling_url`.
    ///
    /// # Errors
    /// Fails if a URL is not an `https` URL on a loopback host.
    pub fn new(bytes: Bytes, hubkitd_url: &str, ceiling_url: &str) -> anyhow::Result<Self> {
        let sha256 = format!("{:x}", Sha256::digest(&bytes));
        let hubkitd =
            UploadRequest::new(Server::Hubkitd, bytes.clone(), sha256.clone(), hubkitd_url)?;
        let ceiling = UploadRequest::new(Server::Ceiling, bytes, sha256, ceiling_url)?;
        Ok(SizedUploads { hubkitd, ceiling })
    }

    /// Returns the body bytes, which the baseline writes to its files.
    pub fn bytes(&self) -> &[u8] {
        &self.hubkitd.bytes
    }
}
