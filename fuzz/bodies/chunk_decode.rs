//! Fuzz the HDF5 chunk filter pipeline (`msms_shards::read::mapped::decode_chunk`), the shuffle
//! kernels and `gather_chunk`.
//!
//! The first byte picks one of three modes:
//!
//! 0. **Arbitrary chunk**: a pipeline of 0-3 filters (deflate, shuffle, fletcher32, lzf,
//!    zstd, lz4), a filter mask, `n_bytes <= 1 MiB` and
//!    the raw bytes, all from the input. `decode_chunk` must agree with an independent
//!    reference pipeline written here (plain `Vec` stages, a naive inverse shuffle, HDF5's
//!    Fletcher-32 transcribed from `H5checksum.c`, a fresh inflater with the same output
//!    bound, a push-based LZF decoder, zstd's streaming decoder, the LZ4 filter's framing
//!    parsed again over lz4_flex's allocating block decoder): same `Ok` bytes (exactly `n_bytes` of them), or an error of the same kind.
//!    A scratch left dirty by earlier decodes gives the same result as a fresh one.
//! 1. **Round trip**: a chunk of `f32`/`f64` data is encoded here (shuffle with
//!    `msms_kernels::shuffle`, zlib with `libdeflater` at a fuzz-chosen level, Fletcher-32
//!    appended little-endian, plain or byte-swapped as libhdf5 < 1.6.3 wrote it), with
//!    fuzz-chosen filters masked off; `decode_chunk` must return the original bytes. A
//!    corrupted or truncated copy must decode as the reference says, and a corrupted copy
//!    whose outermost filter is Fletcher-32 must be refused (unless the corruption happens
//!    to collide, which the reference checksum decides). The decoded elements then go
//!    through `gather_chunk` with a fuzz-chosen dataset shape, chunk offset and destination
//!    rows, checked element by element (bit patterns) against a naive triple loop that
//!    also leaves every other destination element untouched.
//! 2. **Kernels**: `unshuffle` (SIMD), `unshuffle_scalar`, a naive inverse and `shuffle`
//!    agree on arbitrary bytes and element sizes 0-17; `fletcher32` equals the reference
//!    and its halves are the mod-65535 Fletcher sums.
//!
//! Plain Rust, no libFuzzer: `fuzz_targets/chunk_decode.rs` wraps [`run`] in `fuzz_target!`,
//! and the root's `tests/fuzz_corpus.rs` replays `fuzz/corpus/chunk_decode/` through it.

use arbitrary::{Result, Unstructured};
use libdeflater::{CompressionLvl, Compressor, DecompressionError, Decompressor};
use msms_shards::read::mapped::{decode_chunk, fletcher32, Buffer, ChunkFilter, DecodeScratch};

/// Largest `n_bytes` asked of `decode_chunk`.
const MAX_N_BYTES: usize = 1 << 20;

/// The target: one fuzz input, checked as the module docs say. Panics on a failed check.
pub(crate) fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = match u.int_in_range(0u8..=2) {
        Ok(0) => arbitrary_chunk(&mut u),
        Ok(1) => round_trip(&mut u),
        Ok(_) => kernels(&mut u),
        Err(_) => Ok(()),
    };
}

// ---------------------------------------------------------------------------------------
// Reference implementations
// ---------------------------------------------------------------------------------------

/// HDF5 `H5_checksum_fletcher32`, transcribed from `H5checksum.c`.
fn ref_fletcher32(data: &[u8]) -> u32 {
    let (mut sum1, mut sum2) = (0u32, 0u32);
    let mut len = data.len() / 2;
    let mut p = 0;
    while len > 0 {
        let mut tlen = len.min(360);
        len -= tlen;
        while tlen > 0 {
            sum1 += (u32::from(data[p]) << 8) | u32::from(data[p + 1]);
            p += 2;
            sum2 += sum1;
            tlen -= 1;
        }
        sum1 = (sum1 & 0xffff) + (sum1 >> 16);
        sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    }
    if data.len() % 2 == 1 {
        sum1 += u32::from(data[p]) << 8;
        sum2 += sum1;
        sum1 = (sum1 & 0xffff) + (sum1 >> 16);
        sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    }
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    (sum2 << 16) | sum1
}

/// The byte-swapped sum libhdf5 < 1.6.3 wrote (bytes swapped within each 16-bit half).
fn swap16(sum: u32) -> u32 {
    ((sum & 0x00ff_00ff) << 8) | ((sum >> 8) & 0x00ff_00ff)
}

/// Naive inverse of HDF5's shuffle: element `i`'s byte `k` comes from `src[k * n + i]`;
/// fewer than two whole elements, or element size <= 1, is a copy; trailing bytes copied.
fn naive_unshuffle(src: &[u8], elem: usize) -> Vec<u8> {
    if elem <= 1 || src.len() < 2 * elem {
        return src.to_vec();
    }
    let n = src.len() / elem;
    let mut out = src.to_vec();
    for i in 0..n {
        for k in 0..elem {
            out[i * elem + k] = src[k * n + i];
        }
    }
    out
}

/// A simple LZF encoder (greedy, matches of 3-264 bytes within the last 64 positions, at
/// most 8192 back; literal runs of up to 32): valid liblzf streams, for the round trip.
fn lzf_compress(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut lit: Vec<u8> = Vec::new();
    let flush = |out: &mut Vec<u8>, lit: &mut Vec<u8>| {
        for run in lit.chunks(32) {
            out.push((run.len() - 1) as u8);
            out.extend_from_slice(run);
        }
        lit.clear();
    };
    let mut i = 0;
    while i < src.len() {
        let mut best = (0usize, 0usize);
        for d in 1..=64.min(i).min(8192) {
            let mut n = 0;
            while n < 264 && i + n < src.len() && src[i + n] == src[i + n - d] {
                n += 1;
            }
            if n > best.0 {
                best = (n, d);
            }
        }
        if best.0 >= 3 {
            flush(&mut out, &mut lit);
            let (n, d) = (best.0 - 2, best.1 - 1);
            if n < 7 {
                out.push(((n << 5) | (d >> 8)) as u8);
            } else {
                out.push(((7 << 5) | (d >> 8)) as u8);
                out.push((n - 7) as u8);
            }
            out.push((d & 0xff) as u8);
            i += best.0;
        } else {
            lit.push(src[i]);
            i += 1;
        }
    }
    flush(&mut out, &mut lit);
    out
}

/// hdf5plugin's LZ4 framing of `src` in blocks of `block` bytes (a block lz4 does not
/// shrink is stored raw, as the filter does).
fn lz4_frame(src: &[u8], block: usize) -> Vec<u8> {
    let mut out = (src.len() as u64).to_be_bytes().to_vec();
    out.extend((block as u32).to_be_bytes());
    for part in src.chunks(block) {
        let c = lz4_flex::block::compress(part);
        let body = if c.len() >= part.len() {
            part.to_vec()
        } else {
            c
        };
        out.extend((body.len() as u32).to_be_bytes());
        out.extend(body);
    }
    out
}

/// What the reference says a decode gives.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Bytes(Vec<u8>),
    ShortFletcher,
    FletcherMismatch {
        stored: u32,
        computed: u32,
    },
    DeflateCorrupt,
    DeflateTooLong,
    LzfCorrupt,
    /// A stage (lzf, zstd, lz4) decompresses past the bound.
    TooLong(&'static str),
    /// Any zstd refusal (corrupt or too long: the library's own message).
    ZstdErr,
    /// Any refusal of the LZ4 filter's framing or blocks.
    Lz4Err,
    Length(usize),
}

/// liblzf's decompressor, written independently of the product's: output grown by pushes,
/// bounded by `cap`; the same checks in the same order (input first, then output).
fn ref_lzf(src: &[u8], cap: usize) -> std::result::Result<Vec<u8>, Verdict> {
    let mut out: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < src.len() {
        let c = usize::from(src[i]);
        i += 1;
        if c < 32 {
            let n = c + 1;
            if i + n > src.len() {
                return Err(Verdict::LzfCorrupt);
            }
            if out.len() + n > cap {
                return Err(Verdict::TooLong("lzf"));
            }
            out.extend_from_slice(&src[i..i + n]);
            i += n;
        } else {
            let mut n = c >> 5;
            if n == 7 {
                let Some(&more) = src.get(i) else {
                    return Err(Verdict::LzfCorrupt);
                };
                n += usize::from(more);
                i += 1;
            }
            let Some(&low) = src.get(i) else {
                return Err(Verdict::LzfCorrupt);
            };
            i += 1;
            let dist = ((c & 31) << 8) + usize::from(low) + 1;
            if dist > out.len() {
                return Err(Verdict::LzfCorrupt);
            }
            if out.len() + n + 2 > cap {
                return Err(Verdict::TooLong("lzf"));
            }
            for _ in 0..n + 2 {
                out.push(out[out.len() - dist]);
            }
        }
    }
    Ok(out)
}

/// hdf5plugin's LZ4 framing (big-endian u64 total, u32 block size, then per block a u32
/// length and the block, raw when the length is the block's), each block decompressed by
/// lz4_flex's allocating decoder.
fn ref_lz4(src: &[u8], cap: usize) -> std::result::Result<Vec<u8>, Verdict> {
    if src.len() < 12 {
        return Err(Verdict::Lz4Err);
    }
    let total = u64::from_be_bytes(src[..8].try_into().unwrap());
    if total > cap as u64 {
        return Err(Verdict::TooLong("lz4"));
    }
    let total = total as usize;
    let block = (u32::from_be_bytes(src[8..12].try_into().unwrap()) as usize).min(total);
    if block == 0 && total > 0 {
        return Err(Verdict::Lz4Err);
    }
    let mut out = Vec::new();
    let mut i = 12;
    while out.len() < total {
        let this = block.min(total - out.len());
        let len = src
            .get(i..i + 4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()) as usize)
            .ok_or(Verdict::Lz4Err)?;
        i += 4;
        let body = src.get(i..i + len).ok_or(Verdict::Lz4Err)?;
        if len == this {
            out.extend_from_slice(body);
        } else {
            match lz4_flex::block::decompress(body, this) {
                Ok(v) if v.len() == this => out.extend(v),
                _ => return Err(Verdict::Lz4Err),
            }
        }
        i += len;
    }
    Ok(out)
}

/// The filter pipeline undone step by step on plain vectors: filters in reverse order,
/// masked ones skipped, deflate bounded by `n_bytes + 4 * filters.len()` as documented.
fn reference(raw: &[u8], filters: &[ChunkFilter], mask: u32, n_bytes: usize) -> Verdict {
    let cap = n_bytes + 4 * filters.len();
    let mut cur = raw.to_vec();
    for (k, f) in filters.iter().enumerate().rev() {
        if k < 32 && mask & (1 << k) != 0 {
            continue;
        }
        match *f {
            ChunkFilter::Fletcher32 => {
                if cur.len() < 4 {
                    return Verdict::ShortFletcher;
                }
                let at = cur.len() - 4;
                let stored = u32::from_le_bytes(cur[at..].try_into().unwrap());
                let computed = ref_fletcher32(&cur[..at]);
                if stored != computed && stored != swap16(computed) {
                    return Verdict::FletcherMismatch { stored, computed };
                }
                cur.truncate(at);
            }
            ChunkFilter::Deflate => {
                let mut out = vec![0u8; cap];
                match Decompressor::new().zlib_decompress(&cur, &mut out) {
                    Ok(n) => {
                        out.truncate(n);
                        cur = out;
                    }
                    Err(DecompressionError::BadData) => return Verdict::DeflateCorrupt,
                    Err(DecompressionError::InsufficientSpace) => return Verdict::DeflateTooLong,
                }
            }
            ChunkFilter::Shuffle { elem } => cur = naive_unshuffle(&cur, elem),
            ChunkFilter::Lzf => match ref_lzf(&cur, cap) {
                Ok(v) => cur = v,
                Err(v) => return v,
            },
            ChunkFilter::Zstd => match zstd::stream::decode_all(&cur[..]) {
                Ok(v) if v.len() <= cap => cur = v,
                _ => return Verdict::ZstdErr,
            },
            ChunkFilter::Lz4 => match ref_lz4(&cur, cap) {
                Ok(v) => cur = v,
                Err(v) => return v,
            },
        }
    }
    if cur.len() != n_bytes {
        return Verdict::Length(cur.len());
    }
    Verdict::Bytes(cur)
}

/// Run `decode_chunk` and check it against the reference, with a fresh scratch and with one
/// left dirty by earlier decodes. Returns the decoded bytes when `Ok`.
fn check_decode(
    raw: &[u8],
    filters: &[ChunkFilter],
    mask: u32,
    n_bytes: usize,
    scratch: &mut DecodeScratch,
) -> Option<Vec<u8>> {
    let expected = reference(raw, filters, mask, n_bytes);
    let got = decode(raw, filters, mask, n_bytes, scratch);
    if verbose() {
        let shown = got.as_ref().map(|b| format!("Ok({} bytes)", b.len()));
        eprintln!(
            "{} raw bytes, {filters:?}, mask {mask:#x}, n_bytes {n_bytes}: {shown:?}",
            raw.len()
        );
    }
    match (&expected, &got) {
        (Verdict::Bytes(want), Ok(bytes)) => {
            assert_eq!(bytes.len(), n_bytes, "decoded length");
            assert!(
                bytes == want,
                "decoded bytes differ from the reference pipeline"
            );
        }
        (Verdict::Bytes(_), Err(e)) => {
            panic!("decode_chunk refused a chunk the reference decodes: {e}")
        }
        (_, Ok(_)) => panic!("decode_chunk accepted a chunk the reference refuses: {expected:?}"),
        (Verdict::ShortFletcher, Err(e)) => {
            assert_eq!(e, "shorter than its fletcher32 checksum")
        }
        (Verdict::FletcherMismatch { stored, computed }, Err(e)) => assert_eq!(
            *e,
            format!(
                "fletcher32 checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            )
        ),
        (Verdict::DeflateCorrupt, Err(e)) => assert_eq!(e, "deflate: corrupt data"),
        (Verdict::DeflateTooLong, Err(e)) => {
            assert_eq!(e, "deflate: inflates to more than the chunk holds")
        }
        (Verdict::LzfCorrupt, Err(e)) => assert_eq!(e, "lzf: corrupt data"),
        (Verdict::TooLong(stage), Err(e)) => {
            assert_eq!(
                *e,
                format!("{stage}: decompresses to more than the chunk holds")
            )
        }
        (Verdict::ZstdErr, Err(e)) => assert!(e.starts_with("zstd"), "{e}"),
        (Verdict::Lz4Err, Err(e)) => assert!(e.starts_with("lz4: "), "{e}"),
        (Verdict::Length(len), Err(e)) => {
            assert_eq!(*e, format!("decodes to {len} bytes, expected {n_bytes}"))
        }
    }
    // Same result from a fresh scratch (the caller's one may hold earlier chunks).
    let fresh = decode(raw, filters, mask, n_bytes, &mut DecodeScratch::default());
    assert_eq!(
        fresh, got,
        "result depends on the scratch's previous contents"
    );
    got.ok()
}

/// `MSMS_FUZZ_VERBOSE` set: print each decode (for reading what an input exercises).
fn verbose() -> bool {
    static VERBOSE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("MSMS_FUZZ_VERBOSE").is_some())
}

/// `decode_chunk`, the result copied out of the scratch.
fn decode(
    raw: &[u8],
    filters: &[ChunkFilter],
    mask: u32,
    n_bytes: usize,
    scratch: &mut DecodeScratch,
) -> std::result::Result<Vec<u8>, String> {
    let which = decode_chunk(raw, filters, mask, n_bytes, scratch)?;
    let bytes = scratch.bytes(which, n_bytes);
    assert_eq!(bytes.len(), n_bytes);
    // The product reinterprets decoded chunks as f64 (`words_as`): they must be 8-aligned.
    assert_eq!(
        bytes.as_ptr() as usize % 8,
        0,
        "decoded chunk not 8-byte aligned"
    );
    Ok(bytes.to_vec())
}

/// Leave junk in both scratch buffers: two shuffle stages ping-pong through A and B.
fn dirty(scratch: &mut DecodeScratch, len: usize, byte: u8) {
    let junk = vec![byte; len];
    let f = [
        ChunkFilter::Shuffle { elem: 8 },
        ChunkFilter::Shuffle { elem: 4 },
    ];
    let which = decode_chunk(&junk, &f, 0, len, scratch).expect("shuffle-only decode");
    assert_eq!(which, Buffer::B, "two stages end in the second buffer");
    assert!(scratch.bytes(which, len).iter().all(|&b| b == byte));
}

// ---------------------------------------------------------------------------------------
// Input helpers
// ---------------------------------------------------------------------------------------

fn filter(u: &mut Unstructured<'_>) -> Result<ChunkFilter> {
    Ok(match u.int_in_range(0u8..=12)? {
        10 => ChunkFilter::Lzf,
        11 => ChunkFilter::Zstd,
        12 => ChunkFilter::Lz4,
        0..=2 => ChunkFilter::Deflate,
        3..=4 => ChunkFilter::Fletcher32,
        5 => ChunkFilter::Shuffle { elem: 1 },
        6 => ChunkFilter::Shuffle { elem: 2 },
        7 => ChunkFilter::Shuffle { elem: 4 },
        8 => ChunkFilter::Shuffle { elem: 8 },
        // Sizes the product never builds, still documented as safe.
        _ => ChunkFilter::Shuffle {
            elem: *u.choose(&[0usize, 3, 5, 16])?,
        },
    })
}

fn filters(u: &mut Unstructured<'_>) -> Result<Vec<ChunkFilter>> {
    let n = u.int_in_range(0u8..=3)?;
    (0..n).map(|_| filter(u)).collect()
}

/// A pipeline libhdf5 could write: each filter at most once (setting a filter again
/// replaces it), in any order. With a repeated deflate an inner stream could be larger than
/// the chunk, which the documented bound (`n_bytes` plus 4 per filter) does not cover.
fn distinct_filters(u: &mut Unstructured<'_>) -> Result<Vec<ChunkFilter>> {
    let shuffle = ChunkFilter::Shuffle {
        elem: *u.choose(&[1usize, 2, 4, 8, 3, 16])?,
    };
    // One compressor at most (a compressor over another's output is no pipeline a writer
    // makes, and could exceed the documented bound), shuffle and fletcher32 around it.
    let compressor = *u.choose(&[
        ChunkFilter::Deflate,
        ChunkFilter::Lzf,
        ChunkFilter::Zstd,
        ChunkFilter::Lz4,
    ])?;
    let mut kinds = vec![compressor, shuffle, ChunkFilter::Fletcher32];
    let n = u.int_in_range(0usize..=3)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let i = u.choose_index(kinds.len())?;
        out.push(kinds.remove(i));
    }
    Ok(out)
}

fn mask(u: &mut Unstructured<'_>) -> Result<u32> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 | 1 => 0,
        2 => u.int_in_range(0u32..=7)?,
        _ => u.arbitrary()?,
    })
}

// ---------------------------------------------------------------------------------------
// Modes
// ---------------------------------------------------------------------------------------

fn arbitrary_chunk(u: &mut Unstructured<'_>) -> Result<()> {
    let filters = filters(u)?;
    let mask = mask(u)?;
    let size_mode = u.int_in_range(0u8..=3)?;
    let fixed = match size_mode {
        0 => u.int_in_range(0..=MAX_N_BYTES)?,
        1 => u.int_in_range(0usize..=4096)?,
        _ => 0,
    };
    let delta = u.int_in_range(-8i64..=8)?;
    let junk = u.arbitrary::<u8>()?;
    let raw = u.bytes(u.len())?;
    let n_bytes = if size_mode >= 2 {
        // Near the size a deflate-free pipeline leaves: raw minus the checksums.
        let sums = filters
            .iter()
            .enumerate()
            .filter(|&(k, f)| *f == ChunkFilter::Fletcher32 && mask & (1 << k) == 0)
            .count();
        let base = raw.len() as i64 - 4 * sums as i64;
        if size_mode == 2 {
            base.max(0) as usize
        } else {
            (base + delta).clamp(0, MAX_N_BYTES as i64) as usize
        }
    } else {
        fixed
    };
    let mut scratch = DecodeScratch::default();
    dirty(&mut scratch, (n_bytes + 64).min(MAX_N_BYTES + 64), junk);
    check_decode(raw, &filters, mask, n_bytes, &mut scratch);
    Ok(())
}

fn round_trip(u: &mut Unstructured<'_>) -> Result<()> {
    let wide = u.arbitrary::<bool>()?;
    let elem = if wide { 8 } else { 4 };
    let chunk = [
        u.int_in_range(1usize..=64)?,
        u.int_in_range(1usize..=4)?,
        u.int_in_range(1usize..=16)?,
    ];
    let n_bytes = chunk.iter().product::<usize>() * elem;

    let filters = distinct_filters(u)?;
    let mask = mask(u)?;
    let level = u.int_in_range(0i32..=12)?;
    let swapped_sum = u.ratio(1u8, 4)?;
    let corrupt_at = u.arbitrary::<usize>()?;
    let corrupt_xor = u.int_in_range(1u8..=255)?;
    let truncate_by = u.int_in_range(1usize..=8)?;
    let gather = GatherCase::new(u, chunk)?;

    // The payload: fuzz bytes, extended by a fuzz-chosen fill.
    let fill = u.int_in_range(0u8..=2)?;
    let take = u.len().min(n_bytes);
    let mut payload = u.bytes(take)?.to_vec();
    let mut x = 0x9e37_79b9u32;
    while payload.len() < n_bytes {
        let next = match fill {
            0 => 0,
            1 if take > 0 => payload[payload.len() - take],
            _ => {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            }
        };
        payload.push(next);
    }

    // Encode: the filters in pipeline (write) order, masked ones skipped.
    let mut cur = payload.clone();
    let mut outermost = None;
    for (k, f) in filters.iter().enumerate() {
        if k < 32 && mask & (1 << k) != 0 {
            continue;
        }
        outermost = Some(*f);
        cur = match *f {
            ChunkFilter::Shuffle { elem } => {
                let mut out = vec![0u8; cur.len()];
                msms_kernels::shuffle(&cur, elem, &mut out);
                out
            }
            ChunkFilter::Deflate => {
                let mut c = Compressor::new(CompressionLvl::new(level).expect("level 0..=12"));
                let mut out = vec![0u8; c.zlib_compress_bound(cur.len())];
                let n = c.zlib_compress(&cur, &mut out).expect("bound is enough");
                out.truncate(n);
                out
            }
            ChunkFilter::Fletcher32 => {
                let sum = fletcher32(&cur);
                assert_eq!(sum, ref_fletcher32(&cur), "fletcher32 differs from HDF5's");
                let sum = if swapped_sum { swap16(sum) } else { sum };
                cur.extend_from_slice(&sum.to_le_bytes());
                cur
            }
            ChunkFilter::Lzf => lzf_compress(&cur),
            ChunkFilter::Zstd => zstd::bulk::compress(&cur, 1).expect("zstd compresses"),
            ChunkFilter::Lz4 => lz4_frame(&cur, 4096),
        };
    }
    let encoded = cur;

    let mut scratch = DecodeScratch::default();
    dirty(&mut scratch, n_bytes + 64, 0xa5);
    let decoded = check_decode(&encoded, &filters, mask, n_bytes, &mut scratch)
        .expect("a chunk encoded by the filters decodes");
    assert!(decoded == payload, "round trip changed the bytes");

    // Through the scratch exactly as the product reads it: decoded buffer cast to T.
    let which = decode_chunk(&encoded, &filters, mask, n_bytes, &mut scratch).unwrap();
    let bytes = scratch.bytes(which, n_bytes);
    if wide {
        gather.check::<f64>(bytemuck::cast_slice(bytes), |v| v.to_bits());
    } else {
        gather.check::<f32>(bytemuck::cast_slice(bytes), |v| u64::from(v.to_bits()));
    }

    // A corrupted copy: same verdict as the reference; refused when Fletcher-32 covers it.
    if !encoded.is_empty() {
        let mut bad = encoded.clone();
        let at = corrupt_at % bad.len();
        bad[at] ^= corrupt_xor;
        let got = check_decode(&bad, &filters, mask, n_bytes, &mut scratch);
        if outermost == Some(ChunkFilter::Fletcher32) {
            let (data, sum) = bad.split_at(bad.len() - 4);
            let stored = u32::from_le_bytes(sum.try_into().unwrap());
            let computed = ref_fletcher32(data);
            let collision = stored == computed || stored == swap16(computed);
            assert!(
                got.is_none() || collision,
                "corruption at byte {at} under fletcher32 was accepted"
            );
        }
    }
    // A truncated copy.
    let cut = encoded.len().saturating_sub(truncate_by);
    check_decode(&encoded[..cut], &filters, mask, n_bytes, &mut scratch);
    Ok(())
}

/// A `gather_chunk` call: dataset dims, chunk offset and destination rows.
#[derive(Debug)]
struct GatherCase {
    chunk: [usize; 3],
    offset: [usize; 3],
    dims: [usize; 3],
    row_start: usize,
    rows: usize,
    slack: usize,
}

impl GatherCase {
    fn new(u: &mut Unstructured<'_>, chunk: [usize; 3]) -> Result<GatherCase> {
        let huge = |u: &mut Unstructured<'_>| -> Result<usize> {
            Ok(usize::MAX - u.int_in_range(0usize..=70)?)
        };
        let dims_12 = [u.int_in_range(1usize..=8)?, u.int_in_range(1usize..=32)?];
        let case = match u.int_in_range(0u8..=3)? {
            // As the product calls it: offsets on the chunk grid inside the dataset.
            0 | 1 => {
                let d0 = u.int_in_range(1usize..=200)?;
                let d1 = dims_12[0];
                let d2 = dims_12[1];
                let grid = |u: &mut Unstructured<'_>, d: usize, c: usize| -> Result<usize> {
                    Ok(u.int_in_range(0..=(d - 1) / c)? * c)
                };
                let offset = [
                    grid(u, d0, chunk[0])?,
                    grid(u, d1, chunk[1])?,
                    grid(u, d2, chunk[2])?,
                ];
                let row_start = u.int_in_range(0..=d0 - 1)?;
                let rows = u.int_in_range(0..=(d0 - row_start).min(96))?;
                GatherCase {
                    chunk,
                    offset,
                    dims: [d0, d1, d2],
                    row_start,
                    rows,
                    slack: 0,
                }
            }
            // Anything in bounds: offsets off the grid, outside the dataset, huge values.
            _ => {
                let coord = |u: &mut Unstructured<'_>| -> Result<usize> {
                    if u.ratio(1u8, 8)? {
                        huge(u)
                    } else {
                        u.int_in_range(0usize..=80)
                    }
                };
                let offset = [coord(u)?, coord(u)?, coord(u)?];
                let d0 = if u.ratio(1u8, 8)? {
                    huge(u)?
                } else {
                    u.int_in_range(0usize..=200)?
                };
                let row_start = coord(u)?;
                let rows = u.int_in_range(0usize..=96)?;
                let dims = [d0, dims_12[0], dims_12[1]];
                let slack = u.int_in_range(0usize..=3)?;
                GatherCase {
                    chunk,
                    offset,
                    dims,
                    row_start,
                    rows,
                    slack,
                }
            }
        };
        Ok(case)
    }

    /// `gather_chunk` against a naive triple loop in exact (`u128`) coordinates; every
    /// destination element not written must keep its sentinel.
    fn check<T: Copy + std::fmt::Debug + From<u8>>(&self, data: &[T], bits: impl Fn(T) -> u64) {
        let [c0, c1, c2] = self.chunk;
        let [d0, d1, d2] = self.dims;
        assert_eq!(data.len(), c0 * c1 * c2);
        let row_len = d1 * d2;
        let dst_len = self.rows * row_len + self.slack;
        // A sentinel no decoded element can be confused with: compared by position below.
        let sentinel = T::from(0xEEu8);
        let mut dst = vec![sentinel; dst_len];
        let mut expected: Vec<Option<T>> = vec![None; dst_len];
        let mut count = 0usize;
        let (rs, re) = (
            self.row_start as u128,
            self.row_start as u128 + self.rows as u128,
        );
        for r in 0..c0 {
            let x = self.offset[0] as u128 + r as u128;
            if x >= d0 as u128 || x < rs || x >= re {
                continue;
            }
            for j in 0..c1 {
                let y = self.offset[1] as u128 + j as u128;
                if y >= d1 as u128 {
                    continue;
                }
                for k in 0..c2 {
                    let z = self.offset[2] as u128 + k as u128;
                    if z >= d2 as u128 {
                        continue;
                    }
                    let at = (x - rs) as usize * row_len + y as usize * d2 + z as usize;
                    expected[at] = Some(data[r * c1 * c2 + j * c2 + k]);
                    count += 1;
                }
            }
        }
        let copied = msms_kernels::gather_chunk(
            data,
            self.chunk,
            self.offset,
            self.dims,
            &mut dst,
            self.row_start,
            self.rows,
        );
        assert_eq!(copied, count, "gather_chunk element count, {self:?}");
        for (i, (got, want)) in dst.iter().zip(&expected).enumerate() {
            match want {
                Some(w) => assert_eq!(bits(*got), bits(*w), "dst[{i}] not copied right, {self:?}"),
                None => assert_eq!(bits(*got), bits(sentinel), "dst[{i}] written, {self:?}"),
            }
        }
    }
}

fn kernels(u: &mut Unstructured<'_>) -> Result<()> {
    let elem = match u.int_in_range(0u8..=5)? {
        0 => 2,
        1 => 4,
        2 => 8,
        _ => u.int_in_range(0usize..=17)?,
    };
    let src = u.bytes(u.len())?;
    let want = naive_unshuffle(src, elem);
    let mut simd = vec![0u8; src.len()];
    msms_kernels::unshuffle(src, elem, &mut simd);
    assert!(
        simd == want,
        "unshuffle (elem {elem}) differs from the naive inverse"
    );
    let mut scalar = vec![0u8; src.len()];
    msms_kernels::unshuffle_scalar(src, elem, &mut scalar);
    assert!(
        scalar == want,
        "unshuffle_scalar (elem {elem}) differs from the naive inverse"
    );
    // shuffle is the forward filter: shuffle(unshuffle(x)) == x.
    let mut back = vec![0u8; src.len()];
    msms_kernels::shuffle(&want, elem, &mut back);
    assert!(
        back == src,
        "shuffle (elem {elem}) does not invert unshuffle"
    );

    let sum = fletcher32(src);
    assert_eq!(sum, ref_fletcher32(src), "fletcher32 differs from HDF5's");
    // Its halves are the Fletcher sums mod 65535 over 16-bit big-endian words (an odd
    // trailing byte as the high half of a word).
    let (mut s1, mut s2) = (0u64, 0u64);
    for w in src.chunks(2) {
        let word = (u64::from(w[0]) << 8) | w.get(1).map_or(0, |&b| u64::from(b));
        s1 = (s1 + word) % 65535;
        s2 = (s2 + s1) % 65535;
    }
    assert_eq!(u64::from(sum & 0xffff) % 65535, s1, "fletcher32 low half");
    assert_eq!(u64::from(sum >> 16) % 65535, s2, "fletcher32 high half");
    Ok(())
}
