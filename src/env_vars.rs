//! Every environment variable chitty-secrets reads, in one place.

/// The age identity's key text (for CI, where it is a secret).
pub const IDENTITY: &str = "CHITTY_SECRETS_IDENTITY";
/// A path to an age identity file.
pub const IDENTITY_FILE: &str = "CHITTY_SECRETS_IDENTITY_FILE";
/// The keyring service name (default `chitty-secrets`).
pub const KEYRING_SERVICE: &str = "CHITTY_SECRETS_KEYRING_SERVICE";
/// Set to skip the OS keyring entirely (always use the identity file).
pub const NO_KEYRING: &str = "CHITTY_SECRETS_NO_KEYRING";
/// `true` inside GitHub Actions: printed values are masked first.
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
/// `owner/repo` of the repository a GitHub Actions run is in (else the
/// git remote `origin` says which repository the project is).
pub const GITHUB_REPOSITORY: &str = "GITHUB_REPOSITORY";
/// The registry's id (`chitty-secrets status` shows it): where set, a key
/// file that makes another id is refused. For CI, whose fresh machines
/// remember no registry.
pub const REGISTRY_ID: &str = "CHITTY_SECRETS_REGISTRY_ID";
/// Set by the shell completion scripts (`completions SHELL`) to a shell's
/// name: the binary then prints candidates for the words after `--`.
pub const COMPLETE: &str = "CHITTY_SECRETS_COMPLETE";
