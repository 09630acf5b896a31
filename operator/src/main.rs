//! `tlsmint-operator`: the CA, its controllers and its issuance APIs.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("tlsmint-operator is not implemented yet")
}
