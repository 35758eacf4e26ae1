//! A small, stable, seeded fuzzer: it mutates a corpus of valid inputs (byte edits, tokens
//! from a dictionary, numbers swapped for edge values such as `99999999999999999999`,
//! `NaN`, `-1`, `1e309`), runs a target on each under `catch_unwind`, and counts inputs,
//! panics and the slowest input. Deterministic for a seed, so a failure replays.
//!
//! Bounded by `KERNO_FUZZ_CASES` (inputs per target) and `KERNO_FUZZ_SECS` (seconds per
//! target), whichever ends first; `KERNO_FUZZ_SEED` changes the seed and
//! `KERNO_FUZZ_REPORT` names a file each target appends its figures to.

#![deny(missing_docs)]

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    time::{Duration, Instant},
};

/// splitmix64: small, fast, good enough to pick mutations.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Numbers at the edges: overflow, NaN, infinities, negatives, empty, huge, tiny.
pub const EDGE_NUMBERS: &[&str] = &[
    "99999999999999999999",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775808",
    "-9223372036854775809",
    "4294967296",
    "-1",
    "-0",
    "0",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "1e309",
    "-1e309",
    "1.7976931348623157e308",
    "5e-324",
    "0.0000001",
    "1e-7",
    "",
    ".",
    "1.",
    ".5",
    "00000000000000000000000000000001",
    "6000000000000000",
    "1_000",
    "0x10",
    "+5",
];

/// Units that follow numbers in Kerno's inputs.
pub const UNITS: &[&str] = &[
    "", "ms", "s", "m", "min", "h", "d", "us", "µs", "ns", "K", "M", "G", "%", "y", " s", "sec",
];

/// How long a target may run and how many inputs it tries.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// At most this many inputs.
    pub cases: u64,
    /// At most this long.
    pub time: Duration,
    /// The seed.
    pub seed: u64,
}

impl Budget {
    /// `cases` and `secs` unless `KERNO_FUZZ_CASES` / `KERNO_FUZZ_SECS` say otherwise.
    pub fn from_env(cases: u64, secs: f64) -> Budget {
        let num = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let cases = num("KERNO_FUZZ_CASES")
            .filter(|c| c.is_finite() && *c >= 1.0)
            .map(|c| c as u64)
            .unwrap_or(cases);
        let secs = num("KERNO_FUZZ_SECS")
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(secs);
        let seed = num("KERNO_FUZZ_SEED")
            .map(|s| s as u64)
            .unwrap_or(0x6B65_726E_6F21);
        Budget {
            cases,
            time: Duration::try_from_secs_f64(secs).unwrap_or(Duration::from_secs(3600)),
            seed,
        }
    }
}

/// What one target's run found.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// The target's name.
    pub name: String,
    /// Inputs tried.
    pub inputs: u64,
    /// Inputs that panicked.
    pub panics: u64,
    /// The first few panicking inputs (escaped), to replay.
    pub panicking: Vec<String>,
    /// The slowest input's time.
    pub slowest: Duration,
    /// The slowest input (escaped, cut to 120 characters).
    pub slowest_input: String,
    /// Inputs that took more than 100 ms.
    pub slow: u64,
    /// The whole run.
    pub elapsed: Duration,
}

impl Figures {
    /// One line for logs and docs.
    pub fn line(&self) -> String {
        format!(
            "fuzz {}: {} inputs, {} panics, slowest {:.2} ms, {} over 100 ms, {:.1} s",
            self.name,
            self.inputs,
            self.panics,
            self.slowest.as_secs_f64() * 1e3,
            self.slow,
            self.elapsed.as_secs_f64()
        )
    }
}

fn escape(b: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(b).escape_debug().collect();
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(120).collect::<String>())
    } else {
        s
    }
}

/// Replace the `n`-th run of digits (with `.`, `e`, `-` inside) by an edge value.
fn swap_number(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < input.len() {
        if input[i].is_ascii_digit() {
            let start = i;
            while i < input.len()
                && (input[i].is_ascii_digit() || matches!(input[i], b'.' | b'e' | b'E'))
            {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    if runs.is_empty() {
        return input.to_vec();
    }
    let (a, b) = *rng.pick(&runs);
    let mut out = input[..a].to_vec();
    out.extend_from_slice(rng.pick(EDGE_NUMBERS).as_bytes());
    out.extend_from_slice(&input[b..]);
    out
}

/// One mutation of `input`; `corpus` for splices, `dict` for tokens.
pub fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>], dict: &[&str]) -> Vec<u8> {
    let mut v = input.to_vec();
    let pos = |rng: &mut Rng, v: &Vec<u8>| rng.below(v.len() + 1);
    match rng.below(12) {
        0..=2 => v = swap_number(rng, &v),
        3 if !v.is_empty() => {
            let i = rng.below(v.len());
            v[i] ^= 1 << rng.below(8);
        }
        4 if !v.is_empty() => {
            let i = rng.below(v.len());
            v[i] = *rng.pick(b"\0\xff-.e:{}[]\",\n #&*!%\\0123456789");
        }
        5 => {
            let i = pos(rng, &v);
            let t = if dict.is_empty() {
                rng.pick(EDGE_NUMBERS).to_string()
            } else {
                rng.pick(dict).to_string()
            };
            v.splice(i..i, t.bytes());
        }
        6 if !v.is_empty() => {
            let a = rng.below(v.len());
            let b = (a + 1 + rng.below(16)).min(v.len());
            v.drain(a..b);
        }
        7 if !v.is_empty() => {
            let a = rng.below(v.len());
            let b = (a + 1 + rng.below(64)).min(v.len());
            let chunk = v[a..b].to_vec();
            let i = pos(rng, &v);
            v.splice(i..i, chunk);
        }
        8 if !corpus.is_empty() => {
            let other = rng.pick(corpus);
            let cut = pos(rng, &v);
            let from = rng.below(other.len() + 1);
            v.truncate(cut);
            v.extend_from_slice(&other[from..]);
        }
        9 => {
            let cut = pos(rng, &v);
            v.truncate(cut);
        }
        10 => {
            let i = pos(rng, &v);
            let t = format!("{}{}", rng.pick(EDGE_NUMBERS), rng.pick(UNITS));
            v.splice(i..i, t.bytes());
        }
        _ => {
            // Several at once.
            for _ in 0..(2 + rng.below(4)) {
                v = mutate(rng, &v, corpus, dict);
            }
        }
    }
    v
}

/// Run `target` on the corpus itself, then on mutations of it, within `budget`. Every
/// input runs under `catch_unwind`; the figures count the panics (the caller asserts none).
pub fn run(
    name: &str,
    corpus: &[Vec<u8>],
    dict: &[&str],
    budget: Budget,
    mut target: impl FnMut(&[u8]),
) -> Figures {
    let mut rng =
        Rng::new(budget.seed ^ name.bytes().fold(0u64, |h, b| h.rotate_left(5) ^ b as u64));
    let mut f = Figures {
        name: name.to_string(),
        ..Figures::default()
    };
    let start = Instant::now();
    // A pool that grows with inputs that were mutated from seeds, so mutations stack.
    let mut pool: Vec<Vec<u8>> = corpus.to_vec();
    let mut i = 0u64;
    while i < budget.cases && start.elapsed() < budget.time {
        let input = if (i as usize) < corpus.len() {
            corpus[i as usize].clone()
        } else {
            let base = rng.pick(&pool).clone();
            mutate(&mut rng, &base, corpus, dict)
        };
        let t0 = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| target(&input)));
        let took = t0.elapsed();
        f.inputs += 1;
        if took > f.slowest {
            f.slowest = took;
            f.slowest_input = escape(&input);
        }
        if took > Duration::from_millis(100) {
            f.slow += 1;
        }
        if r.is_err() {
            f.panics += 1;
            if f.panicking.len() < 5 {
                f.panicking.push(escape(&input));
            }
        }
        if pool.len() < 256 && input.len() < 1 << 20 && rng.below(8) == 0 {
            pool.push(input);
        }
        i += 1;
    }
    f.elapsed = start.elapsed();
    eprintln!("{}", f.line());
    if let Ok(path) = std::env::var("KERNO_FUZZ_REPORT") {
        use std::io::Write as _;
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(file, "{}", f.line());
        }
    }
    f
}

/// Panic with the panicking inputs when there were any.
pub fn assert_no_panics(f: &Figures) {
    assert!(
        f.panics == 0,
        "{}\npanicking inputs (replay with the same KERNO_FUZZ_SEED):\n{}",
        f.line(),
        f.panicking.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_counts_panics() {
        let corpus = vec![b"10s".to_vec(), b"250ms".to_vec()];
        let budget = Budget {
            cases: 500,
            time: Duration::from_secs(30),
            seed: 7,
        };
        let mut seen_a = Vec::new();
        run("a", &corpus, &[], budget, |i| seen_a.push(i.to_vec()));
        let mut seen_b = Vec::new();
        run("a", &corpus, &[], budget, |i| seen_b.push(i.to_vec()));
        assert_eq!(seen_a, seen_b, "same seed, same inputs");
        assert_eq!(seen_a.len(), 500);
        assert!(seen_a.iter().any(|i| i.windows(4).any(|w| w == b"9999")));
        // A target that panics on some input is counted, not fatal to the run.
        let f = run("b", &corpus, &[], budget, |i| {
            if i.contains(&b'-') {
                panic!("minus")
            }
        });
        assert!(f.panics > 0 && f.inputs == 500, "{}", f.line());
    }
}
