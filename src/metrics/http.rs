//! The `/metrics` endpoint: a small HTTP/1.1 server on threads of its own. Each
//! connection gets one request and one answer (`Connection: close`); a request head
//! over [`MAX_HEAD`] bytes, a client slower than [`TIMEOUT`] or more than
//! [`MAX_CLIENTS`] at once are turned away, so a stuck scraper costs a thread for a
//! few seconds and never touches the capture, which only updates the metrics.

use super::Metrics;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub(crate) const MAX_HEAD: usize = 8 << 10;
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const MAX_CLIENTS: usize = 8;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds `addr` (before privileges are dropped: a port under 1024 needs root) and
/// serves `m` from a thread of its own for the rest of the process's life.
pub fn serve(addr: SocketAddr, m: Arc<Metrics>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("--metrics {addr}: {e}")))?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || accept_loop(listener, m))?;
    Ok(local)
}

fn accept_loop(listener: TcpListener, m: Arc<Metrics>) {
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            // Out of descriptors, say: let them come back.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        if busy.fetch_add(1, Ordering::Relaxed) >= MAX_CLIENTS {
            busy.fetch_sub(1, Ordering::Relaxed);
            continue;
        }
        let (m, b) = (m.clone(), busy.clone());
        let spawned = std::thread::Builder::new()
            .name("metrics-client".into())
            .spawn(move || {
                let _ = handle(stream, &m);
                b.fetch_sub(1, Ordering::Relaxed);
            });
        if spawned.is_err() {
            busy.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn handle(mut stream: TcpStream, m: &Metrics) -> io::Result<()> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let head = match read_head(&mut stream) {
        Ok(h) => h,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                PROMETHEUS,
                b"",
                true,
            );
        }
        Err(e) => return Err(e),
    };
    let (status, ctype, body, with_body) = answer(&head, m);
    respond(&mut stream, status, ctype, body.as_bytes(), with_body)
}

/// The status, content type and body for a request head; whether the body is sent
/// (not for HEAD).
fn answer(head: &str, m: &Metrics) -> (&'static str, &'static str, String, bool) {
    let mut lines = head.split("\r\n");
    let mut request = lines.next().unwrap_or("").split(' ');
    let (method, target) = (request.next().unwrap_or(""), request.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let with_body = method != "HEAD";
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", PROMETHEUS, String::new(), true);
    }
    match path {
        "/metrics" => {
            let open = lines.any(|l| {
                l.split_once(':').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("accept") && wants_openmetrics(v)
                })
            });
            let ctype = if open { OPENMETRICS } else { PROMETHEUS };
            ("200 OK", ctype, m.encode(open), with_body)
        }
        "/" => (
            "200 OK",
            PROMETHEUS,
            "pgscope: metrics at /metrics\n".into(),
            with_body,
        ),
        _ => ("404 Not Found", PROMETHEUS, "not found\n".into(), with_body),
    }
}

/// Whether an Accept header asks for OpenMetrics (and does not refuse it with q=0).
pub(crate) fn wants_openmetrics(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let mut params = part.split(';').map(str::trim);
        params
            .next()
            .is_some_and(|t| t.eq_ignore_ascii_case("application/openmetrics-text"))
            && !params.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            })
    })
}

/// The request line and headers, up to the blank line. Over [`MAX_HEAD`] bytes is
/// `InvalidData`; a body, if any, is not read.
fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            buf.truncate(end);
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
        if buf.len() > MAX_HEAD {
            return Err(io::ErrorKind::InvalidData.into());
        }
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    ctype: &str,
    body: &[u8],
    with_body: bool,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if with_body {
        stream.write_all(body)?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_only_when_asked() {
        let prometheus_3 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(wants_openmetrics(prometheus_3));
        assert!(wants_openmetrics("Application/OpenMetrics-Text"));
        assert!(!wants_openmetrics("text/plain;version=0.0.4"));
        assert!(!wants_openmetrics("*/*"));
        assert!(!wants_openmetrics(
            "application/openmetrics-text;q=0, text/plain"
        ));
    }

    /// Real sockets: formats by Accept, 404, 405, an oversized head, HEAD without body.
    #[test]
    fn serves_and_refuses() {
        let m = Arc::new(Metrics::new());
        m.packet(100);
        let addr = serve("127.0.0.1:0".parse().unwrap(), m).unwrap();
        let ask = |req: &[u8]| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(req).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        let plain = ask(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(plain.starts_with("HTTP/1.1 200 OK\r\n"), "{plain}");
        assert!(plain.contains(PROMETHEUS));
        assert!(
            plain.contains("\npgscope_capture_packets_total 1\n"),
            "{plain}"
        );
        assert!(!plain.contains("# EOF"));
        let open = ask(
            b"GET /metrics HTTP/1.1\r\naccept: application/openmetrics-text; version=1.0.0\r\n\r\n",
        );
        assert!(open.contains(OPENMETRICS), "{open}");
        assert!(open.ends_with("# EOF\n"), "{open}");
        assert!(ask(b"GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(ask(b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        let head = ask(b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(
            head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        assert!(ask(&huge).starts_with("HTTP/1.1 431"));
    }
}
