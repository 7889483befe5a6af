//! Output side: encode batches into Parquet row groups, plan shard boundaries from exact
//! encoded sizes, and write each shard through a SHA-256 hashing writer as `.tmp`, fsynced,
//! then renamed into place.
//!
//! A batch is encoded (by a worker) into in-memory column chunks before the sink sees it, so
//! the sink knows its exact size before it decides whether it still fits the open shard.
//! Boundaries therefore depend only on the data and the settings, never on timing, and no
//! shard exceeds the configured maximum: the footer still to come is bounded from the chunks'
//! page counts, and a batch too large for an empty shard is split in halves.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowRowGroupWriterFactory};
use parquet::arrow::{add_encoded_arrow_schema_to_metadata, ArrowSchemaConverter};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesPtr};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{ColumnPath, SchemaDescriptor};
use sha2::{Digest, Sha256};

use crate::direct::ShardFile;

/// Version of the on-disk layout (shard files, columns, manifest). Bumped on any change
/// readers must know about.
pub const FORMAT_VERSION: u32 = 1;

/// Failures while encoding or writing shards.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A filesystem operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Parquet encoding failed.
    #[error("encoding Parquet")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Arrow failed while slicing a batch.
    #[error("preparing a batch")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The maximum shard size cannot hold even one spectrum.
    #[error("--shard-size {max} bytes cannot hold a single spectrum ({need} bytes needed for spectrum_id {spectrum_id}); raise it")]
    ShardTooSmall {
        /// Configured maximum.
        max: u64,
        /// Bytes one row group of that spectrum needs.
        need: u64,
        /// The spectrum.
        spectrum_id: u64,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SinkError + 'a {
    move |source| SinkError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Writer properties for every shard of a run: zstd, page statistics (truncated), dictionary
/// encoding only for `name`, and the footer key-value metadata that makes a shard
/// self-describing (format version, tool version, config hash, Arrow schema).
pub fn writer_properties(schema: &SchemaRef, config_hash: &str) -> WriterPropertiesPtr {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(ColumnPath::from("name"), true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_statistics_truncate_length(Some(64))
        .set_created_by(format!("msms-shards {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(
                "msms_shards.format_version".into(),
                FORMAT_VERSION.to_string(),
            ),
            KeyValue::new(
                "msms_shards.tool_version".into(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            KeyValue::new("msms_shards.config_hash".into(), config_hash.to_string()),
        ]))
        .build();
    add_encoded_arrow_schema_to_metadata(schema, &mut props);
    Arc::new(props)
}

/// A batch encoded into in-memory Parquet column chunks, ready to append as one row group.
pub struct EncodedBatch {
    /// The rows (kept so that an oversized batch can be split and re-encoded).
    pub batch: RecordBatch,
    /// One chunk per leaf column.
    pub chunks: Vec<ArrowColumnChunk>,
    /// Exact bytes the chunks add to the file.
    pub bytes: u64,
    /// Upper bound of what the row group adds to the footer and page indexes.
    pub footer_bytes: u64,
}

/// Encodes batches of one schema into column chunks; one per worker.
pub struct Encoder {
    schema: SchemaRef,
    factory: ArrowRowGroupWriterFactory,
    /// Bytes of each leaf column's dotted path, repeated in every row group's metadata.
    leaf_paths: Vec<u64>,
    // The factory borrows nothing, but is created from a file writer; keep it alive.
    _writer: SerializedFileWriter<io::Sink>,
}

impl Encoder {
    /// An encoder for `schema` with `props`.
    pub fn new(schema: &SchemaRef, props: &WriterPropertiesPtr) -> Result<Encoder, SinkError> {
        let descr = parquet_schema(schema, props)?;
        let writer =
            SerializedFileWriter::new(io::sink(), descr.root_schema_ptr(), Arc::clone(props))?;
        let factory = ArrowRowGroupWriterFactory::new(&writer, Arc::clone(schema));
        let leaf_paths = descr
            .columns()
            .iter()
            .map(|c| c.path().parts().iter().map(|p| p.len() as u64 + 2).sum())
            .collect();
        Ok(Encoder {
            schema: Arc::clone(schema),
            factory,
            leaf_paths,
            _writer: writer,
        })
    }

    /// Encode `batch` as one row group.
    pub fn encode(&self, batch: RecordBatch) -> Result<EncodedBatch, SinkError> {
        let mut writers = self.factory.create_column_writers(0)?;
        let mut w = writers.iter_mut();
        for (array, field) in batch.columns().iter().zip(self.schema.fields()) {
            for leaf in compute_leaves(field, array)? {
                w.next().expect("one writer per leaf").write(&leaf)?;
            }
        }
        let chunks = writers
            .into_iter()
            .map(|w| w.close())
            .collect::<Result<Vec<_>, _>>()?;
        let bytes = chunks
            .iter()
            .map(|c| c.close().metadata.compressed_size() as u64)
            .sum();
        let footer_bytes = chunks
            .iter()
            .zip(&self.leaf_paths)
            .map(|(c, path)| {
                let pages = c
                    .close()
                    .offset_index
                    .as_ref()
                    .map_or(1, |o| o.page_locations().len()) as u64;
                // Column chunk metadata with statistics (values truncated to 64 bytes), plus
                // one offset-index and one column-index entry per page.
                768 + path + 320 * pages
            })
            .sum::<u64>()
            + 256;
        Ok(EncodedBatch {
            batch,
            chunks,
            bytes,
            footer_bytes,
        })
    }
}

fn parquet_schema(
    schema: &SchemaRef,
    props: &WriterPropertiesPtr,
) -> Result<SchemaDescriptor, SinkError> {
    Ok(ArrowSchemaConverter::new()
        .with_coerce_types(props.coerce_types())
        .convert(schema)?)
}

/// Upper bound of the serialised Parquet schema: every element's name plus its fields.
fn schema_bytes(descr: &SchemaDescriptor) -> u64 {
    fn walk(t: &parquet::schema::types::Type) -> u64 {
        let own = 32 + t.name().len() as u64;
        if t.is_group() {
            own + t.get_fields().iter().map(|f| walk(f)).sum::<u64>()
        } else {
            own
        }
    }
    walk(descr.root_schema())
}

/// `Write` adapter that hashes and counts every byte on its way to the file.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The inner writer, the lowercase hex SHA-256 and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Where shard bytes go: a real file, or nowhere (dry run: sizes and digests only).
enum Target {
    File {
        file: ShardFile,
        tmp: PathBuf,
        final_path: PathBuf,
    },
    Null,
}

impl Write for Target {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Target::File { file, .. } => file.write(buf),
            Target::Null => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Target::File { file, .. } => file.flush(),
            Target::Null => Ok(()),
        }
    }
}

/// A finalised shard, as recorded in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardRecord {
    /// Split (`train`).
    pub split: String,
    /// Path relative to the output root, `/`-separated.
    pub path: String,
    /// Spectra in the shard.
    pub rows: u64,
    /// File size.
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    /// `spectrum_id` of the first row.
    pub first_spectrum_id: u64,
    /// `spectrum_id` of the last row.
    pub last_spectrum_id: u64,
}

struct OpenShard {
    writer: SerializedFileWriter<HashingWriter<Target>>,
    index: usize,
    rows: u64,
    row_groups: u64,
    footer_reserve: u64,
    first_id: u64,
    last_id: u64,
}

/// Plans shard boundaries and writes shards, one at a time, in batch order.
pub struct ShardWriter {
    root: Option<PathBuf>,
    split: String,
    schema: SchemaRef,
    props: WriterPropertiesPtr,
    max_bytes: u64,
    base_footer: u64,
    encoder: Encoder,
    open: Option<OpenShard>,
    shards: Vec<ShardRecord>,
}

impl ShardWriter {
    /// Shards go to `root/split/` (created on first use); `root = None` writes nothing and only
    /// measures (dry run).
    pub fn new(
        root: Option<&Path>,
        split: &str,
        schema: &SchemaRef,
        props: &WriterPropertiesPtr,
        max_bytes: u64,
    ) -> Result<ShardWriter, SinkError> {
        let kv: u64 = props
            .key_value_metadata()
            .map(|kv| {
                kv.iter()
                    .map(|k| k.key.len() + k.value.as_ref().map_or(0, |v| v.len()) + 16)
                    .sum::<usize>()
            })
            .unwrap_or(0) as u64;
        Ok(ShardWriter {
            root: root.map(Path::to_path_buf),
            split: split.to_string(),
            schema: Arc::clone(schema),
            props: Arc::clone(props),
            max_bytes,
            // Magic + footer length + file metadata: schema, key-value pairs, created_by.
            base_footer: 1024 + kv + schema_bytes(&parquet_schema(schema, props)?),
            encoder: Encoder::new(schema, props)?,
            open: None,
            shards: Vec::new(),
        })
    }

    /// Shards finalised so far.
    pub fn shards(&self) -> &[ShardRecord] {
        &self.shards
    }

    fn shard_name(&self, index: usize) -> String {
        format!("{}/shard-{index:05}.parquet", self.split)
    }

    fn open_shard(&mut self) -> Result<OpenShard, SinkError> {
        let index = self.shards.len();
        let target = match &self.root {
            None => Target::Null,
            Some(root) => {
                let final_path = root.join(self.shard_name(index));
                let dir = final_path.parent().expect("shard path has a parent");
                fs::create_dir_all(dir).map_err(io_err("creating directory", dir))?;
                let tmp = final_path.with_extension("parquet.tmp");
                let file = ShardFile::create(&tmp).map_err(io_err("creating", &tmp))?;
                Target::File {
                    file,
                    tmp,
                    final_path,
                }
            }
        };
        let descr = parquet_schema(&self.schema, &self.props)?;
        let writer = SerializedFileWriter::new(
            HashingWriter::new(target),
            descr.root_schema_ptr(),
            Arc::clone(&self.props),
        )?;
        Ok(OpenShard {
            writer,
            index,
            rows: 0,
            row_groups: 0,
            footer_reserve: self.base_footer,
            first_id: 0,
            last_id: 0,
        })
    }

    /// Append one encoded batch (a row group), starting a new shard first when it would not fit.
    pub fn push(&mut self, enc: EncodedBatch) -> Result<(), SinkError> {
        if enc.batch.num_rows() == 0 {
            return Ok(());
        }
        let need = enc.bytes + enc.footer_bytes;
        let full = self.open.as_ref().is_some_and(|s| {
            s.writer.bytes_written() as u64 + s.footer_reserve + need > self.max_bytes
        });
        if full {
            self.finish_shard()?;
        }
        if self.open.is_none() {
            // Leading magic (4 bytes) + footer: does the batch fit even an empty shard?
            if 4 + self.base_footer + need > self.max_bytes {
                return self.split_and_push(enc);
            }
            self.open = Some(self.open_shard()?);
        }
        let s = self.open.as_mut().expect("a shard is open");
        let ids = enc
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::UInt64Array>();
        let ids = ids.expect("column 0 is spectrum_id");
        if s.rows == 0 {
            s.first_id = ids.value(0);
        }
        s.last_id = ids.value(ids.len() - 1);
        s.rows += enc.batch.num_rows() as u64;
        s.row_groups += 1;
        s.footer_reserve += enc.footer_bytes;
        let mut rg = s.writer.next_row_group()?;
        for chunk in enc.chunks {
            chunk.append_to_row_group(&mut rg)?;
        }
        rg.close()?;
        Ok(())
    }

    fn discard_tmp(&mut self) {
        if let Some(root) = &self.root {
            let tmp = root
                .join(self.shard_name(self.shards.len()))
                .with_extension("parquet.tmp");
            let _ = fs::remove_file(tmp);
        }
    }

    fn split_and_push(&mut self, enc: EncodedBatch) -> Result<(), SinkError> {
        let rows = enc.batch.num_rows();
        if rows == 1 {
            let id = enc
                .batch
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::UInt64Array>();
            return Err(SinkError::ShardTooSmall {
                max: self.max_bytes,
                need: enc.bytes + self.base_footer + enc.footer_bytes + 4,
                spectrum_id: id.map_or(0, |a| a.value(0)),
            });
        }
        let half = rows / 2;
        let (a, b) = (enc.batch.slice(0, half), enc.batch.slice(half, rows - half));
        let a = self.encoder.encode(a)?;
        self.push(a)?;
        let b = self.encoder.encode(b)?;
        self.push(b)
    }

    /// Footer, flush, size check, fsync, rename into place. Returns (sha256, bytes, rows,
    /// first id, last id). The size is checked before the rename, so an oversized file never
    /// reaches its final name.
    fn close_shard(&self, s: OpenShard) -> Result<(String, u64, u64, u64, u64), SinkError> {
        let hashing = s.writer.into_inner()?;
        let (target, sha256, bytes) = hashing.finish();
        if bytes > self.max_bytes {
            // The footer bound was wrong: refuse rather than break the contract silently.
            return Err(SinkError::Io {
                op: "checking shard size of",
                path: PathBuf::from(self.shard_name(s.index)),
                source: io::Error::other(format!(
                    "{bytes} bytes exceed --shard-size {} (please report this)",
                    self.max_bytes
                )),
            });
        }
        if let Target::File {
            file,
            tmp,
            final_path,
        } = target
        {
            let file = file.finish().map_err(io_err("writing", &tmp))?;
            file.sync_all().map_err(io_err("fsync", &tmp))?;
            drop(file);
            fs::rename(&tmp, &final_path).map_err(io_err("renaming into place", &final_path))?;
            sync_dir(final_path.parent().expect("has parent"))?;
        }
        Ok((sha256, bytes, s.rows, s.first_id, s.last_id))
    }

    /// Close the open shard: footer, flush, fsync, rename into place, record.
    pub fn finish_shard(&mut self) -> Result<(), SinkError> {
        let Some(s) = self.open.take() else {
            return Ok(());
        };
        let index = s.index;
        let finished = self.close_shard(s);
        if finished.is_err() {
            // Whatever failed, the unfinished shard never stays behind, under any name.
            self.discard_tmp();
        }
        let (sha256, bytes, rows, first_id, last_id) = finished?;
        self.shards.push(ShardRecord {
            split: self.split.clone(),
            path: self.shard_name(index),
            rows,
            bytes,
            sha256,
            first_spectrum_id: first_id,
            last_spectrum_id: last_id,
        });
        Ok(())
    }

    /// Close the last shard and return every shard record.
    pub fn finish(mut self) -> Result<Vec<ShardRecord>, SinkError> {
        self.finish_shard()?;
        Ok(std::mem::take(&mut self.shards))
    }
}

impl Drop for ShardWriter {
    /// An unfinished shard (error or interruption) never reaches its final name: its `.tmp`
    /// file is removed.
    fn drop(&mut self) {
        if self.open.take().is_some() {
            self.discard_tmp();
        }
    }
}

/// fsync a directory so that a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

/// Write `bytes` to `path` atomically: `path.tmp`, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let tmp = path.with_extension("json.tmp");
    let mut f = File::create(&tmp).map_err(io_err("creating", &tmp))?;
    f.write_all(bytes).map_err(io_err("writing", &tmp))?;
    f.sync_all().map_err(io_err("fsync", &tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err("renaming into place", path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// SHA-256 over the shard list in order: one line `<path> <sha256>\n` per shard. Identifies
/// the dataset's content as a whole.
pub fn dataset_digest(shards: &[ShardRecord]) -> String {
    let mut h = Sha256::new();
    for s in shards {
        h.update(s.path.as_bytes());
        h.update(b" ");
        h.update(s.sha256.as_bytes());
        h.update(b"\n");
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn hashing_writer_sees_every_byte_once() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (inner, sha, n) = w.finish();
        assert_eq!(inner, b"hello world");
        assert_eq!(n, 11);
        assert_eq!(
            sha,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }

    #[test]
    fn dataset_digest_is_over_path_and_digest_lines() {
        let rec = |path: &str, sha: &str| ShardRecord {
            split: "train".into(),
            path: path.into(),
            rows: 1,
            bytes: 1,
            sha256: sha.into(),
            first_spectrum_id: 0,
            last_spectrum_id: 0,
        };
        let shards = [
            rec("train/shard-00000.parquet", "aa"),
            rec("train/shard-00001.parquet", "bb"),
        ];
        let want = hex::encode(Sha256::digest(
            b"train/shard-00000.parquet aa\ntrain/shard-00001.parquet bb\n",
        ));
        assert_eq!(dataset_digest(&shards), format!("sha256:{want}"));
        assert_ne!(dataset_digest(&shards[..1]), dataset_digest(&shards));
    }

    fn batch(schema: &SchemaRef, ids: std::ops::Range<u64>) -> RecordBatch {
        let v: Vec<f64> = ids.clone().map(|i| (i as f64).sin() * 1e6).collect();
        RecordBatch::try_new(
            Arc::clone(schema),
            vec![
                Arc::new(UInt64Array::from_iter_values(ids)),
                Arc::new(Float64Array::from(v)),
            ],
        )
        .unwrap()
    }

    #[test]
    fn shards_stay_under_the_bound_and_keep_every_row_in_order() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("spectrum_id", DataType::UInt64, false),
            Field::new("x", DataType::Float64, false),
        ]));
        let props = writer_properties(&schema, "sha256:test");
        let dir = tempfile::tempdir().unwrap();
        let max = 40_000;
        let mut w = ShardWriter::new(Some(dir.path()), "train", &schema, &props, max).unwrap();
        let enc = Encoder::new(&schema, &props).unwrap();
        for start in (0..20_000u64).step_by(2_500) {
            w.push(enc.encode(batch(&schema, start..start + 2_500)).unwrap())
                .unwrap();
        }
        let shards = w.finish().unwrap();
        assert!(
            shards.len() > 3,
            "expected several shards, got {}",
            shards.len()
        );
        let mut next = 0;
        for (i, s) in shards.iter().enumerate() {
            assert_eq!(s.path, format!("train/shard-{i:05}.parquet"));
            let bytes = fs::read(dir.path().join(&s.path)).unwrap();
            assert_eq!(bytes.len() as u64, s.bytes);
            assert!(s.bytes <= max, "{} is {} bytes", s.path, s.bytes);
            assert_eq!(s.sha256, hex::encode(Sha256::digest(&bytes)));
            assert_eq!(s.first_spectrum_id, next);
            next = s.last_spectrum_id + 1;
        }
        assert_eq!(next, 20_000);
        assert_eq!(shards.iter().map(|s| s.rows).sum::<u64>(), 20_000);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("train"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn a_bound_below_one_row_is_refused_without_leaving_files() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("spectrum_id", DataType::UInt64, false),
            Field::new("x", DataType::Float64, false),
        ]));
        let props = writer_properties(&schema, "sha256:test");
        let dir = tempfile::tempdir().unwrap();
        let mut w = ShardWriter::new(Some(dir.path()), "train", &schema, &props, 500).unwrap();
        let enc = Encoder::new(&schema, &props).unwrap();
        let err = w
            .push(enc.encode(batch(&schema, 7..9)).unwrap())
            .unwrap_err();
        assert!(
            matches!(
                err,
                SinkError::ShardTooSmall {
                    max: 500,
                    spectrum_id: 7,
                    ..
                }
            ),
            "{err}"
        );
        drop(w);
        // Refused before a shard was opened: not even the split directory exists.
        assert!(!dir.path().join("train").exists());
    }
}
