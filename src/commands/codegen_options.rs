//! The `-C KEY[=VALUE][,KEY[=VALUE]..]` options of `strata run` and `strata wast`:
//! whether and where compiled modules are cached, and whether the compiler inlines.
//! `cache`, `cache-config` and `inlining` are wasmtime's `-C` keys (its
//! `CodegenOptions`); `cache-dir` is strata's shorthand for a config file that only
//! names the directory.

use std::path::PathBuf;

use super::cache_settings;
use super::option_list;

/// The keys `-C` understands, for error messages.
const KNOWN_KEYS: &str = "cache, cache-config, cache-dir, inlining";

/// The help of `-C`, shared by the commands that take it.
pub const HELP: &str = "Compilation cache: compiled modules are kept on disk and loaded \
                        from there next time, by default in the user's cache directory \
                        ($XDG_CACHE_HOME/strata, else ~/.cache/strata; on macOS \
                        ~/Library/Caches/strata). `cache=n` turns \
                        it off; `cache-dir=DIR` puts it in DIR; `cache-config=FILE` reads \
                        a wasmtime cache config file (TOML: a [cache] table with \
                        `enabled`, `directory` and `files-total-size-soft-limit`, e.g. \
                        \"512Mi\"). Options on the command line win over the file. \
                        `inlining=n` stops the compiler from inlining small leaf \
                        functions into their callers (on by default). \
                        Repeatable and comma-separated";

/// One setting given with `-C`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodegenOption {
    /// `cache[=y|n]`: the compilation cache on or off (a bare key means on).
    Cache(bool),
    /// `cache-config=FILE`: the cache settings in a wasmtime cache config file.
    CacheConfig(PathBuf),
    /// `cache-dir=DIR`: the directory of the cache.
    CacheDir(PathBuf),
    /// `inlining[=y|n]`: [`strata::Config::compiler_inlining`].
    Inlining(bool),
}

/// The settings of one `-C` argument (a comma-separated list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodegenOptionList(Vec<CodegenOption>);

/// Every `-C` setting combined; a key given twice keeps its last value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodegenOptions {
    /// `cache`: on or off, if given.
    pub cache: Option<bool>,
    /// `cache-config`: the config file to read, if any.
    pub cache_config: Option<PathBuf>,
    /// `cache-dir`: the directory, which wins over the config file's.
    pub cache_dir: Option<PathBuf>,
    /// `inlining`: on or off, if given.
    pub inlining: Option<bool>,
}

impl CodegenOptions {
    /// Combines the `-C` arguments in command-line order.
    pub fn new(lists: &[CodegenOptionList]) -> CodegenOptions {
        let mut options = CodegenOptions::default();
        for option in lists.iter().flat_map(|list| &list.0) {
            match option {
                CodegenOption::Cache(enable) => options.cache = Some(*enable),
                CodegenOption::CacheConfig(file) => options.cache_config = Some(file.clone()),
                CodegenOption::CacheDir(dir) => options.cache_dir = Some(dir.clone()),
                CodegenOption::Inlining(enable) => options.inlining = Some(*enable),
            }
        }
        options
    }

    /// Sets up the compilation cache (see [`cache_settings`]) and the compiler in
    /// `config` as these options say.
    ///
    /// # Errors
    /// Fails if the `cache-config` file cannot be read or is not a valid cache config.
    pub fn configure(&self, config: &mut strata::Config) -> anyhow::Result<()> {
        if let Some(enable) = self.inlining {
            config.compiler_inlining(enable);
        }
        cache_settings::configure(self, config)
    }
}

/// Parses the value of one `-C` argument; used as clap's value parser.
///
/// # Errors
/// Names the unknown key or the malformed value.
pub fn parse(arg: &str) -> Result<CodegenOptionList, String> {
    option_list::parse_each(arg, parse_one).map(CodegenOptionList)
}

/// Parses one `KEY[=VALUE]` setting.
fn parse_one(key: &str, value: Option<&str>) -> Result<CodegenOption, String> {
    let path = |what: &str| match option_list::need_value('C', key, value, what)? {
        "" => Err(format!("-C {key} needs a value: `-C {key}={what}`")),
        path => Ok(PathBuf::from(path)),
    };
    match key {
        "cache" => Ok(CodegenOption::Cache(option_list::parse_bool(
            'C', key, value,
        )?)),
        "cache-config" => Ok(CodegenOption::CacheConfig(path("FILE")?)),
        "cache-dir" => Ok(CodegenOption::CacheDir(path("DIR")?)),
        "inlining" => Ok(CodegenOption::Inlining(option_list::parse_bool(
            'C', key, value,
        )?)),
        _ => Err(format!("unknown -C option `{key}` (known: {KNOWN_KEYS})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_combine_and_later_settings_win() {
        let options = CodegenOptions::new(&[
            parse("cache=n,cache-dir=/a").unwrap(),
            parse("cache-config=/etc/c.toml,cache,cache-dir=/b=c").unwrap(),
            parse("inlining=n").unwrap(),
        ]);
        assert_eq!(
            options,
            CodegenOptions {
                cache: Some(true),
                cache_config: Some(PathBuf::from("/etc/c.toml")),
                cache_dir: Some(PathBuf::from("/b=c")),
                inlining: Some(false),
            }
        );
        assert_eq!(CodegenOptions::new(&[]), CodegenOptions::default());
        assert_eq!(
            CodegenOptions::new(&[parse("cache=no").unwrap()]).cache,
            Some(false)
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = parse("cache,cache-size=1").unwrap_err();
        assert_eq!(
            err,
            "unknown -C option `cache-size` (known: cache, cache-config, cache-dir, inlining)"
        );
        let err = parse("cache=maybe").unwrap_err();
        assert!(err.contains("invalid value `maybe` for -C cache"), "{err}");
        for bare in ["cache-dir", "cache-dir=", "cache-config", "cache-config="] {
            let err = parse(bare).unwrap_err();
            assert!(err.contains("needs a value"), "{bare}: {err}");
        }
    }

    #[test]
    fn every_key_is_listed_in_the_error_message() {
        for key in KNOWN_KEYS.split(", ") {
            let err = parse(&format!("{key}=x")).err().unwrap_or_default();
            assert!(!err.contains("unknown"), "KNOWN_KEYS lists `{key}`: {err}");
        }
    }
}
