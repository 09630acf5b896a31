//! Rendering of the CustomResourceDefinitions to the YAML files committed under `crds/`.
//!
//! Owns the list of CRD files, their names and their exact text (header included), so that
//! the `crdgen` binary and the drift test produce the same bytes. It must not touch the file
//! system: the binary writes, the test reads.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

use crate::v1alpha1::{CertificateRequest, IssuerRole, PkiMount};

/// The command that regenerates `crds/`, quoted in drift messages.
pub const REGENERATE_COMMAND: &str = "cargo run -p tlsmint-api --bin crdgen";

/// The default output folders of `crdgen`, relative to the workspace root: the CRDs on
/// their own, and the copy the Helm chart installs.
pub const DEFAULT_OUT_DIRS: [&str; 2] = ["crds", "charts/tlsmint/crds"];

/// First lines of every generated file.
const HEADER: &str = "# Generated from crates/tlsmint-api by `cargo run -p tlsmint-api --bin crdgen`.\n\
                      # Do not edit: change the Rust types and regenerate.\n";

/// One CRD and the file it is written to.
#[derive(Clone, Debug)]
pub struct CrdFile {
    /// File name inside the output folder, e.g. `pkimount.yaml`.
    pub file_name: &'static str,
    /// The definition.
    pub crd: CustomResourceDefinition,
}

/// Every CRD of the API, each with its file name. Descriptions are unwrapped (see
/// [`tidy`]); prefer these to `PkiMount::crd()` etc. when installing CRDs.
pub fn crd_files() -> Vec<CrdFile> {
    [
        ("pkimount.yaml", PkiMount::crd()),
        ("issuerrole.yaml", IssuerRole::crd()),
        ("certificaterequest.yaml", CertificateRequest::crd()),
    ]
    .into_iter()
    .map(|(file_name, mut crd)| {
        tidy(&mut crd);
        CrdFile { file_name, crd }
    })
    .collect()
}

/// Joins the hard-wrapped lines of every schema description into paragraphs, so that
/// `kubectl explain` can wrap them to the terminal instead of showing ragged lines.
pub fn tidy(crd: &mut CustomResourceDefinition) {
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            tidy_schema(schema);
        }
    }
}

fn tidy_schema(schema: &mut JSONSchemaProps) {
    if let Some(description) = &mut schema.description {
        *description = unwrap_lines(description);
    }
    for property in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        tidy_schema(property);
    }
    match &mut schema.items {
        Some(JSONSchemaPropsOrArray::Schema(item)) => tidy_schema(item),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => items.iter_mut().for_each(tidy_schema),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(extra)) = &mut schema.additional_properties {
        tidy_schema(extra);
    }
}

/// Joins lines within each paragraph with a space; blank lines separate paragraphs.
fn unwrap_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The exact text of a CRD file: a header comment, then the CRD as YAML.
pub fn render(crd: &CustomResourceDefinition) -> Result<String, serde_yaml_ng::Error> {
    Ok(format!("{HEADER}{}", serde_yaml_ng::to_string(crd)?))
}

/// Every CRD file as `(file name, text)`.
pub fn render_all() -> Result<Vec<(&'static str, String)>, serde_yaml_ng::Error> {
    crd_files()
        .into_iter()
        .map(|file| Ok((file.file_name, render(&file.crd)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn committed_crds_match_the_types() {
        for folder in DEFAULT_OUT_DIRS {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(folder);
            for (name, want) in render_all().unwrap() {
                let path = dir.join(name);
                let have = std::fs::read_to_string(&path).unwrap_or_default();
                assert!(
                    have == want,
                    "{folder}/{name} is out of date with the Rust types: run \
                     `{REGENERATE_COMMAND}` and commit the result"
                );
            }
        }
    }

    #[test]
    fn crds_have_the_contracted_names_and_scopes() {
        let files = crd_files();
        let summary: Vec<(&str, &str, &str, Vec<String>)> = files
            .iter()
            .map(|f| {
                let spec = &f.crd.spec;
                (
                    f.file_name,
                    spec.names.kind.as_str(),
                    spec.scope.as_str(),
                    spec.names.short_names.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "pkimount.yaml",
                    "PkiMount",
                    "Cluster",
                    vec!["pkimount".to_owned()]
                ),
                (
                    "issuerrole.yaml",
                    "IssuerRole",
                    "Cluster",
                    vec!["pkirole".to_owned()]
                ),
                (
                    "certificaterequest.yaml",
                    "CertificateRequest",
                    "Namespaced",
                    vec!["pkicr".to_owned()]
                ),
            ]
        );
        for file in &files {
            assert_eq!(file.crd.spec.group, "pki.tlsmint.io");
            let version = &file.crd.spec.versions[0];
            assert_eq!(version.name, "v1alpha1");
            let subresources = version.subresources.as_ref().unwrap();
            assert!(subresources.status.is_some(), "{}", file.file_name);
            let columns = version.additional_printer_columns.as_ref().unwrap();
            let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(names.first(), Some(&"Ready"), "{}", file.file_name);
            assert_eq!(names.last(), Some(&"Age"), "{}", file.file_name);
            assert!(names.contains(&"Expires") || names.contains(&"Mount"));
        }
    }

    /// Every property of every schema has a description, so `kubectl explain` reads well.
    #[test]
    fn every_field_is_described() {
        fn walk(path: &str, schema: &serde_json::Value, missing: &mut Vec<String>) {
            if schema.get("description").is_none() {
                missing.push(path.to_owned());
            }
            if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
                for (name, prop) in props {
                    if path.is_empty()
                        && matches!(name.as_str(), "apiVersion" | "kind" | "metadata")
                    {
                        continue;
                    }
                    walk(&format!("{path}.{name}"), prop, missing);
                }
            }
            if let Some(items) = schema.get("items")
                && items.get("properties").is_some()
            {
                for (name, prop) in items["properties"].as_object().into_iter().flatten() {
                    walk(&format!("{path}[].{name}"), prop, missing);
                }
            }
        }
        for file in crd_files() {
            let version = &file.crd.spec.versions[0];
            let schema = version
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap();
            let value = serde_json::to_value(schema).unwrap();
            let mut missing = Vec::new();
            walk("", &value, &mut missing);
            assert!(
                missing.is_empty(),
                "{}: undescribed {missing:?}",
                file.file_name
            );
        }
    }

    #[test]
    fn descriptions_are_unwrapped_into_paragraphs() {
        assert_eq!(unwrap_lines("a\nb\n c"), "a b c");
        assert_eq!(unwrap_lines("a\nb\n\nc\nd"), "a b\n\nc d");
        assert_eq!(unwrap_lines("single"), "single");
        for (_, text) in render_all().unwrap() {
            assert!(
                !text.contains("description: |-"),
                "a description kept its line breaks"
            );
        }
    }

    #[test]
    fn rendered_files_start_with_the_header() {
        for (_, text) in render_all().unwrap() {
            assert!(text.starts_with("# Generated from crates/tlsmint-api"));
            assert!(text.contains("\nkind: CustomResourceDefinition\n"));
        }
    }
}
