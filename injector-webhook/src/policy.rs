//! The admission-time policy check (SPEC §3, "denial explained at admission"): before an
//! annotated pod is admitted, the operator is asked (`CheckPolicy`, nothing is issued)
//! whether the pod's ServiceAccount may use the role for the names it asks for. A denial
//! refuses the pod with the operator's reason instead of leaving it waiting in Init; an
//! operator that does not answer (down, slow, not allowing the injector to ask) lets the pod
//! through to the normal path (fail open), since the agent will then get the real answer.
//!
//! Owns the question and the verdict. Must not: decide the mutation, or log tokens.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tlsmint_api::annotations::{self, PodAnnotations};
use tlsmint_client::proto::{CheckPolicyRequest, Names};
use tlsmint_client::{Client, ClientConfig, ClientError, TokenSource};

/// What the operator said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It would issue.
    Allowed,
    /// It would refuse, for this reason.
    Denied(String),
    /// No answer (the pod is admitted: fail open); why.
    Unknown(String),
}

/// Asks the operator.
#[derive(Clone, Debug)]
pub struct Checker {
    client: Client,
    timeout: Duration,
}

impl Checker {
    /// A checker that connects on first use (the operator may start after the injector).
    pub fn new(
        endpoint: &str,
        ca_pem: Option<String>,
        server_name: Option<String>,
        token_file: std::path::PathBuf,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let mut config = ClientConfig::new(endpoint, TokenSource::File(token_file));
        config.ca_bundle_pem = ca_pem;
        config.server_name = server_name;
        config.timeout = timeout;
        let channel = Client::lazy_channel(&config)?;
        Ok(Checker {
            client: Client::from_channel(channel, config.token),
            timeout,
        })
    }

    /// The verdict for `question`, within the timeout.
    pub async fn check(&self, question: CheckPolicyRequest) -> Verdict {
        let answer = tokio::time::timeout(self.timeout, self.client.check_policy(question)).await;
        match answer {
            Ok(Ok(r)) if r.allowed => Verdict::Allowed,
            Ok(Ok(r)) => Verdict::Denied(r.reason),
            Ok(Err(e)) => Verdict::Unknown(e.to_string()),
            Err(_) => Verdict::Unknown(format!("no answer within {:?}", self.timeout)),
        }
    }
}

/// The question for an annotated pod in `namespace` (pure). Placeholders the webhook knows
/// (`$(POD_NAMESPACE)`, `$(SERVICE_ACCOUNT)`) are filled in; names that still hold one
/// (`$(POD_NAME)`: a generated name is not known yet) are left out of the question.
pub fn question(pod: &Pod, namespace: &str, ann: &PodAnnotations) -> CheckPolicyRequest {
    let service_account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    let fill = |value: &str| {
        let filled = value
            .replace(annotations::POD_NAMESPACE_PLACEHOLDER, namespace)
            .replace(annotations::SERVICE_ACCOUNT_PLACEHOLDER, &service_account);
        (!filled.contains("$(")).then_some(filled)
    };
    CheckPolicyRequest {
        role: ann.role.clone(),
        names: Some(Names {
            common_name: ann
                .common_name
                .as_deref()
                .and_then(fill)
                .unwrap_or_default(),
            dns_names: ann.dns_names.iter().filter_map(|n| fill(n)).collect(),
            ip_addresses: ann.ip_sans.iter().map(ToString::to_string).collect(),
            uris: ann.uri_sans.iter().filter_map(|u| fill(u)).collect(),
        }),
        namespace: namespace.to_owned(),
        service_account,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ann(pairs: &[(&str, &str)]) -> PodAnnotations {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        PodAnnotations::parse(&map).unwrap().unwrap()
    }

    #[test]
    fn asks_for_the_pods_service_account_with_known_placeholders_filled() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {},
            "spec": {"serviceAccountName": "api", "containers": []},
        }))
        .unwrap();
        let q = question(
            &pod,
            "shop",
            &ann(&[
                ("tlsmint.io/inject", "true"),
                ("tlsmint.io/role", "web"),
                (
                    "tlsmint.io/common-name",
                    "$(SERVICE_ACCOUNT).$(POD_NAMESPACE).svc",
                ),
                (
                    "tlsmint.io/dns-names",
                    "$(POD_NAME).example.com,web.example.com",
                ),
                ("tlsmint.io/ip-sans", "10.0.0.1"),
            ]),
        );
        assert_eq!(q.namespace, "shop");
        assert_eq!(q.service_account, "api");
        assert_eq!(q.role, "web");
        let names = q.names.unwrap();
        assert_eq!(names.common_name, "api.shop.svc");
        assert_eq!(names.dns_names, ["web.example.com"]);
        assert_eq!(names.ip_addresses, ["10.0.0.1"]);
    }

    #[test]
    fn a_pod_without_a_service_account_asks_for_default() {
        let pod: Pod =
            serde_json::from_value(serde_json::json!({"spec": {"containers": []}})).unwrap();
        let q = question(
            &pod,
            "ns",
            &ann(&[("tlsmint.io/inject", "true"), ("tlsmint.io/role", "web")]),
        );
        assert_eq!(q.service_account, "default");
    }

    #[tokio::test]
    async fn an_unreachable_operator_fails_open() {
        // Nothing listens on port 1 of loopback.
        let checker = Checker::new(
            "http://127.0.0.1:1",
            None,
            None,
            std::env::temp_dir().join("no-such-token"),
            Duration::from_millis(500),
        )
        .unwrap();
        let pod: Pod =
            serde_json::from_value(serde_json::json!({"spec": {"containers": []}})).unwrap();
        let q = question(
            &pod,
            "ns",
            &ann(&[("tlsmint.io/inject", "true"), ("tlsmint.io/role", "web")]),
        );
        assert!(matches!(checker.check(q).await, Verdict::Unknown(_)));
    }
}
