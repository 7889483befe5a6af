//! A chunk's filter pipeline undone ([`decode_chunk`]: deflate, shuffle, fletcher32, and the
//! h5py/hdf5plugin filters lzf, zstd and lz4, in reverse order, any input bytes safe), HDF5's Fletcher-32 ([`fletcher32`]), and the
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
    /// h5py's LZF (filter 32000): one raw LZF stream ([`lzf_decompress`]).
    Lzf,
    /// hdf5plugin's Zstandard (filter 32015): one zstd frame.
    Zstd,
    /// hdf5plugin's LZ4 (filter 32004): a big-endian u64 size and u32 block size, then per
    /// block a big-endian u32 length and the LZ4 block (stored raw when that length is the
    /// block's size).
    Lz4,
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
    /// The LZF stream is invalid (a back reference before the start, a run past the input).
    #[error("lzf: corrupt data")]
    LzfCorrupt,
    /// A stage (lzf, zstd, lz4) decompresses past the chunk (plus its checksums).
    #[error("{0}: decompresses to more than the chunk holds")]
    TooLong(&'static str),
    /// The zstd frame is invalid.
    #[error("zstd: {0}")]
    Zstd(String),
    /// The LZ4 filter's framing or a block is invalid.
    #[error("lz4: {0}")]
    Lz4(String),
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
        cur = match undo_filter(*f, input, out, cap, inflater)? {
            Undone::Trimmed(k) => match cur {
                At::Raw(lo, hi) => At::Raw(lo, hi - k),
                At::A(n) => At::A(n - k),
                At::B(n) => At::B(n - k),
            },
            Undone::Written(n) if out_is_a => At::A(n),
            Undone::Written(n) => At::B(n),
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

/// What undoing one filter left.
enum Undone {
    /// The input without its last `k` bytes (a checksum, checked).
    Trimmed(usize),
    /// `n` bytes written to the output buffer.
    Written(usize),
}

/// Undo filter `f` on `input`: check and drop a checksum, or decode into `out` (grown to
/// hold `cap` bytes, the most any stage may give).
fn undo_filter(
    f: ChunkFilter,
    input: &[u8],
    out: &mut Vec<u64>,
    cap: usize,
    inflater: &mut Decompressor,
) -> Result<Undone, ChunkError> {
    Ok(match f {
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
            Undone::Trimmed(4)
        }
        ChunkFilter::Deflate => {
            let got = inflater
                .zlib_decompress(input, sized(out, cap))
                .map_err(|e| match e {
                    libdeflater::DecompressionError::BadData => ChunkError::DeflateCorrupt,
                    libdeflater::DecompressionError::InsufficientSpace => {
                        ChunkError::DeflateTooLong
                    }
                })?;
            Undone::Written(got)
        }
        ChunkFilter::Lzf => Undone::Written(lzf_decompress(input, sized(out, cap))?),
        ChunkFilter::Zstd => {
            if input.is_empty() {
                return Err(ChunkError::Zstd("no frame".into()));
            }
            let got = zstd::bulk::decompress_to_buffer(input, sized(out, cap)).map_err(|e| {
                if e.to_string().contains("Destination buffer is too small") {
                    ChunkError::TooLong("zstd")
                } else {
                    ChunkError::Zstd(e.to_string())
                }
            })?;
            Undone::Written(got)
        }
        ChunkFilter::Lz4 => Undone::Written(lz4_filter_decompress(input, sized(out, cap))?),
        ChunkFilter::Shuffle { elem } => {
            let n = input.len();
            msms_kernels::unshuffle(input, elem, sized(out, n));
            Undone::Written(n)
        }
    })
}

/// The first `cap` bytes of `out` (grown to hold them), as bytes.
fn sized(out: &mut Vec<u64>, cap: usize) -> &mut [u8] {
    if out.len() < cap.div_ceil(8) {
        out.resize(cap.div_ceil(8), 0);
    }
    &mut bytemuck::cast_slice_mut::<u64, u8>(out)[..cap]
}

/// Decompress one raw LZF stream (liblzf's format, as h5py's LZF filter writes it) into
/// `dst`; returns the bytes written. Every read and write is bounds-checked: corrupt input is
/// an error, never a panic; output past `dst` is [`ChunkError::TooLong`].
pub(crate) fn lzf_decompress(input: &[u8], dst: &mut [u8]) -> Result<usize, ChunkError> {
    let (mut ip, mut op) = (0usize, 0usize);
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            // A literal run of ctrl + 1 bytes.
            let len = ctrl + 1;
            let src = input.get(ip..ip + len).ok_or(ChunkError::LzfCorrupt)?;
            dst.get_mut(op..op + len)
                .ok_or(ChunkError::TooLong("lzf"))?
                .copy_from_slice(src);
            ip += len;
            op += len;
        } else {
            // A back reference: length (ctrl >> 5) + 2, more in the next byte when 7.
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(ip).ok_or(ChunkError::LzfCorrupt)? as usize;
                ip += 1;
            }
            len += 2;
            let low = *input.get(ip).ok_or(ChunkError::LzfCorrupt)? as usize;
            ip += 1;
            let back = ((ctrl & 0x1f) << 8) + low + 1;
            let from = op.checked_sub(back).ok_or(ChunkError::LzfCorrupt)?;
            if op + len > dst.len() {
                return Err(ChunkError::TooLong("lzf"));
            }
            // Overlapping copies repeat the pattern, byte by byte, as liblzf does.
            for k in 0..len {
                dst[op + k] = dst[from + k];
            }
            op += len;
        }
    }
    Ok(op)
}

/// Undo hdf5plugin's LZ4 filter (the HDF5 LZ4 filter's framing, [`ChunkFilter::Lz4`]) into
/// `dst`; returns the bytes written.
fn lz4_filter_decompress(input: &[u8], dst: &mut [u8]) -> Result<usize, ChunkError> {
    let bad = |what: &str| ChunkError::Lz4(what.to_string());
    let header = input
        .get(..12)
        .ok_or_else(|| bad("shorter than its header"))?;
    let total = u64::from_be_bytes(header[..8].try_into().expect("8 bytes"));
    let block = u32::from_be_bytes(header[8..12].try_into().expect("4 bytes")) as u64;
    if total > dst.len() as u64 {
        return Err(ChunkError::TooLong("lz4"));
    }
    let (total, block) = (total as usize, block.min(total) as usize);
    if block == 0 && total > 0 {
        return Err(bad("block size 0"));
    }
    let (mut ip, mut op) = (12usize, 0usize);
    while op < total {
        let this = block.min(total - op);
        let len_bytes = input
            .get(ip..ip + 4)
            .ok_or_else(|| bad("truncated block length"))?;
        let len = u32::from_be_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
        ip += 4;
        let src = input
            .get(ip..ip + len)
            .ok_or_else(|| bad("truncated block"))?;
        let out = &mut dst[op..op + this];
        if len == this {
            out.copy_from_slice(src);
        } else {
            let got = lz4_flex::block::decompress_into(src, out)
                .map_err(|e| ChunkError::Lz4(e.to_string()))?;
            if got != this {
                return Err(bad(
                    "a block decompresses to another size than its header says",
                ));
            }
        }
        ip += len;
        op += this;
    }
    Ok(op)
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

    /// Decode `raw` through one filter into a chunk of `n` bytes.
    fn one(raw: &[u8], f: ChunkFilter, n: usize) -> Result<Vec<u8>, ChunkError> {
        let mut scratch = DecodeScratch::default();
        let at = decode_chunk(raw, &[f], 0, n, &mut scratch)?;
        Ok(scratch.bytes(at, n).to_vec())
    }

    #[test]
    fn lzf_literals_and_back_references() {
        // "abc" literal (ctrl 2), then a back reference of 6 bytes at distance 3 (ctrl
        // (6 - 2) << 5 | 0, low byte 2): the overlapping copy repeats "abc".
        let stream = [2, b'a', b'b', b'c', 4 << 5, 2];
        assert_eq!(one(&stream, ChunkFilter::Lzf, 9).unwrap(), b"abcabcabc");
        // A long reference: len 7 + next byte (3) + 2 = 12 bytes of "x".
        let long = [0, b'x', 7 << 5, 3, 0];
        assert_eq!(one(&long, ChunkFilter::Lzf, 13).unwrap(), vec![b'x'; 13]);
        // Corrupt: a reference before the start, a literal past the input, a cut reference.
        for bad in [&[4u8 << 5, 9][..], &[5, b'a'][..], &[0, b'a', 1 << 5][..]] {
            assert_eq!(
                one(bad, ChunkFilter::Lzf, 16),
                Err(ChunkError::LzfCorrupt),
                "{bad:?}"
            );
        }
        // More output than the chunk holds.
        assert_eq!(
            one(&stream, ChunkFilter::Lzf, 4),
            Err(ChunkError::TooLong("lzf"))
        );
    }

    #[test]
    fn zstd_and_lz4_as_hdf5plugin_frames_them() {
        let data: Vec<u8> = (0..5000u32).flat_map(|i| (i % 97).to_le_bytes()).collect();
        let z = zstd::bulk::compress(&data, 3).unwrap();
        assert_eq!(one(&z, ChunkFilter::Zstd, data.len()).unwrap(), data);
        assert_eq!(
            one(&z, ChunkFilter::Zstd, data.len() - 100),
            Err(ChunkError::TooLong("zstd"))
        );
        assert!(matches!(
            one(&z[..z.len() / 2], ChunkFilter::Zstd, data.len()),
            Err(ChunkError::Zstd(_))
        ));
        // LZ4 filter framing: total size, block size, then (length, block) pairs; a block
        // that does not compress is stored raw.
        let block = 8192;
        let mut framed = (data.len() as u64).to_be_bytes().to_vec();
        framed.extend((block as u32).to_be_bytes());
        for (i, part) in data.chunks(block).enumerate() {
            let c = lz4_flex::block::compress(part);
            let stored = if i == 1 { part.to_vec() } else { c };
            framed.extend((stored.len() as u32).to_be_bytes());
            framed.extend(stored);
        }
        assert_eq!(one(&framed, ChunkFilter::Lz4, data.len()).unwrap(), data);
        assert!(matches!(
            one(&framed[..framed.len() - 3], ChunkFilter::Lz4, data.len()),
            Err(ChunkError::Lz4(_))
        ));
        assert_eq!(
            one(&framed, ChunkFilter::Lz4, 100),
            Err(ChunkError::TooLong("lz4"))
        );
    }

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
