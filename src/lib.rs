//! chitty-secrets: issue, keep (age-encrypted), deliver, rotate and check the
//! tokens a platform depends on. The modules follow the data flow:
//! policy → registry → rotation (plan, apply) → targets.

pub mod check;
pub mod cli;
pub mod crash;
pub mod credentials;
pub mod endpoint;
pub mod engine;
pub mod env_vars;
pub mod error;
pub mod fsutil;
pub mod http;
pub mod identity;
pub mod issuer;
pub mod leaks;
pub mod log;
pub mod placeholder;
pub mod policy;
pub mod project;
pub mod registry;
pub mod rotation;
pub mod scan;
pub mod secret;
pub mod targets;
pub mod threads;
pub mod usage;
