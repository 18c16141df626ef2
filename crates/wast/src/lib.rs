//! `strata-wast` owns the `.wast` script runner of strata: it parses a
//! WebAssembly spec test script, executes every directive through the public
//! `strata` API (with the `spectest` host module registered), and reports the
//! outcome of each directive instead of stopping at the first failure.
//!
//! The main entry points are [`WastContext::run_script`] and the convenience
//! wrappers [`run_file`] and [`run_file_with`], which is what both the
//! `strata wast` command and the spec-test harness use.
//!
//! Every directive the `wast` crate parses is handled: those that need a
//! proposal strata does not implement (exception handling, stack switching)
//! or checks strata cannot make (custom-section annotations) fail with a
//! message saying so; none passes silently.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod spectest;
mod values;

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::thread::{self, Scope, ScopedJoinHandle};

use strata::{Config, Engine, Extern, Instance, Linker, Module, Store, Val};
use wast::lexer::Lexer;
use wast::parser::{self, ParseBuffer};
use wast::token::Id;
use wast::{QuoteWat, Wast, WastDirective, WastExecute, WastInvoke, WastThread, Wat};

/// The text an `assert_exhaustion` error has to contain.
const EXHAUSTION_MESSAGE: &str = "call stack exhausted";

/// Stack size of the OS threads that run `thread` directives: generous, so that
/// the host side of debug builds never overflows before wasm's own stack limit
/// is reached (the same size the spec harness gives its workers).
const THREAD_STACK: usize = 8 << 20;

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

    /// Counts the outcome of the directive at 0-based `line` and `col`.
    fn record(&mut self, (line, col): (usize, usize), outcome: Outcome) {
        match outcome {
            Ok(()) => self.passed += 1,
            Err(message) => self.failed.push(DirectiveFailure {
                line: line + 1,
                col: col + 1,
                message,
            }),
        }
    }

    /// Adds the report of the script thread `name` to this one: its passes,
    /// and its failures with messages that name the thread.
    fn merge_thread(&mut self, name: &str, thread: ScriptReport) {
        self.passed += thread.passed;
        self.failed
            .extend(thread.failed.into_iter().map(|failure| DirectiveFailure {
                message: format!("in thread `${name}`: {}", failure.message),
                ..failure
            }));
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
/// instance, and the modules and instances that later directives may refer
/// to.
///
/// A `thread` directive runs in a context of its own, on its own OS thread:
/// it shares the engine and the compiled modules, but has a store, a linker
/// and instances of its own.
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
    /// Compiled modules that `module instance` may instantiate.
    definitions: Definitions,
}

/// The compiled modules of a script, as the reference interpreter binds them:
/// every `module` and `module definition` under its `$id`, if it has one, and
/// as the latest module either way.
#[derive(Clone, Default)]
struct Definitions {
    /// Modules declared with an `$id`, keyed by that id.
    named: HashMap<String, Module>,
    /// The most recently compiled module.
    latest: Option<Module>,
}

impl Definitions {
    /// Remembers `module`, under `id` if it has one.
    fn bind(&mut self, id: Option<Id<'_>>, module: &Module) {
        if let Some(id) = id {
            self.named.insert(id.name().to_string(), module.clone());
        }
        self.latest = Some(module.clone());
    }

    /// The module called `id`, or the latest one when no id is given.
    fn get(&self, id: Option<Id<'_>>) -> Result<&Module, String> {
        match id {
            Some(id) => self
                .named
                .get(id.name())
                .ok_or_else(|| format!("unknown module definition `${}`", id.name())),
            None => self
                .latest
                .as_ref()
                .ok_or_else(|| "no module has been defined yet".to_string()),
        }
    }
}

/// A script thread started by a `thread` directive, until `wait` joins it.
enum ScriptThread<'scope> {
    /// Running on its own OS thread; joining yields its report.
    Running(ScopedJoinHandle<'scope, ScriptReport>),
    /// Its `thread` directive failed (the failure is reported there), so
    /// there is nothing to wait for.
    NotStarted,
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
            definitions: Definitions::default(),
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
        self.run_directives(script.directives, contents, &mut report);
        Ok(report)
    }

    /// Runs `directives` (of the script text `contents`) in order, recording
    /// each outcome in `report`.
    ///
    /// `thread` directives start scoped OS threads, which `wait` joins; a
    /// thread the directives never wait for is joined at the end, and its
    /// failures are reported all the same.
    fn run_directives<'a>(
        &mut self,
        directives: Vec<WastDirective<'a>>,
        contents: &'a str,
        report: &mut ScriptReport,
    ) {
        thread::scope(|scope| {
            let mut threads: HashMap<String, ScriptThread<'_>> = HashMap::new();
            // Names and positions in start order, so that un-awaited threads report in
            // script order, at their `thread` directive.
            let mut started: Vec<(String, (usize, usize))> = Vec::new();
            for directive in directives {
                let at = directive.span().linecol_in(contents);
                let outcome = match directive {
                    WastDirective::Thread(thread) => {
                        let name = thread.name.name().to_string();
                        if threads.contains_key(&name) {
                            Err(format!("a thread named `${name}` was already started"))
                        } else {
                            let (state, outcome) = match self.spawn(thread, contents, scope) {
                                Ok(handle) => (ScriptThread::Running(handle), Ok(())),
                                Err(message) => (ScriptThread::NotStarted, Err(message)),
                            };
                            threads.insert(name.clone(), state);
                            started.push((name, at));
                            outcome
                        }
                    }
                    WastDirective::Wait { thread, .. } => match threads.remove(thread.name()) {
                        Some(state) => join(thread.name(), state, report),
                        None => Err(format!(
                            "no thread named `${}` to wait for: never started, or already \
                             waited for",
                            thread.name()
                        )),
                    },
                    directive => self.run_guarded(directive),
                };
                report.record(at, outcome);
            }
            for (name, at) in started {
                // A thread that never started already failed at its directive.
                if let Some(ScriptThread::Running(handle)) = threads.remove(&name) {
                    match joined(&name, handle) {
                        Ok(thread) => report.merge_thread(&name, thread),
                        // A panic has no directive of its own: it fails the `thread`.
                        Err(message) => report.record(at, Err(message)),
                    }
                }
            }
        });
    }

    /// Starts the directives of a `thread` on an OS thread of their own, in
    /// a fresh context on the same engine that knows the same compiled
    /// modules.
    ///
    /// A `(shared (module $id))` naming an instance is refused: strata has no
    /// shared memories, and every item of an instance belongs to the store it
    /// was instantiated in, which only this context may use. Naming a module
    /// definition is fine, since compiled modules are shared anyway.
    fn spawn<'scope, 'a: 'scope>(
        &self,
        thread: WastThread<'a>,
        contents: &'a str,
        scope: &'scope Scope<'scope, '_>,
    ) -> Result<ScopedJoinHandle<'scope, ScriptReport>, String> {
        let name = thread.name.name();
        if let Some(shared) = thread.shared_module
            && self.named.contains_key(shared.name())
        {
            return Err(format!(
                "thread `${name}` cannot share the instance `${}`: strata has no shared \
                     memories, and an instance's items belong to the store it was created in, \
                     which another thread cannot use",
                shared.name()
            ));
        }
        let mut child = WastContext::new(&self.engine)
            .map_err(|e| format!("failed to create the context of thread `${name}`: {e}"))?;
        // The thread knows only the module it shares, as in the reference interpreter.
        if let Some(shared) = thread.shared_module {
            let module = self.definitions.get(Some(shared))?;
            child.definitions.bind(Some(shared), module);
        }
        let directives = thread.directives;
        thread::Builder::new()
            .name(format!("wast thread ${name}"))
            .stack_size(THREAD_STACK)
            .spawn_scoped(scope, move || {
                let mut report = ScriptReport::default();
                child.run_directives(directives, contents, &mut report);
                report
            })
            .map_err(|e| format!("failed to start thread `${name}`: {e}"))
    }

    /// Runs a directive other than `thread` and `wait`, turning a panic
    /// inside the runtime into a failure.
    fn run_guarded(&mut self, directive: WastDirective<'_>) -> Outcome {
        panic::catch_unwind(AssertUnwindSafe(|| self.run_directive(directive)))
            .unwrap_or_else(|payload| Err(format!("panicked: {}", panic_message(payload.as_ref()))))
    }

    /// Runs a single directive other than `thread` and `wait`.
    fn run_directive(&mut self, directive: WastDirective<'_>) -> Outcome {
        match directive {
            WastDirective::Module(mut module) => self.module(&mut module),
            WastDirective::ModuleDefinition(mut module) => {
                reject_component(&module)?;
                let id = module.name();
                let compiled = self.compile(&encode(&mut module)?)?;
                self.definitions.bind(id, &compiled);
                Ok(())
            }
            WastDirective::ModuleInstance {
                instance, module, ..
            } => {
                let compiled = self.definitions.get(module)?.clone();
                self.instantiate(&compiled, instance)
            }
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
            // Custom annotations (`(@custom ...)`) become custom sections, which the
            // engine ignores; like wasmtime's runner, refuse to pretend to check them.
            WastDirective::AssertInvalidCustom { .. } => unsupported(
                "assert_invalid_custom",
                "strata does not interpret custom sections, so it cannot check them",
            ),
            WastDirective::AssertMalformedCustom { .. } => unsupported(
                "assert_malformed_custom",
                "strata does not interpret custom sections, so it cannot check them",
            ),
            WastDirective::AssertException { exec, .. } => match self.execute(exec)? {
                Ok(actual) => Err(format!(
                    "expected an uncaught exception, got results {}",
                    values::fmt_vals(&actual)
                )),
                Err(e) if e.is::<strata::ThrownException>() => Ok(()),
                Err(e) => Err(format!("expected an uncaught exception, got error: {e}")),
            },
            WastDirective::AssertSuspension { .. } => unsupported(
                "assert_suspension",
                "needs the stack-switching proposal, which strata does not implement yet",
            ),
            WastDirective::Thread(_) | WastDirective::Wait { .. } => {
                Err("internal error: `thread` and `wait` are run by run_directives".to_string())
            }
        }
    }

    /// The `module` directive: compile, remember the compiled module (as the
    /// latest and under its `$id`, if any), instantiate it, and remember the
    /// instance likewise.
    fn module(&mut self, module: &mut QuoteWat<'_>) -> Outcome {
        reject_component(module)?;
        let id = module.name();
        let bytes = encode(module)?;
        let compiled = self.compile(&bytes)?;
        self.definitions.bind(id, &compiled);
        self.instantiate(&compiled, id)
    }

    /// Instantiates `module` and remembers the instance as the current one,
    /// and under `id`, if given.
    fn instantiate(&mut self, module: &Module, id: Option<Id<'_>>) -> Outcome {
        let instance = self
            .linker
            .instantiate(&mut self.store, module)
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

/// Waits for the script thread `name` and adds its report to `report`; the
/// `wait` fails when any directive of the thread did.
fn join(name: &str, thread: ScriptThread<'_>, report: &mut ScriptReport) -> Outcome {
    let handle = match thread {
        ScriptThread::Running(handle) => handle,
        ScriptThread::NotStarted => {
            return Err(format!(
                "thread `${name}` did not start (see its `thread` directive)"
            ));
        }
    };
    let thread = joined(name, handle)?;
    let (failed, total) = (thread.failed_count(), thread.total());
    report.merge_thread(name, thread);
    if failed == 0 {
        Ok(())
    } else {
        Err(format!(
            "thread `${name}` failed {failed} of its {total} directives"
        ))
    }
}

/// The report of the script thread `name` once it has ended, or the message of its
/// panic.
fn joined(name: &str, handle: ScopedJoinHandle<'_, ScriptReport>) -> Result<ScriptReport, String> {
    handle.join().map_err(|payload| {
        format!(
            "thread `${name}` panicked: {}",
            panic_message(payload.as_ref())
        )
    })
}

/// The failure of a directive this runner cannot perform, and why.
fn unsupported(name: &str, why: &str) -> Outcome {
    Err(format!("unsupported directive {name}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `script` on a default engine.
    fn run(script: &str) -> ScriptReport {
        run_file("test.wast", script).expect("the script parses")
    }

    /// The failure messages of `report`, with their lines.
    fn failures(report: &ScriptReport) -> Vec<(usize, &str)> {
        report
            .failed
            .iter()
            .map(|f| (f.line, f.message.as_str()))
            .collect()
    }

    /// A module with a counter: each instance has its own.
    const COUNTER: &str = r#"
        (module definition $M
          (global $n (mut i32) (i32.const 0))
          (func (export "bump") (result i32)
            (global.set $n (i32.add (global.get $n) (i32.const 1)))
            (global.get $n)))
    "#;

    #[test]
    fn module_definitions_are_instantiated_only_by_module_instance() {
        let script = format!(
            r#"{COUNTER}
            (assert_trap (invoke "bump") "unknown")
            (module instance $I1 $M)
            (module instance $I2 $M)
            (assert_return (invoke $I1 "bump") (i32.const 1))
            (assert_return (invoke $I1 "bump") (i32.const 2))
            (assert_return (invoke $I2 "bump") (i32.const 1))
            (assert_return (invoke "bump") (i32.const 2))
            (register "counter" $I1)
            (module (import "counter" "bump" (func $b (result i32)))
              (func (export "via") (result i32) (call $b)))
            (assert_return (invoke "via") (i32.const 3))
            "#
        );
        let report = run(&script);
        // The only failure: before any instance exists, there is nothing to invoke.
        assert_eq!(
            failures(&report),
            [(8, "no module has been instantiated yet")],
            "{report:?}"
        );
        assert_eq!(report.passed, 10);
    }

    #[test]
    fn a_definition_runs_no_start_function_until_instantiated() {
        let report = run(r#"
            (module definition $Trapping (func $start unreachable) (start $start))
            (assert_trap (module (func $start unreachable) (start $start)) "unreachable")
            (module instance $Trapping)
            "#);
        assert_eq!(report.passed, 2, "{report:?}");
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert_eq!(report.failed[0].line, 4);
        assert!(
            report.failed[0].message.contains("failed to instantiate"),
            "{report:?}"
        );
    }

    #[test]
    fn module_instance_without_an_id_takes_the_latest_module() {
        let report = run(&format!(
            r#"{COUNTER}
            (module instance)
            (assert_return (invoke "bump") (i32.const 1))
            (module (func (export "seven") (result i32) (i32.const 7)))
            (module instance $Again)
            (assert_return (invoke $Again "seven") (i32.const 7))
            "#
        ));
        assert!(report.is_success(), "{report:?}");
        assert_eq!(report.passed, 6);
    }

    #[test]
    fn broken_or_unknown_definitions_fail() {
        let report = run(r#"
            (module definition $Bad (func (result i32) (i64.const 0)))
            (module instance $I $Bad)
            (module instance $I $Nowhere)
            (module instance)
            "#);
        let failures = failures(&report);
        assert_eq!(failures.len(), 4, "{report:?}");
        assert!(failures[0].1.starts_with("failed to compile module"));
        assert_eq!(failures[1].1, "unknown module definition `$Bad`");
        assert_eq!(failures[2].1, "unknown module definition `$Nowhere`");
        assert_eq!(failures[3].1, "no module has been defined yet");
    }

    #[test]
    fn quoted_modules_are_parsed_and_run() {
        let report = run(r#"
            (module quote "(func (export \"one\") (result i32) i32.const 1)")
            (assert_return (invoke "one") (i32.const 1))
            (assert_malformed (module quote "(func (result i32) i32.const)") "unexpected")
            (module binary "\00asm" "\01\00\00\00")
            "#);
        assert!(report.is_success(), "{report:?}");
        assert_eq!(report.passed, 4);
    }

    #[test]
    fn threads_run_their_own_directives_and_wait_reports_them() {
        let report = run(&format!(
            r#"{COUNTER}
            (module instance $Main $M)
            (thread $T (shared (module $M))
              (module instance $Mine $M)
              (assert_return (invoke $Mine "bump") (i32.const 1))
              (assert_return (invoke "bump") (i32.const 2))
              (assert_return (invoke "bump") (i32.const 1)))
            (thread $U (shared (module $M))
              (module (func (export "f") (result i32) (i32.const 5)))
              (assert_return (invoke "f") (i32.const 5)))
            (wait $U)
            (assert_return (invoke $Main "bump") (i32.const 1))
            (wait $T)
            (wait $T)
            "#
        ));
        let failures = failures(&report);
        // The thread's instance is its own, and the main script's is untouched by it.
        assert_eq!(failures.len(), 3, "{report:?}");
        assert_eq!(failures[0].0, 13);
        assert!(
            failures[0].1.starts_with("in thread `$T`: "),
            "{failures:?}"
        );
        assert_eq!(
            failures[1],
            (19, "thread `$T` failed 1 of its 4 directives")
        );
        assert_eq!(
            failures[2],
            (
                20,
                "no thread named `$T` to wait for: never started, or already waited for"
            )
        );
        // Definition, instance, two threads, the `wait $U`, one assertion, and the passes
        // of the threads: 3 in `$T`, 2 in `$U`.
        assert_eq!(report.passed, 11, "{report:?}");
    }

    #[test]
    fn threads_get_a_fresh_store_with_spectest() {
        // A fresh context has `spectest`, and none of the main script's instances.
        let report = run(r#"
            (module $Main (func (export "f")))
            (thread $T
              (module (import "spectest" "print_i32" (func (param i32))))
              (invoke $Main "f"))
            "#);
        assert_eq!(
            failures(&report),
            [(5, "in thread `$T`: unknown module `$Main`")],
            "{report:?}"
        );
    }

    #[test]
    fn instances_cannot_be_shared_with_threads() {
        let report = run(r#"
            (module $Mem (memory (export "m") 1))
            (thread $T (shared (module $Mem))
              (register "mem" $Mem))
            (wait $T)
            (thread $V (shared (module $Nowhere)))
            "#);
        let failures = failures(&report);
        assert_eq!(failures.len(), 3, "{report:?}");
        assert_eq!(failures[0].0, 3);
        assert!(
            failures[0].1.starts_with(
                "thread `$T` cannot share the instance `$Mem`: strata has no shared memories"
            ),
            "{failures:?}"
        );
        assert_eq!(
            failures[1],
            (5, "thread `$T` did not start (see its `thread` directive)")
        );
        assert_eq!(failures[2], (6, "unknown module definition `$Nowhere`"));
    }

    #[test]
    fn threads_that_are_never_awaited_still_report() {
        // (A script must not start with `thread`: the `wast` parser would take it for
        // the fields of an inline module.)
        let report = run(r#"
            (module)
            (thread $T (assert_return (invoke "missing") (i32.const 0)))
            "#);
        assert_eq!(report.passed, 2, "{report:?}");
        assert_eq!(
            failures(&report),
            [(3, "in thread `$T`: no module has been instantiated yet")]
        );
    }

    #[test]
    fn directives_of_missing_proposals_fail_with_the_reason() {
        let report = run(r#"
            (module (func (export "f")))
            (assert_suspension (invoke "f") "unhandled")
            (assert_invalid_custom (module) "malformed")
            (assert_malformed_custom (module quote "") "malformed")
            "#);
        assert_eq!(report.passed, 1);
        assert_eq!(
            failures(&report),
            [
                (
                    3,
                    "unsupported directive assert_suspension: needs the stack-switching \
                     proposal, which strata does not implement yet"
                ),
                (
                    4,
                    "unsupported directive assert_invalid_custom: strata does not interpret \
                     custom sections, so it cannot check them"
                ),
                (
                    5,
                    "unsupported directive assert_malformed_custom: strata does not interpret \
                     custom sections, so it cannot check them"
                ),
            ]
        );
    }

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
