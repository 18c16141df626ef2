//! One source for both halves of each benchmark: [`runtime_side!`] expands to the same
//! code over `strata` ([`crate::strata_side`]) and over `wasmtime`
//! ([`crate::wasmtime_side`]), whose APIs share these names.

/// Expands to the benchmark code for the runtime crate `$runtime`.
#[macro_export]
macro_rules! runtime_side {
    ($runtime:ident) => {
        use $crate::modules::{self, CHECKED_DATA_AT, TABLE_ENTRIES};
        use $crate::{Allocator, Instantiate, Interruption, Result, err, pool};
        use $runtime::{
            Config, Engine, Func, FuncType, Instance, InstanceAllocationStrategy, Linker, Module,
            PoolingAllocationConfig, Store, TypedFunc, Val, ValType,
        };

        /// The engine configuration for `alloc`: the runtime's defaults (which include
        /// copy-on-write memory initialization, set here anyway), plus the pooling allocator
        /// with [`pool`]'s settings for [`Allocator::Pooling`].
        pub fn config(alloc: Allocator) -> Config {
            let mut config = Config::new();
            config.memory_init_cow(true);
            if alloc == Allocator::Pooling {
                let mut p = PoolingAllocationConfig::default();
                p.total_core_instances(pool::TOTAL_CORE_INSTANCES)
                    .total_memories(pool::TOTAL_MEMORIES)
                    .total_tables(pool::TOTAL_TABLES)
                    .max_memory_size(pool::MAX_MEMORY_SIZE)
                    .table_elements(pool::TABLE_ELEMENTS)
                    .linear_memory_keep_resident(pool::LINEAR_MEMORY_KEEP_RESIDENT)
                    .table_keep_resident(pool::TABLE_KEEP_RESIDENT)
                    .max_unused_warm_slots(pool::MAX_UNUSED_WARM_SLOTS)
                    .decommit_batch_size(pool::DECOMMIT_BATCH_SIZE);
                config.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
            }
            config
        }

        /// An engine and the compiled instantiation module.
        pub struct Instantiator {
            engine: Engine,
            module: Module,
        }

        impl Instantiator {
            /// Compiles the module for an engine configured for `alloc`.
            ///
            /// # Errors
            /// Fails if the engine cannot be created or the module does not compile.
            pub fn new(alloc: Allocator, wasm: &[u8]) -> Result<Instantiator> {
                let engine = Engine::new(&config(alloc)).map_err(err)?;
                let module = Module::new(&engine, wasm).map_err(err)?;
                Ok(Instantiator { engine, module })
            }
        }

        impl Instantiate for Instantiator {
            fn instantiate_once(&self) -> Result<()> {
                let mut store = Store::new(&self.engine, ());
                let instance = Instance::new(&mut store, &self.module, &[]).map_err(err)?;
                std::hint::black_box(instance);
                Ok(())
            }

            fn check(&self) -> Result<()> {
                let mut store = Store::new(&self.engine, ());
                let instance = Instance::new(&mut store, &self.module, &[]).map_err(err)?;
                let f0 = instance
                    .get_typed_func::<(), i32>(&mut store, "f0")
                    .map_err(err)?;
                let add1 = instance
                    .get_typed_func::<(i32, i32), i32>(&mut store, "add1")
                    .map_err(err)?;
                let dispatch = instance
                    .get_typed_func::<i32, i32>(&mut store, "dispatch")
                    .map_err(err)?;
                let bump = instance
                    .get_typed_func::<(), i32>(&mut store, "bump")
                    .map_err(err)?;
                let memory = instance
                    .get_memory(&mut store, "memory")
                    .ok_or("no memory export")?;

                let mut got = Vec::new();
                got.push(f0.call(&mut store, ()).map_err(err)?);
                got.push(add1.call(&mut store, (40, 2)).map_err(err)?);
                for slot in 0..TABLE_ENTRIES {
                    got.push(dispatch.call(&mut store, slot as i32).map_err(err)?);
                }
                got.push(bump.call(&mut store, ()).map_err(err)?);
                let mut data = [0u8; 16];
                memory
                    .read(&store, CHECKED_DATA_AT, &mut data)
                    .map_err(err)?;
                modules::check_instance(&got, &data)
            }
        }

        /// A store with [`modules::HOST_CALL_WAT`] instantiated, its import a no-op closure.
        pub struct HostCalls {
            store: Store<()>,
            run: TypedFunc<i32, ()>,
        }

        impl HostCalls {
            /// Compiles and instantiates the module with the default configuration.
            ///
            /// # Errors
            /// Fails if compilation or instantiation fails.
            pub fn new() -> Result<HostCalls> {
                let engine = Engine::new(&Config::new()).map_err(err)?;
                let module = Module::new(&engine, modules::HOST_CALL_WAT).map_err(err)?;
                let mut linker = Linker::new(&engine);
                linker.func_wrap("host", "nop", || {}).map_err(err)?;
                let mut store = Store::new(&engine, ());
                let instance = linker.instantiate(&mut store, &module).map_err(err)?;
                let run = instance
                    .get_typed_func::<i32, ()>(&mut store, "run")
                    .map_err(err)?;
                Ok(HostCalls { store, run })
            }

            /// Calls the host `n` times from wasm.
            ///
            /// # Errors
            /// Fails if the call traps.
            pub fn run(&mut self, n: i32) -> Result<()> {
                self.run.call(&mut self.store, n).map_err(err)
            }
        }

        /// A store with [`modules::CALLS_WAT`] instantiated: `host.typed` is a
        /// `Func::wrap` closure adding 1, `host.untyped` a `Func::new` closure over
        /// [`Val`]s doing the same.
        pub struct Calls {
            store: Store<()>,
            inc: TypedFunc<i32, i32>,
            inc_untyped: Func,
            typed: TypedFunc<i32, i32>,
            untyped: TypedFunc<i32, i32>,
        }

        impl Calls {
            /// Compiles and instantiates the module with the default configuration.
            ///
            /// # Errors
            /// Fails if compilation or instantiation fails.
            pub fn new() -> Result<Calls> {
                let engine = Engine::new(&Config::new()).map_err(err)?;
                let module = Module::new(&engine, modules::CALLS_WAT).map_err(err)?;
                let mut linker = Linker::new(&engine);
                linker
                    .func_wrap("host", "typed", |x: i32| x.wrapping_add(1))
                    .map_err(err)?;
                let ty = FuncType::new(&engine, [ValType::I32], [ValType::I32]);
                linker
                    .func_new("host", "untyped", ty, |_caller, args, results| {
                        let Val::I32(x) = args[0] else {
                            unreachable!("the type says i32")
                        };
                        results[0] = Val::I32(x.wrapping_add(1));
                        Ok(())
                    })
                    .map_err(err)?;
                let mut store = Store::new(&engine, ());
                let instance = linker.instantiate(&mut store, &module).map_err(err)?;
                let typed_func = |store: &mut Store<()>, name: &str| {
                    instance
                        .get_typed_func::<i32, i32>(&mut *store, name)
                        .map_err(err)
                };
                let inc = typed_func(&mut store, "inc")?;
                let typed = typed_func(&mut store, "typed")?;
                let untyped = typed_func(&mut store, "untyped")?;
                let inc_untyped = instance
                    .get_func(&mut store, "inc")
                    .ok_or("no export `inc`")?;
                Ok(Calls {
                    store,
                    inc,
                    inc_untyped,
                    typed,
                    untyped,
                })
            }

            /// Wasm calls the `Func::wrap` host function `n` times; returns `n`.
            ///
            /// # Errors
            /// Fails if the call traps.
            pub fn wasm_to_host_typed(&mut self, n: i32) -> Result<i32> {
                self.typed.call(&mut self.store, n).map_err(err)
            }

            /// Wasm calls the `Func::new` host function `n` times; returns `n`.
            ///
            /// # Errors
            /// Fails if the call traps.
            pub fn wasm_to_host_untyped(&mut self, n: i32) -> Result<i32> {
                self.untyped.call(&mut self.store, n).map_err(err)
            }

            /// The host calls `inc` through `TypedFunc::call` `n` times, feeding each
            /// result to the next call; returns `n`.
            ///
            /// # Errors
            /// Fails if a call traps.
            pub fn host_to_wasm_typed(&mut self, n: i32) -> Result<i32> {
                let mut x = 0;
                for _ in 0..n {
                    x = self.inc.call(&mut self.store, x).map_err(err)?;
                }
                Ok(x)
            }

            /// The host calls `inc` through `Func::call` `n` times, feeding each result
            /// to the next call; returns `n`.
            ///
            /// # Errors
            /// Fails if a call traps or returns something else than an `i32`.
            pub fn host_to_wasm_untyped(&mut self, n: i32) -> Result<i32> {
                let mut out = [Val::I32(0)];
                for _ in 0..n {
                    let arg = out[0];
                    self.inc_untyped
                        .call(&mut self.store, &[arg], &mut out)
                        .map_err(err)?;
                }
                match out[0] {
                    Val::I32(x) => Ok(x),
                    _ => Err("inc returned a non-i32".into()),
                }
            }
        }

        /// A store with [`modules::FIB_WAT`] instantiated.
        pub struct Fib {
            store: Store<()>,
            fib: TypedFunc<i32, i32>,
        }

        impl Fib {
            /// Compiles and instantiates the module with the default configuration.
            ///
            /// # Errors
            /// Fails if compilation or instantiation fails.
            pub fn new() -> Result<Fib> {
                let engine = Engine::new(&Config::new()).map_err(err)?;
                let module = Module::new(&engine, modules::FIB_WAT).map_err(err)?;
                let mut store = Store::new(&engine, ());
                let instance = Instance::new(&mut store, &module, &[]).map_err(err)?;
                let fib = instance
                    .get_typed_func::<i32, i32>(&mut store, "fib")
                    .map_err(err)?;
                Ok(Fib { store, fib })
            }

            /// Computes `fib(n)` in wasm.
            ///
            /// # Errors
            /// Fails if the call traps.
            pub fn run(&mut self, n: i32) -> Result<i32> {
                self.fib.call(&mut self.store, n).map_err(err)
            }
        }

        /// A store with one exported `i32 -> i32` function of a module, compiled with
        /// fuel or epoch checks (or neither) and never stopped by them.
        pub struct Kernel {
            store: Store<()>,
            func: TypedFunc<i32, i32>,
        }

        impl Kernel {
            /// Compiles `wat` for `mode` and instantiates it.
            ///
            /// # Errors
            /// Fails if compilation or instantiation fails.
            pub fn new(wat: &str, export: &str, mode: Interruption) -> Result<Kernel> {
                Kernel::new_with(wat, export, mode, |_| {})
            }

            /// Compiles `wat` for `mode`, with `tweak` applied to the configuration, and
            /// instantiates it.
            ///
            /// # Errors
            /// Fails if compilation or instantiation fails.
            pub fn new_with(
                wat: &str,
                export: &str,
                mode: Interruption,
                tweak: impl FnOnce(&mut Config),
            ) -> Result<Kernel> {
                let mut config = Config::new();
                tweak(&mut config);
                match mode {
                    Interruption::None => {}
                    Interruption::Fuel => {
                        config.consume_fuel(true);
                    }
                    Interruption::Epoch => {
                        config.epoch_interruption(true);
                    }
                }
                let engine = Engine::new(&config).map_err(err)?;
                let module = Module::new(&engine, wat).map_err(err)?;
                let mut store = Store::new(&engine, ());
                match mode {
                    Interruption::None => {}
                    Interruption::Fuel => store.set_fuel(u64::MAX).map_err(err)?,
                    Interruption::Epoch => store.set_epoch_deadline(1 << 40),
                }
                let instance = Instance::new(&mut store, &module, &[]).map_err(err)?;
                let func = instance
                    .get_typed_func::<i32, i32>(&mut store, export)
                    .map_err(err)?;
                Ok(Kernel { store, func })
            }

            /// Calls the function with `n`.
            ///
            /// # Errors
            /// Fails if the call traps.
            pub fn run(&mut self, n: i32) -> Result<i32> {
                self.func.call(&mut self.store, n).map_err(err)
            }
        }

        /// An async store with [`modules::ASYNC_WAT`] instantiated, for `call_async`.
        pub struct AsyncCalls {
            store: Store<()>,
            nop: TypedFunc<(), ()>,
            wait: TypedFunc<(), ()>,
        }

        impl AsyncCalls {
            /// Compiles and instantiates the module with async support and `alloc`'s
            /// allocator; `host::wait` is an async host function whose future is
            /// pending once.
            ///
            /// # Errors
            /// Fails if compilation or instantiation fails.
            pub fn new(alloc: Allocator) -> Result<AsyncCalls> {
                let mut config = config(alloc);
                #[allow(
                    deprecated,
                    reason = "wasmtime 48 makes any store async on demand; strata needs the switch"
                )]
                config.async_support(true);
                let engine = Engine::new(&config).map_err(err)?;
                let module = Module::new(&engine, modules::ASYNC_WAT).map_err(err)?;
                let mut linker = Linker::new(&engine);
                linker
                    .func_wrap_async("host", "wait", |_caller, (): ()| {
                        Box::new($crate::measure::PendingOnce::default())
                    })
                    .map_err(err)?;
                let mut store = Store::new(&engine, ());
                let instance =
                    $crate::measure::poll_to_end(linker.instantiate_async(&mut store, &module))
                        .0
                        .map_err(err)?;
                let nop = instance.get_typed_func(&mut store, "nop").map_err(err)?;
                let wait = instance.get_typed_func(&mut store, "wait").map_err(err)?;
                Ok(AsyncCalls { store, nop, wait })
            }

            /// `call_async` of an empty function, polled to the end: how often it was
            /// pending (0).
            ///
            /// # Errors
            /// Fails if the call traps.
            pub fn nop(&mut self) -> Result<usize> {
                let (result, pending) =
                    $crate::measure::poll_to_end(self.nop.call_async(&mut self.store, ()));
                result.map_err(err)?;
                Ok(pending)
            }

            /// `call_async` of a function that calls `host::wait`, polled to the end:
            /// how often it was pending (1).
            ///
            /// # Errors
            /// Fails if the call traps.
            pub fn wait(&mut self) -> Result<usize> {
                let (result, pending) =
                    $crate::measure::poll_to_end(self.wait.call_async(&mut self.store, ()));
                result.map_err(err)?;
                Ok(pending)
            }
        }
    };
}
