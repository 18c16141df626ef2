//! Linear memory, from both sides.
//!
//! The module exports its memory and functions that load, store and report its size.
//! The host reads and writes the same bytes (`Memory::data`, `data_mut`, `read`,
//! `write`), grows the memory, and shows that an access past its end traps.
//!
//! Run with `cargo run --example memory`.

use anyhow::{Result, bail};
use strata::{Engine, Instance, Module, Store, Trap};

const WAT: &str = r#"
(module
  ;; One 64 KiB page now, at most three.
  (memory (export "memory") 1 3)
  (data (i32.const 16) "hello from wasm")

  (func (export "load") (param $addr i32) (result i32)
    (i32.load (local.get $addr)))
  (func (export "store") (param $addr i32) (param $value i32)
    (i32.store (local.get $addr) (local.get $value)))
  (func (export "size") (result i32)
    (memory.size)))
"#;

fn main() -> Result<()> {
    let engine = Engine::default();
    let module = Module::new(&engine, WAT)?;
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[])?;

    let memory = instance
        .get_memory(&mut store, "memory")
        .expect("the module exports `memory`");
    let load = instance.get_typed_func::<i32, i32>(&mut store, "load")?;
    let store_fn = instance.get_typed_func::<(i32, i32), ()>(&mut store, "store")?;
    let size = instance.get_typed_func::<(), i32>(&mut store, "size")?;

    // The data segment, read straight from the host's view of memory.
    let greeting = &memory.data(&store)[16..31];
    println!("bytes 16..31: {:?}", String::from_utf8_lossy(greeting));

    // Host writes, wasm reads.
    memory.data_mut(&mut store)[0..4].copy_from_slice(&0x1234_5678_i32.to_le_bytes());
    println!(
        "wasm load(0) after a host write: {:#x}",
        load.call(&mut store, 0)?
    );

    // Wasm writes, host reads (with bounds-checked copies this time).
    store_fn.call(&mut store, (100, -7))?;
    let mut buf = [0u8; 4];
    memory.read(&store, 100, &mut buf)?;
    println!(
        "host read(100) after a wasm store: {}",
        i32::from_le_bytes(buf)
    );
    memory.write(&mut store, 200, b"from the host")?;
    println!(
        "host write/read at 200: {:?}",
        String::from_utf8_lossy(&memory.data(&store)[200..213])
    );
    // Host accesses are checked too: they fail instead of trapping.
    let past_end = memory.data_size(&store) - 2;
    if let Err(e) = memory.read(&store, past_end, &mut buf) {
        println!("host read({past_end}, 4 bytes): {e}");
    }

    // Grow from the host; wasm sees the new size.
    println!(
        "size: {} page(s), {} bytes",
        memory.size(&store),
        memory.data_size(&store)
    );
    let first_new_byte = i32::try_from(memory.data_size(&store))?;
    match load.call(&mut store, first_new_byte) {
        Err(e) if e.trap() == Some(Trap::MemoryOutOfBounds) => {
            println!("load({first_new_byte}) before growing: trapped: {e}");
        }
        other => bail!("expected an out-of-bounds trap, got {other:?}"),
    }
    let old = memory.grow(&mut store, 1)?;
    println!(
        "grow(1): was {old} page(s), now {} (wasm memory.size = {})",
        memory.size(&store),
        size.call(&mut store, ())?
    );
    println!(
        "load({first_new_byte}) after growing: {}",
        load.call(&mut store, first_new_byte)?
    );

    // Growing past the declared maximum fails and leaves the memory as it was.
    match memory.grow(&mut store, 5) {
        Ok(old) => bail!("grew past the maximum from {old} pages"),
        Err(e) => println!("grow(5): {e}; still {} page(s)", memory.size(&store)),
    }
    Ok(())
}
