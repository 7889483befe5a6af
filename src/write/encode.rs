//! Encoding: the writer properties of every shard, and batches encoded into in-memory
//! Parquet column chunks whose exact size is known before the shard planner places them.

use std::io;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowRowGroupWriterFactory};
use parquet::arrow::{add_encoded_arrow_schema_to_metadata, ArrowSchemaConverter};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesPtr};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::SchemaDescriptor;

use crate::config;
use crate::format::manifest::FORMAT_VERSION;
use crate::process::groups::Tiles;
use crate::write::error::SinkError;

/// The leaf types of a column of type `t`, in Parquet's column order: a struct's members',
/// a list's items, and a dictionary as one leaf.
fn arrow_leaves(t: &DataType) -> Vec<&DataType> {
    match t {
        DataType::Struct(fields) => fields
            .iter()
            .flat_map(|f| arrow_leaves(f.data_type()))
            .collect(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            arrow_leaves(f.data_type())
        }
        other => vec![other],
    }
}

/// Writer properties for every shard of a run: `compression` (`--compression`, default
/// zstd level 1), page statistics (truncated) and page indexes, dictionary encoding only for
/// the dictionary columns (`name`, enum labels), BYTE_STREAM_SPLIT for the m/z values, and the footer key-value metadata that makes
/// a shard self-describing (format version, tool version, config hash, Arrow schema).
pub fn writer_properties(
    schema: &SchemaRef,
    config_hash: &str,
    compression: config::Compression,
) -> WriterPropertiesPtr {
    let mut props = WriterProperties::builder()
        .set_compression(parquet_compression(compression))
        .set_dictionary_enabled(false)
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
    if let Ok(descr) = ArrowSchemaConverter::new().convert(schema) {
        // Dictionary encoding for the dictionary leaves: `name` and enum labels, also inside
        // structs and lists (Parquet's leaves come in the order of the Arrow leaves).
        let leaves = schema
            .fields()
            .iter()
            .flat_map(|f| arrow_leaves(f.data_type()));
        for (col, leaf) in descr.columns().iter().zip(leaves) {
            if matches!(leaf, DataType::Dictionary(..)) {
                props = props.set_column_dictionary_enabled(col.path().clone(), true);
            }
        }
        // BYTE_STREAM_SPLIT where it shrinks shards (measured on the 1M-spectrum gems
        // sample, zstd after it: m/z 661.3 → 603.6 MB, −8.7 %; intensities unchanged; the
        // scalar float columns 0.1 MB larger, so they keep PLAIN). Every reader of the
        // interop suite reads it.
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

/// The Parquet codec of a configured compression: `lz4` is `LZ4_RAW` (the Hadoop-framed
/// `LZ4` is deprecated), `none` is `UNCOMPRESSED`.
///
/// # Panics
///
/// On a zstd level outside parquet's `ZstdLevel` range (-131072..=22), which
/// [`Settings::resolve`](crate::config::Settings::resolve) and the value's parser never give
/// (they accept 1..=22).
pub(crate) fn parquet_compression(compression: config::Compression) -> Compression {
    match compression {
        config::Compression::Zstd(level) => Compression::ZSTD(
            ZstdLevel::try_new(level).expect("zstd level checked when the settings resolved"),
        ),
        config::Compression::Lz4 => Compression::LZ4_RAW,
        config::Compression::Snappy => Compression::SNAPPY,
        config::Compression::None => Compression::UNCOMPRESSED,
    }
}

/// Rows encoded into in-memory Parquet column chunks, ready to append as one row group.
pub(crate) struct EncodedBatch {
    /// The rows.
    pub(crate) rows: Tiles,
    /// Index of the first row in its row group as cut (a piece of a split group starts later).
    pub(crate) offset: usize,
    /// One chunk per leaf column.
    pub(crate) chunks: Vec<ArrowColumnChunk>,
    /// Exact bytes the chunks add to the file.
    pub(crate) bytes: u64,
    /// Upper bound of what the row group adds to the footer and page indexes.
    pub(crate) footer_bytes: u64,
    /// Whether `chunks`, `bytes` and `footer_bytes` are real; a dry run leaves most row groups
    /// unencoded and projects their sizes.
    pub(crate) encoded: bool,
}

impl EncodedBatch {
    /// `rows`, not encoded: no chunks, sizes 0 until projected.
    pub(crate) fn unencoded(rows: Tiles) -> EncodedBatch {
        EncodedBatch {
            rows,
            offset: 0,
            chunks: Vec::new(),
            bytes: 0,
            footer_bytes: 0,
            encoded: false,
        }
    }
}

/// Encodes batches of one schema into column chunks; one per worker.
pub(crate) struct Encoder {
    schema: SchemaRef,
    factory: ArrowRowGroupWriterFactory,
    /// Bytes of each leaf column's dotted path, repeated in every row group's metadata.
    leaf_paths: Vec<u64>,
    // The factory borrows nothing, but is created from a file writer; keep it alive.
    _writer: SerializedFileWriter<io::Sink>,
}

impl Encoder {
    /// An encoder for `schema` with `props`.
    pub(crate) fn new(
        schema: &SchemaRef,
        props: &WriterPropertiesPtr,
    ) -> Result<Encoder, SinkError> {
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

    /// Encode `rows` as one row group, feeding the column writers tile by tile.
    pub(crate) fn encode(&self, rows: Tiles) -> Result<EncodedBatch, SinkError> {
        let mut writers = self.factory.create_column_writers(0)?;
        for tile in rows.tiles() {
            let mut w = writers.iter_mut();
            for (array, field) in tile.columns().iter().zip(self.schema.fields()) {
                for leaf in compute_leaves(field, array)? {
                    w.next().expect("one writer per leaf").write(&leaf)?;
                }
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
            rows,
            offset: 0,
            chunks,
            bytes,
            footer_bytes,
            encoded: true,
        })
    }
}

/// The Parquet schema `schema` becomes under `props`.
pub(crate) fn parquet_schema(
    schema: &SchemaRef,
    props: &WriterPropertiesPtr,
) -> Result<SchemaDescriptor, SinkError> {
    Ok(ArrowSchemaConverter::new()
        .with_coerce_types(props.coerce_types())
        .convert(schema)?)
}

/// Upper bound of the serialised Parquet schema: every element's name plus its fields.
pub(crate) fn schema_bytes(descr: &SchemaDescriptor) -> u64 {
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
