;; Found by the hostile corpus: a name section (a custom section, never validated)
;; naming function 4294967295 made Module::new panic on the index. Names of functions
;; that do not exist are now dropped.
(module binary
  "\00asm" "\01\00\00\00"
  ;; custom section "name", function names subsection: 1 entry, index 0xffffffff, "x"
  "\00\0f" "\04name" "\01\08" "\01" "\ff\ff\ff\ff\0f" "\01x")
(module binary
  "\00asm" "\01\00\00\00"
  "\01\04\01\60\00\00"        ;; type 0: [] -> []
  "\03\02\01\00"              ;; func 0: type 0
  "\07\05\01\01f\00\00"       ;; export "f"
  "\0a\04\01\02\00\0b"        ;; body: end
  ;; names for function 0 ("g") and function 7 (absent)
  "\00\0e" "\04name" "\01\07" "\02" "\00\01g" "\07\01h")
(assert_return (invoke "f"))
