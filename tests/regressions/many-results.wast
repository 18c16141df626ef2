;; Found by the `differential` fuzz target (and by the hostile corpus): a function type
;; with more results than there are return registers made compilation fail with
;; Cranelift's "Too many return values to fit in registers". WebAssembly 2.0 allows
;; them; they now come back through a return area.
(module
  (func $many (export "many") (param i32)
    (result i32 i64 i32 i64 i32 i64 i32 i64 i32 i64 f32 f64 f32 f64 f32 f64 f32 f64 f32 f64)
    (local.get 0) (i64.const 2) (i32.const 3) (i64.const 4) (i32.const 5)
    (i64.const 6) (i32.const 7) (i64.const 8) (i32.const 9) (i64.const 10)
    (f32.const 11) (f64.const 12) (f32.const 13) (f64.const 14) (f32.const 15)
    (f64.const 16) (f32.const 17) (f64.const 18) (f32.const 19) (f64.const 20))
  (func (export "sum") (param i32) (result i64)
    (local $acc i64)
    (block (result i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)
      (i32.const 1) (i32.const 2) (i32.const 3) (i32.const 4) (i32.const 5) (i32.const 6)
      (i32.const 7) (i32.const 8) (i32.const 9) (i32.const 10) (i32.const 11) (local.get 0))
    (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop)
    (i64.extend_i32_u)
    (call $many (i32.const 1))
    (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop)
    (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop)
    (local.set $acc)
    (drop)
    (i64.add (local.get $acc))))
(assert_return (invoke "many" (i32.const 1))
  (i32.const 1) (i64.const 2) (i32.const 3) (i64.const 4) (i32.const 5)
  (i64.const 6) (i32.const 7) (i64.const 8) (i32.const 9) (i64.const 10)
  (f32.const 11) (f64.const 12) (f32.const 13) (f64.const 14) (f32.const 15)
  (f64.const 16) (f32.const 17) (f64.const 18) (f32.const 19) (f64.const 20))
;; The block's first value (1) plus the second result of $many (2).
(assert_return (invoke "sum" (i32.const 40)) (i64.const 3))
