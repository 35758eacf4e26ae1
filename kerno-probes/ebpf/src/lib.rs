#![no_std]
//! Present so the crate has a library target; the programs are in main.rs and its modules.
