use crate::Report;

/// The JSON report (schema in `docs/json-report.md`), pretty-printed, with the window's
/// signals included.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("a report always serialises")
}

/// The cluster report (`kerno doctor --cluster -o json`; schema in `docs/json-report.md`),
/// pretty-printed.
pub fn cluster_json(report: &crate::cluster::ClusterReport) -> String {
    serde_json::to_string_pretty(report).expect("a cluster report always serialises")
}
