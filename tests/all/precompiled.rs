//! Precompiled modules: `Module::serialize` and `Engine::precompile_module` write an
//! artifact, `Module::deserialize(_file)` load it, and every accidental mismatch is an
//! error that names it.

use crate::call_f;
use strata::{Config, Engine, Instance, Linker, Module, Precompiled, Store, Trap};

const WAT: &str = r#"
(module $precompiled
  (import "host" "add" (func $add (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello, artifact")
  (table 2 funcref)
  (elem (i32.const 0) $double $crash)
  (func $double (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
  (func $crash (param i32) (result i32) unreachable)
  (func (export "run") (param i32) (result i32)
    (call $add
      (call_indirect (param i32) (result i32) (local.get 0) (i32.const 0))
      (i32.load8_u (i32.const 16))))
  (func (export "crash") (result i32)
    (call_indirect (param i32) (result i32) (i32.const 1) (i32.const 1))))
"#;

/// A linker with the `host.add` import of [`WAT`].
fn linker(engine: &Engine) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap("host", "add", |a: i32, b: i32| a + b)
        .unwrap();
    linker
}

/// Instantiates `module` with its `host.add` import and checks what it computes.
fn check_runs(engine: &Engine, module: &Module) {
    let linker = linker(engine);
    let mut store = Store::new(engine, ());
    let instance = linker.instantiate(&mut store, module).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, 20).unwrap(), 40 + i32::from(b'h'));
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    assert_eq!(&memory.data(&store)[16..31], b"hello, artifact");

    let crash = instance
        .get_typed_func::<(), i32>(&mut store, "crash")
        .unwrap();
    let err = crash.call(&mut store, ()).unwrap_err();
    assert_eq!(err.trap(), Some(Trap::UnreachableCodeReached));
    let frames = err.wasm_backtrace().expect("a backtrace").frames();
    assert_eq!(frames[0].func_name(), Some("crash"));
    assert_eq!(frames[0].module_name(), Some("precompiled"));
    assert!(frames[0].module_offset().is_some());
}

fn artifact(engine: &Engine) -> Vec<u8> {
    engine.precompile_module(WAT.as_bytes()).unwrap()
}

fn load(engine: &Engine, bytes: &[u8]) -> strata::Result<Module> {
    // SAFETY: every artifact here was written by this strata, then perhaps damaged on
    // purpose; loading must catch the damage before running anything.
    unsafe { Module::deserialize(engine, bytes) }
}

fn load_err(engine: &Engine, bytes: &[u8]) -> String {
    match load(engine, bytes) {
        Ok(_) => panic!("the artifact loaded"),
        Err(e) => format!("{e:?}"),
    }
}

#[test]
fn serialized_modules_run_as_compiled_ones() {
    let engine = Engine::default();
    let module = Module::new(&engine, WAT).unwrap();
    check_runs(&engine, &module);
    let bytes = module.serialize().unwrap();
    let loaded = load(&engine, &bytes).unwrap();
    check_runs(&engine, &loaded);
    assert!(
        loaded.serialize().unwrap() == bytes,
        "loading keeps the artifact"
    );
    assert!(
        artifact(&engine) == bytes,
        "precompiling writes the same bytes"
    );
}

#[test]
fn artifacts_load_into_another_engine_with_the_same_settings() {
    let bytes = artifact(&Engine::default());
    // Settings that do not change code may differ.
    let mut config = Config::new();
    config.memory_init_cow(false).max_wasm_stack(256 << 10);
    let engine = Engine::new(&config).unwrap();
    check_runs(&engine, &load(&engine, &bytes).unwrap());
}

#[test]
fn artifact_files_are_mapped_and_run() {
    let engine = Engine::default();
    let dir = tempdir("file");
    let path = dir.join("module.swasm");
    std::fs::write(&path, artifact(&engine)).unwrap();
    assert_eq!(
        engine.detect_precompiled_file(&path).unwrap(),
        Some(Precompiled::Module)
    );
    // SAFETY: written just above by this strata; not modified while the module lives.
    let module = unsafe { Module::deserialize_file(&engine, &path) }.unwrap();
    check_runs(&engine, &module);
    // The code that ran is executed from the file's own pages (fields of
    // /proc/self/maps: range, permissions, offset, device, inode, path).
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(
        maps.lines()
            .any(|l| l.ends_with("/module.swasm") && l.split_whitespace().nth(1) == Some("r-xp")),
        "no executable mapping of the file"
    );
    drop(module);

    let missing = dir.join("missing.swasm");
    // SAFETY: the file does not exist, so nothing is loaded.
    let err = unsafe { Module::deserialize_file(&engine, &missing) }.unwrap_err();
    assert!(format!("{err:?}").contains("missing.swasm"), "{err:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn precompiled_bytes_are_told_from_wasm() {
    let engine = Engine::default();
    assert_eq!(
        engine.detect_precompiled(&artifact(&engine)),
        Some(Precompiled::Module)
    );
    assert_eq!(engine.detect_precompiled(WAT.as_bytes()), None);
    assert_eq!(
        engine.detect_precompiled(&wat::parse_str(WAT).unwrap()),
        None
    );
    assert_eq!(engine.detect_precompiled(b""), None);
}

#[test]
fn other_bytes_are_not_artifacts() {
    let engine = Engine::default();
    let wasm = wat::parse_str(WAT).unwrap();
    let err = load_err(&engine, &wasm);
    assert!(err.contains("these are WebAssembly bytes"), "{err}");
    let err = load_err(&engine, b"definitely not an artifact");
    assert!(err.contains("wrong magic number"), "{err}");
}

#[test]
fn truncated_artifacts_are_refused() {
    let engine = Engine::default();
    let bytes = artifact(&engine);
    for len in [8, 12, 30, bytes.len() / 2, bytes.len() - 1] {
        let err = load_err(&engine, &bytes[..len]);
        assert!(err.contains("is truncated"), "{len} bytes: {err}");
    }
}

/// What the test needs of an artifact's header (see `docs/precompiled.md`).
struct Header {
    /// `(start, end)` of the version, target and CPU feature strings.
    strings: Vec<(usize, usize)>,
    /// `(kind, start, end)` of each section.
    sections: Vec<(u32, usize, usize)>,
}

fn parse_header(bytes: &[u8]) -> Header {
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let long = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    let mut pos = 20;
    let mut strings = Vec::new();
    let mut string = |pos: &mut usize| {
        let len = word(*pos);
        strings.push((*pos + 4, *pos + 4 + len));
        *pos += 4 + len;
    };
    string(&mut pos); // version
    string(&mut pos); // target
    let features = word(pos);
    pos += 4;
    for _ in 0..features {
        string(&mut pos);
    }
    let settings = word(pos);
    pos += 4;
    for _ in 0..settings * 2 {
        pos += 4 + word(pos);
    }
    pos += 8; // settings hash
    let count = word(pos);
    pos += 4;
    let sections = (0..count)
        .map(|i| {
            let at = pos + i * 24;
            let (kind, offset, len) = (word(at) as u32, long(at + 4), long(at + 12));
            (kind, offset, offset + len)
        })
        .collect();
    Header { strings, sections }
}

/// The byte range of the section of `kind` (8 is the text, 9 the data).
fn section_range(bytes: &[u8], kind: u32) -> (usize, usize) {
    let (_, start, end) = parse_header(bytes)
        .sections
        .into_iter()
        .find(|&(k, ..)| k == kind)
        .expect("the section is there");
    (start, end)
}

/// The byte range of the text section.
fn text_range(bytes: &[u8]) -> (usize, usize) {
    section_range(bytes, 8)
}

/// Overwrites `bytes[at..]` with `with` and reseals the header's checksum, as another
/// build of strata writing a consistent header would.
fn patch_header(bytes: &mut [u8], at: usize, with: &[u8]) {
    bytes[at..at + with.len()].copy_from_slice(with);
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let crc = crc32fast::hash(&bytes[20..header_len]);
    bytes[16..20].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn artifacts_of_other_versions_and_targets_are_refused() {
    let engine = Engine::default();
    let bytes = artifact(&engine);
    let strings = parse_header(&bytes).strings;

    let mut other = bytes.clone();
    let (start, end) = strings[0];
    patch_header(&mut other, start, &vec![b'9'; end - start]);
    let err = load_err(&engine, &other);
    assert!(
        err.contains("precompiled by strata 9") && err.contains(env!("CARGO_PKG_VERSION")),
        "{err}"
    );

    let mut other = bytes.clone();
    let (start, end) = strings[1];
    patch_header(&mut other, start, &vec![b'z'; end - start]);
    let err = load_err(&engine, &other);
    assert!(err.contains("precompiled for target zzz"), "{err}");

    let mut other = bytes.clone();
    other[8] += 1;
    let err = load_err(&engine, &other);
    let newer = format!("format version {}", other[8]);
    assert!(err.contains(&newer), "{err}");

    // A CPU feature this host cannot have.
    let Some(&(start, end)) = strings.get(2) else {
        return; // the compiler used no optional CPU feature on this host
    };
    let mut other = bytes;
    patch_header(&mut other, start, &vec![b'q'; end - start]);
    let err = load_err(&engine, &other);
    assert!(
        err.contains("for a CPU with `qq") && err.contains("cannot detect on this host"),
        "{err}"
    );
}

#[test]
fn artifacts_with_other_code_settings_are_refused_by_name() {
    let bytes = artifact(&Engine::default());
    type Configure = fn(&mut Config);
    let cases: [(&str, Configure); 6] = [
        ("`consume_fuel` = false, but this engine has true", |c| {
            c.consume_fuel(true);
        }),
        ("`epoch_interruption` = false", |c| {
            c.epoch_interruption(true);
        }),
        (
            "`memory_guard_size` = 33554432, but this engine has 65536",
            |c| {
                c.memory_guard_size(65536);
            },
        ),
        ("`memory_reservation`", |c| {
            c.memory_reservation(1 << 20);
        }),
        (
            "`cranelift_opt_level` = speed, but this engine has none",
            |c| {
                c.cranelift_opt_level(strata::OptLevel::None);
            },
        ),
        ("`wasm_simd` = true, but this engine has false", |c| {
            c.wasm_simd(false);
        }),
    ];
    for (expected, configure) in cases {
        let mut config = Config::new();
        configure(&mut config);
        let engine = Engine::new(&config).unwrap();
        let err = load_err(&engine, &bytes);
        assert!(err.contains(expected), "expected {expected:?} in: {err}");
    }
}

/// Relaxed SIMD instructions compile to other code in deterministic mode, so an
/// artifact records the setting and loads only where it is the same.
#[test]
fn artifacts_compiled_for_deterministic_relaxed_simd_load_only_in_that_mode() {
    let mut deterministic = Config::new();
    deterministic.relaxed_simd_deterministic(true);
    let deterministic = Engine::new(&deterministic).unwrap();
    let bytes = artifact(&deterministic);
    let err = load_err(&Engine::default(), &bytes);
    let expected = "`relaxed_simd_deterministic` = true, but this engine has false";
    assert!(err.contains(expected), "expected {expected:?} in: {err}");
    check_runs(&deterministic, &load(&deterministic, &bytes).unwrap());
    let err = load_err(&deterministic, &artifact(&Engine::default()));
    assert!(
        err.contains("`relaxed_simd_deterministic` = false"),
        "{err}"
    );
}

#[test]
fn corrupted_metadata_and_tables_are_caught_by_their_checksums_when_loading() {
    let engine = Engine::default();
    let bytes = artifact(&engine);
    let header = parse_header(&bytes);
    // A flipped bit in the header's strings, and in each section but the text.
    let mut cases = vec![(25, "header".to_string())];
    let names = [
        "metadata",
        "function table",
        "entry trampoline table",
        "exit trampoline table",
        "trap table",
        "address map",
        "text checksums",
    ];
    for &(kind, start, end) in &header.sections {
        // The trap table (5), the address map (6), the text (8) and the data (9) are
        // checked on first use (below).
        if ![5, 6, 8, 9].contains(&kind) && start < end {
            cases.push((
                start + (end - start) / 2,
                format!("{} section", names[kind as usize - 1]),
            ));
        }
    }
    assert_eq!(
        cases.len(),
        6,
        "every section checked when loading is tried"
    );
    for (at, part) in cases {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        let err = load_err(&engine, &bad);
        assert!(
            err.contains(&format!("corrupted: checksum mismatch in its {part}")),
            "byte {at}: {err}"
        );
    }
}

/// A module whose `f` returns 1.
const ONE: &[u8] = b"(module (func (export \"f\") (result i32) i32.const 1))";

#[test]
fn corrupted_code_is_refused_before_it_runs() {
    let engine = Engine::default();
    let bytes = engine
        .precompile_module(crate::big_code_module().as_bytes())
        .unwrap();
    let (start, end) = text_range(&bytes);
    assert!(end - start > 2 * 0x1_0000, "the text spans several chunks");
    let dir = tempdir("corrupted-text");
    let mut bad = bytes.clone();
    bad[start + 100] ^= 0x10;
    let path = dir.join("bad.swasm");
    std::fs::write(&path, &bad).unwrap();
    // SAFETY: a damaged artifact of this strata; the damage must be caught.
    let from_file = unsafe { Module::deserialize_file(&engine, &path) }.unwrap();
    for module in [load(&engine, &bad).unwrap(), from_file] {
        // The damaged chunk is checked as it first runs: the module loads, its intact
        // code runs, and each call that would reach the damage fails saying why.
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let small = instance
            .get_typed_func::<(), i32>(&mut store, "small")
            .unwrap();
        assert_eq!(small.call(&mut store, ()).unwrap(), 1);
        let big = instance
            .get_typed_func::<(), i32>(&mut store, "big")
            .unwrap();
        for _ in 0..2 {
            let err = format!("{:?}", big.call(&mut store, ()).unwrap_err());
            assert!(
                err.contains("precompiled code is corrupted: text bytes 0x0..0x10000")
                    && err.contains("do not match their checksum"),
                "{err}"
            );
        }
        let err = module.serialize().unwrap_err();
        assert!(format!("{err}").contains("corrupted"), "{err}");
    }

    // Intact, the same module runs.
    let module = load(&engine, &bytes).unwrap();
    assert_eq!(crate::call(&engine, &module, "big").unwrap(), 7);
    assert!(module.serialize().unwrap() == bytes);

    // Damage in the chunks with the trampolines is caught when loading.
    let mut bad = bytes;
    bad[end - 1] ^= 0x10;
    let err = load_err(&engine, &bad);
    assert!(err.contains("precompiled code is corrupted"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn every_single_byte_corruption_is_refused() {
    let engine = Engine::default();
    let bytes = engine.precompile_module(ONE).unwrap();
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let sections = parse_header(&bytes).sections;
    // Each byte is read by something (a header field, a section) or is padding.
    let section_of = |at: usize| sections.iter().find(|s| s.1 <= at && at < s.2);
    let mut refused = 0;
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0xff;
        let module = match load(&engine, &bad) {
            Ok(module) => module,
            Err(e) => {
                assert!(format!("{e:?}").contains("precompiled module"), "{e:?}");
                assert!(
                    at < header_len || section_of(at).is_some(),
                    "padding byte {at} refused"
                );
                refused += 1;
                continue;
            }
        };
        match (section_of(at), call_f(&engine, &module)) {
            // Padding between sections: nothing reads it.
            (None, Ok(1)) => assert!(at >= header_len, "header byte {at} went unnoticed"),
            // In a section checked on first use (the trap table, address map and data
            // are not needed to call `f`), the damage is found before the bytes are
            // used, and before they are passed on.
            (Some(&(kind, ..)), outcome) => {
                assert!([5, 6, 8, 9].contains(&kind), "byte {at} in section {kind}");
                if let Err(e) = outcome {
                    assert!(format!("{e:?}").contains("precompiled code"), "{e:?}");
                }
                let err = module.serialize().unwrap_err();
                assert!(
                    format!("{err:?}").contains("corrupted"),
                    "byte {at}: {err:?}"
                );
                refused += 1;
            }
            (None, outcome) => panic!("padding byte {at}: {outcome:?}"),
        }
    }
    let read: usize = sections.iter().map(|s| s.2 - s.1).sum();
    assert_eq!(refused, header_len + read, "every byte read is checked");
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("strata-precompiled-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn threads_first_running_the_same_code_all_run_it() {
    let engine = Engine::default();
    let bytes = engine
        .precompile_module(crate::big_code_module().as_bytes())
        .unwrap();
    for _ in 0..5 {
        // Fresh each round, so that every chunk but the trampolines' is unchecked and
        // the threads race to be the first to run it.
        let module = load(&engine, &bytes).unwrap();
        let barrier = std::sync::Barrier::new(4);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let mut store = Store::new(&engine, ());
                    let instance = Instance::new(&mut store, &module, &[]).unwrap();
                    let big = instance
                        .get_typed_func::<(), i32>(&mut store, "big")
                        .unwrap();
                    barrier.wait();
                    assert_eq!(big.call(&mut store, ()).unwrap(), 7);
                });
            }
        });
    }
}

#[test]
fn loaded_code_is_checked_on_fiber_stacks_too() {
    let mut config = Config::new();
    config.async_support(true);
    let engine = Engine::new(&config).unwrap();
    let bytes = engine
        .precompile_module(crate::big_code_module().as_bytes())
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for damaged in [false, true] {
        let mut bytes = bytes.clone();
        if damaged {
            let at = text_range(&bytes).0 + 10;
            bytes[at] ^= 0x40;
        }
        let module = load(&engine, &bytes).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = rt
            .block_on(Instance::new_async(&mut store, &module, &[]))
            .unwrap();
        let big = instance
            .get_typed_func::<(), i32>(&mut store, "big")
            .unwrap();
        let result = rt.block_on(big.call_async(&mut store, ()));
        match result {
            Ok(value) => assert!(!damaged && value == 7),
            Err(e) => assert!(
                damaged && format!("{e:?}").contains("precompiled code is corrupted"),
                "{e:?}"
            ),
        }
    }
}

#[test]
fn corrupted_data_is_caught_when_instantiating() {
    let engine = Engine::default();
    let bytes = artifact(&engine);
    let (data_start, data_end) = section_range(&bytes, 9);
    // The memory's image: its first page, the segment at offset 16.
    assert_eq!(data_end - data_start, 4096);
    assert_eq!(&bytes[data_start + 16..data_start + 31], b"hello, artifact");
    let mut bad = bytes;
    bad[data_start + 19] ^= 0x10;
    for memory_init_cow in [true, false] {
        let mut config = Config::new();
        config.memory_init_cow(memory_init_cow);
        let engine = Engine::new(&config).unwrap();
        let module = load(&engine, &bad).unwrap();
        let linker = linker(&engine);
        let mut store = Store::new(&engine, ());
        for _ in 0..2 {
            let err = linker.instantiate(&mut store, &module).unwrap_err();
            assert!(
                format!("{err:?}").contains("corrupted: checksum mismatch in its data section"),
                "{err:?}"
            );
        }
        let err = module.serialize().unwrap_err();
        assert!(format!("{err:?}").contains("data section"), "{err:?}");
    }
}

#[test]
fn corrupted_trap_tables_are_caught_at_the_first_trap() {
    let engine = Engine::default();
    let bytes = artifact(&engine);
    let sections = parse_header(&bytes).sections;
    for kind in [5, 6] {
        let (_, start, end) = sections.iter().copied().find(|s| s.0 == kind).unwrap();
        let mut bad = bytes.clone();
        bad[(start + end) / 2] ^= 0x10;
        let module = load(&engine, &bad).unwrap();
        let linker = linker(&engine);
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        // Code that does not trap runs: the tables are only needed for traps.
        let run = instance
            .get_typed_func::<i32, i32>(&mut store, "run")
            .unwrap();
        assert_eq!(run.call(&mut store, 20).unwrap(), 40 + i32::from(b'h'));
        // A trap needs them to be told from a crash: the call fails saying why.
        let crash = instance
            .get_typed_func::<(), i32>(&mut store, "crash")
            .unwrap();
        let err = format!("{:?}", crash.call(&mut store, ()).unwrap_err());
        assert!(
            err.contains("corrupted: checksum mismatch in its trap table or address map"),
            "section {kind}: {err}"
        );
        assert!(module.serialize().is_err());
    }
}

#[test]
fn memory_images_of_artifact_files_are_mapped_from_the_file() {
    let engine = Engine::default();
    let bytes = artifact(&engine);
    let (data_start, _) = section_range(&bytes, 9);
    let dir = tempdir("image-from-file");
    let path = dir.join("mapped-image.swasm");
    std::fs::write(&path, &bytes).unwrap();
    // SAFETY: written just above by this strata; not modified while the module lives.
    let module = unsafe { Module::deserialize_file(&engine, &path) }.unwrap();
    let linker = linker(&engine);
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    assert_eq!(&memory.data(&store)[16..31], b"hello, artifact");

    // The instance's memory maps the image at the data section's offset in the file
    // (fields of /proc/self/maps: range, permissions, offset, device, inode, path).
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let offsets: Vec<u64> = maps
        .lines()
        .filter(|line| line.ends_with("mapped-image.swasm"))
        .map(|line| u64::from_str_radix(line.split_whitespace().nth(2).unwrap(), 16).unwrap())
        .collect();
    assert!(offsets.contains(&(data_start as u64)), "{offsets:x?}");
    drop(store);
    drop(module);

    // An engine without copy-on-write images copies the segments from the file.
    let mut config = Config::new();
    config.memory_init_cow(false);
    let engine = Engine::new(&config).unwrap();
    // SAFETY: as above.
    let module = unsafe { Module::deserialize_file(&engine, &path) }.unwrap();
    let mut store = Store::new(&engine, ());
    let instance = self::linker(&engine)
        .instantiate(&mut store, &module)
        .unwrap();
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    assert_eq!(&memory.data(&store)[16..31], b"hello, artifact");
    drop(store);
    drop(module);
    std::fs::remove_dir_all(dir).unwrap();
}
