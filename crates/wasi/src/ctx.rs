//! [`WasiCtx`], the state of one guest's WASI world, and [`WasiCtxBuilder`], which sets
//! up its arguments, environment, stdio, pre-opened directories and sockets.

use crate::abi::Rights;
use crate::perms::{DirPerms, FilePerms};
use crate::pipe::{MemoryInputPipe, MemoryOutputPipe};
use crate::stdio::{Input, Output};
use crate::table::{Descriptor, DirDesc, Entry, FdTable};
use cap_std::ambient_authority;
use std::net::TcpListener;
use std::path::Path;

/// The WASI state of one guest: its arguments, environment and file descriptors.
///
/// Made by [`WasiCtxBuilder::build`]; host functions reach it through the getter given
/// to [`add_to_linker`](crate::add_to_linker).
#[derive(Debug)]
pub struct WasiCtx {
    /// The arguments, or `None` if one holds a NUL byte.
    pub(crate) args: Option<Vec<String>>,
    /// `KEY=value` strings, or `None` if a key holds `=` or a NUL byte, or a value a
    /// NUL byte.
    pub(crate) env: Option<Vec<String>>,
    pub(crate) table: FdTable,
}

const _: () = {
    const fn send<T: Send>() {}
    send::<WasiCtx>();
};

/// Builds a [`WasiCtx`].
///
/// By default there are no arguments, no environment variables, no preopens, stdin is
/// empty and stdout and stderr are thrown away.
///
/// The guest receives its arguments and environment as NUL-terminated `KEY=value`
/// strings, so a NUL byte in any of them, or `=` in a key, cannot reach it intact. Like
/// [`std::process::Command`], which fails to spawn with such an argument, the builder
/// keeps them and the failure comes later: the built context answers `args_sizes_get`
/// and `args_get` with `EINVAL` if an argument holds a NUL, and `environ_sizes_get` and
/// `environ_get` with `EINVAL` if an environment variable is malformed. Nothing is
/// dropped or changed, and the other list is unaffected. (A wasi-libc program exits
/// with status 71 when its start-up code or `getenv` meets such an error.)
#[derive(Debug)]
pub struct WasiCtxBuilder {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Input,
    stdout: Output,
    stderr: Output,
    preopens: Vec<(cap_std::fs::Dir, String, DirPerms, FilePerms)>,
    sockets: Vec<TcpListener>,
}

impl Default for WasiCtxBuilder {
    fn default() -> Self {
        WasiCtxBuilder::new()
    }
}

impl WasiCtxBuilder {
    /// A builder with nothing configured.
    pub fn new() -> Self {
        WasiCtxBuilder {
            args: Vec::new(),
            env: Vec::new(),
            stdin: Input::Empty,
            stdout: Output::Discard,
            stderr: Output::Discard,
            preopens: Vec::new(),
            sockets: Vec::new(),
        }
    }

    /// Appends one argument (the first is by convention the program name).
    ///
    /// An argument with a NUL byte makes the guest's `args_*` calls fail with `EINVAL`
    /// (see [`WasiCtxBuilder`]).
    pub fn arg(&mut self, arg: impl AsRef<str>) -> &mut Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends arguments, as [`WasiCtxBuilder::arg`] does each.
    pub fn args(&mut self, args: &[impl AsRef<str>]) -> &mut Self {
        self.args
            .extend(args.iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Appends the host process's arguments (converted lossily to UTF-8).
    pub fn inherit_args(&mut self) -> &mut Self {
        self.args
            .extend(std::env::args_os().map(|arg| arg.to_string_lossy().into_owned()));
        self
    }

    /// Sets an environment variable.
    ///
    /// A `key` with `=` or a NUL byte, or a `value` with a NUL byte, makes the guest's
    /// `environ_*` calls fail with `EINVAL` (see [`WasiCtxBuilder`]). `=` in a value is
    /// fine.
    pub fn env(&mut self, key: impl AsRef<str>, value: impl AsRef<str>) -> &mut Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Sets environment variables, as [`WasiCtxBuilder::env`] does each.
    pub fn envs(&mut self, env: &[(impl AsRef<str>, impl AsRef<str>)]) -> &mut Self {
        for (key, value) in env {
            self.env(key, value);
        }
        self
    }

    /// Sets every environment variable of the host process (converted lossily to UTF-8).
    pub fn inherit_env(&mut self) -> &mut Self {
        for (key, value) in std::env::vars_os() {
            self.env(key.to_string_lossy(), value.to_string_lossy());
        }
        self
    }

    /// Feeds stdin from `pipe`.
    pub fn stdin(&mut self, pipe: MemoryInputPipe) -> &mut Self {
        self.stdin = Input::Pipe(pipe);
        self
    }

    /// Captures stdout in `pipe`.
    pub fn stdout(&mut self, pipe: MemoryOutputPipe) -> &mut Self {
        self.stdout = Output::Pipe(pipe);
        self
    }

    /// Captures stderr in `pipe`.
    pub fn stderr(&mut self, pipe: MemoryOutputPipe) -> &mut Self {
        self.stderr = Output::Pipe(pipe);
        self
    }

    /// Reads stdin from the host process's stdin.
    pub fn inherit_stdin(&mut self) -> &mut Self {
        self.stdin = Input::Inherit;
        self
    }

    /// Writes stdout to the host process's stdout, flushed on every write.
    pub fn inherit_stdout(&mut self) -> &mut Self {
        self.stdout = Output::Stdout;
        self
    }

    /// Writes stderr to the host process's stderr.
    pub fn inherit_stderr(&mut self) -> &mut Self {
        self.stderr = Output::Stderr;
        self
    }

    /// Inherits stdin, stdout and stderr.
    pub fn inherit_stdio(&mut self) -> &mut Self {
        self.inherit_stdin().inherit_stdout().inherit_stderr()
    }

    /// Opens `host_path` now and gives the guest the next fd on it, under the name
    /// `guest_path` (what `fd_prestat_dir_name` reports, such as `"."` or `"/data"`).
    ///
    /// The guest reaches nothing outside this directory: `..`, absolute paths and
    /// symlinks are resolved by cap-std inside it. `dir_perms` and `file_perms` limit
    /// what it may do there; with [`DirPerms::READ`] and [`FilePerms::READ`] alone the
    /// guest can neither create, change nor remove anything.
    ///
    /// # Errors
    /// Fails if `host_path` cannot be opened as a directory.
    pub fn preopened_dir(
        &mut self,
        host_path: impl AsRef<Path>,
        guest_path: impl AsRef<str>,
        dir_perms: DirPerms,
        file_perms: FilePerms,
    ) -> strata::Result<&mut Self> {
        let host_path = host_path.as_ref();
        let dir =
            cap_std::fs::Dir::open_ambient_dir(host_path, ambient_authority()).map_err(|e| {
                strata::Error::new(e).context(format!(
                    "failed to pre-open directory `{}`",
                    host_path.display()
                ))
            })?;
        self.preopens
            .push((dir, guest_path.as_ref().to_owned(), dir_perms, file_perms));
        Ok(self)
    }

    /// Gives the guest a listening socket under the next fd after the preopens, for
    /// `sock_accept`.
    pub fn preopened_socket(&mut self, listener: TcpListener) -> &mut Self {
        self.sockets.push(listener);
        self
    }

    /// Makes the context: fds 0, 1 and 2 are stdio, the preopened directories follow
    /// from fd 3 in the order they were added, then the sockets.
    ///
    /// This moves everything out of the builder, which is left as [`WasiCtxBuilder::new`]
    /// made it.
    pub fn build(&mut self) -> WasiCtx {
        let this = std::mem::take(self);
        let mut table = FdTable::default();
        let entries = [
            Entry::new(
                Descriptor::Input(this.stdin),
                Rights::STDIN,
                Rights::empty(),
            ),
            Entry::new(
                Descriptor::Output(this.stdout),
                Rights::STDOUT,
                Rights::empty(),
            ),
            Entry::new(
                Descriptor::Output(this.stderr),
                Rights::STDOUT,
                Rights::empty(),
            ),
        ]
        .into_iter()
        .chain(
            this.preopens
                .into_iter()
                .map(|(dir, name, dir_perms, file_perms)| {
                    let base = dir_perms.rights();
                    Entry::new(
                        Descriptor::Dir(DirDesc {
                            dir,
                            preopen: Some(name),
                            listing: None,
                        }),
                        base,
                        base | file_perms.rights(),
                    )
                }),
        )
        .chain(this.sockets.into_iter().map(|listener| {
            Entry::new(
                Descriptor::Listener(listener),
                Rights::SOCKET_LISTENER,
                Rights::SOCKET_STREAM,
            )
        }));
        for entry in entries {
            // A fresh table has a free number for every descriptor a builder can hold.
            if table.push(entry).is_err() {
                break;
            }
        }
        let args_ok = this.args.iter().all(|arg| !arg.contains('\0'));
        let env_ok = this
            .env
            .iter()
            .all(|(key, value)| !key.contains(['=', '\0']) && !value.contains('\0'));
        WasiCtx {
            args: args_ok.then_some(this.args),
            env: env_ok.then(|| {
                this.env
                    .into_iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect()
            }),
            table,
        }
    }
}
