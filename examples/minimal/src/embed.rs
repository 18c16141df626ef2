// The minimal embedder's program, included by `main.rs` after `use strata as runtime;`
// (and by the wasmtime twin in `benches/minimal-wasmtime` after `use wasmtime as
// runtime;`).
//
// Usage: `minimal-embedder FILE [EXPORT [ARGS...]]`: loads the precompiled module in
// FILE, instantiates it without imports, calls EXPORT (default `_start`) with ARGS
// parsed by its parameter types, and prints each result on a line.

use runtime::{Engine, Instance, Module, Store, Val, ValType};

fn main() -> std::process::ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("Error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let [file, rest @ ..] = &args[..] else {
        return Err("usage: minimal-embedder FILE [EXPORT [ARGS...]]".into());
    };
    let (export, args) = match rest {
        [export, args @ ..] => (export.as_str(), args),
        [] => ("_start", rest),
    };
    let engine = Engine::default();
    // SAFETY: the user names the precompiled module to run and vouches for its code, as
    // for any native program; loading refuses damaged or mismatched files.
    let module = unsafe { Module::deserialize_file(&engine, file) }.map_err(|e| format!("{e:?}"))?;
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).map_err(|e| format!("{e:?}"))?;
    let func = instance
        .get_func(&mut store, export)
        .ok_or_else(|| format!("the module exports no function `{export}`"))?;
    let ty = func.ty(&store);
    if ty.params().len() != args.len() {
        return Err(format!("`{export}` takes {} arguments", ty.params().len()));
    }
    let params = ty
        .params()
        .zip(args)
        .map(|(ty, arg)| parse(&ty, arg))
        .collect::<Result<Vec<_>, _>>()?;
    let mut results = vec![Val::I32(0); ty.results().len()];
    func.call(&mut store, &params, &mut results)
        .map_err(|e| format!("{e:?}"))?;
    for result in results {
        match result {
            Val::I32(v) => println!("{v}"),
            Val::I64(v) => println!("{v}"),
            Val::F32(bits) => println!("{}", f32::from_bits(bits)),
            Val::F64(bits) => println!("{}", f64::from_bits(bits)),
            _ => println!("<reference or vector>"),
        }
    }
    Ok(())
}

/// Parses `arg` as a value of type `ty`.
fn parse(ty: &ValType, arg: &str) -> Result<Val, String> {
    let bad = || format!("`{arg}` is not a valid {ty}");
    Ok(match ty {
        ValType::I32 => Val::I32(arg.parse().map_err(|_| bad())?),
        ValType::I64 => Val::I64(arg.parse().map_err(|_| bad())?),
        ValType::F32 => Val::F32(arg.parse::<f32>().map_err(|_| bad())?.to_bits()),
        ValType::F64 => Val::F64(arg.parse::<f64>().map_err(|_| bad())?.to_bits()),
        _ => return Err(format!("cannot pass a {ty} from the command line")),
    })
}
