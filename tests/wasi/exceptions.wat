;; What a C++ program built with exceptions does, written by hand (Debian's wasm32
;; libc++abi has no exception support): `level3` throws a `runtime_error` (tag
;; `$error`, with a code), `level2` has a local whose destructor runs while the
;; exception passes (a `catch_all_ref` that cleans up and throws the exception on),
;; and `_start` catches it and prints its code. An exception of another tag is not
;; caught by that handler; the program then exits with status 3.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "~Guard(level2) during unwinding\n")
  (data (i32.const 128) "caught: runtime_error 42\n")
  (data (i32.const 192) "wrong code\n")
  (data (i32.const 256) "done\n")
  (tag $error (param i32))
  (tag $other)

  (func $print (param $at i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $at))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  (func $level3 (throw $error (i32.const 42)))

  (func $level2
    (block $unwind (result exnref)
      (try_table (catch_all_ref $unwind)
        (call $level3))
      (return))
    ;; The destructor of level2's local, then the exception goes on.
    (call $print (i32.const 64) (i32.const 32))
    (throw_ref))

  (func $level1 (call $level2))

  (func (export "_start")
    (block $other_tag
      (block $caught (result i32)
        (try_table (catch $error $caught) (catch $other $other_tag)
          (call $level1))
        (unreachable))
      (if (i32.ne (i32.const 42))
        (then (call $print (i32.const 192) (i32.const 11)) (call $proc_exit (i32.const 1))))
      (call $print (i32.const 128) (i32.const 25))
      (call $print (i32.const 256) (i32.const 5))
      (return))
    (call $proc_exit (i32.const 3)))
)
