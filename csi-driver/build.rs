//! Compiles the CSI subset (`proto/csi/v1/csi.proto`) and kubelet's plugin registration API
//! (`proto/pluginregistration/v1/registration.proto`) into Rust at build time, with `protox`
//! (no system `protoc`) and `tonic-prost-build`. Only servers are generated for production;
//! the clients are used by the component tests.

use std::error::Error;

const PROTOS: [&str; 2] = [
    "proto/csi/v1/csi.proto",
    "proto/pluginregistration/v1/registration.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])
        .map_err(|e| format!("compiling the CSI protos with protox failed: {e}"))?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // These carry the pod's service-account tokens: a hand-written Debug hides them.
        .skip_debug(["csi.v1.NodePublishVolumeRequest"])
        .compile_fds(descriptors)?;
    Ok(())
}
