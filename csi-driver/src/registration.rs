//! Kubelet's plugin registration, served by the driver itself (the Go module proxy here
//! does not serve node-driver-registrar). Kubelet watches its `plugins_registry` folder,
//! finds `csi.tlsmint.io-reg.sock`, calls `GetInfo` to learn the CSI socket's path, connects
//! to it and reports the result with `NotifyRegistrationStatus`.
//!
//! Owns the two calls. It must not serve CSI (the node adapter does).

use tonic::{Request, Response, Status};

use crate::proto::registration::registration_server::Registration;
use crate::proto::registration::{
    InfoRequest, PluginInfo, RegistrationStatus, RegistrationStatusResponse,
};

/// CSI versions the driver speaks, as kubelet expects them in `supported_versions`.
pub const SUPPORTED_VERSIONS: [&str; 1] = ["1.0.0"];

/// The registration service.
#[derive(Clone, Debug)]
pub struct RegistrationService {
    /// The CSI driver's name.
    pub driver_name: String,
    /// The CSI socket's path as kubelet sees it.
    pub endpoint: String,
}

#[tonic::async_trait]
impl Registration for RegistrationService {
    async fn get_info(&self, _: Request<InfoRequest>) -> Result<Response<PluginInfo>, Status> {
        Ok(Response::new(PluginInfo {
            r#type: "CSIPlugin".into(),
            name: self.driver_name.clone(),
            endpoint: self.endpoint.clone(),
            supported_versions: SUPPORTED_VERSIONS.iter().map(|v| (*v).to_owned()).collect(),
        }))
    }

    async fn notify_registration_status(
        &self,
        request: Request<RegistrationStatus>,
    ) -> Result<Response<RegistrationStatusResponse>, Status> {
        let status = request.into_inner();
        if status.plugin_registered {
            tracing::info!(csi.driver = %self.driver_name, "kubelet registered the driver");
        } else {
            tracing::error!(csi.driver = %self.driver_name, error = %status.error,
                "kubelet refused to register the driver");
        }
        Ok(Response::new(RegistrationStatusResponse {}))
    }
}
