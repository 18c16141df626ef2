//! The on-disk compilation cache of the `cache` feature; see
//! [`Config::cache_dir`](crate::Config::cache_dir).
//!
//! An entry is the artifact [`Module::serialize`] would write, in the file
//! `<key>.swasm`, where `<key>` is the hex SHA-256 of the wasm bytes, of everything
//! the engine's code depends on (its [`ArtifactTarget`](strata_environ::ArtifactTarget)),
//! and of the running executable's size and modification time: development builds of
//! one strata version differ in code generation and vmctx layout without the version
//! telling them apart, and must not load each other's entries.
//! Entries are written under a temporary `.tmp-*` name in the same directory and then
//! renamed, so that a reader sees no entry or a whole one, and are never modified in
//! place: a module mapped from an entry keeps its pages even when the entry is replaced
//! or deleted. A hit is loaded with every check of [`Module::deserialize_file`]; an entry
//! that fails them (a crash while writing, a damaged disk, another writer's bug) is
//! deleted and compiled again. The modification time of an entry is when it was last
//! written or used, and eviction deletes the oldest first.

use super::module::compile_artifact;
use crate::{Engine, Module, Result};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// The extension of entries.
const ENTRY_EXTENSION: &str = ".swasm";

/// The prefix of files being written.
const TMP_PREFIX: &str = ".tmp-";

/// Temporary files older than this were left by a writer that died; they are deleted.
const STALE_TMP_AGE: Duration = Duration::from_secs(10 * 60);

/// Loads the module compiled from `wasm` by `engine` from the cache in `dir`, or
/// compiles it and writes it there. Problems with the cache are logged, never returned:
/// the only errors are those of compiling `wasm`.
pub(crate) fn module_from_cache(engine: &Engine, dir: &Path, wasm: &[u8]) -> Result<Module> {
    let Some(build) = build_identity() else {
        let (module, artifact) = compile_artifact(engine, wasm)?;
        return Module::from_compiled(engine, module, artifact);
    };
    let path = dir.join(format!(
        "{}{ENTRY_EXTENSION}",
        cache_key(engine, build, wasm)
    ));
    if let Some(module) = load_entry(engine, &path) {
        tracing::debug!(path = %path.display(), "loaded a module from the compilation cache");
        return Ok(module);
    }
    let (module, artifact) = compile_artifact(engine, wasm)?;
    if let Err(error) = write_entry(dir, &path, &artifact) {
        tracing::warn!(
            path = %path.display(),
            %error,
            "failed to write a compilation cache entry; the module was compiled all the same"
        );
    } else {
        tracing::debug!(path = %path.display(), "wrote a compilation cache entry");
        evict(dir, &path, engine.config().cache_max_size);
    }
    Module::from_compiled(engine, module, artifact)
}

/// What tells this build of strata from another of the same version: the size and
/// modification time of the running executable (as wasmtime's cache uses the time for
/// local builds), read once per process. Relinking or reinstalling a program changes
/// them, so its old entries are no longer hit and age out. `None`, and no caching, if
/// they cannot be read.
fn build_identity() -> Option<&'static [u8]> {
    static IDENTITY: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    IDENTITY
        .get_or_init(|| {
            let read = || -> io::Result<Vec<u8>> {
                let meta = executable_metadata()?;
                let modified = meta
                    .modified()?
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_err(io::Error::other)?;
                let mut identity = meta.len().to_le_bytes().to_vec();
                identity.extend(modified.as_nanos().to_le_bytes());
                Ok(identity)
            };
            read()
                .inspect_err(|error| {
                    tracing::warn!(
                        %error,
                        "the running executable's size and modification time cannot be \
                         read; modules are compiled without the compilation cache"
                    );
                })
                .ok()
        })
        .as_deref()
}

/// The metadata of the running executable's file, through `/proc/self/exe`, which
/// reaches that file even after it was deleted or replaced by a new build.
#[cfg(target_os = "linux")]
fn executable_metadata() -> io::Result<fs::Metadata> {
    fs::metadata("/proc/self/exe")
}

/// The metadata of the file at the running executable's path (which, if a new build
/// replaced it before the first use of the cache, is the new one's).
#[cfg(not(target_os = "linux"))]
fn executable_metadata() -> io::Result<fs::Metadata> {
    fs::metadata(std::env::current_exe()?)
}

/// The hex SHA-256 of `wasm`, of what `engine` compiles it for (strata version,
/// artifact format, target, CPU features and every code-affecting setting), and of
/// the `build` of strata that compiles it ([`build_identity`]).
fn cache_key(engine: &Engine, build: &[u8], wasm: &[u8]) -> String {
    let target = engine.artifact_target();
    let mut hasher = Sha256::new();
    // Every field and list is prefixed with its length, so that different inputs never
    // hash the same sequence of bytes.
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(b"strata compilation cache");
    field(&strata_environ::FORMAT_VERSION.to_le_bytes());
    field(target.strata_version.as_bytes());
    field(build);
    field(target.target.as_bytes());
    field(&(target.cpu_features.len() as u64).to_le_bytes());
    for feature in &target.cpu_features {
        field(feature.as_bytes());
    }
    field(&(target.settings.len() as u64).to_le_bytes());
    for (name, value) in &target.settings {
        field(name.as_bytes());
        field(value.as_bytes());
    }
    field(wasm);
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether `name` is that of an entry: 64 lowercase hex digits and the extension.
fn is_entry_name(name: &str) -> bool {
    name.strip_suffix(ENTRY_EXTENSION).is_some_and(|key| {
        key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Loads the entry at `path` and marks it used; `None` if there is none, or if it
/// fails to load, in which case it is deleted.
fn load_entry(engine: &Engine, path: &Path) -> Option<Module> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::warn!(
                path = %path.display(),
                %error,
                "failed to open a compilation cache entry; compiling the module"
            );
            return None;
        }
    };
    // Unlike `deserialize_file`, the whole text is checked now rather than as it first
    // runs: damage must mean compiling again, not failing calls later.
    // SAFETY: the embedder vouches, by naming the cache directory, that only it and
    // strata write there (see `Config::cache_dir`), and strata writes entries whole
    // under another name and renames them into place, never modifying or truncating
    // an entry's file once it has this name; entries are replaced or deleted only by
    // renaming or unlinking, which leaves a mapped file's pages as they are. The entry
    // is checked like any artifact: an accident (a torn or damaged file, another
    // version, target or setting) makes this fail, and is handled below.
    let loaded = unsafe { Module::load_file(engine, &file, path) }
        .and_then(|module| module.check_code().map(|()| module));
    match loaded {
        Ok(module) => {
            // Least recently used entries are evicted first.
            if let Err(error) = file.set_modified(SystemTime::now()) {
                tracing::debug!(
                    path = %path.display(),
                    %error,
                    "failed to refresh the modification time of a compilation cache entry"
                );
            }
            Some(module)
        }
        Err(error) if is_damage(&error) => {
            tracing::warn!(
                path = %path.display(),
                error = ?error,
                "deleting a compilation cache entry that failed to load; compiling the module"
            );
            remove(path);
            None
        }
        // Out of descriptors, mappings or memory: the entry may well be fine.
        Err(error) => {
            tracing::warn!(
                path = %path.display(),
                error = ?error,
                "failed to load a compilation cache entry; compiling the module"
            );
            None
        }
    }
}

/// Whether `error`, from loading an entry, means the entry itself is bad (damaged, or
/// not an artifact this engine can use) rather than that loading failed for want of a
/// resource.
fn is_damage(error: &crate::Error) -> bool {
    use strata_vm::VmError;
    error.is::<strata_environ::ArtifactError>()
        || matches!(
            error.downcast_ref::<VmError>(),
            Some(VmError::CorruptedCode { .. } | VmError::CorruptedData | VmError::CorruptedTables)
        )
}

/// Writes `artifact` to `path` in `dir` (created if missing) through a temporary file,
/// so that the entry appears whole or not at all.
fn write_entry(dir: &Path, path: &Path, artifact: &[u8]) -> io::Result<()> {
    create_dir(dir)?;
    let (tmp, mut file) = create_tmp(dir)?;
    let written = file.write_all(artifact).and_then(|()| {
        // The entry is new, so it is the most recently used one. `set_modified` reads
        // the same clock as a hit's refresh, unlike the time the kernel records for the
        // write, which may lag behind it.
        if let Err(error) = file.set_modified(SystemTime::now()) {
            tracing::debug!(path = %tmp.display(), %error, "failed to set the modification time");
        }
        drop(file);
        // Atomic: a concurrent writer's entry (the same bytes) is replaced as a whole.
        fs::rename(&tmp, path)
    });
    if written.is_err() {
        remove(&tmp);
    }
    written
}

/// Creates `dir` and its missing parents, readable and writable by the owner only.
fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates a temporary file in `dir` under a name no other thread or live process
/// uses: the process id and a process-wide counter.
fn create_tmp(dir: &Path) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{TMP_PREFIX}{}-{n}", std::process::id()));
        match File::options().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            // Left by a dead process that had the same id; take the next number.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
}

/// Deletes the least recently used entries of `dir` until they take at most
/// `max_size` bytes, `newest` (just written) last, and temporary files left by dead
/// writers. Nothing else in `dir` is touched.
fn evict(dir: &Path, newest: &Path, max_size: u64) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "failed to list the compilation cache");
            return;
        }
    };
    let now = SystemTime::now();
    let mut total = 0u64;
    // (is `newest`, last used, path, size), to sort the ones to delete first first.
    let mut found: Vec<(bool, SystemTime, PathBuf, u64)> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let is_entry = is_entry_name(name);
        if !is_entry && !name.starts_with(TMP_PREFIX) {
            continue;
        }
        // Of the directory entry itself: a symbolic link is not followed.
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if is_entry {
            total = total.saturating_add(meta.len());
            found.push((entry.path() == newest, modified, entry.path(), meta.len()));
        } else if now
            .duration_since(modified)
            .is_ok_and(|age| age > STALE_TMP_AGE)
        {
            remove(&entry.path());
        }
    }
    if total <= max_size {
        return;
    }
    found.sort();
    for (_, _, path, len) in found {
        if total <= max_size {
            break;
        }
        if remove(&path) {
            total -= len;
        }
    }
}

/// Deletes the file at `path`, logging failures; whether it is gone.
fn remove(path: &Path) -> bool {
    match fs::remove_file(path) {
        Ok(()) => true,
        // Another thread or process deleted it first.
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "failed to delete from the compilation cache");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build identity for the tests of keys.
    const BUILD: &[u8] = b"build";

    #[test]
    fn keys_name_entries() {
        let engine = Engine::default();
        let key = cache_key(&engine, BUILD, b"\0asm\x01\0\0\0");
        assert!(is_entry_name(&format!("{key}{ENTRY_EXTENSION}")), "{key}");
        assert_ne!(key, cache_key(&engine, BUILD, b"\0asm\x01\0\0\0\0"));
        assert!(!is_entry_name("module.swasm"));
        assert!(!is_entry_name(&format!("{key}.wasm")));
        assert!(!is_entry_name(&format!(
            "{}{ENTRY_EXTENSION}",
            key.to_uppercase()
        )));
    }

    #[test]
    fn keys_depend_on_code_settings_only() {
        let wasm = b"\0asm\x01\0\0\0";
        let key = cache_key(&Engine::default(), BUILD, wasm);
        let mut config = crate::Config::new();
        config.consume_fuel(true);
        assert_ne!(key, cache_key(&Engine::new(&config).unwrap(), BUILD, wasm));
        let mut config = crate::Config::new();
        config.max_wasm_stack(256 << 10).cache_dir("elsewhere");
        assert_eq!(key, cache_key(&Engine::new(&config).unwrap(), BUILD, wasm));
    }

    #[test]
    fn keys_depend_on_the_build() {
        let engine = Engine::default();
        let wasm = b"\0asm\x01\0\0\0";
        assert_ne!(
            cache_key(&engine, BUILD, wasm),
            cache_key(&engine, b"another build", wasm)
        );
        // The test binary's identity: its size, then a nonzero modification time.
        let build = build_identity().expect("the test executable's metadata is readable");
        let len = std::env::current_exe().unwrap().metadata().unwrap().len();
        assert_eq!(build[..8], len.to_le_bytes());
        assert_eq!(build.len(), 8 + 16);
        assert!(build[8..].iter().any(|&b| b != 0));
        assert_eq!(build_identity(), Some(build), "read once");
    }
}
