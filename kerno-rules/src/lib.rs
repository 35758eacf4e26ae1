//! Kerno's built-in diagnosis rules. Each is a pure [`Rule`] over [`kerno_core::Signals`].
#![deny(missing_docs)]

use kerno_core::Rule;

/// Every built-in rule, in a stable order.
pub fn builtin() -> Vec<Box<dyn Rule>> {
    Vec::new()
}
