//! Integration tests: the real binary against temp dirs.
