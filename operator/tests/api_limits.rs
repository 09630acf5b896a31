//! Connection limits of the issuance APIs (docs/api.md, "Connection limits") against a
//! real `tlsmint-operator dev`: slow and silent clients are cut off, and a flood of idle
//! connections against a process with 1,024 file descriptors leaves the API answering
//! (or refusing cleanly) and the admin port healthy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const OTHER_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

/// A connection to `to` from the loopback address `from` (any port).
fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from, 0))?;
        tokio::time::timeout(Duration::from_secs(5), socket.connect(to))
            .await
            .map_err(|_| std::io::Error::new(ErrorKind::TimedOut, "connect timed out"))?
    })?;
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Waits until the server closes `stream` (EOF or reset); how long that took, or `None`
/// if it was still open after `limit`. Whatever the server sends first is skipped.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

/// `GET path` from `from` with a deadline; the status line, or why there was none.
fn get_from(from: IpAddr, to: SocketAddr, path: &str) -> Result<String, String> {
    let mut stream = connect_from(from, to).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut out = Vec::new();
    match stream.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if out.is_empty() => return Err(format!("read: {e}")),
        Err(_) => {}
    }
    let text = String::from_utf8_lossy(&out);
    text.lines()
        .next()
        .filter(|l| l.starts_with("HTTP/"))
        .map(str::to_owned)
        .ok_or_else(|| "closed without an answer".to_owned())
}

#[test]
fn slowloris_client_is_cut_off_after_the_header_timeout() {
    let server = common::start(&["--api-header-read-timeout", "2s"]);
    let http = addr(&server.http);
    let mut slow = TcpStream::connect(http).unwrap();
    slow.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let start = Instant::now();
    // One more header byte every 300 ms: each byte is progress, the headers never end.
    let mut cut_after = None;
    while start.elapsed() < Duration::from_secs(8) {
        if slow.write_all(b"a").is_err() {
            cut_after = Some(start.elapsed());
            break;
        }
        if let Some(waited) = closed_within(&mut slow, Duration::from_millis(300)) {
            cut_after = Some(start.elapsed().max(waited));
            break;
        }
    }
    let cut_after = cut_after.expect("a slowloris client was still connected after 8 s");
    assert!(
        cut_after >= Duration::from_millis(1500) && cut_after < Duration::from_secs(5),
        "cut off after {cut_after:?}, the header timeout is 2 s"
    );
    // Others are served meanwhile and afterwards.
    assert!(
        get_from(Ipv4Addr::LOCALHOST.into(), http, "/v1/sys/health")
            .unwrap()
            .contains(" 200 ")
    );
}

#[test]
fn silent_and_idle_connections_are_closed_on_both_apis() {
    let server = common::start(&[
        "--api-header-read-timeout",
        "1s",
        "--api-idle-timeout",
        "2s",
    ]);
    // A client that never sends a byte: closed after the header-read timeout.
    for url in [&server.http, &server.grpc] {
        let mut silent = TcpStream::connect(addr(url)).unwrap();
        let waited = closed_within(&mut silent, Duration::from_secs(6))
            .unwrap_or_else(|| panic!("a silent connection to {url} was still open after 6 s"));
        assert!(
            waited < Duration::from_secs(3),
            "{url}: closed after {waited:?}"
        );
    }
    // An HTTP/1.1 keep-alive connection after its answer: closed too.
    let mut kept = TcpStream::connect(addr(&server.http)).unwrap();
    kept.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let waited = closed_within(&mut kept, Duration::from_secs(6))
        .expect("an idle keep-alive connection was still open after 6 s");
    assert!(waited < Duration::from_secs(4), "closed after {waited:?}");
}

/// Lifts this test process's own open-file limit: it holds thousands of sockets. As root
/// (CI) the hard limit may be raised too.
fn raise_own_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    const NEEDED: u64 = 4500;
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let want = hard.max(NEEDED);
    if setrlimit(Resource::RLIMIT_NOFILE, want, want).is_err() {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(
        soft >= NEEDED,
        "this test needs {NEEDED} file descriptors, the limit is {soft}"
    );
}

/// 2,000 connections to `to` from 127.0.0.1 that send nothing; those refused are
/// closed by the server, the others stay open.
fn idle_flood(to: SocketAddr) -> Vec<TcpStream> {
    (0..2000)
        .filter_map(|_| TcpStream::connect_timeout(&to, Duration::from_secs(5)).ok())
        .collect()
}

fn healthy(admin: SocketAddr) -> Result<String, String> {
    get_from(Ipv4Addr::LOCALHOST.into(), admin, "/healthz")
}

/// The flood must not starve the process of file descriptors.
fn assert_no_fd_exhaustion(server: &common::DevServer) {
    let output = server.output();
    assert!(
        !output.contains("Too many open files"),
        "the server ran out of file descriptors:\n{output}"
    );
}

const NOFILE_1024: &[&str] = &["prlimit", "--nofile=1024:1024"];

#[test]
fn idle_flood_from_one_peer_leaves_others_served_and_admin_healthy() {
    raise_own_fd_limit();
    let server = common::start_wrapped(NOFILE_1024, &["--admin-addr", "127.0.0.1:0"]);
    let http = addr(&server.http);
    let admin: SocketAddr = server
        .admin
        .as_deref()
        .expect("admin address")
        .parse()
        .unwrap();
    let flood = idle_flood(http);
    std::thread::sleep(Duration::from_millis(500));

    let health = healthy(admin).expect("the admin port answers during the flood");
    assert!(health.contains(" 200 "), "{health}");
    let other = get_from(OTHER_PEER, http, "/v1/sys/health")
        .expect("another client is served during the flood");
    assert!(other.contains(" 200 "), "{other}");
    // The flooding address is refused, and quickly: closed, not left hanging.
    let mut again = TcpStream::connect(http).unwrap();
    let refused = closed_within(&mut again, Duration::from_secs(3))
        .expect("a new connection from the flooding address was left hanging");
    assert!(
        refused < Duration::from_secs(1),
        "refused after {refused:?}"
    );
    let grpc = get_from(OTHER_PEER, addr(&server.grpc), "/");
    assert!(grpc.is_err() || grpc.as_deref().is_ok_and(|s| s.starts_with("HTTP/")));
    assert_no_fd_exhaustion(&server);
    drop(flood);
}

#[test]
fn idle_flood_over_the_total_cap_is_refused_cleanly_and_admin_stays_healthy() {
    raise_own_fd_limit();
    let server = common::start_wrapped(
        NOFILE_1024,
        &[
            "--admin-addr",
            "127.0.0.1:0",
            "--api-max-connections-per-peer",
            "0",
        ],
    );
    let http = addr(&server.http);
    let admin: SocketAddr = server
        .admin
        .as_deref()
        .expect("admin address")
        .parse()
        .unwrap();
    let flood = idle_flood(http);
    std::thread::sleep(Duration::from_millis(500));

    let health = healthy(admin).expect("the admin port answers during the flood");
    assert!(health.contains(" 200 "), "{health}");
    // Over the cap (1,024 descriptors less the reserve): refused at once, never hanging.
    let start = Instant::now();
    match get_from(OTHER_PEER, http, "/v1/sys/health") {
        Ok(status) => assert!(
            status.contains(" 200 ") || status.contains(" 503 "),
            "{status}"
        ),
        Err(why) => assert!(
            start.elapsed() < Duration::from_secs(2),
            "refusing took {:?} ({why})",
            start.elapsed()
        ),
    }
    assert_no_fd_exhaustion(&server);
    assert!(
        server.output().contains("refusing new connections"),
        "{}",
        server.output()
    );
    // When the flood goes away, new clients are served again.
    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match get_from(OTHER_PEER, http, "/v1/sys/health") {
            Ok(status) if status.contains(" 200 ") => break,
            other if Instant::now() > deadline => panic!("not served after the flood: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The SETTINGS a server sends first on an HTTP/2 (prior knowledge) connection, as
/// (identifier, value) pairs.
fn h2_settings(to: SocketAddr) -> Vec<(u16, u32)> {
    let mut stream = TcpStream::connect(to).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let mut header = [0u8; 9];
    stream.read_exact(&mut header).unwrap();
    assert_eq!(header[3], 0x04, "the first frame is not SETTINGS");
    let len = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).unwrap();
    payload
        .chunks_exact(6)
        .map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        })
        .collect()
}

#[test]
fn both_apis_announce_the_http2_limits() {
    const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    const MAX_FRAME_SIZE: u16 = 0x5;
    const MAX_HEADER_LIST_SIZE: u16 = 0x6;
    let server = common::start(&[
        "--api-h2-max-concurrent-streams",
        "7",
        "--api-h2-max-frame-size",
        "20000",
        "--api-h2-max-header-list-size",
        "9000",
    ]);
    for url in [&server.http, &server.grpc] {
        let settings = h2_settings(addr(url));
        for want in [
            (MAX_CONCURRENT_STREAMS, 7),
            (MAX_FRAME_SIZE, 20000),
            (MAX_HEADER_LIST_SIZE, 9000),
        ] {
            assert!(
                settings.contains(&want),
                "{url}: {settings:?} lacks {want:?}"
            );
        }
    }
}

#[test]
fn an_http2_connection_that_falls_silent_is_closed_after_the_idle_timeout() {
    let server = common::start(&[
        "--api-header-read-timeout",
        "1s",
        "--api-idle-timeout",
        "3s",
        "--api-h2-keepalive-interval",
        "0s",
    ]);
    for url in [&server.grpc, &server.http] {
        let mut stream = TcpStream::connect(addr(url)).unwrap();
        // The preface and an empty SETTINGS: the client has spoken, so the header-read
        // timeout no longer applies, the idle timeout does.
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            .unwrap();
        let waited = closed_within(&mut stream, Duration::from_secs(8))
            .unwrap_or_else(|| panic!("{url}: a silent HTTP/2 connection was open after 8 s"));
        assert!(
            waited >= Duration::from_millis(2500) && waited < Duration::from_secs(6),
            "{url}: closed after {waited:?}, the idle timeout is 3 s"
        );
    }
}
