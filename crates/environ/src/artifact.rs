//! The precompiled-module artifact: a compiled module as bytes, to be loaded without a
//! compiler.
//!
//! ```text
//!  0   magic            8 bytes   "\x7fstrata\0"
//!  8   format version   u32       FORMAT_VERSION
//! 12   header length    u32       bytes from 0 to the end of the section table
//! 16   header checksum  u32       CRC-32 of bytes 20 .. header length
//! 20   strata version   string    (u32 length, then UTF-8)
//!      target           string    "x86_64-linux-gnu": architecture, OS, environment
//!      CPU features     u32 count, then strings: the code generator's ISA flags in use
//!      settings         u32 count, then (name, value) strings: every code-affecting
//!                       engine setting
//!      settings hash    u64       FNV-1a of the settings, "name=value\n" each
//!      sections         u32 count, then (kind u32, offset u64, length u64, CRC-32 u32)
//!  …   sections, each at its offset; the text at a multiple of TEXT_ALIGN
//! ```
//!
//! All integers are little-endian. The tables the runtime searches (function locations,
//! traps, address map) are arrays of little-endian `u32`s read in place, so loading an
//! artifact decodes only the module's metadata ([`Section::Meta`]) and never a table
//! with an entry per instruction. The text has no relocations (see [`CompiledModule`]).
//!
//! Every section carries a CRC-32; the text also has one per [`TEXT_CHUNK`] bytes in
//! [`Section::TextChecksums`] so that it can be checked piece by piece.
//!
//! An artifact's code is trusted: the checks here catch accidents (a truncated or
//! corrupted file, another strata version or target, other settings), not an attacker
//! who writes a consistent artifact with malicious code.

use crate::{CompiledModule, DefinedFuncIndex, EntityRef, FunctionLoc, Module, Trap, TypeIndex};
use core::fmt;
use core::ops::Range;

/// The first eight bytes of every artifact.
pub const ARTIFACT_MAGIC: [u8; 8] = *b"\x7fstrata\0";

/// The version of the layout described in this module; bumped on every change to it,
/// or to the encoding of [`Module`].
pub const FORMAT_VERSION: u32 = 3;

/// The text section starts at a multiple of this, so that it can be mapped straight
/// from a file on hosts with pages up to this size.
pub const TEXT_ALIGN: usize = 0x1000;

/// The text is checksummed in pieces of this many bytes (the last may be shorter).
pub const TEXT_CHUNK: usize = 0x1_0000;

/// The fixed part of the header: magic, format version, header length and checksum.
const FIXED_HEADER: usize = 20;

/// A section of an artifact.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Section {
    /// The module's metadata, encoded with postcard.
    Meta = 1,
    /// Per defined function, its `(start, length)` in the text.
    Functions = 2,
    /// Per defined function, the text offset of its array-call entry trampoline, or
    /// `u32::MAX` if it has none.
    ArrayToWasm = 3,
    /// Per type, the `(start, length)` of its wasm-to-host trampoline.
    WasmToArray = 4,
    /// `(text offset, trap code)` of every trapping instruction, sorted by offset.
    Traps = 5,
    /// `(text offset, wasm offset)` pairs sorted by text offset.
    AddressMap = 6,
    /// CRC-32 of each [`TEXT_CHUNK`] bytes of the text.
    TextChecksums = 7,
    /// The machine code.
    Text = 8,
    /// The bytes of the data segments ([`DataSegment::range`](crate::DataSegment)
    /// indexes them), at a page boundary.
    Data = 9,
    /// `(text offset, defined function or u32::MAX, wasm offset of the call)` triples
    /// sorted by text offset: where code was inlined ([`InlineSite`](crate::InlineSite)).
    InlineMap = 10,
    /// `(return address, handler, frame offset)` triples of the calls with an exception
    /// handler, sorted by return address ([`HandlerSite`](crate::HandlerSite)).
    Handlers = 11,
}

impl Section {
    const ALL: [Section; 11] = [
        Section::Meta,
        Section::Functions,
        Section::ArrayToWasm,
        Section::WasmToArray,
        Section::Traps,
        Section::AddressMap,
        Section::InlineMap,
        Section::Handlers,
        Section::TextChecksums,
        Section::Text,
        Section::Data,
    ];

    /// Whether loading leaves the section's checksum to be checked when it is first
    /// used: the text (as it first runs), the data (at the first instantiation), and the
    /// trap table, address map and inline map (at the first trap or backtrace).
    pub fn checked_on_first_use(self) -> bool {
        matches!(
            self,
            Section::Text
                | Section::Data
                | Section::Traps
                | Section::AddressMap
                | Section::InlineMap
        )
    }

    /// Its name in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Section::Meta => "metadata",
            Section::Functions => "function table",
            Section::ArrayToWasm => "entry trampoline table",
            Section::WasmToArray => "exit trampoline table",
            Section::Traps => "trap table",
            Section::AddressMap => "address map",
            Section::InlineMap => "inline map",
            Section::Handlers => "exception handler table",
            Section::TextChecksums => "text checksums",
            Section::Text => "text",
            Section::Data => "data",
        }
    }

    fn from_u32(kind: u32) -> Option<Section> {
        Section::ALL.into_iter().find(|s| *s as u32 == kind)
    }
}

/// What code was compiled for, or what an engine runs: artifacts load only into
/// engines whose description matches theirs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactTarget {
    /// The strata version that wrote the artifact.
    pub strata_version: String,
    /// Architecture, OS and environment, as [`host_target`] gives them.
    pub target: String,
    /// The CPU features the code may use (code generator flag names, e.g. `has_avx2`).
    pub cpu_features: Vec<String>,
    /// Every engine setting that changes generated code, by name.
    pub settings: Vec<(String, String)>,
}

impl ArtifactTarget {
    /// The hash of [`settings`](Self::settings) recorded in the header: 64-bit FNV-1a
    /// over `name=value\n` of each setting in order. Stable across strata versions.
    pub fn settings_hash(&self) -> u64 {
        settings_hash(&self.settings)
    }
}

/// See [`ArtifactTarget::settings_hash`].
pub fn settings_hash(settings: &[(String, String)]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = settings
        .iter()
        .flat_map(|(n, v)| [n.as_bytes(), b"=", v.as_bytes(), b"\n"])
        .flatten();
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The host as [`ArtifactTarget::target`] names it, e.g. `x86_64-linux-gnu`.
pub fn host_target() -> String {
    let env = if cfg!(target_env = "gnu") {
        "gnu"
    } else if cfg!(target_env = "musl") {
        "musl"
    } else {
        "unknown"
    };
    format!("{}-{}-{env}", std::env::consts::ARCH, std::env::consts::OS)
}

/// Why bytes could not be loaded as an artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArtifactError {
    /// The bytes do not start with [`ARTIFACT_MAGIC`]; `wasm` if they are a wasm module.
    NotAnArtifact {
        /// Whether the bytes start like a WebAssembly binary or text module instead.
        wasm: bool,
    },
    /// Written in another layout.
    FormatVersion {
        /// The artifact's format version.
        found: u32,
    },
    /// The bytes end before something the header says is there.
    Truncated {
        /// What is cut off.
        what: String,
        /// Bytes needed to hold it.
        needed: u64,
        /// Bytes there are.
        len: u64,
    },
    /// A checksum does not match.
    Corrupted {
        /// The part whose checksum failed.
        what: String,
    },
    /// The header is inconsistent although its checksum matches.
    Malformed(String),
    /// Written by another version of strata.
    StrataVersion {
        /// The version that wrote the artifact.
        found: String,
        /// This version.
        expected: String,
    },
    /// Compiled for another platform.
    Target {
        /// The artifact's target.
        found: String,
        /// The host's.
        expected: String,
    },
    /// The code uses a CPU feature this host lacks.
    CpuFeature(String),
    /// The code uses a CPU feature strata cannot detect on this host.
    UnknownCpuFeature(String),
    /// Compiled with another value of a code-affecting setting.
    Setting {
        /// The setting.
        name: String,
        /// Its value in the artifact.
        artifact: String,
        /// Its value in the engine.
        engine: String,
    },
}

impl fmt::Display for ArtifactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArtifactError::NotAnArtifact { wasm: true } => f.write_str(
                "not a precompiled module: these are WebAssembly bytes, which must be compiled",
            ),
            ArtifactError::NotAnArtifact { wasm: false } => {
                f.write_str("not a precompiled strata module (wrong magic number)")
            }
            ArtifactError::FormatVersion { found } => write!(
                f,
                "precompiled module has format version {found}, but this strata reads version \
                 {FORMAT_VERSION}"
            ),
            ArtifactError::Truncated { what, needed, len } => write!(
                f,
                "precompiled module is truncated: its {what} needs {needed} bytes, there are {len}"
            ),
            ArtifactError::Corrupted { what } => {
                write!(
                    f,
                    "precompiled module is corrupted: checksum mismatch in its {what}"
                )
            }
            ArtifactError::Malformed(what) => {
                write!(f, "precompiled module is malformed: {what}")
            }
            ArtifactError::StrataVersion { found, expected } => write!(
                f,
                "module was precompiled by strata {found}, but this is strata {expected}"
            ),
            ArtifactError::Target { found, expected } => write!(
                f,
                "module was precompiled for target {found}, but this host is {expected}"
            ),
            ArtifactError::CpuFeature(feature) => write!(
                f,
                "module was precompiled for a CPU with `{feature}`, which this host lacks"
            ),
            ArtifactError::UnknownCpuFeature(feature) => write!(
                f,
                "module was precompiled for a CPU with `{feature}`, which strata cannot detect \
                 on this host"
            ),
            ArtifactError::Setting {
                name,
                artifact,
                engine,
            } => write!(
                f,
                "module was precompiled with setting `{name}` = {artifact}, but this engine has \
                 {engine}"
            ),
        }
    }
}

impl core::error::Error for ArtifactError {}

/// Whether `bytes` start like an artifact.
pub fn is_artifact(bytes: &[u8]) -> bool {
    bytes.starts_with(&ARTIFACT_MAGIC)
}

/// Whether `bytes` start like a WebAssembly module, binary or (for the `wat` reader)
/// text.
fn looks_like_wasm(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"\0asm") {
        return true;
    }
    let text = bytes.trim_ascii_start();
    text.starts_with(b"(") || text.starts_with(b";;")
}

/// Writes the artifact of `module`, whose data segments' bytes are `data`, compiled
/// to `compiled` for `target`.
///
/// # Panics
/// Panics if the text is 4 GiB or larger, which [`CompiledModule`] offsets rule out.
pub fn write_artifact(
    target: &ArtifactTarget,
    module: &Module,
    compiled: &CompiledModule,
    data: &[u8],
) -> Vec<u8> {
    let meta = postcard::to_allocvec(module).expect("module metadata encodes in memory");
    let num_funcs = compiled.functions.len();
    let mut entries = vec![u32::MAX; num_funcs];
    for (index, loc) in &compiled.array_to_wasm_trampolines {
        entries[index.index()] = loc.start;
    }
    let text_checksums: Vec<u32> = compiled
        .text
        .chunks(TEXT_CHUNK)
        .map(crc32fast::hash)
        .collect();
    let sections: [(Section, Vec<u8>); 9] = [
        (Section::Meta, meta),
        (
            Section::Functions,
            words(
                compiled
                    .functions
                    .values()
                    .flat_map(|l| [l.start, l.length]),
            ),
        ),
        (Section::ArrayToWasm, words(entries)),
        (
            Section::WasmToArray,
            words(
                compiled
                    .wasm_to_array_trampolines
                    .values()
                    .flat_map(|l| [l.start, l.length]),
            ),
        ),
        (
            Section::Traps,
            words(
                compiled
                    .traps
                    .iter()
                    .flat_map(|t| [t.offset, u32::from(t.trap.as_u8())]),
            ),
        ),
        (
            Section::AddressMap,
            words(compiled.address_map.iter().flat_map(|&(t, w)| [t, w])),
        ),
        (
            Section::InlineMap,
            words(compiled.inline_map.iter().flat_map(|site| {
                let callee = site.callee.map_or(u32::MAX, |c| c.as_u32());
                [site.offset, callee, site.call]
            })),
        ),
        (
            Section::Handlers,
            words(
                compiled
                    .handlers
                    .iter()
                    .flat_map(|h| [h.return_address, h.handler, h.frame_offset]),
            ),
        ),
        (Section::TextChecksums, words(text_checksums)),
    ];

    let mut header = Vec::new();
    header.extend_from_slice(&ARTIFACT_MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&[0; 8]); // length and checksum, filled in below
    put_str(&mut header, &target.strata_version);
    put_str(&mut header, &target.target);
    put_u32(&mut header, count(target.cpu_features.len()));
    for feature in &target.cpu_features {
        put_str(&mut header, feature);
    }
    put_u32(&mut header, count(target.settings.len()));
    for (name, value) in &target.settings {
        put_str(&mut header, name);
        put_str(&mut header, value);
    }
    header.extend_from_slice(&target.settings_hash().to_le_bytes());
    put_u32(&mut header, count(Section::ALL.len()));
    let header_len = header.len() + Section::ALL.len() * 24;

    // Lay the sections out after the header, tables 4-aligned, the text page-aligned.
    let mut offset = header_len;
    let mut table = Vec::new();
    let mut place = |section: Section, bytes: &[u8], align: usize| {
        offset = offset.next_multiple_of(align);
        table.push((section, offset, bytes.len(), crc32fast::hash(bytes)));
        offset += bytes.len();
    };
    for (section, bytes) in &sections {
        place(*section, bytes, 4);
    }
    place(Section::Data, data, crate::IMAGE_ALIGN as usize);
    place(Section::Text, &compiled.text, TEXT_ALIGN);
    let total = offset;

    for &(section, offset, len, crc) in &table {
        put_u32(&mut header, section as u32);
        header.extend_from_slice(&(offset as u64).to_le_bytes());
        header.extend_from_slice(&(len as u64).to_le_bytes());
        put_u32(&mut header, crc);
    }
    debug_assert_eq!(header.len(), header_len);
    header[12..16].copy_from_slice(&count(header_len).to_le_bytes());
    let crc = crc32fast::hash(&header[FIXED_HEADER..]);
    header[16..20].copy_from_slice(&crc.to_le_bytes());

    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&header);
    for (&(_, offset, ..), bytes) in table.iter().zip(
        sections
            .iter()
            .map(|(_, b)| &b[..])
            .chain([data, &compiled.text[..]]),
    ) {
        out.resize(offset, 0);
        out.extend_from_slice(bytes);
    }
    debug_assert_eq!(out.len(), total);
    out
}

fn count(n: usize) -> u32 {
    u32::try_from(n).expect("artifact parts are smaller than 4 GiB")
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, count(s.len()));
    out.extend_from_slice(s.as_bytes());
}

fn words(values: impl IntoIterator<Item = u32>) -> Vec<u8> {
    values.into_iter().flat_map(u32::to_le_bytes).collect()
}

/// Where one section lies in an artifact, and its checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SectionEntry {
    range: Range<usize>,
    crc: u32,
}

/// A parsed artifact header: the description of its target and where its sections are.
///
/// Parsing checks the header's own integrity and that every section lies inside the
/// bytes; [`check_compatible`](Self::check_compatible),
/// [`verify_tables`](Self::verify_tables) and [`verify_section`](Self::verify_section)
/// check the rest.
#[derive(Clone, Debug)]
pub struct ArtifactLayout {
    /// What the code was compiled for.
    pub target: ArtifactTarget,
    settings_hash: u64,
    sections: [SectionEntry; Section::ALL.len()],
}

/// Reads the header from the front of `bytes`.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ArtifactError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| ArtifactError::Malformed("header fields overrun it".into()))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, ArtifactError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, ArtifactError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn string(&mut self) -> Result<String, ArtifactError> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| ArtifactError::Malformed("a header string is not UTF-8".into()))
    }
}

impl ArtifactLayout {
    /// Parses the header of `bytes`.
    ///
    /// # Errors
    /// Fails on a wrong magic number or format version, if `bytes` end before the header
    /// or any section does, or if the header's checksum does not match.
    pub fn parse(bytes: &[u8]) -> Result<ArtifactLayout, ArtifactError> {
        if !is_artifact(bytes) {
            return Err(ArtifactError::NotAnArtifact {
                wasm: looks_like_wasm(bytes),
            });
        }
        let truncated = |what: &str, needed: usize| ArtifactError::Truncated {
            what: what.into(),
            needed: needed as u64,
            len: bytes.len() as u64,
        };
        if bytes.len() < FIXED_HEADER {
            return Err(truncated("header", FIXED_HEADER));
        }
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let version = word(8);
        if version != FORMAT_VERSION {
            return Err(ArtifactError::FormatVersion { found: version });
        }
        let header_len = word(12) as usize;
        if header_len < FIXED_HEADER {
            return Err(ArtifactError::Malformed("header length too small".into()));
        }
        if bytes.len() < header_len {
            return Err(truncated("header", header_len));
        }
        if crc32fast::hash(&bytes[FIXED_HEADER..header_len]) != word(16) {
            return Err(ArtifactError::Corrupted {
                what: "header".into(),
            });
        }

        let mut r = Reader {
            bytes: &bytes[..header_len],
            pos: FIXED_HEADER,
        };
        let strata_version = r.string()?;
        let target = r.string()?;
        let cpu_features = (0..r.u32()?)
            .map(|_| r.string())
            .collect::<Result<Vec<_>, _>>()?;
        let settings = (0..r.u32()?)
            .map(|_| Ok((r.string()?, r.string()?)))
            .collect::<Result<Vec<_>, ArtifactError>>()?;
        let settings_hash = r.u64()?;
        let num_sections = r.u32()?;
        let mut sections: [Option<SectionEntry>; Section::ALL.len()] = Default::default();
        for _ in 0..num_sections {
            let kind = r.u32()?;
            let (offset, len, crc) = (r.u64()?, r.u64()?, r.u32()?);
            let section = Section::from_u32(kind)
                .ok_or_else(|| ArtifactError::Malformed(format!("unknown section kind {kind}")))?;
            let end = offset
                .checked_add(len)
                .ok_or_else(|| ArtifactError::Malformed("section bounds overflow".into()))?;
            if end > bytes.len() as u64 {
                return Err(ArtifactError::Truncated {
                    what: format!("{} section", section.name()),
                    needed: end,
                    len: bytes.len() as u64,
                });
            }
            let slot = &mut sections[section as usize - 1];
            if slot.is_some() {
                return Err(ArtifactError::Malformed(format!(
                    "two {} sections",
                    section.name()
                )));
            }
            *slot = Some(SectionEntry {
                range: offset as usize..end as usize,
                crc,
            });
        }
        if r.pos != header_len {
            return Err(ArtifactError::Malformed("header length mismatch".into()));
        }
        let sections = sections.map(|s| {
            s.unwrap_or(SectionEntry {
                range: 0..0,
                crc: 0,
            })
        });
        if let Some(missing) = Section::ALL
            .into_iter()
            .filter(|&s| !matches!(s, Section::Text | Section::TextChecksums | Section::Data))
            .find(|&s| sections[s as usize - 1].range.end == 0)
        {
            return Err(ArtifactError::Malformed(format!(
                "no {} section",
                missing.name()
            )));
        }
        Ok(ArtifactLayout {
            target: ArtifactTarget {
                strata_version,
                target,
                cpu_features,
                settings,
            },
            settings_hash,
            sections,
        })
    }

    /// Checks that code compiled for this artifact's target can run in an engine that
    /// describes itself as `engine`, on a host where `host_has` tells which CPU features
    /// are present (`None` for a feature it cannot check).
    ///
    /// # Errors
    /// Names the first difference: strata version, target, a missing CPU feature, or a
    /// setting (with both values).
    pub fn check_compatible(
        &self,
        engine: &ArtifactTarget,
        host_has: impl Fn(&str) -> Option<bool>,
    ) -> Result<(), ArtifactError> {
        let ours = &self.target;
        if ours.strata_version != engine.strata_version {
            return Err(ArtifactError::StrataVersion {
                found: ours.strata_version.clone(),
                expected: engine.strata_version.clone(),
            });
        }
        if ours.target != engine.target {
            return Err(ArtifactError::Target {
                found: ours.target.clone(),
                expected: engine.target.clone(),
            });
        }
        for feature in &ours.cpu_features {
            match host_has(feature) {
                Some(true) => {}
                Some(false) => return Err(ArtifactError::CpuFeature(feature.clone())),
                None => return Err(ArtifactError::UnknownCpuFeature(feature.clone())),
            }
        }
        for (name, value) in &engine.settings {
            let theirs = ours.settings.iter().find(|(n, _)| n == name);
            let theirs = theirs.map_or("(not recorded)", |(_, v)| v.as_str());
            if theirs != value {
                return Err(ArtifactError::Setting {
                    name: name.clone(),
                    artifact: theirs.into(),
                    engine: value.clone(),
                });
            }
        }
        if let Some((name, value)) = ours
            .settings
            .iter()
            .find(|(n, _)| !engine.settings.iter().any(|(e, _)| e == n))
        {
            return Err(ArtifactError::Setting {
                name: name.clone(),
                artifact: value.clone(),
                engine: "(unknown setting)".into(),
            });
        }
        if self.settings_hash != ours.settings_hash() {
            return Err(ArtifactError::Corrupted {
                what: "settings hash".into(),
            });
        }
        Ok(())
    }

    /// The bytes of `section` in `bytes`, which must be those the layout was parsed from.
    pub fn range(&self, section: Section) -> Range<usize> {
        self.sections[section as usize - 1].range.clone()
    }

    /// Checks the checksums of every section but those
    /// [checked on first use](Section::checked_on_first_use).
    ///
    /// # Errors
    /// Names the first section whose checksum does not match.
    pub fn verify_tables(&self, bytes: &[u8]) -> Result<(), ArtifactError> {
        for section in Section::ALL {
            if !section.checked_on_first_use() {
                self.verify_section(bytes, section)?;
            }
        }
        let chunks = self.range(Section::Text).len().div_ceil(TEXT_CHUNK);
        if self.range(Section::TextChecksums).len() != chunks * 4 {
            return Err(ArtifactError::Malformed(
                "text checksums do not match the text's length".into(),
            ));
        }
        Ok(())
    }

    /// Whether `section` matches its checksum. Allocates nothing, so a signal handler
    /// may call it.
    pub fn section_intact(&self, bytes: &[u8], section: Section) -> bool {
        let entry = &self.sections[section as usize - 1];
        crc32fast::hash(&bytes[entry.range.clone()]) == entry.crc
    }

    /// Checks the checksum of `section`.
    ///
    /// # Errors
    /// If it does not match.
    pub fn verify_section(&self, bytes: &[u8], section: Section) -> Result<(), ArtifactError> {
        if !self.section_intact(bytes, section) {
            return Err(ArtifactError::Corrupted {
                what: format!("{} section", section.name()),
            });
        }
        Ok(())
    }

    /// Decodes the module's metadata, checking that it agrees with the tables.
    ///
    /// # Errors
    /// Fails if the metadata does not decode or does not fit the tables.
    pub fn decode_module(&self, bytes: &[u8]) -> Result<Module, ArtifactError> {
        let mut module: Module = postcard::from_bytes(&bytes[self.range(Section::Meta)])
            .map_err(|e| ArtifactError::Malformed(format!("metadata does not decode: {e}")))?;
        module.rebuild_export_names();
        let tables = self.tables(bytes);
        if tables.num_functions() != module.num_defined_funcs()
            || tables.array_to_wasm.len() != module.num_defined_funcs() * 4
            || tables.wasm_to_array.len() != module.types.len() * 8
        {
            return Err(ArtifactError::Malformed(
                "metadata and code tables disagree on the number of functions or types".into(),
            ));
        }
        self.check_data_layout(&module)?;
        Ok(module)
    }

    /// Checks that every data segment and memory image lies inside the data section,
    /// and every image inside its memory's initial size, so that no later use of them
    /// needs to.
    fn check_data_layout(&self, module: &Module) -> Result<(), ArtifactError> {
        let data_len = self.range(Section::Data).len() as u64;
        let malformed = |what: &str| Err(ArtifactError::Malformed(what.into()));
        if module
            .data_segments
            .values()
            .any(|s| s.range.start > s.range.end || u64::from(s.range.end) > data_len)
        {
            return malformed("a data segment lies outside the data section");
        }
        if module.memory_images.len() > module.num_defined_memories() {
            return malformed("more memory images than memories");
        }
        for (def, image) in module.memory_images.iter() {
            let Some(image) = image else { continue };
            let memory = &module.memories[module.memory_index(def)];
            let initial = memory.minimum.checked_mul(memory.page_size());
            let in_data = image.data_offset.checked_add(image.len) <= Some(data_len);
            let in_memory = image.memory_offset.checked_add(image.len) <= initial;
            let aligned = [image.data_offset, image.memory_offset, image.len]
                .iter()
                .all(|n| n.is_multiple_of(crate::IMAGE_ALIGN));
            if !(in_data && in_memory && aligned) {
                return malformed("a memory image lies outside its memory or the data section");
            }
        }
        Ok(())
    }

    /// The code tables inside `bytes`.
    pub fn tables<'a>(&self, bytes: &'a [u8]) -> CodeTables<'a> {
        let at = |s| &bytes[self.range(s)];
        CodeTables {
            functions: at(Section::Functions),
            array_to_wasm: at(Section::ArrayToWasm),
            wasm_to_array: at(Section::WasmToArray),
            traps: at(Section::Traps),
            address_map: at(Section::AddressMap),
            inline_map: at(Section::InlineMap),
            handlers: at(Section::Handlers),
        }
    }

    /// Whether text chunk `index` (bytes `index * TEXT_CHUNK` up to the next chunk or
    /// the text's end) matches its checksum. Allocates nothing, so a signal handler may
    /// call it.
    pub fn text_chunk_intact(&self, bytes: &[u8], index: usize) -> bool {
        let text = &bytes[self.range(Section::Text)];
        let start = index.saturating_mul(TEXT_CHUNK).min(text.len());
        let end = start.saturating_add(TEXT_CHUNK).min(text.len());
        let expected = word(&bytes[self.range(Section::TextChecksums)], index);
        start < end && expected == Some(crc32fast::hash(&text[start..end]))
    }
}

/// The `index`th little-endian `u32` of `bytes`.
fn word(bytes: &[u8], index: usize) -> Option<u32> {
    let at = index.checked_mul(4)?;
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().expect("4 bytes")))
}

/// The tables that describe an artifact's text, read in place.
#[derive(Copy, Clone, Debug)]
pub struct CodeTables<'a> {
    functions: &'a [u8],
    array_to_wasm: &'a [u8],
    wasm_to_array: &'a [u8],
    traps: &'a [u8],
    address_map: &'a [u8],
    inline_map: &'a [u8],
    handlers: &'a [u8],
}

impl<'a> CodeTables<'a> {
    /// The number of defined functions.
    pub fn num_functions(&self) -> usize {
        self.functions.len() / 8
    }

    /// The `(u32, u32)` pair at `index` of a table of pairs.
    fn pair(table: &[u8], index: usize) -> Option<(u32, u32)> {
        Some((word(table, index * 2)?, word(table, index * 2 + 1)?))
    }

    /// Binary search of a table of pairs sorted by their first word: the number of pairs
    /// whose first word is at most `key`.
    fn partition(table: &[u8], key: u32) -> usize {
        let (mut lo, mut hi) = (0, table.len() / 8);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match Self::pair(table, mid) {
                Some((k, _)) if k <= key => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }

    /// Where defined function `index` lies in the text.
    pub fn function(&self, index: DefinedFuncIndex) -> Option<FunctionLoc> {
        let (start, length) = Self::pair(self.functions, index.index())?;
        Some(FunctionLoc { start, length })
    }

    /// The text offset of the array-call entry trampoline of `index`, if it has one.
    pub fn array_to_wasm(&self, index: DefinedFuncIndex) -> Option<u32> {
        word(self.array_to_wasm, index.index()).filter(|&o| o != u32::MAX)
    }

    /// Where the wasm-to-host trampoline of type `ty` lies.
    pub fn wasm_to_array(&self, ty: TypeIndex) -> Option<FunctionLoc> {
        let (start, length) = Self::pair(self.wasm_to_array, ty.index())?;
        Some(FunctionLoc { start, length })
    }

    /// The trap raised by the instruction at text `offset`, which must match exactly.
    pub fn lookup_trap(&self, offset: u32) -> Option<Trap> {
        let i = Self::partition(self.traps, offset).checked_sub(1)?;
        let (at, code) = Self::pair(self.traps, i)?;
        (at == offset).then(|| Trap::from_u8(u8::try_from(code).ok()?))?
    }

    /// The defined function whose body contains text `offset`.
    pub fn function_at(&self, offset: u32) -> Option<DefinedFuncIndex> {
        let i = Self::partition(self.functions, offset).checked_sub(1)?;
        let (start, length) = Self::pair(self.functions, i)?;
        (offset - start < length).then(|| DefinedFuncIndex::new(i))
    }

    /// The wasm byte offset of the instruction at text `offset`.
    pub fn wasm_offset(&self, offset: u32) -> Option<u32> {
        let i = Self::partition(self.address_map, offset).checked_sub(1)?;
        Some(Self::pair(self.address_map, i)?.1)
    }

    /// The exception handler of the call returning to text offset `return_address`,
    /// which must match exactly: the handler's text offset and the frame offset of
    /// the call (see [`HandlerSite`](crate::HandlerSite)).
    pub fn handler_at(&self, return_address: u32) -> Option<(u32, u32)> {
        let i = Self::triples_up_to(self.handlers, return_address).checked_sub(1)?;
        match Self::triple(self.handlers, i)? {
            [at, handler, frame] if at == return_address => Some((handler, frame)),
            _ => None,
        }
    }

    /// The `[u32; 3]` at `index` of a table of triples.
    fn triple(table: &[u8], index: usize) -> Option<[u32; 3]> {
        Some([
            word(table, index * 3)?,
            word(table, index * 3 + 1)?,
            word(table, index * 3 + 2)?,
        ])
    }

    /// Binary search of a table of triples sorted by their first word: the number of
    /// triples whose first word is at most `key`.
    fn triples_up_to(table: &[u8], key: u32) -> usize {
        let (mut lo, mut hi) = (0, table.len() / 12);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match Self::triple(table, mid) {
                Some([first, ..]) if first <= key => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }

    /// If the instruction at text `offset` was inlined: the defined function it came
    /// from and the wasm offset of the call it was inlined at.
    pub fn inlined_at(&self, offset: u32) -> Option<(DefinedFuncIndex, u32)> {
        let i = Self::triples_up_to(self.inline_map, offset).checked_sub(1)?;
        let [_, callee, call] = Self::triple(self.inline_map, i)?;
        (callee != u32::MAX).then(|| (DefinedFuncIndex::from_u32(callee), call))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TrapSite;

    /// An artifact of `compiled` with an empty module, for this host.
    fn artifact_of(compiled: &CompiledModule) -> Vec<u8> {
        let target = ArtifactTarget {
            strata_version: "test".into(),
            target: host_target(),
            cpu_features: Vec::new(),
            settings: Vec::new(),
        };
        write_artifact(&target, &Module::default(), compiled, &[])
    }

    #[test]
    fn trap_lookup_needs_an_exact_offset() {
        let compiled = CompiledModule {
            traps: vec![
                TrapSite {
                    offset: 4,
                    trap: Trap::MemoryOutOfBounds,
                },
                TrapSite {
                    offset: 9,
                    trap: Trap::UnreachableCodeReached,
                },
            ],
            ..CompiledModule::default()
        };
        let bytes = artifact_of(&compiled);
        let traps = ArtifactLayout::parse(&bytes).unwrap().tables(&bytes);
        assert_eq!(traps.lookup_trap(9), Some(Trap::UnreachableCodeReached));
        assert_eq!(traps.lookup_trap(5), None);
    }

    #[test]
    fn handlers_are_found_by_their_exact_return_address() {
        let site = |return_address, handler| crate::HandlerSite {
            return_address,
            handler,
            frame_offset: 32,
        };
        let compiled = CompiledModule {
            handlers: vec![site(10, 50), site(20, 60), site(30, 50)],
            ..CompiledModule::default()
        };
        let bytes = artifact_of(&compiled);
        let tables = ArtifactLayout::parse(&bytes).unwrap().tables(&bytes);
        assert_eq!(tables.handler_at(20), Some((60, 32)));
        assert_eq!(tables.handler_at(30), Some((50, 32)));
        assert_eq!(tables.handler_at(10), Some((50, 32)));
        assert_eq!(tables.handler_at(25), None);
        assert_eq!(tables.handler_at(5), None);
        assert_eq!(tables.handler_at(31), None);
    }

    #[test]
    fn inlined_regions_run_from_their_start_to_the_next_entry() {
        let site = |offset, callee: Option<u32>, call| crate::InlineSite {
            offset,
            callee: callee.map(DefinedFuncIndex::from_u32),
            call,
        };
        let compiled = CompiledModule {
            inline_map: vec![
                site(8, Some(3), 40),
                site(12, None, 0),
                site(20, Some(0), 60),
            ],
            ..CompiledModule::default()
        };
        let bytes = artifact_of(&compiled);
        let tables = ArtifactLayout::parse(&bytes).unwrap().tables(&bytes);
        let callee = |i| Some((DefinedFuncIndex::from_u32(i), if i == 3 { 40 } else { 60 }));
        assert_eq!(tables.inlined_at(7), None, "before the first region");
        assert_eq!(tables.inlined_at(8), callee(3));
        assert_eq!(tables.inlined_at(11), callee(3));
        assert_eq!(tables.inlined_at(12), None, "the region ended");
        assert_eq!(tables.inlined_at(25), callee(0));
    }
}
