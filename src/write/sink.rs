//! Output side: encode batches into Parquet row groups, plan shard boundaries from exact
//! encoded sizes, and write each shard through a SHA-256 hashing writer as `.tmp`, fsynced,
//! then renamed into place.
//!
//! A batch is encoded (by a worker) into in-memory column chunks before the sink sees it, so
//! the sink knows its exact size before it decides whether it still fits the open shard.
//! Boundaries therefore depend only on the data and the settings, never on timing, and no
//! shard exceeds the configured maximum: the footer still to come is bounded from the chunks'
//! page counts, and a batch too large for an empty shard is split in halves.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{RecordBatch, UInt64Array};
use arrow::datatypes::SchemaRef;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowRowGroupWriterFactory};
use parquet::arrow::{add_encoded_arrow_schema_to_metadata, ArrowSchemaConverter};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesPtr};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{ColumnPath, SchemaDescriptor};

use crate::format::checkpoint::{Position, ShardEntry};
use crate::format::manifest::{ShardRecord, FORMAT_VERSION};
use crate::format::paths::shard_name;
use crate::process::batch::Counts;
use crate::write::atomic::sync_dir;
use crate::write::direct::ShardFile;
use crate::write::error::{io_err, SinkError};
use crate::write::hashing::HashingWriter;
use crate::write::stall::stall_point;

/// Writer properties for every shard of a run: zstd, page statistics (truncated) and page
/// indexes, dictionary encoding only for `name`, BYTE_STREAM_SPLIT for the m/z values, and the footer key-value metadata that makes a shard
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
        ]));
    // BYTE_STREAM_SPLIT where it shrinks shards (measured on the 1M-spectrum gems sample,
    // zstd after it: m/z 661.3 → 603.6 MB, −8.7 %; intensities unchanged; the scalar float
    // columns 0.1 MB larger, so they keep PLAIN). Every reader of the interop suite reads it.
    if let Ok(descr) = ArrowSchemaConverter::new().convert(schema) {
        for col in descr.columns() {
            let is_mz = col.path().parts()[0] == "mz";
            if is_mz && col.physical_type() == parquet::basic::Type::DOUBLE {
                props = props.set_column_encoding(
                    col.path().clone(),
                    parquet::basic::Encoding::BYTE_STREAM_SPLIT,
                );
            }
        }
    }
    let mut props = props.build();
    add_encoded_arrow_schema_to_metadata(schema, &mut props);
    Arc::new(props)
}

/// A batch encoded into in-memory Parquet column chunks, ready to append as one row group.
pub struct EncodedBatch {
    /// The rows.
    pub batch: RecordBatch,
    /// Index of the first row in its unit's batch.
    pub offset: usize,
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
            offset: 0,
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

/// Where shard bytes go: a real file, or nowhere (dry run: sizes and digests only).
enum Target {
    File(ShardFile),
    Null,
}

impl Write for Target {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Target::File(file) => file.write(buf),
            Target::Null => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Target::File(file) => file.flush(),
            Target::Null => Ok(()),
        }
    }
}

/// The rows of one read unit, ready for the shard planner.
pub struct UnitOutput {
    /// Sequence number of the unit.
    pub seq: u64,
    /// The unit's accepted rows.
    pub batch: RecordBatch,
    /// Those rows encoded as row groups, in order, covering `batch`.
    pub groups: Vec<EncodedBatch>,
}

/// What the planner tells a writer thread.
enum WriterMsg {
    /// Start shard `index`.
    Open { index: usize },
    /// Append one row group to the open shard.
    RowGroup(Vec<ArrowColumnChunk>),
    /// Footer, fsync, rename; `planned` is the size before the footer the planner counted.
    Close { planned: u64 },
}

/// What a writer thread reports.
enum Completion {
    /// Shard `index` is in place.
    Finalised {
        index: usize,
        sha256: String,
        bytes: u64,
    },
    /// Shard `index` could not be written; its `.tmp` file is gone.
    Failed { error: SinkError },
}

/// Everything a writer thread needs to create shard files.
struct WriterContext {
    root: Option<PathBuf>,
    split: String,
    schema: SchemaRef,
    props: WriterPropertiesPtr,
    max_bytes: u64,
}

/// A shard being written by a writer thread.
struct WritingShard {
    index: usize,
    writer: SerializedFileWriter<HashingWriter<Target>>,
    /// `Some((tmp, final))` unless this is a dry run.
    paths: Option<(PathBuf, PathBuf)>,
}

impl WritingShard {
    /// Drop an unfinished shard: it never stays behind, under any name.
    fn discard(self) {
        let paths = self.paths.clone();
        drop(self);
        if let Some((tmp, _)) = paths {
            let _ = fs::remove_file(tmp);
        }
    }
}

impl WriterContext {
    fn open(&self, index: usize) -> Result<WritingShard, SinkError> {
        let (target, paths) = match &self.root {
            None => (Target::Null, None),
            Some(root) => {
                let final_path = root.join(shard_name(&self.split, index));
                let dir = final_path.parent().expect("shard path has a parent");
                fs::create_dir_all(dir).map_err(io_err("creating directory", dir))?;
                let tmp = final_path.with_extension("parquet.tmp");
                let file = ShardFile::create(&tmp).map_err(io_err("creating", &tmp))?;
                (Target::File(file), Some((tmp, final_path)))
            }
        };
        let descr = parquet_schema(&self.schema, &self.props)?;
        let writer = SerializedFileWriter::new(
            HashingWriter::new(target),
            descr.root_schema_ptr(),
            Arc::clone(&self.props),
        );
        let writer = match writer {
            Ok(w) => w,
            Err(e) => {
                if let Some((tmp, _)) = &paths {
                    let _ = fs::remove_file(tmp);
                }
                return Err(self.at(index, e.into()));
            }
        };
        Ok(WritingShard {
            index,
            writer,
            paths,
        })
    }

    /// `e`, with the shard's temporary path when it is an encoding error of unknown place.
    fn at(&self, index: usize, e: SinkError) -> SinkError {
        match (e, &self.root) {
            (SinkError::Parquet(p), Some(root)) => {
                let tmp = root
                    .join(shard_name(&self.split, index))
                    .with_extension("parquet.tmp");
                // parquet-rs reports write errors of the underlying file as `External`.
                SinkError::Io {
                    op: "writing",
                    path: tmp,
                    source: io::Error::other(p.to_string()),
                }
            }
            (e, _) => e,
        }
    }

    fn append(&self, s: &mut WritingShard, chunks: Vec<ArrowColumnChunk>) -> Result<(), SinkError> {
        let mut rg = s.writer.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut rg)?;
        }
        rg.close()?;
        Ok(())
    }

    /// Footer, flush, size check, fsync, rename into place, fsync of the directory. The size
    /// is checked before the rename, so an oversized file never reaches its final name.
    fn close(&self, s: WritingShard, planned: u64) -> Result<(String, u64), SinkError> {
        let before_footer = s.writer.bytes_written() as u64;
        if before_footer != planned {
            return Err(self.internal(
                s.index,
                format!("{before_footer} bytes written before the footer, {planned} planned"),
            ));
        }
        let hashing = s.writer.into_inner()?;
        let (target, sha256, bytes) = hashing.finish();
        if bytes > self.max_bytes {
            // The footer bound was wrong: refuse rather than break the contract silently.
            return Err(self.internal(
                s.index,
                format!("{bytes} bytes exceed --shard-size {}", self.max_bytes),
            ));
        }
        if let (Target::File(file), Some((tmp, final_path))) = (target, &s.paths) {
            let file = file.finish().map_err(io_err("writing", tmp))?;
            file.sync_all().map_err(io_err("fsync", tmp))?;
            drop(file);
            stall_point(&|| format!("shard-rename:{}", s.index));
            fs::rename(tmp, final_path).map_err(io_err("renaming into place", final_path))?;
            sync_dir(final_path.parent().expect("has parent"))?;
            stall_point(&|| format!("shard-renamed:{}", s.index));
        }
        Ok((sha256, bytes))
    }

    fn internal(&self, index: usize, message: String) -> SinkError {
        SinkError::Io {
            op: "checking shard size of",
            path: PathBuf::from(shard_name(&self.split, index)),
            source: io::Error::other(format!("{message} (please report this)")),
        }
    }

    /// The writer thread: shards one after the other, as the planner sends them.
    fn run(&self, rx: Receiver<WriterMsg>, done: Sender<Completion>) {
        let mut open: Option<WritingShard> = None;
        for msg in rx {
            match msg {
                WriterMsg::Open { index } => {
                    if let Some(s) = open.take() {
                        s.discard();
                    }
                    match self.open(index) {
                        Ok(s) => open = Some(s),
                        Err(error) => {
                            let _ = done.send(Completion::Failed { error });
                        }
                    }
                }
                WriterMsg::RowGroup(chunks) => {
                    let Some(s) = open.as_mut() else { continue };
                    if let Err(e) = self.append(s, chunks) {
                        let s = open.take().expect("open");
                        let index = s.index;
                        s.discard();
                        let error = self.at(index, e);
                        let _ = done.send(Completion::Failed { error });
                    }
                }
                WriterMsg::Close { planned } => {
                    let Some(s) = open.take() else { continue };
                    let index = s.index;
                    let tmp = s.paths.as_ref().map(|(tmp, _)| tmp.clone());
                    let msg = match self.close(s, planned) {
                        Ok((sha256, bytes)) => Completion::Finalised {
                            index,
                            sha256,
                            bytes,
                        },
                        Err(e) => {
                            if let Some(tmp) = tmp {
                                let _ = fs::remove_file(tmp);
                            }
                            Completion::Failed {
                                error: self.at(index, e),
                            }
                        }
                    };
                    let _ = done.send(msg);
                }
            }
        }
        // The planner stopped (finished, failed or interrupted): an open shard is dropped.
        if let Some(s) = open {
            s.discard();
        }
    }
}

/// The shard the planner is filling.
struct PlannedShard {
    index: usize,
    /// Bytes before the footer (magic + row groups), exact.
    bytes: u64,
    /// Upper bound of the footer so far.
    footer_reserve: u64,
    rows: u64,
    first_id: u64,
    last_id: u64,
}

/// A closed shard waiting for its writer to finalise it.
struct ClosedShard {
    record: ShardRecord,
    resume: Position,
    finalised: bool,
}

/// A run of rows of one unit's batch, encoded or not yet.
struct Piece {
    start: usize,
    len: usize,
    enc: Option<EncodedBatch>,
}

/// Decides shard boundaries, in batch order, and hands the row groups to a pool of writer
/// threads that write different shards concurrently.
///
/// Boundaries depend only on the rows and the settings, never on timing or on the number of
/// writers: a row group goes to the open shard when its exact encoded size plus the bound of
/// the footer still fits `max_bytes`; when it does not and the shard holds at least half of
/// `max_bytes`, the shard is closed; when it holds less, the row group is split in halves
/// (recursively) so that the shard is topped up first. So no shard exceeds the maximum, and
/// every shard but the last holds at least half of it, unless the next single spectrum is
/// larger than what is left. Shard `k` is written by writer `k mod writers`.
///
/// Each closed shard remembers the [`Position`] of the input after it, which the checkpoint
/// records once the shard (and every shard before it) is finalised.
pub struct ShardPlanner {
    split: String,
    max_bytes: u64,
    base_footer: u64,
    encoder: Encoder,
    open: Option<PlannedShard>,
    next_index: usize,
    writers: Vec<Sender<WriterMsg>>,
    handles: Vec<std::thread::JoinHandle<()>>,
    done_rx: Receiver<Completion>,
    /// Closed shards not yet finalised, or finalised out of order.
    closed: BTreeMap<usize, ClosedShard>,
    /// Finalised shards, a contiguous prefix (including those of a resumed run).
    finalised: Vec<ShardEntry>,
    /// The first writer failure.
    failure: Option<SinkError>,
}

impl ShardPlanner {
    /// Shards go to `root/split/` (created on first use); `root = None` writes nothing and only
    /// measures (dry run). `done` are the shards an interrupted run already finalised; the
    /// next shard is numbered after them.
    pub fn new(
        root: Option<&Path>,
        split: &str,
        schema: &SchemaRef,
        props: &WriterPropertiesPtr,
        max_bytes: u64,
        writers: usize,
        done: Vec<ShardEntry>,
    ) -> Result<ShardPlanner, SinkError> {
        let kv: u64 = props
            .key_value_metadata()
            .map(|kv| {
                kv.iter()
                    .map(|k| k.key.len() + k.value.as_ref().map_or(0, |v| v.len()) + 16)
                    .sum::<usize>()
            })
            .unwrap_or(0) as u64;
        let ctx = Arc::new(WriterContext {
            root: root.map(Path::to_path_buf),
            split: split.to_string(),
            schema: Arc::clone(schema),
            props: Arc::clone(props),
            max_bytes,
        });
        let (done_tx, done_rx) = unbounded();
        let mut txs = Vec::new();
        let mut handles = Vec::new();
        for w in 0..writers.max(1) {
            // A few row groups of slack per writer: enough to keep it busy, bounded memory.
            let (tx, rx) = bounded(8);
            let (ctx, done_tx) = (Arc::clone(&ctx), done_tx.clone());
            let handle = std::thread::Builder::new()
                .name(format!("msms-writer-{w}"))
                .spawn(move || ctx.run(rx, done_tx))
                .map_err(|e| SinkError::Io {
                    op: "starting a writer thread for",
                    path: root.map_or_else(PathBuf::new, Path::to_path_buf),
                    source: e,
                })?;
            txs.push(tx);
            handles.push(handle);
        }
        Ok(ShardPlanner {
            split: split.to_string(),
            max_bytes,
            // Magic + footer length + file metadata: schema, key-value pairs, created_by.
            base_footer: 1024 + kv + schema_bytes(&parquet_schema(schema, props)?),
            encoder: Encoder::new(schema, props)?,
            open: None,
            next_index: done.len(),
            writers: txs,
            handles,
            done_rx,
            closed: BTreeMap::new(),
            finalised: done,
            failure: None,
        })
    }

    /// Finalised shards so far, in order (a contiguous prefix).
    pub fn finalised(&self) -> &[ShardEntry] {
        &self.finalised
    }

    fn send(&mut self, index: usize, msg: WriterMsg) -> Result<(), SinkError> {
        let w = index % self.writers.len();
        if self.writers[w].send(msg).is_err() {
            // A writer thread only ends early by panicking.
            return Err(SinkError::Io {
                op: "handing a row group to writer thread of",
                path: PathBuf::from(shard_name(&self.split, index)),
                source: io::Error::other("the writer thread stopped (please report this)"),
            });
        }
        Ok(())
    }

    /// Take in writer reports; with `wait`, until every closed shard is finalised. Returns
    /// how many shards joined the finalised prefix, or the first writer failure.
    pub fn poll(&mut self, wait: bool) -> Result<usize, SinkError> {
        let before = self.finalised.len();
        loop {
            if let Some(e) = self.failure.take() {
                return Err(e);
            }
            let pending = self.closed.values().any(|c| !c.finalised);
            let msg = if wait && pending {
                match self.done_rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            } else {
                match self.done_rx.try_recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            };
            match msg {
                Completion::Finalised {
                    index,
                    sha256,
                    bytes,
                } => {
                    if let Some(c) = self.closed.get_mut(&index) {
                        c.record.sha256 = sha256;
                        c.record.bytes = bytes;
                        c.finalised = true;
                    }
                }
                Completion::Failed { error, .. } => {
                    self.failure.get_or_insert(error);
                }
            }
            while let Some(entry) = self.closed.first_entry() {
                if !entry.get().finalised {
                    break;
                }
                let c = entry.remove();
                self.finalised.push(ShardEntry {
                    record: c.record,
                    resume: c.resume,
                });
            }
        }
        Ok(self.finalised.len() - before)
    }

    /// Plan one unit's rows. `pieces` (from a checkpoint) replaces the unit's own row groups
    /// by the ranges the interrupted run still had to write; `counts_before` are the counts
    /// of all units before this one (recorded with a boundary inside it).
    pub fn push_unit(
        &mut self,
        unit: UnitOutput,
        pieces: &[[u64; 2]],
        counts_before: &Counts,
    ) -> Result<(), SinkError> {
        self.poll(false)?;
        let rows = unit.batch.num_rows();
        let mut queue: VecDeque<Piece> = if pieces.is_empty() {
            unit.groups
                .into_iter()
                .map(|g| Piece {
                    start: g.offset,
                    len: g.batch.num_rows(),
                    enc: Some(g),
                })
                .collect()
        } else {
            let mut groups: BTreeMap<(usize, usize), EncodedBatch> = unit
                .groups
                .into_iter()
                .map(|g| ((g.offset, g.batch.num_rows()), g))
                .collect();
            let mut q = VecDeque::new();
            for &[start, len] in pieces {
                let (start, len) = (start as usize, len as usize);
                if start.checked_add(len).is_none_or(|end| end > rows) {
                    return Err(SinkError::Resume(format!(
                        "the checkpoint resumes unit {} at rows {start}..{}, but it has {rows} accepted rows",
                        unit.seq,
                        start.saturating_add(len)
                    )));
                }
                let enc = groups.remove(&(start, len));
                q.push_back(Piece { start, len, enc });
            }
            q
        };
        while let Some(mut p) = queue.pop_front() {
            if p.len == 0 {
                continue;
            }
            let enc = match p.enc.take() {
                Some(e) => e,
                None => {
                    let mut e = self.encoder.encode(unit.batch.slice(p.start, p.len))?;
                    e.offset = p.start;
                    e
                }
            };
            let need = enc.bytes + enc.footer_bytes;
            match &self.open {
                Some(s) if s.bytes + s.footer_reserve + need > self.max_bytes => {
                    if s.bytes >= self.max_bytes / 2 || p.len == 1 {
                        let resume = Position {
                            unit: unit.seq,
                            pieces: std::iter::once(&p)
                                .chain(queue.iter())
                                .map(|q| [q.start as u64, q.len as u64])
                                .collect(),
                            counts: counts_before.into(),
                        };
                        self.close_open(resume)?;
                        p.enc = Some(enc);
                        queue.push_front(p);
                    } else {
                        // Under half full: split, so the first half tops the shard up.
                        split_front(&mut queue, p);
                    }
                    continue;
                }
                Some(_) => {}
                None => {
                    // Leading magic (4 bytes) + footer: does the piece fit even an empty shard?
                    if 4 + self.base_footer + need > self.max_bytes {
                        if p.len == 1 {
                            let ids = enc.batch.column(0).as_any().downcast_ref::<UInt64Array>();
                            return Err(SinkError::ShardTooSmall {
                                max: self.max_bytes,
                                need: 4 + self.base_footer + need,
                                spectrum_id: ids.map_or(0, |a| a.value(0)),
                            });
                        }
                        split_front(&mut queue, p);
                        continue;
                    }
                    let index = self.next_index;
                    self.next_index += 1;
                    self.send(index, WriterMsg::Open { index })?;
                    self.open = Some(PlannedShard {
                        index,
                        bytes: 4,
                        footer_reserve: self.base_footer,
                        rows: 0,
                        first_id: 0,
                        last_id: 0,
                    });
                }
            }
            let ids = enc
                .batch
                .column(0)
                .as_any()
                .downcast_ref::<UInt64Array>()
                .expect("column 0 is spectrum_id");
            let s = self.open.as_mut().expect("a shard is open");
            if s.rows == 0 {
                s.first_id = ids.value(0);
            }
            s.last_id = ids.value(ids.len() - 1);
            s.rows += enc.batch.num_rows() as u64;
            s.bytes += enc.bytes;
            s.footer_reserve += enc.footer_bytes;
            let index = s.index;
            self.send(index, WriterMsg::RowGroup(enc.chunks))?;
        }
        Ok(())
    }

    fn close_open(&mut self, resume: Position) -> Result<(), SinkError> {
        let Some(s) = self.open.take() else {
            return Ok(());
        };
        self.send(s.index, WriterMsg::Close { planned: s.bytes })?;
        self.closed.insert(
            s.index,
            ClosedShard {
                record: ShardRecord {
                    split: self.split.clone(),
                    path: shard_name(&self.split, s.index),
                    rows: s.rows,
                    bytes: 0,
                    sha256: String::new(),
                    first_spectrum_id: s.first_id,
                    last_spectrum_id: s.last_id,
                },
                resume,
                finalised: false,
            },
        );
        Ok(())
    }

    /// The input is exhausted at `end`: close the last shard, let every writer finish and
    /// exit, and return all finalised shards.
    pub fn finish(&mut self, end: Position) -> Result<Vec<ShardEntry>, SinkError> {
        self.close_open(end)?;
        // Closing the channels lets each writer finish what it was sent and exit, so the
        // wait below ends even if a writer thread died.
        self.writers.clear();
        self.poll(true)?;
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
        if let Some((index, _)) = self.closed.iter().find(|(_, c)| !c.finalised) {
            return Err(SinkError::Io {
                op: "finalising",
                path: PathBuf::from(shard_name(&self.split, *index)),
                source: io::Error::other("the writer thread stopped (please report this)"),
            });
        }
        Ok(self.finalised.clone())
    }

    /// Stop (error or interruption): the open shard is dropped, shards already closed are
    /// finalised by their writers, which then exit. Returns the finalised prefix.
    pub fn shut_down(mut self) -> Vec<ShardEntry> {
        self.stop_writers();
        // Take every report; a failure no longer matters, the prefix does. Each `Err` consumes
        // a report, so this ends.
        while self.poll(false).is_err() {}
        std::mem::take(&mut self.finalised)
    }

    fn stop_writers(&mut self) {
        self.open = None;
        // Closing the channels lets each writer finish what it was sent, drop an open shard
        // and exit.
        self.writers.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for ShardPlanner {
    /// An unfinished shard (error or interruption) never reaches its final name.
    fn drop(&mut self) {
        self.stop_writers();
    }
}

/// Put the two halves of `p` at the front of `queue`, first half first.
fn split_front(queue: &mut VecDeque<Piece>, p: Piece) {
    let half = p.len / 2;
    queue.push_front(Piece {
        start: p.start + half,
        len: p.len - half,
        enc: None,
    });
    queue.push_front(Piece {
        start: p.start,
        len: half,
        enc: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use sha2::{Digest, Sha256};

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

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("spectrum_id", DataType::UInt64, false),
            Field::new("x", DataType::Float64, false),
        ]))
    }

    /// Unit `seq` of `rows` rows as a worker hands it over: row groups of at most 1000.
    fn unit(enc: &Encoder, schema: &SchemaRef, seq: u64, rows: u64) -> UnitOutput {
        let b = batch(schema, seq * rows..(seq + 1) * rows);
        let mut groups = Vec::new();
        let mut at = 0;
        while at < b.num_rows() {
            let len = (b.num_rows() - at).min(1000);
            let mut e = enc.encode(b.slice(at, len)).unwrap();
            e.offset = at;
            groups.push(e);
            at += len;
        }
        UnitOutput {
            seq,
            batch: b,
            groups,
        }
    }

    /// A planner into `root` and an encoder, for the test schema.
    fn planner(root: &Path, max: u64, writers: usize) -> (ShardPlanner, Encoder, SchemaRef) {
        let schema = schema();
        let props = writer_properties(&schema, "sha256:test");
        let w = ShardPlanner::new(
            Some(root),
            "train",
            &schema,
            &props,
            max,
            writers,
            Vec::new(),
        )
        .unwrap();
        (w, Encoder::new(&schema, &props).unwrap(), schema)
    }

    /// Plan and write units `from..n` of `rows` rows into `root`, resuming after `done`.
    fn run(
        root: &Path,
        writers: usize,
        max: u64,
        n: u64,
        rows: u64,
        done: Vec<ShardEntry>,
    ) -> Vec<ShardEntry> {
        let schema = schema();
        let props = writer_properties(&schema, "sha256:test");
        let start = done.last().map(|e| e.resume.clone()).unwrap_or_default();
        let mut w =
            ShardPlanner::new(Some(root), "train", &schema, &props, max, writers, done).unwrap();
        let enc = Encoder::new(&schema, &props).unwrap();
        let counts = Counts::default();
        for seq in start.unit..n {
            let pieces: &[[u64; 2]] = if seq == start.unit {
                &start.pieces
            } else {
                &[]
            };
            w.push_unit(unit(&enc, &schema, seq, rows), pieces, &counts)
                .unwrap();
        }
        w.finish(Position {
            unit: n,
            ..Position::default()
        })
        .unwrap()
    }

    #[test]
    fn shards_stay_under_the_bound_fill_half_and_keep_every_row_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let max = 40_000;
        let shards = run(dir.path(), 1, max, 8, 2_500, Vec::new());
        assert!(
            shards.len() > 3,
            "expected several shards, got {}",
            shards.len()
        );
        let mut next = 0;
        for (i, e) in shards.iter().enumerate() {
            let s = &e.record;
            assert_eq!(s.path, format!("train/shard-{i:05}.parquet"));
            let bytes = fs::read(dir.path().join(&s.path)).unwrap();
            assert_eq!(bytes.len() as u64, s.bytes);
            assert!(s.bytes <= max, "{} is {} bytes", s.path, s.bytes);
            if i + 1 < shards.len() {
                assert!(s.bytes >= max / 2, "{} is {} bytes", s.path, s.bytes);
            }
            assert_eq!(s.sha256, hex::encode(Sha256::digest(&bytes)));
            assert_eq!(s.first_spectrum_id, next);
            next = s.last_spectrum_id + 1;
        }
        assert_eq!(next, 20_000);
        assert_eq!(shards.iter().map(|s| s.record.rows).sum::<u64>(), 20_000);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("train"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn row_groups_larger_than_half_a_shard_are_split_to_fill_it() {
        // 1000-row groups of ~16 kB against 20 kB shards: without splitting, every shard
        // would hold one row group and be filled to ~80% at best, ~40% after a short one.
        let dir = tempfile::tempdir().unwrap();
        let max = 20_000;
        let shards = run(dir.path(), 2, max, 5, 1_300, Vec::new());
        for (i, e) in shards.iter().enumerate() {
            assert!(e.record.bytes <= max);
            if i + 1 < shards.len() {
                assert!(e.record.bytes >= max / 2, "{:?}", e.record);
            }
        }
        assert_eq!(shards.iter().map(|s| s.record.rows).sum::<u64>(), 6_500);
    }

    #[test]
    fn writers_and_resume_points_do_not_change_a_byte() {
        let max = 30_000;
        let one = tempfile::tempdir().unwrap();
        let full = run(one.path(), 1, max, 6, 1_700, Vec::new());
        assert!(full.len() > 3);
        // Boundaries inside a row group (a piece starting off the 0 / 1000 group starts)
        // must occur for the test to matter.
        assert!(full
            .iter()
            .any(|e| e.resume.pieces.first().is_some_and(|p| p[0] % 1000 != 0)));
        let two = tempfile::tempdir().unwrap();
        assert_eq!(run(two.path(), 2, max, 6, 1_700, Vec::new()), full);
        let three = tempfile::tempdir().unwrap();
        assert_eq!(run(three.path(), 3, max, 6, 1_700, Vec::new()), full);
        // Resume after every shard: the shards written after it are the same bytes.
        for k in 0..full.len() {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir_all(dir.path().join("train")).unwrap();
            for e in &full[..=k] {
                fs::copy(
                    one.path().join(&e.record.path),
                    dir.path().join(&e.record.path),
                )
                .unwrap();
            }
            let resumed = run(dir.path(), 1 + k % 2, max, 6, 1_700, full[..=k].to_vec());
            assert_eq!(resumed, full, "resumed after shard {k}");
        }
    }

    #[test]
    fn a_bound_below_one_row_is_refused_without_leaving_files() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, enc, schema) = planner(dir.path(), 500, 2);
        let mut u = unit(&enc, &schema, 0, 2);
        u.batch = batch(&schema, 7..9);
        u.groups = vec![enc.encode(u.batch.clone()).unwrap()];
        let err = w.push_unit(u, &[], &Counts::default()).unwrap_err();
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

    #[test]
    fn a_dropped_planner_leaves_no_tmp_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, enc, schema) = planner(dir.path(), 1 << 20, 1);
        w.push_unit(unit(&enc, &schema, 0, 100), &[], &Counts::default())
            .unwrap();
        let done = w.shut_down();
        assert!(done.is_empty());
        let left: Vec<_> = fs::read_dir(dir.path().join("train"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
