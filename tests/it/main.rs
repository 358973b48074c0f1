//! Integration tests: the real binary, real files, temp dirs.

mod checks;
mod common;
mod crash;
mod foundation;
mod identity;
mod teams;
mod values;
