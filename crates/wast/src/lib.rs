//! `strata-wast` owns the `.wast` script runner of strata: it parses a
//! WebAssembly spec test script, executes every directive through the public
//! `strata` API (with the `spectest` host module registered), and reports the
//! outcome of each directive instead of stopping at the first failure.
//!
//! The main entry points are [`WastContext::run_script`] and the convenience
//! wrapper [`run_file`], which is what both the `strata wast` command and the
//! spec-test harness use.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod spectest;
mod values;

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use strata::{Config, Engine, Extern, Instance, Linker, Module, Store, Val};
use wast::lexer::Lexer;
use wast::parser::{self, ParseBuffer};
use wast::token::Id;
use wast::{QuoteWat, Wast, WastDirective, WastExecute, WastInvoke, Wat};

/// The text an `assert_exhaustion` error has to contain.
const EXHAUSTION_MESSAGE: &str = "call stack exhausted";

/// One directive of a script that did not behave as the script expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectiveFailure {
    /// 1-based line of the directive in the script.
    pub line: usize,
    /// 1-based column of the directive in the script.
    pub col: usize,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for DirectiveFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

/// Per-directive results of running one script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptReport {
    /// Number of directives that behaved as expected.
    pub passed: usize,
    /// Every directive that did not, in script order.
    pub failed: Vec<DirectiveFailure>,
}

impl ScriptReport {
    /// Number of failed directives.
    pub fn failed_count(&self) -> usize {
        self.failed.len()
    }

    /// Number of directives that were run.
    pub fn total(&self) -> usize {
        self.passed + self.failed.len()
    }

    /// Whether no directive failed.
    pub fn is_success(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Runs `contents` (the text of the script called `filename`) in a fresh
/// [`WastContext`] on a default-configured [`Engine`].
///
/// This is the single code path shared by `strata wast` and the spec-test
/// harness. A script that does not parse is an `Err`.
pub fn run_file(filename: &str, contents: &str) -> anyhow::Result<ScriptReport> {
    run_file_with(&Config::new(), filename, contents)
}

/// Like [`run_file`], on an engine configured by `config`.
pub fn run_file_with(
    config: &Config,
    filename: &str,
    contents: &str,
) -> anyhow::Result<ScriptReport> {
    let engine = Engine::new(config)?;
    let mut context = WastContext::new(&engine)?;
    context.run_script(filename, contents)
}

/// Extracts the message from a panic payload as returned by
/// [`std::panic::catch_unwind`].
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// Outcome of one directive: `Err` carries the failure message.
type Outcome = Result<(), String>;

/// Outcome of executing an action: the outer `Err` means the action could
/// not even be attempted (unknown export, unsupported argument, ...), the
/// inner one is the error the runtime produced while running it.
type Execution = Result<strata::Result<Vec<Val>>, String>;

/// State carried across the directives of a script: the store all modules
/// are instantiated in, the linker holding `spectest` and every registered
/// instance, and the instances that later directives may refer to.
pub struct WastContext {
    /// Engine every module of the script is compiled with.
    engine: Engine,
    /// Store holding all instances of the script.
    store: Store<()>,
    /// Import resolver: `spectest` plus everything `register`ed.
    linker: Linker<()>,
    /// The most recently instantiated module.
    current: Option<Instance>,
    /// Instances of modules declared with an `$id`, keyed by that id.
    named: HashMap<String, Instance>,
}

impl WastContext {
    /// Creates a context whose linker already provides the `spectest` host
    /// module.
    pub fn new(engine: &Engine) -> anyhow::Result<Self> {
        let mut store = Store::new(engine, ());
        // Scripts never run out of fuel or time: with fuel consumption or epoch
        // interruption on, they only check that the instrumented code computes the same.
        // Engines that count no fuel refuse the fuel; that is fine.
        let _ = store.set_fuel(u64::MAX);
        store.set_epoch_deadline(u64::MAX);
        let mut linker = Linker::new(engine);
        linker.allow_shadowing(true);
        spectest::define(&mut linker, &mut store)?;
        Ok(Self {
            engine: engine.clone(),
            store,
            linker,
            current: None,
            named: HashMap::new(),
        })
    }

    /// Runs every directive of `contents` (the script named `filename`) and
    /// reports how each one went.
    ///
    /// Only a script that cannot be parsed at all is an `Err`; a directive
    /// that misbehaves, including one that panics inside the runtime, is
    /// recorded in the returned report.
    pub fn run_script(&mut self, filename: &str, contents: &str) -> anyhow::Result<ScriptReport> {
        let locate = |mut err: wast::Error| {
            err.set_path(filename.as_ref());
            err.set_text(contents);
            anyhow::Error::from(err)
        };
        let mut lexer = Lexer::new(contents);
        lexer.allow_confusing_unicode(true);
        let buffer = ParseBuffer::new_with_lexer(lexer).map_err(locate)?;
        let script = parser::parse::<Wast<'_>>(&buffer).map_err(locate)?;

        let mut report = ScriptReport::default();
        for directive in script.directives {
            let (line, col) = directive.span().linecol_in(contents);
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| self.run_directive(directive)))
                .unwrap_or_else(|payload| {
                    Err(format!("panicked: {}", panic_message(payload.as_ref())))
                });
            match outcome {
                Ok(()) => report.passed += 1,
                Err(message) => report.failed.push(DirectiveFailure {
                    line: line + 1,
                    col: col + 1,
                    message,
                }),
            }
        }
        Ok(report)
    }

    /// Runs a single directive.
    fn run_directive(&mut self, directive: WastDirective<'_>) -> Outcome {
        match directive {
            WastDirective::Module(mut module) => self.module(&mut module),
            WastDirective::Register { name, module, .. } => {
                let instance = self.instance(module)?;
                self.linker
                    .instance(&mut self.store, name, instance)
                    .map_err(|e| format!("failed to register instance as `{name}`: {e}"))?;
                Ok(())
            }
            WastDirective::Invoke(call) => match self.invoke(&call)? {
                Ok(_) => Ok(()),
                Err(e) => Err(format!("invocation of `{}` failed: {e}", call.name)),
            },
            WastDirective::AssertReturn { exec, results, .. } => match self.execute(exec)? {
                Ok(actual) => values::check_results(&self.store, &actual, &results),
                Err(e) => Err(format!("expected a return, got error: {e}")),
            },
            WastDirective::AssertTrap { exec, message, .. } => {
                let expected_instantiation = matches!(exec, WastExecute::Wat(_));
                match self.execute(exec)? {
                    Ok(_) if expected_instantiation => Err(format!(
                        "expected instantiation to trap with `{message}`, but it succeeded"
                    )),
                    Ok(actual) => Err(format!(
                        "expected trap `{message}`, got results {}",
                        values::fmt_vals(&actual)
                    )),
                    Err(e) => expect_error(&e, message),
                }
            }
            WastDirective::AssertExhaustion { call, .. } => match self.invoke(&call)? {
                Ok(actual) => Err(format!(
                    "expected `{EXHAUSTION_MESSAGE}`, got results {}",
                    values::fmt_vals(&actual)
                )),
                Err(e) => expect_error(&e, EXHAUSTION_MESSAGE),
            },
            WastDirective::AssertInvalid { mut module, .. } => {
                reject_component(&module)?;
                match encode(&mut module).and_then(|bytes| self.compile(&bytes)) {
                    Ok(_) => Err("expected module to fail validation but it compiled".to_string()),
                    Err(_) => Ok(()),
                }
            }
            WastDirective::AssertMalformed { mut module, .. } => {
                reject_component(&module)?;
                // A quoted module that the text parser rejects is malformed
                // text, which is exactly what the directive asserts.
                let Ok(bytes) = encode(&mut module) else {
                    return Ok(());
                };
                match self.compile(&bytes) {
                    Ok(_) => Err("expected module to be malformed but it compiled".to_string()),
                    Err(_) => Ok(()),
                }
            }
            WastDirective::AssertUnlinkable {
                mut module,
                message,
                ..
            } => {
                let compiled = self.compile_wat(&mut module)?;
                match self.linker.instantiate(&mut self.store, &compiled) {
                    Ok(_) => Err(format!(
                        "expected module to fail to link with `{message}`, but it instantiated"
                    )),
                    Err(_) => Ok(()),
                }
            }
            WastDirective::ModuleDefinition(_) => unsupported("module definition"),
            WastDirective::ModuleInstance { .. } => unsupported("module instance"),
            WastDirective::AssertInvalidCustom { .. } => unsupported("assert_invalid_custom"),
            WastDirective::AssertMalformedCustom { .. } => unsupported("assert_malformed_custom"),
            WastDirective::AssertException { .. } => unsupported("assert_exception"),
            WastDirective::AssertSuspension { .. } => unsupported("assert_suspension"),
            WastDirective::Thread(_) => unsupported("thread"),
            WastDirective::Wait { .. } => unsupported("wait"),
        }
    }

    /// The `module` directive: compile, instantiate, and remember the
    /// instance as the current one (and under its `$id`, if any).
    fn module(&mut self, module: &mut QuoteWat<'_>) -> Outcome {
        reject_component(module)?;
        let id = module.name();
        let bytes = encode(module)?;
        let compiled = self.compile(&bytes)?;
        let instance = self
            .linker
            .instantiate(&mut self.store, &compiled)
            .map_err(|e| format!("failed to instantiate module: {e}"))?;
        self.current = Some(instance);
        if let Some(id) = id {
            self.named.insert(id.name().to_string(), instance);
        }
        Ok(())
    }

    /// Compiles encoded module bytes with the script's engine.
    fn compile(&self, bytes: &[u8]) -> Result<Module, String> {
        Module::from_binary(&self.engine, bytes)
            .map_err(|e| format!("failed to compile module: {e}"))
    }

    /// Encodes and compiles an inline module of an action or assertion.
    fn compile_wat(&self, wat: &mut Wat<'_>) -> Result<Module, String> {
        if let Wat::Component(_) = wat {
            return Err("unsupported: component-model modules".to_string());
        }
        let bytes = wat
            .encode()
            .map_err(|e| format!("failed to encode module text: {e}"))?;
        self.compile(&bytes)
    }

    /// Resolves an optional `$id` to an instance: the named one, or the most
    /// recently instantiated module when no id is given.
    fn instance(&self, id: Option<Id<'_>>) -> Result<Instance, String> {
        match id {
            Some(id) => self
                .named
                .get(id.name())
                .copied()
                .ok_or_else(|| format!("unknown module `${}`", id.name())),
            None => self
                .current
                .ok_or_else(|| "no module has been instantiated yet".to_string()),
        }
    }

    /// Calls an exported function with the script's arguments.
    fn invoke(&mut self, call: &WastInvoke<'_>) -> Execution {
        let instance = self.instance(call.module)?;
        let func = instance
            .get_func(&mut self.store, call.name)
            .ok_or_else(|| format!("no function export named `{}`", call.name))?;
        let args = call
            .args
            .iter()
            .map(|arg| values::arg_to_val(&mut self.store, arg))
            .collect::<Result<Vec<_>, _>>()?;
        let ty = func.ty(&self.store);
        let mut results: Vec<Val> = ty.results().map(|t| values::placeholder(&t)).collect();
        Ok(func
            .call(&mut self.store, &args, &mut results)
            .map(|()| results))
    }

    /// Performs the action of an assertion: an invocation, reading a
    /// global, or instantiating an inline module (which yields no values).
    fn execute(&mut self, exec: WastExecute<'_>) -> Execution {
        match exec {
            WastExecute::Invoke(call) => self.invoke(&call),
            WastExecute::Wat(mut wat) => {
                let compiled = self.compile_wat(&mut wat)?;
                Ok(self
                    .linker
                    .instantiate(&mut self.store, &compiled)
                    .map(|_| Vec::new()))
            }
            WastExecute::Get { module, global, .. } => {
                let instance = self.instance(module)?;
                match instance.get_export(&mut self.store, global) {
                    Some(Extern::Global(g)) => Ok(Ok(vec![g.get(&mut self.store)])),
                    Some(_) => Err(format!("export `{global}` is not a global")),
                    None => Err(format!("no global export named `{global}`")),
                }
            }
        }
    }
}

/// Encodes a (possibly quoted) module to binary.
fn encode(module: &mut QuoteWat<'_>) -> Result<Vec<u8>, String> {
    module
        .encode()
        .map_err(|e| format!("failed to parse module text: {e}"))
}

/// Component-model modules are out of scope for strata.
fn reject_component(module: &QuoteWat<'_>) -> Outcome {
    match module {
        QuoteWat::Wat(Wat::Component(_)) | QuoteWat::QuoteComponent(..) => {
            Err("unsupported: component-model modules".to_string())
        }
        QuoteWat::Wat(Wat::Module(_)) | QuoteWat::QuoteModule(..) => Ok(()),
    }
}

/// Passes when `expected` appears in either rendering of `err`.
fn expect_error(err: &strata::Error, expected: &str) -> Outcome {
    let display = err.to_string();
    let debug = format!("{err:?}");
    let found = |needle: &str| display.contains(needle) || debug.contains(needle);
    if found(expected) || found(without_element_index(expected)) {
        Ok(())
    } else {
        Err(format!("expected error `{expected}`, got: {display}"))
    }
}

/// The reference interpreter appends the table index to its
/// "uninitialized element" trap (e.g. `uninitialized element 7`), which a
/// trap code cannot carry; this strips that index so the wording still
/// matches. Any other message is returned unchanged.
fn without_element_index(expected: &str) -> &str {
    const PREFIX: &str = "uninitialized element";
    match expected.strip_prefix(PREFIX) {
        Some(rest)
            if rest.len() > 1
                && rest.starts_with(' ')
                && rest[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            PREFIX
        }
        _ => expected,
    }
}

/// The failure of a directive kind this runner does not implement.
fn unsupported(name: &str) -> Outcome {
    Err(format!("unsupported directive {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_index_is_stripped_only_from_that_trap() {
        assert_eq!(
            without_element_index("uninitialized element 7"),
            "uninitialized element"
        );
        assert_eq!(
            without_element_index("uninitialized element"),
            "uninitialized element"
        );
        assert_eq!(
            without_element_index("uninitialized element x"),
            "uninitialized element x"
        );
        assert_eq!(without_element_index("unreachable"), "unreachable");
    }
}
