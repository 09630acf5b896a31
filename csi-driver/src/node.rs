//! The CSI gRPC adapter: Identity and Node services that turn requests into manager calls
//! and manager errors into status codes. Nothing else happens here.
//!
//! Status codes: bad input is `InvalidArgument` (the message names the attribute or the
//! field), a denial is `PermissionDenied` with the operator's message verbatim (kubelet
//! shows it in the pod's events), and a republish problem is `Unavailable`, which kubelet
//! treats as non-final (kubernetes#121271: a final error on a republish tears the volume
//! down).

use tonic::{Code, Request, Response, Status};

use crate::manager::{Manager, PublishRequest, VolumeError};
use crate::proto::csi::identity_server::Identity;
use crate::proto::csi::node_server::Node;
use crate::proto::csi::node_service_capability::{self, rpc};
use crate::proto::csi::{self as pb, volume_capability};

/// Name and version the driver reports.
#[derive(Clone, Debug)]
pub struct Plugin {
    /// The driver's name (`csi.tlsmint.io`).
    pub name: String,
    /// The driver's version.
    pub version: String,
    /// The node's name (NodeGetInfo's node_id).
    pub node_id: String,
}

/// The Identity service.
#[derive(Clone, Debug)]
pub struct IdentityService {
    plugin: Plugin,
}

impl IdentityService {
    /// The service for `plugin`.
    pub fn new(plugin: Plugin) -> Self {
        IdentityService { plugin }
    }
}

#[tonic::async_trait]
impl Identity for IdentityService {
    async fn get_plugin_info(
        &self,
        _: Request<pb::GetPluginInfoRequest>,
    ) -> Result<Response<pb::GetPluginInfoResponse>, Status> {
        Ok(Response::new(pb::GetPluginInfoResponse {
            name: self.plugin.name.clone(),
            vendor_version: self.plugin.version.clone(),
            manifest: Default::default(),
        }))
    }

    async fn get_plugin_capabilities(
        &self,
        _: Request<pb::GetPluginCapabilitiesRequest>,
    ) -> Result<Response<pb::GetPluginCapabilitiesResponse>, Status> {
        // A node-only plugin: no controller service, no topology.
        Ok(Response::new(pb::GetPluginCapabilitiesResponse {
            capabilities: vec![],
        }))
    }

    async fn probe(
        &self,
        _: Request<pb::ProbeRequest>,
    ) -> Result<Response<pb::ProbeResponse>, Status> {
        Ok(Response::new(pb::ProbeResponse { ready: Some(true) }))
    }
}

/// The Node service.
#[derive(Clone, Debug)]
pub struct NodeService {
    plugin: Plugin,
    manager: Manager,
}

impl NodeService {
    /// The service over `manager`.
    pub fn new(plugin: Plugin, manager: Manager) -> Self {
        NodeService { plugin, manager }
    }
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn node_publish_volume(
        &self,
        request: Request<pb::NodePublishVolumeRequest>,
    ) -> Result<Response<pb::NodePublishVolumeResponse>, Status> {
        let req = request.into_inner();
        required(&req.volume_id, &req.target_path)?;
        let capability = req.volume_capability.as_ref();
        let mount = match capability.and_then(|c| c.access_type.as_ref()) {
            Some(volume_capability::AccessType::Mount(mount)) => mount.clone(),
            Some(volume_capability::AccessType::Block(_)) => {
                return Err(Status::invalid_argument(
                    "volume_capability: block volumes are not supported (tlsmint volumes are files)",
                ));
            }
            None => {
                return Err(Status::invalid_argument(
                    "volume_capability with a mount access type is required",
                ));
            }
        };
        let publish = PublishRequest {
            volume_id: req.volume_id,
            target_path: req.target_path,
            volume_context: req.volume_context,
            secrets: req.secrets,
            volume_mount_group: mount.volume_mount_group,
        };
        self.manager.publish(publish).await.map_err(to_status)?;
        Ok(Response::new(pb::NodePublishVolumeResponse {}))
    }

    async fn node_unpublish_volume(
        &self,
        request: Request<pb::NodeUnpublishVolumeRequest>,
    ) -> Result<Response<pb::NodeUnpublishVolumeResponse>, Status> {
        let req = request.into_inner();
        required(&req.volume_id, &req.target_path)?;
        self.manager
            .unpublish(&req.volume_id, &req.target_path)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::NodeUnpublishVolumeResponse {}))
    }

    async fn node_get_capabilities(
        &self,
        _: Request<pb::NodeGetCapabilitiesRequest>,
    ) -> Result<Response<pb::NodeGetCapabilitiesResponse>, Status> {
        // VOLUME_MOUNT_GROUP: kubelet passes the pod's fsGroup instead of changing the
        // files' ownership and modes itself (which would make the key group-writable).
        let capability = pb::NodeServiceCapability {
            r#type: Some(node_service_capability::Type::Rpc(
                node_service_capability::Rpc {
                    r#type: rpc::Type::VolumeMountGroup as i32,
                },
            )),
        };
        Ok(Response::new(pb::NodeGetCapabilitiesResponse {
            capabilities: vec![capability],
        }))
    }

    async fn node_get_info(
        &self,
        _: Request<pb::NodeGetInfoRequest>,
    ) -> Result<Response<pb::NodeGetInfoResponse>, Status> {
        Ok(Response::new(pb::NodeGetInfoResponse {
            node_id: self.plugin.node_id.clone(),
            max_volumes_per_node: 0,
        }))
    }
}

/// The two fields every publish and unpublish needs, checked in the order of the CSI
/// spec, so the message names the missing one.
fn required(volume_id: &str, target_path: &str) -> Result<(), Status> {
    if volume_id.is_empty() {
        return Err(Status::invalid_argument("volume_id is required"));
    }
    if target_path.is_empty() {
        return Err(Status::invalid_argument("target_path is required"));
    }
    Ok(())
}

/// The status code of a manager error. Exhaustive, so a new error must pick its code.
pub fn code_of(error: &VolumeError) -> Code {
    match error {
        VolumeError::NotEphemeral
        | VolumeError::VolumeId(_)
        | VolumeError::Path(_)
        | VolumeError::Attribute(_)
        | VolumeError::MountGroup { .. } => Code::InvalidArgument,
        VolumeError::Issue(issue) => match issue.status().map(Status::code) {
            Some(
                code @ (Code::PermissionDenied
                | Code::InvalidArgument
                | Code::NotFound
                | Code::FailedPrecondition
                | Code::Unauthenticated
                | Code::ResourceExhausted
                | Code::Unavailable
                | Code::DeadlineExceeded),
            ) => code,
            Some(_) => Code::Internal,
            None => match issue {
                crate::issue::IssueError::Sign { .. } => Code::Unavailable,
                _ => Code::Internal,
            },
        },
        VolumeError::Target { .. }
        | VolumeError::Mount(_)
        | VolumeError::Files { .. }
        | VolumeError::Store(_) => Code::Internal,
        VolumeError::Retry { .. } => Code::Unavailable,
    }
}

fn to_status(error: VolumeError) -> Status {
    let code = code_of(&error);
    // A denial carries the operator's message as it is: it names the refused name.
    let message = match &error {
        VolumeError::Issue(issue) => match issue.status() {
            Some(status) => status.message().to_owned(),
            None => error.to_string(),
        },
        _ => error.to_string(),
    };
    Status::new(code, message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use tlsmint_client::{Client, ClientConfig, Token, TokenSource};
    use tlsmint_runtime::cpu::CpuPool;
    use tlsmint_runtime::prometheus_client::registry::Registry;

    use super::*;
    use crate::clock::Clock;
    use crate::issue::Issuer;
    use crate::manager::Config;
    use crate::metrics::Metrics;
    use crate::mount::MemoryMounter;
    use crate::store::Store;

    /// A node service over a manager whose issuance API is never reached.
    fn node(root: &std::path::Path) -> NodeService {
        let config = ClientConfig::new(
            "http://127.0.0.1:9",
            TokenSource::Static(Token::new("unused").unwrap()),
        );
        let channel = Client::lazy_channel(&config).unwrap();
        let manager = Manager::new(
            Config {
                pods_dir: root.join("pods"),
                events: Arc::new(crate::events::LogEvents),
            },
            Store::open(&root.join("state")).unwrap(),
            Arc::new(MemoryMounter::default()),
            Issuer::new(channel, CpuPool::new(1)),
            Clock::system(),
            Metrics::register(&mut Registry::default()),
        );
        let plugin = Plugin {
            name: "csi.tlsmint.io".into(),
            version: "0".into(),
            node_id: "n1".into(),
        };
        NodeService::new(plugin, manager)
    }

    fn mount_capability() -> Option<pb::VolumeCapability> {
        Some(pb::VolumeCapability {
            access_type: Some(volume_capability::AccessType::Mount(Default::default())),
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn missing_fields_are_invalid_arguments_that_name_the_field() {
        let root = std::env::temp_dir().join(format!("tlsmint-csi-node-{}", std::process::id()));
        std::fs::create_dir_all(root.join("pods")).unwrap();
        let node = node(&root);
        let target = root.join("pods/u1/volumes/kubernetes.io~csi/v/mount");
        let target = target.display().to_string();
        let publish = |volume_id: &str, target_path: &str, cap| pb::NodePublishVolumeRequest {
            volume_id: volume_id.into(),
            target_path: target_path.into(),
            volume_capability: cap,
            ..Default::default()
        };
        let cases = [
            (publish("", "", None), "volume_id"),
            (publish("v1", "", None), "target_path"),
            (publish("v1", "", mount_capability()), "target_path"),
            (publish("v1", &target, None), "volume_capability"),
        ];
        for (req, field) in cases {
            let err = node
                .node_publish_volume(Request::new(req))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
            assert!(err.message().contains(field), "{field}: {}", err.message());
        }
        let unpublish = |volume_id: &str, target_path: &str| pb::NodeUnpublishVolumeRequest {
            volume_id: volume_id.into(),
            target_path: target_path.into(),
        };
        for (req, field) in [
            (unpublish("", ""), "volume_id"),
            (unpublish("v1", ""), "target_path"),
        ] {
            let err = node
                .node_unpublish_volume(Request::new(req))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
            assert!(err.message().contains(field), "{field}: {}", err.message());
        }
        // An unknown volume at a target that does not exist: OK (a NotFound would leave
        // the pod stuck Terminating).
        node.node_unpublish_volume(Request::new(unpublish("v1", &target)))
            .await
            .unwrap();
        let _ = std::fs::remove_dir_all(&root);
    }
}
