//! Targets: where token values are delivered. Each target writes a batch of
//! names in one go (`put_many`), so a .env file is rewritten once per run and
//! remote targets can batch and pace their requests.

pub mod dotenv;
pub mod dotenv_file;

use async_trait::async_trait;

use crate::policy::{TargetPolicy, TargetSpec};
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
#[error("{address}: {message}")]
pub struct TargetError {
    pub address: String,
    pub message: String,
    pub hint: Option<String>,
}

#[async_trait]
pub trait Target: Send + Sync {
    /// A stable name for the target, e.g. `dotenv:app/.env`.
    fn address(&self) -> &str;

    /// Writes every `(name, value)` pair, all or nothing where the target allows.
    async fn put_many(&self, items: &[(String, Secret)]) -> Result<(), TargetError>;

    /// The values the target holds for `names`, where it can be read back
    /// (local files); `None` for write-only targets.
    async fn read(&self, names: &[String]) -> Result<Option<Vec<Option<Secret>>>, TargetError>;
}

/// Builds the target a policy entry describes. `root` is the project root.
pub fn build(policy: &TargetPolicy, root: &std::path::Path) -> Box<dyn Target> {
    match &policy.spec {
        TargetSpec::Dotenv(spec) => Box::new(dotenv::DotenvTarget::new(policy.address(), root.join(&spec.path))),
    }
}
