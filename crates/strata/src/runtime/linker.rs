//! [`Linker`]: resolves a module's imports by name.

use crate::runtime::func::HostFn;
use crate::runtime::{AsContext, AsContextMut, Extern, Func, Instance, IntoFunc, Module, Val};
use crate::{Engine, Error, FuncType, Result};
use std::collections::HashMap;

enum Definition<T> {
    Extern(Extern),
    HostFunc(FuncType, HostFn<T>),
}

impl<T> Clone for Definition<T> {
    fn clone(&self) -> Self {
        match self {
            Definition::Extern(e) => Definition::Extern(*e),
            Definition::HostFunc(ty, f) => Definition::HostFunc(ty.clone(), f.clone()),
        }
    }
}

/// Named definitions that satisfy modules' imports. Host functions defined here are
/// created anew in each store they are instantiated into.
pub struct Linker<T> {
    engine: Engine,
    definitions: HashMap<(String, String), Definition<T>>,
    allow_shadowing: bool,
}

impl<T: 'static> Linker<T> {
    /// An empty linker.
    pub fn new(engine: &Engine) -> Linker<T> {
        Linker {
            engine: engine.clone(),
            definitions: HashMap::new(),
            allow_shadowing: false,
        }
    }

    /// The linker's engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether a later definition may replace an earlier one of the same name.
    pub fn allow_shadowing(&mut self, allow: bool) -> &mut Self {
        self.allow_shadowing = allow;
        self
    }

    fn insert(&mut self, module: &str, name: &str, def: Definition<T>) -> Result<&mut Self> {
        let key = (module.to_owned(), name.to_owned());
        if !self.allow_shadowing && self.definitions.contains_key(&key) {
            return Err(Error::msg(format!(
                "import of `{module}::{name}` defined twice"
            )));
        }
        self.definitions.insert(key, def);
        Ok(self)
    }

    /// Defines `module::name` as a host function from a Rust closure.
    ///
    /// # Errors
    /// Fails if the name is taken and shadowing is not allowed.
    pub fn func_wrap<Params, Args>(
        &mut self,
        module: &str,
        name: &str,
        func: impl IntoFunc<T, Params, Args>,
    ) -> Result<&mut Self> {
        let (ty, body) = func.into_func();
        self.insert(module, name, Definition::HostFunc(ty, body))
    }

    /// Defines `module::name` as an async host function: `func` takes the caller and
    /// the arguments (as a tuple) and returns a boxed future of the results (or of a
    /// `Result` of them). The wasm calling it stays suspended on its fiber until the
    /// future is ready, while the async call into the wasm returns `Pending`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> strata::Result<()> {
    /// use strata::{Caller, Config, Engine, Linker, Module, Store};
    /// let engine = Engine::new(Config::new().async_support(true))?;
    /// let mut linker = Linker::new(&engine);
    /// linker.func_wrap_async("host", "later", |_: Caller<'_, ()>, (x,): (i32,)| {
    ///     Box::new(async move {
    ///         tokio::task::yield_now().await;
    ///         x + 1
    ///     })
    /// })?;
    /// let module = Module::new(&engine, r#"(module
    ///     (import "host" "later" (func $later (param i32) (result i32)))
    ///     (func (export "run") (result i32) (call $later (i32.const 41))))"#)?;
    /// let mut store = Store::new(&engine, ());
    /// let instance = linker.instantiate_async(&mut store, &module).await?;
    /// let run = instance.get_typed_func::<(), i32>(&mut store, "run")?;
    /// assert_eq!(run.call_async(&mut store, ()).await?, 42);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// Fails if the engine has no async support, or if the name is taken and
    /// shadowing is not allowed.
    #[cfg(feature = "async")]
    pub fn func_wrap_async<Params, Results, F>(
        &mut self,
        module: &str,
        name: &str,
        func: F,
    ) -> Result<&mut Self>
    where
        Params: crate::WasmParams,
        Results: crate::WasmRet,
        F: for<'a> Fn(
                crate::Caller<'a, T>,
                Params,
            ) -> Box<dyn std::future::Future<Output = Results> + Send + 'a>
            + Send
            + Sync
            + 'static,
    {
        if !self.engine.config().async_support {
            return Err(Error::msg(format!(
                "cannot define async host function `{module}::{name}`: the engine has no \
                 async support (`Config::async_support`)"
            )));
        }
        let (ty, body) = crate::runtime::func::async_host_fn(func);
        self.insert(module, name, Definition::HostFunc(ty, body))
    }

    /// Defines `module::name` as a host function of type `ty` over [`Val`]s.
    ///
    /// # Errors
    /// Fails if the name is taken and shadowing is not allowed.
    pub fn func_new(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        func: impl Fn(crate::Caller<'_, T>, &[Val], &mut [Val]) -> Result<()> + Send + Sync + 'static,
    ) -> Result<&mut Self> {
        let body = crate::runtime::func::val_host_fn(&ty, func);
        self.insert(module, name, Definition::HostFunc(ty, body))
    }

    /// Defines `module::name` as `item`.
    ///
    /// # Errors
    /// Fails if the name is taken and shadowing is not allowed.
    pub fn define(
        &mut self,
        _store: impl AsContext<Data = T>,
        module: &str,
        name: &str,
        item: impl Into<Extern>,
    ) -> Result<&mut Self> {
        self.insert(module, name, Definition::Extern(item.into()))
    }

    /// Defines every export of `instance` under `module_name`.
    ///
    /// # Errors
    /// Fails if a name is taken and shadowing is not allowed.
    pub fn instance(
        &mut self,
        mut store: impl AsContextMut<Data = T>,
        module_name: &str,
        instance: Instance,
    ) -> Result<&mut Self> {
        for (name, ext) in instance.exports(&mut store) {
            self.insert(module_name, &name, Definition::Extern(ext))?;
        }
        Ok(self)
    }

    /// The definition of `module::name`, created in `store` if it is a host function.
    pub fn get(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &str,
        name: &str,
    ) -> Option<Extern> {
        let def = self
            .definitions
            .get(&(module.to_owned(), name.to_owned()))?;
        Some(match def {
            Definition::Extern(e) => *e,
            Definition::HostFunc(ty, body) => Extern::Func(Func::from_host(
                store.as_context_mut().0,
                ty.clone(),
                body.clone(),
            )),
        })
    }

    /// Instantiates `module`, resolving its imports by name.
    ///
    /// # Errors
    /// Fails if an import is not defined (`unknown import`) or has the wrong type, or as
    /// [`Instance::new`].
    pub fn instantiate(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &Module,
    ) -> Result<Instance> {
        let imports = self.resolve(&mut store, module)?;
        Instance::new(store, module, &imports)
    }

    /// Instantiates `module` on a fiber, resolving its imports by name; see
    /// [`Instance::new_async`].
    ///
    /// # Errors
    /// As [`Linker::instantiate`], and fails if the engine has no async support.
    #[cfg(feature = "async")]
    pub async fn instantiate_async(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &Module,
    ) -> Result<Instance>
    where
        T: Send,
    {
        let imports = self.resolve(&mut store, module)?;
        Instance::new_async(store, module, &imports).await
    }

    /// The definitions of `module`'s imports, in its import order.
    fn resolve(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &Module,
    ) -> Result<Vec<Extern>> {
        let mut imports = Vec::with_capacity(module.imports().len());
        for import in module.imports() {
            let ext = self
                .get(&mut store, import.module(), import.name())
                .ok_or_else(|| {
                    Error::msg(format!(
                        "unknown import: `{}::{}` has not been defined",
                        import.module(),
                        import.name()
                    ))
                })?;
            imports.push(ext);
        }
        Ok(imports)
    }
}
