//! Compile-fail tests (trybuild) for what the guards' types forbid; the cases are in
//! `tests/ui/`, each with the compiler error it must produce.

#[test]
fn guards_cannot_escape() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
