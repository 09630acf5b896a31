//! Generated code for the two gRPC APIs the driver serves: `csi.v1` (Identity and Node,
//! the subset in `proto/csi/v1/csi.proto`) and kubelet's `pluginregistration`.
//!
//! Owns nothing but the generated types and the hand-written `Debug` of the request that
//! carries the pod's tokens.

#![allow(missing_docs, missing_debug_implementations, clippy::all)]

/// CSI v1: Identity and Node services.
pub mod csi {
    tonic::include_proto!("csi.v1");

    impl std::fmt::Debug for NodePublishVolumeRequest {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            // The volume context holds the tokens unless they come in `secrets`: show keys only.
            let keys: Vec<&String> = self.volume_context.keys().collect();
            f.debug_struct("NodePublishVolumeRequest")
                .field("volume_id", &self.volume_id)
                .field("target_path", &self.target_path)
                .field("volume_context_keys", &keys)
                .field("secrets", &"<redacted>")
                .finish()
        }
    }
}

/// Kubelet's plugin registration API (`pluginregistration.Registration`).
pub mod registration {
    tonic::include_proto!("pluginregistration");
}
