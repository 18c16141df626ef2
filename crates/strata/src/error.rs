//! [`Error`]: the one error type of the strata API, and wasm backtraces.

use core::fmt;
use strata_environ::Trap;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Anything that can go wrong in strata: invalid modules, failed links, traps, and
/// errors returned by host functions.
///
/// A trap's [`Trap`] code and its [`WasmBacktrace`] are reached with
/// [`Error::downcast_ref`]; so is the original error a host function returned.
pub struct Error {
    inner: Box<ErrorInner>,
}

struct ErrorInner {
    kind: ErrorKind,
    context: Vec<String>,
    backtrace: Option<WasmBacktrace>,
}

enum ErrorKind {
    Trap(Trap),
    Message(String),
    Exit(i32),
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    fn from_kind(kind: ErrorKind) -> Error {
        Error {
            inner: Box::new(ErrorInner {
                kind,
                context: Vec::new(),
                backtrace: None,
            }),
        }
    }

    /// An error with just a message.
    pub fn msg(message: impl fmt::Display) -> Error {
        Error::from_kind(ErrorKind::Message(message.to_string()))
    }

    /// The guest asked to end the program with exit status `status` (WASI `proc_exit`).
    ///
    /// A host function returns this to unwind the wasm stack without reporting a failure;
    /// the embedder reads the status back with [`Error::i32_exit_status`].
    pub fn i32_exit(status: i32) -> Error {
        Error::from_kind(ErrorKind::Exit(status))
    }

    /// The status of an [`Error::i32_exit`], or `None` for every other error.
    pub fn i32_exit_status(&self) -> Option<i32> {
        match self.inner.kind {
            ErrorKind::Exit(status) => Some(status),
            _ => None,
        }
    }

    /// Wraps any error; [`Error::downcast_ref`] gives it back.
    pub fn new<E: std::error::Error + Send + Sync + 'static>(error: E) -> Error {
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
        Error::from_boxed(boxed)
    }

    pub(crate) fn from_boxed(error: Box<dyn std::error::Error + Send + Sync>) -> Error {
        match error.downcast::<Error>() {
            Ok(e) => *e,
            Err(other) => Error::from_kind(ErrorKind::Other(other)),
        }
    }

    /// Adds a line of context, shown before the message.
    pub fn context(mut self, context: impl fmt::Display) -> Error {
        self.inner.context.push(context.to_string());
        self
    }

    #[cfg(feature = "runtime")]
    pub(crate) fn with_backtrace(mut self, backtrace: WasmBacktrace) -> Error {
        if self.inner.backtrace.is_none() {
            self.inner.backtrace = Some(backtrace);
        }
        self
    }

    /// The trap that caused this error, if any.
    pub fn trap(&self) -> Option<Trap> {
        match self.inner.kind {
            ErrorKind::Trap(t) => Some(t),
            _ => None,
        }
    }

    /// The wasm backtrace recorded with this error, if any.
    pub fn wasm_backtrace(&self) -> Option<&WasmBacktrace> {
        self.inner.backtrace.as_ref()
    }

    /// The underlying [`Trap`], [`WasmBacktrace`], or host error of type `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        let any: Option<&(dyn std::error::Error + 'static)> = match &self.inner.kind {
            ErrorKind::Trap(t) => Some(t),
            ErrorKind::Other(e) => Some(&**e),
            ErrorKind::Message(_) | ErrorKind::Exit(_) => None,
        };
        if let Some(e) = any.and_then(|e| e.downcast_ref::<E>()) {
            return Some(e);
        }
        self.inner
            .backtrace
            .as_ref()
            .and_then(|b| (b as &dyn std::error::Error).downcast_ref::<E>())
    }

    /// Whether the underlying error is of type `E`.
    pub fn is<E: std::error::Error + 'static>(&self) -> bool {
        self.downcast_ref::<E>().is_some()
    }
}

/// Wraps an error of the VM layer, keeping a pool limit downcastable as itself.
#[cfg(feature = "runtime")]
pub(crate) fn vm_error(e: strata_vm::VmError) -> Error {
    match e {
        #[cfg(feature = "pooling-allocator")]
        strata_vm::VmError::PoolLimit(limit) => Error::new(limit),
        other => Error::new(other),
    }
}

impl From<Trap> for Error {
    fn from(trap: Trap) -> Error {
        Error::from_kind(ErrorKind::Trap(trap))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for context in self.inner.context.iter().rev() {
            write!(f, "{context}: ")?;
        }
        match &self.inner.kind {
            ErrorKind::Trap(t) => write!(f, "wasm trap: {t}"),
            ErrorKind::Message(m) => f.write_str(m),
            ErrorKind::Exit(status) => write!(f, "exited with i32 exit status {status}"),
            ErrorKind::Other(e) => {
                write!(f, "{e}")?;
                let mut source = e.source();
                while let Some(s) = source {
                    write!(f, ": {s}")?;
                    source = s.source();
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)?;
        if let Some(bt) = &self.inner.backtrace {
            write!(f, "\n{bt}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner.kind {
            ErrorKind::Trap(t) => Some(t),
            ErrorKind::Other(e) => e.source(),
            ErrorKind::Message(_) | ErrorKind::Exit(_) => None,
        }
    }
}

/// One wasm frame of a [`WasmBacktrace`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    pub(crate) module_name: Option<String>,
    pub(crate) func_index: u32,
    pub(crate) func_name: Option<String>,
    pub(crate) module_offset: Option<u32>,
}

impl FrameInfo {
    /// The function's index in its module.
    pub fn func_index(&self) -> u32 {
        self.func_index
    }

    /// The function's name from the name section.
    pub fn func_name(&self) -> Option<&str> {
        self.func_name.as_deref()
    }

    /// The module's name from the name section.
    pub fn module_name(&self) -> Option<&str> {
        self.module_name.as_deref()
    }

    /// The byte offset of the instruction in the module.
    pub fn module_offset(&self) -> Option<u32> {
        self.module_offset
    }
}

/// The wasm frames on the stack when a trap or host error happened, innermost first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WasmBacktrace {
    pub(crate) frames: Vec<FrameInfo>,
}

impl WasmBacktrace {
    /// The frames, innermost first.
    pub fn frames(&self) -> &[FrameInfo] {
        &self.frames
    }
}

impl fmt::Display for WasmBacktrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "wasm backtrace:")?;
        for (i, frame) in self.frames.iter().enumerate() {
            write!(f, "  {i:>3}: ")?;
            if let Some(offset) = frame.module_offset {
                write!(f, "{offset:#8x} - ")?;
            }
            if let Some(module) = &frame.module_name {
                write!(f, "{module}!")?;
            }
            match &frame.func_name {
                Some(name) => writeln!(f, "{name}")?,
                None => writeln!(f, "<wasm function {}>", frame.func_index)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for WasmBacktrace {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_one_pointer_wide() {
        assert_eq!(size_of::<Error>(), size_of::<usize>());
    }

    #[test]
    fn traps_display_with_their_spec_message() {
        let e = Error::from(Trap::IntegerDivisionByZero);
        assert_eq!(e.to_string(), "wasm trap: integer divide by zero");
        assert_eq!(e.downcast_ref::<Trap>(), Some(&Trap::IntegerDivisionByZero));
    }

    #[test]
    fn host_errors_come_back_unchanged() {
        let e = Error::new(std::io::Error::other("disk on fire"));
        assert_eq!(
            e.downcast_ref::<std::io::Error>().unwrap().to_string(),
            "disk on fire"
        );
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Error::msg("inner"));
        assert_eq!(Error::from_boxed(boxed).to_string(), "inner");
        assert_eq!(
            Error::msg("x").context("while linking").to_string(),
            "while linking: x"
        );
    }

    #[test]
    fn exits_carry_their_status_and_nothing_else_does() {
        let e = Error::i32_exit(3).context("while running _start");
        assert_eq!(e.i32_exit_status(), Some(3));
        assert_eq!(e.trap(), None);
        assert_eq!(
            e.to_string(),
            "while running _start: exited with i32 exit status 3"
        );
        assert_eq!(Error::from(Trap::StackOverflow).i32_exit_status(), None);
        assert_eq!(Error::msg("3").i32_exit_status(), None);
    }

    #[test]
    #[cfg(feature = "runtime")]
    fn backtraces_are_shown_by_debug_and_reachable_by_downcast() {
        let bt = WasmBacktrace {
            frames: vec![FrameInfo {
                module_name: None,
                func_index: 3,
                func_name: Some("f".into()),
                module_offset: Some(0x20),
            }],
        };
        let e = Error::from(Trap::UnreachableCodeReached).with_backtrace(bt.clone());
        assert!(format!("{e:?}").contains("f\n"));
        assert_eq!(e.downcast_ref::<WasmBacktrace>(), Some(&bt));
    }
}
