//! Whether and where `strata run` and `strata wast` cache compiled modules: in the
//! user's cache directory unless `-C` or a wasmtime cache config file says otherwise.
//!
//! The file is wasmtime's TOML format: a `[cache]` table whose keys that strata has a
//! meaning for are `enabled` (`true` or `false`), `directory` (an absolute path) and
//! `files-total-size-soft-limit` (`"{integer}"` bytes, or with a unit: `K`, `M`, `G`,
//! `T`, `P` for powers of 1000, `Ki`, `Mi`, `Gi`, `Ti`, `Pi` for powers of 1024), which
//! becomes [`strata::Config::cache_max_size`]. Any other key is an error that names it,
//! wasmtime's tuning of its cache worker and compression included: strata has neither.
//! `strata compile` never caches (nor does `wasmtime compile`): it writes its artifact.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Deserializer, de::Error as _};

use super::codegen_options::CodegenOptions;

/// A cache config file: wasmtime's, which puts every setting in `[cache]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    /// The settings.
    cache: CacheTable,
}

/// The `[cache]` table of a config file; a missing key keeps the default.
#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CacheTable {
    /// Whether modules are cached.
    enabled: Option<bool>,
    /// Where.
    #[serde(default, deserialize_with = "absolute_path")]
    directory: Option<PathBuf>,
    /// The most bytes the entries may take together.
    #[serde(default, deserialize_with = "disk_space")]
    files_total_size_soft_limit: Option<u64>,
}

/// The cache to set up.
#[derive(Debug, PartialEq, Eq)]
struct Cache {
    /// Its directory.
    dir: PathBuf,
    /// Its size bound, if not strata's default.
    max_size: Option<u64>,
}

/// Sets up the compilation cache in `config` as `options` say: off with `-C cache=n`
/// (the config file is then not read) or the file's `enabled = false` (unless
/// `-C cache=y`); else in `-C cache-dir`, the file's `directory`, or the user's cache
/// directory ([`default_dir`]), and without one, uncached (which is logged).
///
/// # Errors
/// Fails if the `-C cache-config` file cannot be read or is not a valid cache config;
/// the message names the file, and the key and line at fault.
pub fn configure(options: &CodegenOptions, config: &mut strata::Config) -> anyhow::Result<()> {
    match resolve(options, default_dir)? {
        Some(cache) => {
            tracing::debug!(dir = %cache.dir.display(), "caching compiled modules");
            config.cache_dir(cache.dir);
            if let Some(bytes) = cache.max_size {
                config.cache_max_size(bytes);
            }
        }
        None => tracing::debug!("the compilation cache is off"),
    }
    Ok(())
}

/// The cache `options` ask for, with `default_dir` giving the user's cache directory;
/// `None` for none.
fn resolve(
    options: &CodegenOptions,
    default_dir: impl FnOnce() -> Option<PathBuf>,
) -> anyhow::Result<Option<Cache>> {
    if options.cache == Some(false) {
        return Ok(None);
    }
    let file = match &options.cache_config {
        Some(path) => read_config(path)?,
        None => CacheTable::default(),
    };
    // The command line wins over the file.
    if !options.cache.or(file.enabled).unwrap_or(true) {
        return Ok(None);
    }
    let Some(dir) = options
        .cache_dir
        .clone()
        .or(file.directory)
        .or_else(default_dir)
    else {
        tracing::warn!(
            "no cache directory: neither XDG_CACHE_HOME nor HOME is an absolute path; \
             compiling without the compilation cache"
        );
        return Ok(None);
    };
    Ok(Some(Cache {
        dir,
        max_size: file.files_total_size_soft_limit,
    }))
}

/// Reads and parses the cache config file at `path`.
fn read_config(path: &Path) -> anyhow::Result<CacheTable> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the cache config file {}", path.display()))?;
    parse_config(&text).with_context(|| format!("invalid cache config file {}", path.display()))
}

/// Parses the text of a cache config file.
fn parse_config(text: &str) -> Result<CacheTable, toml::de::Error> {
    toml::from_str::<ConfigFile>(text).map(|file| file.cache)
}

/// Deserializes `directory`, which must be absolute (as wasmtime requires): relative
/// to what would be anyone's guess.
fn absolute_path<'de, D: Deserializer<'de>>(de: D) -> Result<Option<PathBuf>, D::Error> {
    let path = PathBuf::deserialize(de)?;
    if path.is_absolute() {
        Ok(Some(path))
    } else {
        Err(D::Error::custom(format!(
            "`directory` must be an absolute path, not `{}`",
            path.display()
        )))
    }
}

/// Deserializes `files-total-size-soft-limit`: see [`parse_disk_space`].
fn disk_space<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
    let text = String::deserialize(de)?;
    parse_disk_space(&text)
        .map(Some)
        .map_err(|e| D::Error::custom(format!("`files-total-size-soft-limit`: {e}")))
}

/// Parses a number of bytes in wasmtime's format: an integer, then (spaces allowed) an
/// optional unit, `K`, `M`, `G`, `T`, `P` (powers of 1000) or `Ki`, `Mi`, `Gi`, `Ti`,
/// `Pi` (powers of 1024).
fn parse_disk_space(text: &str) -> Result<u64, String> {
    let invalid = || {
        format!(
            "invalid size `{text}`: expected bytes, or a number with a unit among K, Ki, M, \
             Mi, G, Gi, T, Ti, P, Pi (\"512Mi\")"
        )
    };
    let trimmed = text.trim();
    let digits = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits);
    let n: u64 = number.parse().map_err(|_| invalid())?;
    let unit: u64 = match unit.trim_start() {
        "" => 1,
        "K" => 1_000,
        "Ki" => 1 << 10,
        "M" => 1_000_000,
        "Mi" => 1 << 20,
        "G" => 1_000_000_000,
        "Gi" => 1 << 30,
        "T" => 1_000_000_000_000,
        "Ti" => 1 << 40,
        "P" => 1_000_000_000_000_000,
        "Pi" => 1 << 50,
        _ => return Err(invalid()),
    };
    n.checked_mul(unit)
        .ok_or_else(|| format!("size `{text}` is too large"))
}

/// The user's cache directory for strata, from this process's environment (see
/// [`default_dir_in`]).
fn default_dir() -> Option<PathBuf> {
    default_dir_in(|name| std::env::var_os(name))
}

/// `$XDG_CACHE_HOME/strata`, else `$HOME/.cache/strata`: the XDG base directory
/// specification's cache directory, where wasmtime's (through the `directories`
/// crate) is on Linux. `var` reads an environment variable.
#[cfg(not(target_os = "macos"))]
fn default_dir_in(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let cache_home = absolute_path_in(&var, "XDG_CACHE_HOME")
        .or_else(|| Some(absolute_path_in(&var, "HOME")?.join(".cache")))?;
    Some(cache_home.join("strata"))
}

/// `$HOME/Library/Caches/strata`: the user's cache directory on macOS. `var` reads an
/// environment variable.
#[cfg(target_os = "macos")]
fn default_dir_in(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    Some(absolute_path_in(&var, "HOME")?.join("Library/Caches/strata"))
}

/// The value of the environment variable `name`, as `var` reads it, if it is an
/// absolute path: the XDG specification has relative (and empty) values ignored.
fn absolute_path_in(var: &impl Fn(&str) -> Option<OsString>, name: &str) -> Option<PathBuf> {
    var(name)
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads variables from `vars` only.
    fn env<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| OsString::from(value))
        }
    }

    #[test]
    #[cfg(not(target_os = "macos"))]
    fn the_default_dir_follows_the_xdg_specification() {
        let dir = |vars: &[(&str, &str)]| default_dir_in(env(vars));
        let home = ("HOME", "/home/u");
        assert_eq!(
            dir(&[("XDG_CACHE_HOME", "/var/cache/u"), home]),
            Some(PathBuf::from("/var/cache/u/strata"))
        );
        let fallback = Some(PathBuf::from("/home/u/.cache/strata"));
        assert_eq!(dir(&[home]), fallback);
        assert_eq!(dir(&[("XDG_CACHE_HOME", ""), home]), fallback);
        assert_eq!(dir(&[("XDG_CACHE_HOME", "cache"), home]), fallback);
        assert_eq!(dir(&[("HOME", "")]), None);
        assert_eq!(dir(&[("HOME", "relative")]), None);
        assert_eq!(dir(&[]), None);
    }

    #[test]
    #[cfg(target_os = "macos")]
    fn the_default_dir_is_in_library_caches() {
        let dir = |vars: &[(&str, &str)]| default_dir_in(env(vars));
        assert_eq!(
            dir(&[("HOME", "/Users/u")]),
            Some(PathBuf::from("/Users/u/Library/Caches/strata"))
        );
        assert_eq!(dir(&[("HOME", "")]), None);
    }

    #[test]
    fn sizes_take_wasmtime_units() {
        for (text, bytes) in [
            ("0", 0),
            ("4096", 4096),
            ("2K", 2_000),
            ("2Ki", 2_048),
            ("512Mi", 512 << 20),
            (" 3 G ", 3_000_000_000),
            ("1Gi", 1 << 30),
            ("1T", 1_000_000_000_000),
            ("1Ti", 1 << 40),
            ("2P", 2_000_000_000_000_000),
            ("2Pi", 2 << 50),
        ] {
            assert_eq!(parse_disk_space(text), Ok(bytes), "{text:?}");
        }
        for bad in ["", "Mi", "1.5Gi", "-1", "1 GiB", "1mi", "1k"] {
            let err = parse_disk_space(bad).unwrap_err();
            assert!(err.contains(&format!("`{bad}`")), "{bad:?}: {err}");
        }
        assert!(
            parse_disk_space("20000Pi")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn config_files_take_wasmtime_keys() {
        assert_eq!(
            parse_config(
                "[cache]\nenabled = true\ndirectory = \"/c\"\n\
                 files-total-size-soft-limit = \"1Gi\"\n"
            ),
            Ok(CacheTable {
                enabled: Some(true),
                directory: Some(PathBuf::from("/c")),
                files_total_size_soft_limit: Some(1 << 30),
            })
        );
        assert_eq!(parse_config("[cache]\n"), Ok(CacheTable::default()));
        let disabled = parse_config("[cache]\nenabled = false\n").unwrap();
        assert_eq!(disabled.enabled, Some(false));
    }

    #[test]
    fn config_file_errors_name_the_key() {
        for (text, needles) in [
            (
                "[cache]\ncleanup-interval = \"30m\"\n",
                &["line 2", "unknown field `cleanup-interval`", "`directory`"][..],
            ),
            ("[cache]\n[extra]\n", &["unknown field `extra`"]),
            ("", &["missing field `cache`"]),
            (
                "[cache]\ndirectory = \"cache\"\n",
                &["line 2", "absolute path, not `cache`"],
            ),
            (
                "[cache]\nfiles-total-size-soft-limit = \"lots\"\n",
                &["`files-total-size-soft-limit`: invalid size `lots`"],
            ),
            (
                "[cache]\nfiles-total-size-soft-limit = 1024\n",
                &["invalid type: integer"],
            ),
            ("[cache]\nenabled = \"yes\"\n", &["invalid type: string"]),
            ("[cache\n", &["line 1"]),
        ] {
            let err = parse_config(text).unwrap_err().to_string();
            for needle in needles {
                assert!(err.contains(needle), "{text:?}: {needle:?} not in {err}");
            }
        }
    }

    #[test]
    fn the_command_line_wins_over_the_file_and_the_default() {
        let default = || Some(PathBuf::from("/default"));
        let cache = |dir: &str| {
            Some(Cache {
                dir: PathBuf::from(dir),
                max_size: None,
            })
        };
        let resolved = |options: &CodegenOptions| resolve(options, default).unwrap();
        assert_eq!(resolved(&CodegenOptions::default()), cache("/default"));
        let dir = CodegenOptions {
            cache_dir: Some(PathBuf::from("/mine")),
            ..CodegenOptions::default()
        };
        assert_eq!(resolved(&dir), cache("/mine"));
        // `cache=n` does not even read the config file, which does not exist.
        let off = CodegenOptions {
            cache: Some(false),
            cache_config: Some(PathBuf::from("/no/such/file.toml")),
            ..dir.clone()
        };
        assert_eq!(resolved(&off), None);
        let err = resolve(&CodegenOptions { cache: None, ..off }, default).unwrap_err();
        assert!(format!("{err:#}").contains("/no/such/file.toml"), "{err:#}");
        // Without any directory, uncached.
        assert_eq!(resolve(&CodegenOptions::default(), || None).unwrap(), None);
    }
}
