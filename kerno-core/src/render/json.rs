use crate::Report;

/// The JSON report (schema in `docs/json-report.md`), pretty-printed, with the window's
/// signals included.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("a report always serialises")
}
