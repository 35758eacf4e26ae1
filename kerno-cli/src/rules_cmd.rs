use kerno_core::config::threshold_keys;

use crate::{Failure, cli::RulesArgs, doctor};

/// `kerno rules`: the built-in rules, then every threshold with its value.
pub fn run(args: RulesArgs) -> Result<u8, Failure> {
    let cfg = doctor::config(args.config.as_deref(), &[])?;
    println!("Built-in rules:");
    for r in kerno_rules::builtin() {
        println!("  {:<18} {}", r.id(), r.description());
    }
    println!();
    println!(
        "Thresholds (set with --threshold KEY=VALUE, KERNO_THRESHOLD_<KEY>, or `thresholds:` in the config file):"
    );
    let values = serde_json::to_value(&cfg.thresholds).map_err(anyhow::Error::from)?;
    for k in threshold_keys() {
        let v = &values[&k];
        let shown = match v {
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(","),
            serde_json::Value::Object(o) if o.is_empty() => "{}".into(),
            other => other.to_string(),
        };
        println!("  {k:<28} {shown}");
    }
    Ok(crate::exit::OK)
}
