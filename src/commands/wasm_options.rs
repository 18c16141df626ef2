//! The `-W KEY[=VALUE][,KEY[=VALUE]..]` options of `strata run`, `strata compile` and
//! `strata wast`: how much fuel, memory and time the guest may use, and which
//! WebAssembly proposals the engine accepts. The keys and value formats are those of
//! `wasmtime run -W`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::option_list;

/// The keys `-W` understands, for error messages.
const KNOWN_KEYS: &str = "fuel, max-memory-size, timeout, simd, multi-value, bulk-memory, \
                          reference-types, tail-call, extended-const, multi-memory, memory64, \
                          relaxed-simd, relaxed-simd-deterministic, wide-arithmetic, \
                          custom-page-sizes, function-references, exceptions";

/// A WebAssembly proposal (or the behavior of one) that `-W KEY[=y|n]` turns on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    /// `simd`: 128-bit SIMD.
    Simd,
    /// `multi-value`: blocks and functions with several results.
    MultiValue,
    /// `bulk-memory`: bulk memory and table operations.
    BulkMemory,
    /// `reference-types`: `funcref` and `externref` values, several tables.
    ReferenceTypes,
    /// `tail-call`: `return_call` and `return_call_indirect`.
    TailCall,
    /// `extended-const`: arithmetic in constant expressions.
    ExtendedConst,
    /// `multi-memory`: several linear memories per module.
    MultiMemory,
    /// `memory64`: 64-bit memories and tables.
    Memory64,
    /// `relaxed-simd`: SIMD instructions with host-dependent results.
    RelaxedSimd,
    /// `relaxed-simd-deterministic`: each relaxed SIMD instruction gives one fixed
    /// result (wasmtime's), the same on every host.
    RelaxedSimdDeterministic,
    /// `wide-arithmetic`: 128-bit addition and subtraction, 64x64-bit widening
    /// multiplication.
    WideArithmetic,
    /// `custom-page-sizes`: memories with 1-byte pages.
    CustomPageSizes,
    /// `function-references`: typed function references, `call_ref`, non-nullable
    /// types.
    FunctionReferences,
    /// `exceptions`: exception handling with tags, `throw`, `try_table` and `exnref`.
    Exceptions,
}

impl Feature {
    /// Every feature, with its `-W` key (wasmtime's).
    const KEYS: [(&'static str, Feature); 14] = [
        ("simd", Feature::Simd),
        ("multi-value", Feature::MultiValue),
        ("bulk-memory", Feature::BulkMemory),
        ("reference-types", Feature::ReferenceTypes),
        ("tail-call", Feature::TailCall),
        ("extended-const", Feature::ExtendedConst),
        ("multi-memory", Feature::MultiMemory),
        ("memory64", Feature::Memory64),
        ("relaxed-simd", Feature::RelaxedSimd),
        (
            "relaxed-simd-deterministic",
            Feature::RelaxedSimdDeterministic,
        ),
        ("wide-arithmetic", Feature::WideArithmetic),
        ("custom-page-sizes", Feature::CustomPageSizes),
        ("function-references", Feature::FunctionReferences),
        ("exceptions", Feature::Exceptions),
    ];

    /// The feature whose `-W` key is `key`.
    fn from_key(key: &str) -> Option<Feature> {
        Feature::KEYS
            .iter()
            .find(|(k, _)| *k == key)
            .map(|&(_, feature)| feature)
    }

    /// Turns the feature on or off in `config`.
    fn apply(self, config: &mut strata::Config, enable: bool) {
        match self {
            Feature::Simd => config.wasm_simd(enable),
            Feature::MultiValue => config.wasm_multi_value(enable),
            Feature::BulkMemory => config.wasm_bulk_memory(enable),
            Feature::ReferenceTypes => config.wasm_reference_types(enable),
            Feature::TailCall => config.wasm_tail_call(enable),
            Feature::ExtendedConst => config.wasm_extended_const(enable),
            Feature::MultiMemory => config.wasm_multi_memory(enable),
            Feature::Memory64 => config.wasm_memory64(enable),
            Feature::RelaxedSimd => config.wasm_relaxed_simd(enable),
            Feature::RelaxedSimdDeterministic => config.relaxed_simd_deterministic(enable),
            Feature::WideArithmetic => config.wasm_wide_arithmetic(enable),
            Feature::CustomPageSizes => config.wasm_custom_page_sizes(enable),
            Feature::FunctionReferences => config.wasm_function_references(enable),
            Feature::Exceptions => config.wasm_exceptions(enable),
        };
    }
}

/// One setting given with `-W`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WasmOption {
    /// `fuel=N`: the guest may run N fuel units (about one per operator).
    Fuel(u64),
    /// `max-memory-size=N`: no linear memory may grow beyond N bytes.
    MaxMemorySize(usize),
    /// `timeout=DURATION`: the guest is interrupted after this much wall-clock time.
    Timeout(Duration),
    /// `KEY[=y|n]`: a proposal on or off (a bare key means on).
    Feature(Feature, bool),
}

/// The settings of one `-W` argument (a comma-separated list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasmOptionList(Vec<WasmOption>);

/// Every `-W` setting combined; a key given twice keeps its last value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WasmOptions {
    /// The fuel to give the store, with fuel consumption on.
    pub fuel: Option<u64>,
    /// The most bytes a linear memory may have.
    pub max_memory_size: Option<usize>,
    /// How long the guest may run before it is interrupted.
    pub timeout: Option<Duration>,
    /// The features turned on or off; the others keep the engine's defaults.
    pub features: BTreeMap<Feature, bool>,
}

impl WasmOptions {
    /// Combines the `-W` arguments in command-line order.
    pub fn new(lists: &[WasmOptionList]) -> WasmOptions {
        let mut options = WasmOptions::default();
        for option in lists.iter().flat_map(|list| &list.0) {
            match *option {
                WasmOption::Fuel(n) => options.fuel = Some(n),
                WasmOption::MaxMemorySize(n) => options.max_memory_size = Some(n),
                WasmOption::Timeout(d) => options.timeout = Some(d),
                WasmOption::Feature(feature, enable) => {
                    options.features.insert(feature, enable);
                }
            }
        }
        options
    }

    /// The engine configuration these options need. Fuel, timeouts and features
    /// change the generated code (and precompiled artifacts record them), so
    /// `strata compile` takes the same options as the `strata run` that loads its
    /// output.
    pub fn config(&self) -> strata::Config {
        let mut config = strata::Config::new();
        config.consume_fuel(self.fuel.is_some());
        config.epoch_interruption(self.timeout.is_some());
        for (&feature, &enable) in &self.features {
            feature.apply(&mut config, enable);
        }
        config
    }
}

/// Parses the value of one `-W` argument; used as clap's value parser.
///
/// # Errors
/// Names the unknown key or the malformed value.
pub fn parse(arg: &str) -> Result<WasmOptionList, String> {
    option_list::parse_each(arg, parse_one).map(WasmOptionList)
}

/// Parses one `KEY=VALUE` (or, for a feature, `KEY`) setting.
fn parse_one(key: &str, value: Option<&str>) -> Result<WasmOption, String> {
    let need_value = |what: &str| option_list::need_value('W', key, value, what);
    let option = match key {
        "fuel" => WasmOption::Fuel(parse_integer(need_value("N")?)?),
        "max-memory-size" => {
            let bytes = parse_integer(need_value("BYTES")?)?;
            WasmOption::MaxMemorySize(
                usize::try_from(bytes).map_err(|_| format!("`{bytes}` bytes is too large"))?,
            )
        }
        "timeout" => WasmOption::Timeout(parse_duration(need_value("DURATION")?)?),
        _ => match Feature::from_key(key) {
            Some(feature) => {
                WasmOption::Feature(feature, option_list::parse_bool('W', key, value)?)
            }
            None => return Err(format!("unknown -W option `{key}` (known: {KNOWN_KEYS})")),
        },
    };
    Ok(option)
}

/// Parses an unsigned integer, decimal or `0x` hexadecimal.
fn parse_integer(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|e| format!("invalid integer `{text}`: {e}"))
}

/// Parses a duration: an integer with an optional unit, `ns`, `us` (or `µs`), `ms`,
/// `s`, `m` or `h`; a bare integer counts seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration `{text}` (examples: 10s, 500ms, 2m, 1us, 3ns)");
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().map_err(|_| invalid())?;
    let seconds = |factor: u64| n.checked_mul(factor).map(Duration::from_secs);
    match unit {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "us" | "µs" | "μs" => Some(Duration::from_micros(n)),
        "ns" => Some(Duration::from_nanos(n)),
        "m" => seconds(60),
        "h" => seconds(3600),
        _ => None,
    }
    .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_every_unit_and_default_to_seconds() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1us"), Ok(Duration::from_micros(1)));
        assert_eq!(parse_duration("4µs"), Ok(Duration::from_micros(4)));
        assert_eq!(parse_duration("3ns"), Ok(Duration::from_nanos(3)));
        for bad in ["", "s", "1.5s", "10 s", "-1s", "3d", "ms10"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn lists_combine_and_later_settings_win() {
        let first = parse("fuel=10,timeout=1s").unwrap();
        let second = parse("max-memory-size=0x10000,fuel=20").unwrap();
        assert_eq!(
            WasmOptions::new(&[first, second]),
            WasmOptions {
                fuel: Some(20),
                max_memory_size: Some(65536),
                timeout: Some(Duration::from_secs(1)),
                features: BTreeMap::new(),
            }
        );
        assert_eq!(WasmOptions::new(&[]), WasmOptions::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = parse("fuel=1,frobnicate=2").unwrap_err();
        assert!(err.contains("unknown -W option `frobnicate`"), "{err}");
        assert!(parse("fuel").unwrap_err().contains("needs a value"));
        assert!(parse("fuel=lots").unwrap_err().contains("`lots`"));
        assert!(parse("timeout=soon").unwrap_err().contains("`soon`"));
        let err = parse("tail-call=maybe").unwrap_err();
        assert!(
            err.contains("invalid value `maybe` for -W tail-call"),
            "{err}"
        );
        assert!(parse("tail-call=").is_err());
        assert!(parse("wide_arithmetic").unwrap_err().contains("unknown"));
    }

    #[test]
    fn feature_keys_take_wasmtime_boolean_values() {
        for (value, expected) in [
            ("", true),
            ("=y", true),
            ("=yes", true),
            ("=true", true),
            ("=n", false),
            ("=no", false),
            ("=false", false),
        ] {
            for &(key, feature) in &Feature::KEYS {
                assert_eq!(
                    parse(&format!("{key}{value}")),
                    Ok(WasmOptionList(vec![WasmOption::Feature(feature, expected)])),
                    "-W {key}{value}"
                );
            }
        }
    }

    #[test]
    fn every_key_is_listed_in_the_error_message() {
        let known: Vec<&str> = KNOWN_KEYS.split(", ").collect();
        for &(key, _) in &Feature::KEYS {
            assert!(known.contains(&key), "{key} is missing from KNOWN_KEYS");
        }
        assert_eq!(known.len(), Feature::KEYS.len() + 3);
        for key in known {
            assert!(
                !parse(key).err().unwrap_or_default().contains("unknown"),
                "KNOWN_KEYS lists `{key}`, which -W does not take"
            );
        }
    }

    #[test]
    fn features_reach_the_config_and_later_settings_win() {
        let options = WasmOptions::new(&[
            parse("wide-arithmetic,tail-call=n").unwrap(),
            parse("wide-arithmetic=no,custom-page-sizes=yes,tail-call").unwrap(),
        ]);
        assert_eq!(
            options.features,
            BTreeMap::from([
                (Feature::TailCall, true),
                (Feature::WideArithmetic, false),
                (Feature::CustomPageSizes, true),
            ])
        );
        // Modules that need a feature validate only with it.
        let custom_pages = "(module (memory 1 (pagesize 1)))";
        let engine = |options: &WasmOptions| strata::Engine::new(&options.config()).unwrap();
        let with = engine(&options);
        assert!(strata::Module::new(&with, custom_pages).is_ok());
        let without = engine(&WasmOptions::default());
        let err = strata::Module::new(&without, custom_pages).err().unwrap();
        assert!(err.to_string().contains("custom page sizes"), "{err}");
        let off = WasmOptions::new(&[parse("simd=n").unwrap()]);
        let simd = "(module (func (result v128) (v128.const i64x2 0 0)))";
        assert!(strata::Module::new(&engine(&off), simd).is_err());
        assert!(strata::Module::new(&without, simd).is_ok());
    }
}
