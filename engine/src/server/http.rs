//! A small HTTP/1.1 server for the AdminServer and the metrics endpoint.
//!
//! Both endpoints answer a handful of GETs from monitoring systems and operators, so this
//! is deliberately minimal and runs on plain threads, away from the glommio executors: one
//! accepting thread per endpoint and one short-lived thread per connection, at most
//! [`MAX_CONNECTIONS`] at a time. Every response closes its connection. A request head must
//! arrive whole within the idle timeout and within [`MAX_HEAD`] bytes; anything else gets a
//! 4xx answer (or none, for a connection that never sends) and a debug-level log line.
//! A POST (only `/commands/restore` takes one) carries a body of `Content-Length` bytes,
//! read only when the handler asks for it (after its cheap checks, so a refused upload costs
//! no memory), at most the limit it gives, with the idle timeout applying to each read.
//! (An HTTP crate would not give us the per-connection deadline and the connection cap
//! together; see docs/design.md.)

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

/// Connections served at once per endpoint; more are answered 503 at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Largest request line plus headers.
pub const MAX_HEAD: usize = 8 << 10;

/// A parsed request: only what the handlers need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    /// The path without the query string, percent-decoding not applied (our paths are ASCII).
    pub path: String,
    /// `key=value` pairs of the query string, in order.
    pub query: Vec<(String, String)>,
    /// The `Authorization` header's value (ZooKeeper 3.9's admin auth: `digest user:password`).
    pub authorization: Option<String>,
    /// The client's address (set by the server, not parsed).
    pub peer: Option<std::net::IpAddr>,
    /// The `Content-Length` header's value, if it had one.
    pub content_length: Option<u64>,
    /// Whether the request had a `Transfer-Encoding` header (not served: answered 411).
    pub chunked: bool,
}

impl HttpRequest {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// A response: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Headers beyond the standard ones (name, value).
    pub headers: Vec<(&'static str, String)>,
}

impl HttpResponse {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> HttpResponse {
        HttpResponse { status, content_type, body: body.into(), headers: Vec::new() }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> HttpResponse {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        HttpResponse::new(status, "application/json", body)
    }

    pub fn text(status: u16, text: impl Into<String>) -> HttpResponse {
        HttpResponse::new(status, "text/plain; charset=utf-8", text.into().into_bytes())
    }
}

/// Reads the request's body, at most the given number of bytes; a refusal is the answer to send.
pub type Body<'a> = dyn FnMut(u64) -> Result<Vec<u8>, HttpResponse> + 'a;

pub type Handler = Arc<dyn Fn(&HttpRequest, &mut Body) -> HttpResponse + Send + Sync>;

/// Why a request could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum BadRequest {
    /// The peer closed or timed out before a whole request arrived: nothing to answer.
    Gone,
    /// Malformed or oversized: answered with this status.
    Status(u16, &'static str),
}

/// Reads one request head (request line and headers, body ignored).
pub fn read_request<R: Read>(stream: R) -> Result<HttpRequest, BadRequest> {
    read_head(&mut BufReader::new(stream))
}

/// Reads a request head from `reader`, which is left at the start of the body.
fn read_head<R: BufRead>(reader: &mut R) -> Result<HttpRequest, BadRequest> {
    let mut line = String::new();
    let mut total = 0usize;
    let mut first: Option<String> = None;
    let mut authorization = None;
    let mut content_length = None;
    let mut chunked = false;
    loop {
        line.clear();
        let room = (MAX_HEAD + 1 - total.min(MAX_HEAD)) as u64;
        let n = match reader.by_ref().take(room).read_line(&mut line) {
            Ok(0) => return Err(BadRequest::Gone),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(BadRequest::Status(400, "request head is not UTF-8"))
            }
            Err(_) => return Err(BadRequest::Gone),
        };
        total += n;
        if total > MAX_HEAD {
            return Err(BadRequest::Status(431, "request head too large"));
        }
        if !line.ends_with('\n') {
            return Err(BadRequest::Gone);
        }
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if first.is_none() {
            if trimmed.is_empty() {
                continue; // RFC 9112: ignore empty lines before the request line
            }
            first = Some(trimmed.to_string());
        } else if trimmed.is_empty() {
            break;
        } else if let Some((name, value)) = trimmed.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            } else if name.eq_ignore_ascii_case("content-length") {
                let n = value.trim().parse::<u64>().map_err(|_| BadRequest::Status(400, "bad Content-Length"))?;
                content_length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = true;
            }
        }
    }
    let first = first.unwrap_or_default();
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BadRequest::Status(400, "malformed request line"));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Err(BadRequest::Status(400, "malformed request line"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    Ok(HttpRequest {
        method: method.to_string(),
        path: path.to_string(),
        query,
        authorization,
        peer: None,
        content_length,
        chunked,
    })
}

/// Reads the body of `req` from `reader`: exactly `Content-Length` bytes, at most `limit`.
pub fn read_body<R: Read>(req: &HttpRequest, reader: R, limit: u64) -> Result<Vec<u8>, BadRequest> {
    if req.chunked {
        return Err(BadRequest::Status(411, "send the body with a Content-Length, not chunked"));
    }
    let Some(len) = req.content_length else {
        return Err(BadRequest::Status(411, "a Content-Length header is required"));
    };
    if len > limit {
        return Err(BadRequest::Status(413, "request body too large"));
    }
    let mut body = Vec::new();
    body.try_reserve_exact(len as usize).map_err(|_| BadRequest::Status(413, "request body too large for memory"))?;
    reader.take(len).read_to_end(&mut body).map_err(|_| BadRequest::Gone)?;
    if body.len() as u64 != len {
        return Err(BadRequest::Gone);
    }
    Ok(body)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// The bytes of a response, `Connection: close`. A HEAD request gets the headers only.
pub fn encode_response(r: &HttpResponse, head_only: bool) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    for (name, value) in &r.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if !head_only {
        out.extend_from_slice(&r.body);
    }
    out
}

/// Binds `addr` and serves `handler` on a thread named `name` until the process exits.
/// Returns the bound address (the port may have been 0).
pub fn spawn(name: &str, addr: SocketAddr, idle_timeout: Duration, handler: Handler) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    let active = Arc::new(AtomicUsize::new(0));
    let thread_name = name.to_string();
    std::thread::Builder::new().name(format!("warren-{name}")).spawn(move || {
        for stream in listener.incoming() {
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!("{thread_name}: accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                active.fetch_sub(1, Ordering::AcqRel);
                let busy = HttpResponse::text(503, "too many connections\n");
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = (&stream).write_all(&encode_response(&busy, false));
                continue;
            }
            let (active, handler) = (active.clone(), handler.clone());
            let spawned = std::thread::Builder::new().name(format!("warren-{thread_name}-conn")).spawn(move || {
                serve_connection(stream, idle_timeout, &handler);
                active.fetch_sub(1, Ordering::AcqRel);
            });
            if let Err(e) = spawned {
                warn!("{thread_name}: cannot start a connection thread: {e}");
            }
        }
    })?;
    info!("{name} listening on http://{bound}");
    Ok(bound)
}

fn serve_connection(stream: TcpStream, idle_timeout: Duration, handler: &Handler) {
    let peer = stream.peer_addr().ok();
    let _ = stream.set_read_timeout(Some(idle_timeout));
    let _ = stream.set_write_timeout(Some(idle_timeout));
    let mut reader = BufReader::new(&stream);
    let response = match read_head(&mut reader) {
        Ok(mut req) if matches!(req.method.as_str(), "GET" | "HEAD" | "POST") => {
            req.peer = peer.map(|p| p.ip());
            let mut body = |limit: u64| {
                read_body(&req, &mut reader, limit).map_err(|e| match e {
                    BadRequest::Status(status, why) => HttpResponse::text(status, format!("{why}\n")),
                    BadRequest::Gone => HttpResponse::text(400, "the request body did not arrive whole\n"),
                })
            };
            let r = handler(&req, &mut body);
            Some((r, req.method == "HEAD"))
        }
        Ok(req) => {
            debug!("http: {} {} from {peer:?}: method not allowed", req.method, req.path);
            Some((HttpResponse::text(405, "only GET, HEAD and POST are served\n"), false))
        }
        Err(BadRequest::Gone) => None,
        Err(BadRequest::Status(status, why)) => {
            debug!("http: bad request from {peer:?}: {why}");
            Some((HttpResponse::text(status, format!("{why}\n")), false))
        }
    };
    if let Some((r, head_only)) = response {
        let _ = (&stream).write_all(&encode_response(&r, head_only));
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<HttpRequest, BadRequest> {
        read_request(raw.as_bytes())
    }

    #[test]
    fn parses_a_get_with_a_query() {
        let r = parse("GET /commands/stat?streaming=true&x HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/commands/stat");
        assert_eq!(r.param("streaming"), Some("true"));
        assert_eq!(r.param("x"), Some(""));
        assert_eq!(r.param("y"), None);
    }

    #[test]
    fn malformed_and_oversized_requests_are_answered_not_crashed() {
        assert_eq!(parse("GARBAGE\r\n\r\n"), Err(BadRequest::Status(400, "malformed request line")));
        assert_eq!(parse("GET nopath HTTP/1.1\r\n\r\n"), Err(BadRequest::Status(400, "malformed request line")));
        assert_eq!(parse("GET / SPDY/3\r\n\r\n"), Err(BadRequest::Status(400, "malformed request line")));
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(parse(&huge), Err(BadRequest::Status(431, "request head too large")));
        assert_eq!(parse("GET / HTTP/1.1\r\nHost"), Err(BadRequest::Gone));
        assert_eq!(parse(""), Err(BadRequest::Gone));
        let mut bad = b"GET / HTTP/1.1\r\nX: ".to_vec();
        bad.extend_from_slice(&[0xff, 0xfe, b'\r', b'\n', b'\r', b'\n']);
        assert_eq!(read_request(&bad[..]), Err(BadRequest::Status(400, "request head is not UTF-8")));
    }

    #[test]
    fn responses_close_and_head_has_no_body() {
        let r = HttpResponse::text(200, "hi");
        let full = String::from_utf8(encode_response(&r, false)).unwrap();
        assert!(full.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(full.contains("Content-Length: 2\r\nConnection: close\r\n\r\nhi"));
        let head = String::from_utf8(encode_response(&r, true)).unwrap();
        assert!(head.ends_with("\r\n\r\n"));
    }

    #[test]
    fn serves_over_tcp_and_caps_nothing_below_the_limit() {
        let handler: Handler = Arc::new(|req: &HttpRequest, body: &mut Body| {
            if req.method == "POST" {
                return match body(8) {
                    Ok(b) => HttpResponse::new(200, "application/octet-stream", b),
                    Err(refused) => refused,
                };
            }
            HttpResponse::text(200, req.path.clone())
        });
        let addr = spawn("test-http", "127.0.0.1:0".parse().unwrap(), Duration::from_secs(5), handler).unwrap();
        for _ in 0..3 {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /hello HTTP/1.1\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            assert!(out.ends_with("\r\n\r\n/hello"), "{out}");
        }
        let ask = |raw: &[u8]| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(raw).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        assert!(ask(b"PUT /x HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        // A POST body: exactly Content-Length bytes, within the handler's limit.
        let out = ask(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde");
        assert!(out.starts_with("HTTP/1.1 200") && out.ends_with("\r\n\r\nabcde"), "{out}");
        assert!(ask(b"POST /x HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 411"));
        assert!(ask(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").starts_with("HTTP/1.1 411"));
        assert!(ask(b"POST /x HTTP/1.1\r\nContent-Length: 9\r\n\r\n123456789").starts_with("HTTP/1.1 413"));
        assert!(ask(b"POST /x HTTP/1.1\r\nContent-Length: x\r\n\r\n").starts_with("HTTP/1.1 400"));
    }
}
