//! Integration tests: the real binary, real files, temp dirs.

mod actions_runner;
mod boundaries;
mod checks;
mod chitty;
mod common;
mod completions;
mod conformance;
mod crash;
mod debug_log;
mod docs;
#[path = "../fakes/mod.rs"]
mod fakes;
mod foundation;
mod github_app;
mod hardening;
mod history;
mod identity;
mod leaks;
mod machines;
mod merges;
mod newcomer;
mod pages;
mod parsers;
mod progress;
mod published;
mod remote;
mod schema;
mod secrets_store;
mod teams;
mod trust;
mod upgrade;
mod usage;
mod values;
mod workers;
mod workflow;
