//! What each kind of target knows about itself. A kind's own module
//! implements [`TargetKind`] for its policy entry; [`TargetSpec::kind`] is
//! the one place that lists the kinds, so the generic layers (the engine,
//! the credentials, `plan`) ask the kind and never name a service.

use super::{Remote, Target, TargetError, TargetId};
use crate::project::ProjectFiles;
use crate::secret::Secret;

/// The service a file on this machine counts under: none.
pub const LOCAL_FILES: &str = "files";

pub trait TargetKind {
    /// The address naming the target, the key of its delivery records:
    /// `dotenv:app/.env`, `github:o/r`, `wrangler:api`.
    fn address(&self) -> TargetId;

    /// The service whose budget its writes spend and under which a
    /// progress display counts it (`GitHub`, `Cloudflare`; `files` for a
    /// file on this machine).
    fn service(&self) -> &'static str {
        LOCAL_FILES
    }

    /// Whether it lives on a service (listed by name, never read back)
    /// rather than in a file on this machine.
    fn is_remote(&self) -> bool {
        true
    }

    /// A file on a machine (a .env): its path in the project.
    fn local_file(&self) -> Option<&std::path::Path> {
        None
    }

    /// The machines the policy says the file lives on, if it says.
    fn machines(&self) -> Option<&[String]> {
        None
    }

    /// Whether the service keeps versions of what it runs (a Worker): a
    /// write makes a version, and the delivery record names it.
    fn runs_versions(&self) -> bool {
        false
    }

    /// The settings it needs from the environment, each a list of
    /// alternatives (`GITHUB_TOKEN` or `GH_TOKEN`): for `ci init`, `ci
    /// doctor` and `plan`.
    fn credentials(&self) -> Vec<&'static [&'static str]> {
        Vec::new()
    }

    /// What is wrong with the entry (its names aside), as (message, hint);
    /// `policy check` shows each at the entry's file:line:col.
    fn problems(&self, _token: &str) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Why `name` cannot be a secret's name here, as (message, hint).
    fn name_problem(&self, token: &str, name: &str) -> Option<(String, String)> {
        crate::policy::generic_name_problem(token, name)
    }

    /// Whether the service compares its places and names without case
    /// (two entries that differ only in case are one).
    fn case_insensitive(&self) -> bool {
        false
    }

    /// Why it cannot take `value`, if it cannot (checked before a value is
    /// stored or sent anywhere).
    fn value_problem(&self, address: &TargetId, value: &Secret) -> Option<String>;

    /// The backend that writes, lists and deletes there.
    fn build(
        &self,
        address: TargetId,
        files: &ProjectFiles,
        remote: Option<&Remote>,
    ) -> Result<Box<dyn Target>, TargetError>;
}

/// How a kind's entry is read from a policy and described in its schema.
pub trait KindEntry: TargetKind + Sized {
    /// `kind = "…"` in a policy.
    const KIND: &'static str;
    /// The entry as written (its JSON Schema is the policy schema's).
    type Fields: serde::de::DeserializeOwned + schemars::JsonSchema;

    /// The entry from what was written, or what is wrong with it.
    fn from_fields(fields: Self::Fields, token: &str) -> Result<Self, Vec<(String, String)>>;

    /// The names it declares (`names = [...]`), if it declares any.
    fn names(&self) -> Option<&Vec<String>>;

    /// The entry without its names (what makes two entries deliver alike).
    fn without_names(&self) -> Self;

    /// One spelling per target (`./app//.env` is `app/.env`).
    fn normalized(self) -> Self {
        self
    }

    /// Adds to the kind's JSON Schema what its type cannot say.
    fn refine_schema(_def: &mut serde_json::Map<String, serde_json::Value>) {}
}

/// The [`KindEntry`] methods of an entry whose `names` field is an
/// `Option<Vec<String>>`, as every kind's is.
#[macro_export]
macro_rules! entry_names {
    () => {
        fn names(&self) -> Option<&Vec<String>> {
            self.names.as_ref()
        }

        fn without_names(&self) -> Self {
            Self { names: None, ..self.clone() }
        }
    };
}

/// [`KindEntry::from_fields`] of an entry read as it is written
/// (`type Fields = Self`): nothing more to check at this step.
#[macro_export]
macro_rules! entry_as_written {
    () => {
        type Fields = Self;

        fn from_fields(fields: Self, _token: &str) -> Result<Self, Vec<(String, String)>> {
            Ok(fields)
        }
    };
}

/// Why an entry could not be read: TOML's own error (with its span), or
/// what the kind says is wrong.
pub enum EntryError {
    Toml(toml::de::Error),
    Problems(Vec<(String, String)>),
}

/// Why `value` is too large for a place that keeps at most `max` bytes:
/// `is 6000 bytes, and Pages keeps at most 5 KB in a variable (ADDRESS)`.
pub fn too_large(value: &Secret, max: usize, keeper: &str, place: &str, address: &TargetId) -> Option<String> {
    let len = value.expose().len();
    (len > max).then(|| format!("is {len} bytes, and {keeper} keeps at most {} KB in {place} ({address})", max / 1024))
}

/// The HTTP client a remote kind needs, or why there is none.
pub fn need_remote(address: &TargetId, remote: Option<&Remote>) -> Result<Remote, TargetError> {
    remote.cloned().ok_or_else(|| TargetError::new(address, "no HTTP client was set up for a remote target", None))
}

/// Declares the kinds of target, each by one line: its variant and its
/// entry type (the entry's module implements [`TargetKind`] and
/// `KindEntry`). Everything that lists the kinds is made from this.
#[macro_export]
macro_rules! target_kinds {
    ($($module:ident => $variant:ident($spec:ty)),* $(,)?) => {
        $(pub mod $module;)*

        #[derive(Debug, Clone, PartialEq)]
        pub enum TargetSpec {
            $($variant($spec)),*
        }

        impl TargetSpec {
            pub const KINDS: &'static [&'static str] = &[$(<$spec as $crate::targets::kind::KindEntry>::KIND),*];

            /// What this entry's kind knows.
            pub fn kind(&self) -> &dyn $crate::targets::kind::TargetKind {
                match self {
                    $(TargetSpec::$variant(spec) => spec),*
                }
            }

            /// The names the entry declares, if it declares any.
            pub fn names(&self) -> Option<&Vec<String>> {
                match self {
                    $(TargetSpec::$variant(spec) => $crate::targets::kind::KindEntry::names(spec)),*
                }
            }

            /// The entry without its names.
            pub fn without_names(&self) -> TargetSpec {
                match self {
                    $(TargetSpec::$variant(spec) => TargetSpec::$variant($crate::targets::kind::KindEntry::without_names(spec))),*
                }
            }

            /// One spelling per target.
            pub fn normalized(self) -> TargetSpec {
                match self {
                    $(TargetSpec::$variant(spec) => TargetSpec::$variant($crate::targets::kind::KindEntry::normalized(spec))),*
                }
            }

            /// Reads an entry of `kind` (`None`: no such kind).
            pub fn decode(
                kind: &str,
                item: toml::Spanned<toml::de::DeValue<'_>>,
                token: &str,
            ) -> Option<Result<TargetSpec, $crate::targets::kind::EntryError>> {
                $(
                    if kind == <$spec as $crate::targets::kind::KindEntry>::KIND {
                        let read = $crate::policy::decode_kind::<<$spec as $crate::targets::kind::KindEntry>::Fields>(item)
                            .map_err($crate::targets::kind::EntryError::Toml)
                            .and_then(|fields| <$spec as $crate::targets::kind::KindEntry>::from_fields(fields, token).map_err($crate::targets::kind::EntryError::Problems));
                        return Some(read.map(TargetSpec::$variant));
                    }
                )*
                None
            }

            /// Each kind's JSON Schema (a reference into the generator's
            /// definitions), and what refines it.
            #[allow(clippy::type_complexity)]
            pub fn schemas(
                generator: &mut schemars::SchemaGenerator,
            ) -> Vec<(&'static str, schemars::Schema, fn(&mut serde_json::Map<String, serde_json::Value>))> {
                vec![$((
                    <$spec as $crate::targets::kind::KindEntry>::KIND,
                    generator.subschema_for::<<$spec as $crate::targets::kind::KindEntry>::Fields>(),
                    <$spec as $crate::targets::kind::KindEntry>::refine_schema,
                )),*]
            }
        }
    };
}
