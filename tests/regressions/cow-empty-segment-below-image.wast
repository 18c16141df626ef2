;; Found by the `instantiate` fuzz target. The copy-on-write image of a memory spans
;; its non-empty data segments; an empty segment below the first of them made the
;; image builder's offset arithmetic underflow, a panic in the host at instantiation.
(module
  (memory (export "m") 1)
  (data (i32.const 0) "")
  (data (i32.const 8192) "x")
  (data (i32.const 9000) "")
  (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0))))
(assert_return (invoke "load" (i32.const 8192)) (i32.const 120))
(assert_return (invoke "load" (i32.const 0)) (i32.const 0))
(assert_return (invoke "load" (i32.const 9000)) (i32.const 0))
