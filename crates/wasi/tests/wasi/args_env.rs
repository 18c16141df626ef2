//! `args_*` and `environ_*`.

use crate::{Guest, at, errno};
use strata_wasi::WasiCtxBuilder;

/// Reads the strings a `*_get` call wrote: `count` pointers at `ptrs`.
fn strings(g: &mut Guest, ptrs: u32, count: u32) -> Vec<String> {
    (0..count)
        .map(|i| {
            let mut at = g.u32(ptrs + 4 * i);
            let mut bytes = Vec::new();
            loop {
                let b = g.read(at, 1)[0];
                if b == 0 {
                    break;
                }
                bytes.push(b);
                at += 1;
            }
            String::from_utf8(bytes).unwrap()
        })
        .collect()
}

#[test]
fn args_round_trip() {
    let mut g = Guest::new(
        WasiCtxBuilder::new()
            .arg("prog.wasm")
            .args(&["two words", "ünïcode", ""])
            .build(),
    );
    assert_eq!(
        g.call("args_sizes_get", &[at::OUT.into(), at::OUT2.into()]),
        errno::SUCCESS
    );
    assert_eq!(g.u32(at::OUT), 4);
    let size = g.u32(at::OUT2);
    assert_eq!(
        size as usize,
        "prog.wasm".len() + "two words".len() + "ünïcode".len() + 4
    );
    assert_eq!(
        g.call("args_get", &[at::IOVS.into(), at::DATA.into()]),
        errno::SUCCESS
    );
    assert_eq!(
        strings(&mut g, at::IOVS, 4),
        ["prog.wasm", "two words", "ünïcode", ""]
    );
    // The strings are packed into exactly `size` bytes from the buffer's start.
    assert_eq!(g.u32(at::IOVS), at::DATA);
    assert_eq!(g.read(at::DATA + size - 1, 1), [0]);
}

#[test]
fn environ_round_trip() {
    let mut g = Guest::new(
        WasiCtxBuilder::new()
            .env("HOME", "/home/guest")
            .envs(&[("EMPTY", ""), ("A", "b=c")])
            .build(),
    );
    assert_eq!(
        g.call("environ_sizes_get", &[at::OUT.into(), at::OUT2.into()]),
        errno::SUCCESS
    );
    assert_eq!(g.u32(at::OUT), 3);
    assert_eq!(
        g.u32(at::OUT2) as usize,
        "HOME=/home/guest".len() + "EMPTY=".len() + "A=b=c".len() + 3
    );
    assert_eq!(
        g.call("environ_get", &[at::IOVS.into(), at::DATA.into()]),
        errno::SUCCESS
    );
    assert_eq!(
        strings(&mut g, at::IOVS, 3),
        ["HOME=/home/guest", "EMPTY=", "A=b=c"]
    );
}

#[test]
fn nothing_configured_means_no_args_or_env() {
    let mut g = Guest::plain();
    g.write_u32(at::OUT, 99);
    g.write_u32(at::OUT2, 99);
    assert_eq!(
        g.call("args_sizes_get", &[at::OUT.into(), at::OUT2.into()]),
        0
    );
    assert_eq!((g.u32(at::OUT), g.u32(at::OUT2)), (0, 0));
    g.write_u32(at::OUT, 99);
    assert_eq!(
        g.call("environ_sizes_get", &[at::OUT.into(), at::OUT2.into()]),
        0
    );
    assert_eq!((g.u32(at::OUT), g.u32(at::OUT2)), (0, 0));
}

#[test]
fn inherited_args_and_env_match_the_host() {
    let mut g = Guest::new(WasiCtxBuilder::new().inherit_args().inherit_env().build());
    g.call("args_sizes_get", &[at::OUT.into(), at::OUT2.into()]);
    assert_eq!(g.u32(at::OUT) as usize, std::env::args_os().count());
    g.call("environ_sizes_get", &[at::OUT.into(), at::OUT2.into()]);
    assert_eq!(g.u32(at::OUT) as usize, std::env::vars_os().count());
}

#[test]
fn strings_the_guest_cannot_receive_intact_fail_with_einval() {
    /// The errnos of the sizes and the strings call of `args` or `environ`.
    fn errnos(g: &mut Guest, what: &str) -> (i32, i32) {
        (
            g.call(
                &format!("{what}_sizes_get"),
                &[at::OUT.into(), at::OUT2.into()],
            ),
            g.call(&format!("{what}_get"), &[at::IOVS.into(), at::DATA.into()]),
        )
    }
    const OK: (i32, i32) = (errno::SUCCESS, errno::SUCCESS);
    const INVAL: (i32, i32) = (errno::INVAL, errno::INVAL);

    // A NUL would end the string early in the guest.
    let mut g = Guest::new(
        WasiCtxBuilder::new()
            .arg("prog")
            .arg("nul\0inside")
            .env("A", "b")
            .build(),
    );
    assert_eq!(errnos(&mut g, "args"), INVAL);
    assert_eq!(errnos(&mut g, "environ"), OK);

    // A key with `=` or NUL, or a value with NUL, would make another variable.
    for (key, value) in [("A=B", "c"), ("A\0B", "c"), ("A", "b\0C=d")] {
        let mut g = Guest::new(
            WasiCtxBuilder::new()
                .arg("prog")
                .env("OK", "1")
                .env(key, value)
                .build(),
        );
        assert_eq!(errnos(&mut g, "environ"), INVAL, "{key:?}={value:?}");
        assert_eq!(errnos(&mut g, "args"), OK);
        assert_eq!(g.u32(at::OUT), 1);
    }
    // `=` in a value is fine.
    let mut g = Guest::new(WasiCtxBuilder::new().envs(&[("A", "b=c")]).build());
    assert_eq!(errnos(&mut g, "environ"), OK);
}
