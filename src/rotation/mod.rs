//! Rotation and sync: the pure planner ([`plan`]) and the due rule ([`due`]);
//! the executor that runs plans lives in [`crate::engine`]. It records every outcome
//! in the registry as it happens, so a run that
//! stops anywhere is finished by the next one.

pub mod due;
pub mod plan;

pub use due::next_due;
pub use plan::{Mode, Observations, Observed, Step, TokenPlan, due_reason, plan};
