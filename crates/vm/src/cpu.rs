//! Which CPU features this host has, by the code generator's flag names, so that code
//! compiled elsewhere (a precompiled module) is never run on a CPU that lacks one of
//! the instructions it may use.

/// Whether the host CPU has the feature the code generator calls `flag` (such as
/// `has_avx2`); `None` if this host cannot tell (an unknown flag, or another
/// architecture's).
pub fn host_has_cpu_feature(flag: &str) -> Option<bool> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        Some(match flag {
            "has_cmpxchg16b" => has!("cmpxchg16b"),
            "has_sse3" => has!("sse3"),
            "has_ssse3" => has!("ssse3"),
            "has_sse41" => has!("sse4.1"),
            "has_sse42" => has!("sse4.2"),
            "has_popcnt" => has!("popcnt"),
            "has_avx" => has!("avx"),
            "has_avx2" => has!("avx2"),
            "has_fma" => has!("fma"),
            "has_avx_vnni" => has!("avxvnni"),
            "has_avx512vnni" => has!("avx512vnni"),
            "has_bmi1" => has!("bmi1"),
            "has_bmi2" => has!("bmi2"),
            "has_avx512bitalg" => has!("avx512bitalg"),
            "has_avx512dq" => has!("avx512dq"),
            "has_avx512f" => has!("avx512f"),
            "has_avx512vl" => has!("avx512vl"),
            "has_avx512vbmi" => has!("avx512vbmi"),
            "has_lzcnt" => has!("lzcnt"),
            _ => return None,
        })
    }
    #[cfg(target_arch = "aarch64")]
    {
        use std::arch::is_aarch64_feature_detected as has;
        Some(match flag {
            "has_lse" => has!("lse"),
            "has_pauth" => has!("paca"),
            "has_fp16" => has!("fp16"),
            "has_dotprod" => has!("dotprod"),
            "has_i8mm" => has!("i8mm"),
            _ => return None,
        })
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = flag;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_flags_cannot_be_checked() {
        assert_eq!(host_has_cpu_feature("has_teleportation"), None);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_64_flags_are_known() {
        assert!(host_has_cpu_feature("has_sse41").is_some());
        assert!(host_has_cpu_feature("has_avx512f").is_some());
    }
}
