//! Shared by the property tests (`tests/prop_*.rs`).

use proptest::test_runner::Config;

/// The proptest configuration of one property: `default_cases` cases unless `PROPTEST_CASES` is
/// set (`make fuzz` sets it), and no failure-persistence files: a failing case is printed with
/// its minimal input, which belongs in a unit test, not in a file written into the source tree.
pub fn config(default_cases: u32) -> Config {
    // `Config::default()` already reads PROPTEST_CASES (and the other PROPTEST_* variables).
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config.failure_persistence = None;
    config
}
