//! Rotation and sync: a pure planner ([`plan`]) and an executor ([`apply`])
//! that records every outcome in the registry as it happens, so a run that
//! stops anywhere is finished by the next one.

pub mod apply;
pub mod deliver;
pub mod plan;

pub use plan::{Mode, Observations, Observed, Step, TokenPlan, due_reason, plan};
