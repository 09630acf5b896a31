//! Kubelet's plugin registration through the real server on a Unix socket, called the way
//! kubelet's plugin watcher calls it: grpc-go puts the socket's path, percent-escaped, in
//! `:authority`, which tonic alone answers with RST_STREAM PROTOCOL_ERROR.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tlsmint_csi::registration::RegistrationService;
use tlsmint_csi::server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let l = payload.len();
    let mut out = vec![(l >> 16) as u8, (l >> 8) as u8, l as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[tokio::test]
async fn get_info_answers_a_request_whose_authority_is_the_escaped_socket_path() {
    let dir = std::env::temp_dir().join(format!("tlsmint-csi-reg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("csi.tlsmint.io-reg.sock");
    let listener = server::bind(&socket).unwrap();
    let cancel = CancellationToken::new();
    let service = RegistrationService {
        driver_name: "csi.tlsmint.io".into(),
        endpoint: "/var/lib/kubelet/plugins/csi.tlsmint.io/csi.sock".into(),
    };
    let task = tokio::spawn(server::serve_registration(
        listener,
        service,
        cancel.clone(),
    ));

    let escaped = socket.display().to_string().replace('/', "%2F");
    let fields = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/pluginregistration.Registration/GetInfo"),
        (":authority", escaped.as_str()),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ];
    let mut encoder = loona_hpack::Encoder::new();
    let block = encoder.encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
    let mut conn = UnixStream::connect(&socket).await.unwrap();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(0x4, 0, 0, &[]));
    out.extend(frame(0x1, 0x4, 1, &block));
    // An empty InfoRequest: no compression, length 0.
    out.extend(frame(0x0, 0x1, 1, &[0, 0, 0, 0, 0]));
    conn.write_all(&out).await.unwrap();

    // Read frames until the stream ends: trailers, or a reset.
    let mut decoder = loona_hpack::Decoder::new();
    let mut headers = Vec::new();
    let mut data = Vec::new();
    let read = async {
        loop {
            let mut head = [0u8; 9];
            conn.read_exact(&mut head).await.unwrap();
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let mut payload = vec![0u8; len];
            conn.read_exact(&mut payload).await.unwrap();
            let (kind, flags) = (head[3], head[4]);
            match kind {
                0x3 => panic!("RST_STREAM {:?}", payload),
                0x4 if flags & 1 == 0 => conn.write_all(&frame(0x4, 1, 0, &[])).await.unwrap(),
                0x1 => {
                    headers.extend(decoder.decode(&payload).unwrap());
                    if flags & 1 != 0 {
                        return;
                    }
                }
                0x0 => data.extend_from_slice(&payload),
                _ => {}
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .expect("an answer within 10 s");
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(header(":status").as_deref(), Some("200"), "{headers:?}");
    assert_eq!(header("grpc-status").as_deref(), Some("0"), "{headers:?}");
    let text = String::from_utf8_lossy(&data);
    assert!(text.contains("csi.tlsmint.io"), "{text}");
    assert!(text.contains("CSIPlugin"), "{text}");

    // Shutdown is graceful: it waits for open connections, as kubelet's are closed.
    drop(conn);
    cancel.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("shut down within 10 s")
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
