//! The on-disk compilation cache (`Config::cache_dir`): `Module::new` loads an entry
//! made from the same bytes with the same settings instead of compiling, never trusts
//! an entry that fails to load, keeps the directory under its size bound, and is safe
//! to share between threads and processes.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, SystemTime};
use strata::{Config, Engine, Instance, Module, Store};

/// The module the tests cache: `answer` returns 42.
const WAT: &str = r#"
(module $cached
  (memory 1)
  (data (i32.const 8) "\2a")
  (func $load (param i32) (result i32) (i32.load8_u (local.get 0)))
  (func (export "answer") (result i32)
    (local $i i32) (local $sum i32)
    (loop $again
      (local.set $sum (i32.add (local.get $sum) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 10))))
    ;; 45 - 45 + 42
    (i32.add (i32.sub (local.get $sum) (i32.const 45)) (call $load (i32.const 8)))))
"#;

/// Another module with the same export, returning 7: finding it in place of [`WAT`]
/// shows that an entry was loaded.
const SUBSTITUTE: &str = r#"
(module $substitute
  (func (export "answer") (result i32) i32.const 7))
"#;

/// The environment variable that gives `cache_child_process` its cache directory.
const CHILD_DIR: &str = "STRATA_CACHE_TEST_DIR";

/// A directory of this test's own under the target directory, removed if a previous
/// run left it, and not created: the cache creates it.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cache")
        .join(format!("{name}-{}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir).unwrap();
    }
    dir
}

/// An engine with the default settings, changed by `configure`, caching in `dir`.
fn cached_engine(dir: &Path, configure: impl FnOnce(&mut Config)) -> Engine {
    let mut config = Config::new();
    configure(&mut config);
    config.cache_dir(dir);
    Engine::new(&config).unwrap()
}

/// Calls the module's `answer` export.
fn answer(engine: &Engine, module: &Module) -> i32 {
    let mut store = Store::new(engine, ());
    let instance = Instance::new(&mut store, module, &[]).unwrap();
    let answer = instance
        .get_typed_func::<(), i32>(&mut store, "answer")
        .unwrap();
    answer.call(&mut store, ()).unwrap()
}

/// The files in `dir` (none if it does not exist) whose names satisfy `pick`, sorted.
pub(crate) fn files(dir: &Path, pick: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = read
        .map(|entry| entry.unwrap().path())
        .filter(|path| pick(path.file_name().unwrap().to_str().unwrap()))
        .collect();
    found.sort();
    found
}

/// The cache entries in `dir`.
pub(crate) fn entries(dir: &Path) -> Vec<PathBuf> {
    files(dir, |name| name.ends_with(".swasm"))
}

/// The temporary files in `dir`.
fn tmp_files(dir: &Path) -> Vec<PathBuf> {
    files(dir, |name| name.starts_with(".tmp-"))
}

/// The only entry in `dir`.
fn only_entry(dir: &Path) -> PathBuf {
    match &entries(dir)[..] {
        [entry] => entry.clone(),
        other => panic!("expected one entry, found {other:?}"),
    }
}

/// Replaces the file at `path` with `bytes` by renaming a new file onto it, as the
/// cache does, so that no module mapped from the old file sees its pages change.
fn replace(path: &Path, bytes: &[u8]) {
    let replacement = path.with_file_name("replacement");
    fs::write(&replacement, bytes).unwrap();
    fs::rename(&replacement, path).unwrap();
}

/// The modification time of the file at `path`.
pub(crate) fn modified(path: &Path) -> SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

/// Sets the modification time of the file at `path`.
pub(crate) fn set_modified(path: &Path, time: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

/// Checks that the entry at `path` is a valid artifact of [`WAT`] for `engine`.
fn check_entry(engine: &Engine, path: &Path) {
    // SAFETY: written by this strata's cache; the test does not modify it while the
    // module lives.
    let module = unsafe { Module::deserialize_file(engine, path) }.unwrap();
    assert_eq!(answer(engine, &module), 42);
}

#[test]
fn a_compile_writes_one_entry_that_other_engines_hit() {
    let dir = fresh_dir("hit").join("nested");
    let engine = cached_engine(&dir, |_| {});
    let module = Module::new(&engine, WAT).unwrap();
    assert_eq!(answer(&engine, &module), 42);
    let entry = only_entry(&dir);
    assert!(tmp_files(&dir).is_empty());
    assert!(fs::read(&entry).unwrap() == module.serialize().unwrap());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the created directory is private: {mode:o}"
        );
    }

    // A hit cannot be told from a compile by its result, so the entry is replaced with
    // the valid artifact of another module whose `answer` returns 7: an engine that
    // loads the entry gets that module, one that compiles gets 42.
    replace(
        &entry,
        &engine.precompile_module(SUBSTITUTE.as_bytes()).unwrap(),
    );
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    set_modified(&entry, an_hour_ago);
    let other = cached_engine(&dir, |_| {});
    let module = Module::new(&other, WAT).unwrap();
    assert_eq!(answer(&other, &module), 7, "the entry was loaded");
    assert_eq!(module.name(), Some("substitute"));
    assert!(modified(&entry) > an_hour_ago, "a hit marks the entry used");
    assert_eq!(entries(&dir), [entry]);
    // The same engine hits too, and an engine without a cache compiles.
    assert_eq!(answer(&engine, &Module::new(&engine, WAT).unwrap()), 7);
    let uncached = Engine::default();
    assert_eq!(answer(&uncached, &Module::new(&uncached, WAT).unwrap()), 42);
    drop(module);

    // Modules that do not compile are errors, as without a cache, and leave no entry.
    let err = Module::new(&engine, "(module (func (result i32)))").unwrap_err();
    assert!(format!("{err:?}").contains("type mismatch"), "{err:?}");
    assert_eq!(entries(&dir).len(), 1);
    fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

/// The byte range of section `kind` in the artifact `bytes`, read from its header as
/// `crates/environ/src/artifact.rs` describes it.
fn section(bytes: &[u8], kind: u32) -> std::ops::Range<usize> {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let skip_str = |at: usize| at + 4 + u32_at(at) as usize;
    let mut at = skip_str(skip_str(20)); // strata version, target
    let features = u32_at(at);
    at += 4;
    for _ in 0..features {
        at = skip_str(at);
    }
    let settings = u32_at(at);
    at += 4;
    for _ in 0..settings {
        at = skip_str(skip_str(at));
    }
    at += 8; // settings hash
    let sections = u32_at(at);
    at += 4;
    for _ in 0..sections {
        if u32_at(at) == kind {
            let start = usize::try_from(u64_at(at + 4)).unwrap();
            let len = usize::try_from(u64_at(at + 12)).unwrap();
            return start..start + len;
        }
        at += 24;
    }
    panic!("no section {kind}");
}

#[test]
fn corrupted_entries_are_not_trusted() {
    const META: u32 = 1;
    const TEXT: u32 = 8;
    let dir = fresh_dir("corrupted");
    let engine = cached_engine(&dir, |_| {});
    let valid = Module::new(&engine, WAT).unwrap().serialize().unwrap();
    let entry = only_entry(&dir);
    let text = section(&valid, TEXT);
    let meta = section(&valid, META);
    assert_eq!(text.end, valid.len(), "the text ends the artifact");

    let flipped = |at: usize| {
        let mut bytes = valid.clone();
        bytes[at] ^= 0x40;
        bytes
    };
    let damaged = [
        (
            "a flipped byte in the middle of the text",
            flipped(text.start + text.len() / 2),
        ),
        ("a flipped byte near the end", flipped(valid.len() - 2)),
        (
            "a flipped byte in the metadata",
            flipped(meta.start + meta.len() / 2),
        ),
        ("a truncated entry", valid[..valid.len() / 2].to_vec()),
        (
            "a header without its sections",
            valid[..meta.start].to_vec(),
        ),
        ("an empty entry", Vec::new()),
        (
            "bytes that are no artifact",
            b"not an artifact at all".to_vec(),
        ),
    ];
    for (what, bytes) in damaged {
        replace(&entry, &bytes);
        // A new engine each time, as another process would have.
        let engine = cached_engine(&dir, |_| {});
        let module = Module::new(&engine, WAT).unwrap();
        assert_eq!(answer(&engine, &module), 42, "{what}");
        assert_eq!(entries(&dir), std::slice::from_ref(&entry), "{what}");
        assert!(
            fs::read(&entry).unwrap() == valid,
            "{what}: the entry is rewritten"
        );
        check_entry(&engine, &entry);
    }
    assert!(tmp_files(&dir).is_empty());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn damaged_code_that_loading_leaves_for_later_is_checked_on_a_hit() {
    // `deserialize_file` would check the first function's chunk only when it first
    // runs, but a cache hit checks it at once.
    let wat = crate::big_code_module();
    let dir = fresh_dir("lazy-text");
    let engine = cached_engine(&dir, |_| {});
    let valid = Module::new(&engine, &wat).unwrap().serialize().unwrap();
    let entry = only_entry(&dir);
    let text = section(&valid, 8);
    let mut damaged = valid.clone();
    damaged[text.start + 10] ^= 0x40;
    replace(&entry, &damaged);

    let engine = cached_engine(&dir, |_| {});
    let module = Module::new(&engine, &wat).unwrap();
    assert_eq!(crate::call(&engine, &module, "big").unwrap(), 7);
    assert!(fs::read(&entry).unwrap() == valid, "the entry is rewritten");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn entries_made_with_other_settings_are_refused_and_recompiled() {
    let dir = fresh_dir("settings");
    let engine = cached_engine(&dir, |_| {});
    let valid = Module::new(&engine, WAT).unwrap().serialize().unwrap();
    let entry = only_entry(&dir);

    // The artifact of the same module with fuel metering, under this engine's name: a
    // store has no fuel at first, so its `answer` would trap if it were loaded.
    let mut fuel = Config::new();
    fuel.consume_fuel(true);
    let fuel_artifact = Engine::new(&fuel)
        .unwrap()
        .precompile_module(WAT.as_bytes())
        .unwrap();
    assert!(fuel_artifact != valid);
    replace(&entry, &fuel_artifact);
    let engine = cached_engine(&dir, |_| {});
    let module = Module::new(&engine, WAT).unwrap();
    assert_eq!(answer(&engine, &module), 42);
    assert!(fs::read(&entry).unwrap() == valid, "the entry is rewritten");

    // An engine with fuel metering has an entry of its own.
    let fuel_engine = cached_engine(&dir, |c| {
        c.consume_fuel(true);
    });
    let fuel_module = Module::new(&fuel_engine, WAT).unwrap();
    let mut store = Store::new(&fuel_engine, ());
    store.set_fuel(1_000).unwrap();
    let instance = Instance::new(&mut store, &fuel_module, &[]).unwrap();
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "answer")
        .unwrap();
    assert_eq!(run.call(&mut store, ()).unwrap(), 42);
    assert!(store.get_fuel().unwrap() < 1_000, "the fuel module was run");
    let all = entries(&dir);
    assert_eq!(all.len(), 2);
    assert!(all.contains(&entry));
    fs::remove_dir_all(dir).unwrap();
}

/// A module whose `answer` returns `n`.
fn numbered(n: i32) -> String {
    format!("(module (func (export \"answer\") (result i32) i32.const {n}))")
}

#[test]
fn the_least_recently_used_entries_are_evicted() {
    let dir = fresh_dir("evict");
    let entry_size = Engine::default()
        .precompile_module(numbered(0).as_bytes())
        .unwrap()
        .len() as u64;
    // Room for two entries, not three.
    let max_size = 2 * entry_size + entry_size / 2;
    let engine = cached_engine(&dir, |c| {
        c.cache_max_size(max_size);
    });
    // Files that are not entries, which eviction must leave alone; and a temporary file
    // a writer that died left an hour ago, which goes, and a recent one, which stays.
    fs::create_dir_all(dir.join("subdir")).unwrap();
    let foreign = [dir.join("mine.swasm"), dir.join("notes.txt")];
    for path in &foreign {
        fs::write(path, vec![0; 3 * entry_size as usize]).unwrap();
    }
    let stale_tmp = dir.join(".tmp-stale");
    let live_tmp = dir.join(".tmp-live");
    fs::write(&stale_tmp, b"partial").unwrap();
    fs::write(&live_tmp, b"partial").unwrap();
    set_modified(&stale_tmp, SystemTime::now() - Duration::from_secs(3600));
    let ours = |dir: &Path| {
        let mut found = entries(dir);
        found.retain(|path| !foreign.contains(path));
        found
    };
    let total = |entries: &[PathBuf]| -> u64 {
        entries.iter().map(|e| fs::metadata(e).unwrap().len()).sum()
    };
    // Compiles module `n` and returns its (new) entry.
    let compile = |n: i32| {
        let before = ours(&dir);
        assert_eq!(
            answer(&engine, &Module::new(&engine, numbered(n)).unwrap()),
            n
        );
        let after = ours(&dir);
        assert!(total(&after) <= max_size, "{after:?}");
        let new: Vec<_> = after.iter().filter(|e| !before.contains(e)).collect();
        assert_eq!(new.len(), 1, "module {n}: {before:?} -> {after:?}");
        new[0].clone()
    };

    let first = compile(1);
    let second = compile(2);
    assert_eq!(ours(&dir).len(), 2);
    // Set the order of use explicitly: the second is older than the first...
    let now = SystemTime::now();
    set_modified(&first, now - Duration::from_secs(2 * 3600));
    set_modified(&second, now - Duration::from_secs(3 * 3600));
    // ...until the first is hit again, which makes it the most recently used.
    assert_eq!(
        answer(&engine, &Module::new(&engine, numbered(1)).unwrap()),
        1
    );
    assert!(modified(&first) > now - Duration::from_secs(3600));

    let third = compile(3);
    assert_eq!(ours(&dir), {
        let mut kept = vec![first.clone(), third];
        kept.sort();
        kept
    });
    // And on: the entry just written always stays, the total within the bound.
    for n in 4..8 {
        let newest = compile(n);
        assert_eq!(ours(&dir).len(), 2);
        assert!(ours(&dir).contains(&newest));
    }
    for path in &foreign {
        assert_eq!(fs::metadata(path).unwrap().len(), 3 * entry_size);
    }
    assert!(dir.join("subdir").is_dir());
    assert!(!stale_tmp.exists(), "a stale temporary file is deleted");
    assert!(
        live_tmp.exists(),
        "a recent temporary file may still be written"
    );

    // An entry larger than the bound is not kept.
    let tiny = cached_engine(&dir, |c| {
        c.cache_max_size(entry_size / 2);
    });
    assert_eq!(answer(&tiny, &Module::new(&tiny, numbered(9)).unwrap()), 9);
    assert!(ours(&dir).is_empty());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn threads_with_their_own_engines_compile_the_same_module_at_once() {
    const THREADS: usize = 8;
    let dir = fresh_dir("threads");
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                let engine = cached_engine(&dir, |_| {});
                barrier.wait();
                let module = Module::new(&engine, WAT).unwrap();
                assert_eq!(answer(&engine, &module), 42);
            });
        }
    });
    let entry = only_entry(&dir);
    assert!(tmp_files(&dir).is_empty());
    let engine = Engine::default();
    check_entry(&engine, &entry);
    assert!(fs::read(&entry).unwrap() == engine.precompile_module(WAT.as_bytes()).unwrap());
    fs::remove_dir_all(dir).unwrap();
}

/// Starts the test binary `exe`, running only `cache_child_process` on the cache in
/// `dir`.
fn spawn_child(exe: &Path, dir: &Path) -> std::process::Child {
    Command::new(exe)
        .args([
            "--exact",
            "cache::cache_child_process",
            "--include-ignored",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a child of [`spawn_child`], which must have run its test and passed.
fn wait_child(child: std::process::Child) {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child test ran: {stdout}");
}

#[test]
fn processes_compile_the_same_module_at_once() {
    let dir = fresh_dir("processes");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2).map(|_| spawn_child(&exe, &dir)).collect();
    children.into_iter().for_each(wait_child);
    let entry = only_entry(&dir);
    assert!(tmp_files(&dir).is_empty());
    check_entry(&Engine::default(), &entry);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn another_build_of_the_same_version_has_entries_of_its_own() {
    // A copy of this test binary is a file with another modification time, as a
    // rebuild of strata at another commit (with the same version) would be.
    let dir = fresh_dir("builds");
    let this_build = std::env::current_exe().unwrap();
    let other_build = dir.with_file_name(format!("other-build-{}", std::process::id()));
    fs::create_dir_all(other_build.parent().unwrap()).unwrap();
    fs::copy(&this_build, &other_build).unwrap();
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    set_modified(&other_build, an_hour_ago);

    wait_child(spawn_child(&this_build, &dir));
    let first = only_entry(&dir);
    wait_child(spawn_child(&other_build, &dir));
    let both = entries(&dir);
    assert_eq!(both.len(), 2, "the other build compiled again: {both:?}");
    // From then on each build finds its own entry: no third one appears.
    wait_child(spawn_child(&other_build, &dir));
    wait_child(spawn_child(&this_build, &dir));
    assert_eq!(entries(&dir), both);
    assert!(both.contains(&first));
    fs::remove_file(other_build).unwrap();
    fs::remove_dir_all(dir).unwrap();
}

/// Compiles [`WAT`] through the cache in the directory `STRATA_CACHE_TEST_DIR` names
/// (or one of its own).
#[test]
#[ignore = "runs in the child processes of processes_compile_the_same_module_at_once, \
            which pass it the shared cache directory in STRATA_CACHE_TEST_DIR"]
fn cache_child_process() {
    let dir = std::env::var_os(CHILD_DIR).map_or_else(|| fresh_dir("child"), PathBuf::from);
    let engine = cached_engine(&dir, |_| {});
    let module = Module::new(&engine, WAT).unwrap();
    assert_eq!(answer(&engine, &module), 42);
}

#[test]
fn an_unusable_cache_dir_still_compiles() {
    let base = fresh_dir("unusable");
    fs::create_dir_all(&base).unwrap();
    let file = base.join("file");
    fs::write(&file, b"not a directory").unwrap();
    // A directory under a regular file cannot be created; the file itself is no
    // directory to write entries in.
    for dir in [file.join("cache"), file.clone()] {
        let engine = cached_engine(&dir, |_| {});
        let module = Module::new(&engine, WAT).unwrap();
        assert_eq!(answer(&engine, &module), 42, "{}", dir.display());
    }
    assert_eq!(fs::read(&file).unwrap(), b"not a directory");
    assert_eq!(files(&base, |_| true), [file]);
    fs::remove_dir_all(base).unwrap();
}
