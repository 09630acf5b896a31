//! Compiles `proto/tlsmint/v1/issuer.proto` into Rust (messages and the tonic
//! client and server) at build time.
//!
//! No system `protoc` is needed: `protox`, a protobuf compiler written in
//! Rust, parses the file (and the well-known `google/protobuf/*.proto` it
//! imports, which it ships) into a descriptor set that `tonic-prost-build`
//! turns into code in `OUT_DIR`.

use std::error::Error;

const PROTO: &str = "proto/tlsmint/v1/issuer.proto";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO}");
    let descriptors = protox::compile([PROTO], ["proto"])
        .map_err(|e| format!("compiling {PROTO} with protox failed (fix the .proto file): {e}"))?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // The response that carries a private key gets a hand-written, redacted Debug.
        .skip_debug(["tlsmint.v1.IssueResponse"])
        .compile_fds(descriptors)?;
    Ok(())
}
