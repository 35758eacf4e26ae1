use kerno_core::{ThresholdRegistry, ThresholdValue};

use crate::{
    Failure, RuleSet,
    cli::{GlobalArgs, Output, RulesArgs},
    doctor,
};

/// `kerno rules`: every rule with the thresholds it declares, each with its value (from the
/// defaults, the config file, `KERNO_THRESHOLD_*` and `--threshold`), unit, valid range and
/// what it does.
pub fn run(args: RulesArgs, g: &GlobalArgs, rules: RuleSet) -> Result<u8, Failure> {
    g.output_for("rules", &[Output::Pretty], None)?;
    let rules = rules();
    let registry = ThresholdRegistry::of(&rules);
    let cfg = doctor::config(g.config.as_deref(), &args.cfg.thresholds, &registry)?;
    let values = registry.values(&cfg.thresholds);
    println!(
        "Rules and their thresholds (set with --threshold KEY=VALUE, KERNO_THRESHOLD_<KEY>, or `thresholds:` in the config file):"
    );
    for r in &rules {
        println!();
        println!("{}: {}", r.id(), r.description());
        let mine: Vec<_> = registry.iter().filter(|(id, _)| *id == r.id()).collect();
        if mine.is_empty() {
            println!("  (no thresholds)");
        }
        for (_, spec) in mine {
            let value = &values[spec.key];
            let shown = match value {
                ThresholdValue::List(_) => value.to_string(),
                _ if spec.unit.is_empty() || spec.unit == "ratio" => value.to_string(),
                _ => format!("{value} {}", spec.unit),
            };
            let changed = if *value == spec.default_value() {
                String::new()
            } else {
                format!(" [default {}]", spec.default_value())
            };
            let range = spec.range();
            let range = if range.is_empty() {
                String::new()
            } else {
                format!(" ({range})")
            };
            println!("  {:<28} {shown}{changed}", spec.key);
            println!("  {:<28} {}{range}", "", spec.doc);
        }
    }
    Ok(crate::exit::OK)
}
