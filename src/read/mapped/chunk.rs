//! A chunk's filter pipeline undone ([`decode_chunk`]: deflate, shuffle, fletcher32 in
//! reverse order, any input bytes safe), HDF5's Fletcher-32 ([`fletcher32`]), and the
//! per-worker buffers decoding reuses ([`DecodeScratch`]).

use std::fmt;

use libdeflater::Decompressor;

/// One filter of a chunk's pipeline, as [`decode_chunk`] applies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkFilter {
    /// zlib stream (HDF5 `H5Z_FILTER_DEFLATE`).
    Deflate,
    /// Byte shuffle with this element size (`H5Z_FILTER_SHUFFLE`).
    Shuffle {
        /// Bytes per element.
        elem: usize,
    },
    /// Trailing Fletcher-32 checksum (`H5Z_FILTER_FLETCHER32`).
    Fletcher32,
}

/// Which scratch buffer holds a decoded chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffer {
    /// The first of [`DecodeScratch`]'s two buffers.
    A,
    /// The other one.
    B,
}

/// Why a chunk does not decode, without the chunk's identity (the caller adds it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// Fewer than four bytes before a fletcher32 stage.
    #[error("shorter than its fletcher32 checksum")]
    ShortFletcher,
    /// The stored Fletcher-32 sum is neither the computed one nor its byte-swapped form.
    #[error("fletcher32 checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    FletcherMismatch {
        /// The sum stored after the data.
        stored: u32,
        /// The sum of the data.
        computed: u32,
    },
    /// The zlib stream is invalid.
    #[error("deflate: corrupt data")]
    DeflateCorrupt,
    /// The zlib stream inflates past the chunk (plus its checksums).
    #[error("deflate: inflates to more than the chunk holds")]
    DeflateTooLong,
    /// The pipeline's output is not the chunk's size.
    #[error("decodes to {len} bytes, expected {expected}")]
    Length {
        /// Bytes decoded.
        len: usize,
        /// Bytes of a chunk.
        expected: usize,
    },
}

impl From<ChunkError> for String {
    /// The message (for callers that keep errors as text).
    fn from(e: ChunkError) -> String {
        e.to_string()
    }
}

/// Undo a chunk's filter pipeline: `filters` in pipeline (write) order are applied in reverse,
/// skipping filter `k` when bit `k` of `filter_mask` is set. The result must be exactly
/// `n_bytes` long; it is left in one of the scratch's aligned buffers (returned; read it with
/// [`DecodeScratch::bytes`]). Errors say what failed, without the chunk's identity (the
/// caller adds it). Any input bytes are safe: sizes are bounded by `n_bytes` plus four bytes
/// per filter, never by a number read from the input.
pub fn decode_chunk(
    raw: &[u8],
    filters: &[ChunkFilter],
    filter_mask: u32,
    n_bytes: usize,
    scratch: &mut DecodeScratch,
) -> Result<Buffer, ChunkError> {
    // Intermediate stages may be longer than the chunk (4 bytes per fletcher32 sum).
    let cap = n_bytes + 4 * filters.len();
    let DecodeScratch { a, b, inflater, .. } = scratch;
    // The current data: a range of `raw`, or the first `n` bytes of `a` or `b`.
    #[derive(Clone, Copy)]
    enum At {
        Raw(usize, usize),
        A(usize),
        B(usize),
    }
    let mut cur = At::Raw(0, raw.len());
    for (k, f) in filters.iter().enumerate().rev() {
        if k < 32 && filter_mask & (1 << k) != 0 {
            continue;
        }
        // Input, and the other buffer as output.
        let (input, out, out_is_a): (&[u8], &mut Vec<u64>, bool) = match cur {
            At::Raw(lo, hi) => (&raw[lo..hi], &mut *a, true),
            At::A(n) => (&bytemuck::cast_slice::<u64, u8>(a)[..n], &mut *b, false),
            At::B(n) => (&bytemuck::cast_slice::<u64, u8>(b)[..n], &mut *a, true),
        };
        let wrap = |n: usize| if out_is_a { At::A(n) } else { At::B(n) };
        cur = match *f {
            ChunkFilter::Fletcher32 => {
                if input.len() < 4 {
                    return Err(ChunkError::ShortFletcher);
                }
                let (data, sum) = input.split_at(input.len() - 4);
                let stored = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
                let got = fletcher32(data);
                // libhdf5 also accepts the byte-swapped sum written by versions < 1.6.3.
                let swapped = ((got & 0x00ff_00ff) << 8) | ((got >> 8) & 0x00ff_00ff);
                if stored != got && stored != swapped {
                    return Err(ChunkError::FletcherMismatch {
                        stored,
                        computed: got,
                    });
                }
                match cur {
                    At::Raw(lo, hi) => At::Raw(lo, hi - 4),
                    At::A(n) => At::A(n - 4),
                    At::B(n) => At::B(n - 4),
                }
            }
            ChunkFilter::Deflate => {
                if out.len() < cap.div_ceil(8) {
                    out.resize(cap.div_ceil(8), 0);
                }
                let dst = &mut bytemuck::cast_slice_mut::<u64, u8>(out)[..cap];
                let got = inflater.zlib_decompress(input, dst).map_err(|e| match e {
                    libdeflater::DecompressionError::BadData => ChunkError::DeflateCorrupt,
                    libdeflater::DecompressionError::InsufficientSpace => {
                        ChunkError::DeflateTooLong
                    }
                })?;
                wrap(got)
            }
            ChunkFilter::Shuffle { elem } => {
                let n = input.len();
                if out.len() < n.div_ceil(8) {
                    out.resize(n.div_ceil(8), 0);
                }
                let dst = &mut bytemuck::cast_slice_mut::<u64, u8>(out)[..n];
                msms_kernels::unshuffle(input, elem, dst);
                wrap(n)
            }
        };
    }
    let len = match cur {
        At::Raw(lo, hi) => hi - lo,
        At::A(n) | At::B(n) => n,
    };
    if len != n_bytes {
        return Err(ChunkError::Length {
            len,
            expected: n_bytes,
        });
    }
    Ok(match cur {
        // Unfiltered chunks are copied into aligned scratch: the map gives no alignment.
        At::Raw(lo, hi) => {
            if a.len() < n_bytes.div_ceil(8) {
                a.resize(n_bytes.div_ceil(8), 0);
            }
            bytemuck::cast_slice_mut::<u64, u8>(a)[..n_bytes].copy_from_slice(&raw[lo..hi]);
            Buffer::A
        }
        At::A(_) => Buffer::A,
        At::B(_) => Buffer::B,
    })
}

/// A decoded chunk kept for the next unit (rank-1 columns whose chunks span several units).
#[derive(Debug)]
pub(super) struct CacheEntry {
    pub(super) uid: u64,
    pub(super) chunk: usize,
    pub(super) data: Vec<u64>,
}

/// Per-worker decode state, reused from chunk to chunk and unit to unit.
pub struct DecodeScratch {
    /// The decoded spectrum tensor of a unit (lent to the unit, then recycled).
    pub(crate) peaks_f64: Vec<f64>,
    /// The same, for float32 tensors.
    pub(crate) peaks_f32: Vec<f32>,
    /// Decoded chunks of one band (`MappedDataset::read_band`).
    pub(super) stage: Vec<u64>,
    inflater: Decompressor,
    pub(super) a: Vec<u64>,
    pub(super) b: Vec<u64>,
    pub(super) cache: Vec<CacheEntry>,
}

impl fmt::Debug for DecodeScratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodeScratch")
            .field("a", &self.a.len())
            .field("b", &self.b.len())
            .field("cache", &self.cache.len())
            .finish()
    }
}

impl Default for DecodeScratch {
    fn default() -> Self {
        DecodeScratch {
            peaks_f64: Vec::new(),
            peaks_f32: Vec::new(),
            stage: Vec::new(),
            inflater: Decompressor::new(),
            a: Vec::new(),
            b: Vec::new(),
            cache: Vec::new(),
        }
    }
}

impl DecodeScratch {
    /// The first `n` bytes of a buffer [`decode_chunk`] returned.
    pub fn bytes(&self, which: Buffer, n: usize) -> &[u8] {
        let words = if which == Buffer::A { &self.a } else { &self.b };
        &bytemuck::cast_slice::<u64, u8>(words)[..n]
    }
}

/// HDF5's Fletcher-32 (`H5_checksum_fletcher32`): 16-bit big-endian words, sums reduced
/// every 360 words, a trailing odd byte as the high half of a word.
pub fn fletcher32(data: &[u8]) -> u32 {
    let (mut sum1, mut sum2) = (0u32, 0u32);
    let mut words = data.chunks_exact(2);
    loop {
        let mut n = 0;
        for w in words.by_ref().take(360) {
            sum1 += (u32::from(w[0]) << 8) | u32::from(w[1]);
            sum2 += sum1;
            n += 1;
        }
        if n == 0 {
            break;
        }
        sum1 = (sum1 & 0xffff) + (sum1 >> 16);
        sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    }
    if let [last] = words.remainder() {
        sum1 += u32::from(*last) << 8;
        sum2 += sum1;
        sum1 = (sum1 & 0xffff) + (sum1 >> 16);
        sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    }
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    (sum2 << 16) | sum1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fletcher32_known_values() {
        // Reference values of Fletcher-32 over 16-bit big-endian words (HDF5's variant).
        assert_eq!(fletcher32(b""), 0);
        assert_eq!(fletcher32(b"\x00\x01"), 0x0001_0001);
        assert_eq!(
            fletcher32(b"\x01\x02\x03\x04"),
            ((0x0102 + 0x0102 + 0x0304) << 16) | (0x0102 + 0x0304)
        );
        // Odd length: the last byte is the high half of a word.
        assert_eq!(fletcher32(b"\x01\x02\x03"), fletcher32(b"\x01\x02\x03\x00"));
        // Long input crosses the 360-word reduction.
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + 3) as u8).collect();
        let (mut s1, mut s2) = (0u64, 0u64);
        for w in data.chunks_exact(2) {
            s1 = (s1 + ((u64::from(w[0]) << 8) | u64::from(w[1]))) % 65535;
            s2 = (s2 + s1) % 65535;
        }
        let got = fletcher32(&data);
        assert_eq!(u64::from(got & 0xffff) % 65535, s1);
        assert_eq!(u64::from(got >> 16) % 65535, s2);
    }
}
