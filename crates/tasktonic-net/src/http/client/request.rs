//! [`HttpRequest`]: what to ask; [`HttpResult`]: what came of it; [`RequestId`].

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, Uri};

use crate::http::HttpError;

/// Identifies one request of an [`HttpClient`](super::HttpClient) (unique per client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(crate) u64);

impl RequestId {
    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request#{}", self.0)
    }
}

/// A request to make: method, URL (`http://` or `https://`), header fields, body, and
/// optionally its own timeout and retries (the client's otherwise).
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retries: Option<u32>,
}

impl HttpRequest {
    /// A `method` request for `url`.
    ///
    /// # Errors
    ///
    /// The URL is invalid, not `http://` or `https://`, or has no host.
    pub fn new(method: Method, url: &str) -> Result<HttpRequest, HttpError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| HttpError::bad_request(format!("an invalid URL {url:?}: {e}")))?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => {
                return Err(HttpError::bad_request(format!(
                    "{url:?} is not an http:// or https:// URL"
                )));
            }
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(HttpError::bad_request(format!("{url:?} has no host")));
        }
        Ok(HttpRequest {
            method,
            uri,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            timeout: None,
            retries: None,
        })
    }

    /// A `GET` request.
    ///
    /// # Errors
    ///
    /// As [`new`](HttpRequest::new).
    pub fn get(url: &str) -> Result<HttpRequest, HttpError> {
        HttpRequest::new(Method::GET, url)
    }

    /// A `POST` request with `body`.
    ///
    /// # Errors
    ///
    /// As [`new`](HttpRequest::new).
    pub fn post(url: &str, body: impl Into<Bytes>) -> Result<HttpRequest, HttpError> {
        Ok(HttpRequest::new(Method::POST, url)?.body(body))
    }

    /// A `PUT` request with `body`.
    ///
    /// # Errors
    ///
    /// As [`new`](HttpRequest::new).
    pub fn put(url: &str, body: impl Into<Bytes>) -> Result<HttpRequest, HttpError> {
        Ok(HttpRequest::new(Method::PUT, url)?.body(body))
    }

    /// A `DELETE` request.
    ///
    /// # Errors
    ///
    /// As [`new`](HttpRequest::new).
    pub fn delete(url: &str) -> Result<HttpRequest, HttpError> {
        HttpRequest::new(Method::DELETE, url)
    }

    /// Add a header field (`Host`, `Content-Length` and `Transfer-Encoding` are set by the
    /// client).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The body (sent with a `Content-Length`).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// This request's timeout: from the first attempt to the whole response.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How many times to try again after a timeout or a failed connection.
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = Some(n);
        self
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// True for methods that may be repeated without changing more than once (RFC 9110
    /// §9.2.2): the ones a lost connection is retried for even without `retries`.
    pub(crate) fn idempotent(&self) -> bool {
        matches!(
            self.method,
            Method::GET
                | Method::HEAD
                | Method::PUT
                | Method::DELETE
                | Method::OPTIONS
                | Method::TRACE
        )
    }
}

/// What came of a request, as TaskTonic's `HttpGet`/`HttpPost` report it.
#[derive(Debug)]
pub enum HttpResult {
    /// A response with a status below 400.
    Success(Response<Bytes>),
    /// A response with a 4xx or 5xx status.
    HttpError(Response<Bytes>),
    /// No whole response within the timeout (after every retry).
    Timeout,
    /// The request could not be made or answered: the name did not resolve, the connection
    /// was refused or lost, TLS failed, the response was malformed or over a limit.
    Failed(String),
}

impl HttpResult {
    /// The response, if one came (success or HTTP error).
    pub fn response(&self) -> Option<&Response<Bytes>> {
        match self {
            HttpResult::Success(r) | HttpResult::HttpError(r) => Some(r),
            _ => None,
        }
    }

    /// True for [`HttpResult::Success`].
    pub fn is_success(&self) -> bool {
        matches!(self, HttpResult::Success(_))
    }
}
