;; The smallest strata program: `strata run examples/hello.wat` calls `_start` and
;; prints its result; `--invoke fib 20` calls another export with arguments.
(module
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else
        (i32.add
          (call $fib (i32.sub (local.get $n) (i32.const 1)))
          (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "_start") (result i32)
    (call $fib (i32.const 10))))
