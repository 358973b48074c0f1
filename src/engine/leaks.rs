//! The services' own reports of exposed secrets, for `leaks`: gathered
//! from every remote target once, and closed once the value each found no
//! longer works.

use std::collections::BTreeSet;

use super::Workspace;
use super::opened::Opened;
use crate::policy::TargetPolicy;
use crate::targets::{Exposure, TargetError, TargetId};

/// A service's report, and the target whose service made it.
pub struct Reported {
    pub target: TargetId,
    pub exposure: Exposure,
    /// The target's entry, to reach it again when the report is closed.
    policy: TargetPolicy,
}

/// Every open report the remote targets' services keep, each once (the
/// targets of one repository share its alerts), and the targets that
/// could not be asked, with why.
pub struct Reports {
    pub reports: Vec<Reported>,
    pub unreachable: Vec<TargetError>,
    opened: Opened,
}

impl Workspace {
    pub async fn exposures(&self) -> Reports {
        let opened = Opened::default();
        let targets = self.policy.remote_targets();
        let asked = futures_util::future::join_all(targets.iter().map(|(address, t)| {
            let opened = &opened;
            async move {
                let found = match opened.target(self, t) {
                    Ok(target) => target.exposures().await,
                    Err(e) => Err(e),
                };
                (address.clone(), (*t).clone(), found)
            }
        }))
        .await;
        let mut out = Reports { reports: Vec::new(), unreachable: Vec::new(), opened };
        let mut seen = BTreeSet::new();
        for (target, policy, found) in asked {
            match found {
                Ok(Some(list)) => {
                    for exposure in list {
                        if seen.insert(exposure.id.clone()) {
                            out.reports.push(Reported { target: target.clone(), exposure, policy: policy.clone() });
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => out.unreachable.push(e),
            }
        }
        out
    }

    /// Closes `report` at its service, saying why (`note`).
    pub async fn close_exposure(&self, reports: &Reports, report: &Reported, note: &str) -> Result<(), TargetError> {
        let target = reports.opened.target(self, &report.policy)?;
        target.close_exposure(&report.exposure, note).await
    }
}
