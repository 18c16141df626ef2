//! The syntax that `-W` and `-C` share, wasmtime's: one argument holds settings
//! `KEY[=VALUE]` separated by commas, and an on/off setting takes wasmtime's words.

/// Parses each setting of one argument with `parse_one`, which is given its key and
/// value (`None` for a bare `KEY`).
///
/// # Errors
/// The first error of `parse_one`.
pub fn parse_each<T>(
    arg: &str,
    parse_one: impl Fn(&str, Option<&str>) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    settings(arg)
        .map(|(key, value)| parse_one(key, value))
        .collect()
}

/// The `(key, value)` settings of one argument, in order; `value` is `None` for a bare
/// `KEY`. A value runs to the next comma (so it cannot hold one) and may hold `=`.
fn settings(arg: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    arg.split(',').map(|setting| match setting.split_once('=') {
        Some((key, value)) => (key, Some(value)),
        None => (setting, None),
    })
}

/// The value of `-FLAG KEY=VALUE`, which needs one; `what` names it in the error.
///
/// # Errors
/// If `value` is `None`.
pub fn need_value<'a>(
    flag: char,
    key: &str,
    value: Option<&'a str>,
    what: &str,
) -> Result<&'a str, String> {
    value.ok_or_else(|| format!("-{flag} {key} needs a value: `-{flag} {key}={what}`"))
}

/// Parses the value of the on/off setting `-FLAG KEY[=VALUE]`, as wasmtime does:
/// nothing, `y`, `yes` or `true` is on; `n`, `no` or `false` is off.
///
/// # Errors
/// If the value is another word, which the message names.
pub fn parse_bool(flag: char, key: &str, value: Option<&str>) -> Result<bool, String> {
    match value {
        None | Some("y" | "yes" | "true") => Ok(true),
        Some("n" | "no" | "false") => Ok(false),
        Some(other) => Err(format!(
            "invalid value `{other}` for -{flag} {key}: expected y, yes, true, n, no or false \
             (`-{flag} {key}` alone means yes)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_split_at_commas_then_at_the_first_equals_sign() {
        let found: Vec<_> = settings("a,b=1,c=x=y,d=").collect();
        assert_eq!(
            found,
            [
                ("a", None),
                ("b", Some("1")),
                ("c", Some("x=y")),
                ("d", Some(""))
            ]
        );
    }

    #[test]
    fn errors_name_the_flag_and_the_key() {
        assert_eq!(need_value('C', "k", Some("v"), "V"), Ok("v"));
        assert_eq!(
            need_value('C', "k", None, "V"),
            Err("-C k needs a value: `-C k=V`".to_string())
        );
        let err = parse_bool('C', "k", Some("maybe")).unwrap_err();
        assert!(err.starts_with("invalid value `maybe` for -C k:"), "{err}");
    }
}
