//! The writer threads: each writes the shards the planner sends it, one after the other, as
//! `<shard>.tmp` through a SHA-256 hashing writer, then footer, size check, fsync, rename into
//! place and fsync of the directory, and reports each shard back.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use arrow::datatypes::SchemaRef;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use parquet::arrow::arrow_writer::ArrowColumnChunk;
use parquet::file::properties::WriterPropertiesPtr;
use parquet::file::writer::SerializedFileWriter;

use crate::format::paths::shard_name;
use crate::write::atomic::{sync_dir, temp_path};
use crate::write::direct::ShardFile;
use crate::write::encode::parquet_schema;
use crate::write::error::{io_err, SinkError};
use crate::write::hashing::HashingWriter;
use crate::write::stall::stall_point;

/// What the planner tells a writer thread.
pub(crate) enum WriterMsg {
    /// Start shard `index`.
    Open { index: usize },
    /// Append one row group to the open shard.
    RowGroup(Vec<ArrowColumnChunk>),
    /// Footer, fsync, rename; `planned` is the size before the footer the planner counted.
    Close { planned: u64 },
}

/// What a writer thread reports.
pub(crate) enum Completion {
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
pub(crate) struct WriterContext {
    /// The output root.
    pub(crate) root: PathBuf,
    pub(crate) split: String,
    pub(crate) schema: SchemaRef,
    pub(crate) props: WriterPropertiesPtr,
    pub(crate) max_bytes: u64,
}

/// The writer threads, shard `k` going to writer `k mod writers`, and their reports.
pub(crate) struct WriterPool {
    senders: Vec<Sender<WriterMsg>>,
    handles: Vec<JoinHandle<()>>,
    /// Reports of every writer.
    pub(crate) done: Receiver<Completion>,
}

impl WriterPool {
    /// Start `writers` (at least one) threads writing with `ctx`.
    pub(crate) fn start(ctx: WriterContext, writers: usize) -> Result<WriterPool, SinkError> {
        let ctx = Arc::new(ctx);
        let (done_tx, done) = unbounded();
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for w in 0..writers.max(1) {
            // Two messages of slack per writer (a row group is tens of MB at the default row
            // group size): the next row group is ready when one is written, memory stays
            // bounded.
            let (tx, rx) = bounded(2);
            let (ctx, done_tx) = (Arc::clone(&ctx), done_tx.clone());
            let root = ctx.root.clone();
            let handle = std::thread::Builder::new()
                .name(format!("msms-writer-{w}"))
                .spawn(move || ctx.run(rx, done_tx))
                .map_err(|e| SinkError::Io {
                    op: "starting a writer thread for",
                    path: root,
                    source: e,
                })?;
            senders.push(tx);
            handles.push(handle);
        }
        Ok(WriterPool {
            senders,
            handles,
            done,
        })
    }

    /// Hand `msg` about shard `index` to its writer; `false` if that writer has stopped.
    pub(crate) fn send(&self, index: usize, msg: WriterMsg) -> bool {
        self.senders[index % self.senders.len()].send(msg).is_ok()
    }

    /// Close the channels: each writer finishes what it was sent, drops an open shard and
    /// exits.
    pub(crate) fn close(&mut self) {
        self.senders.clear();
    }

    /// Wait for every writer thread to exit.
    pub(crate) fn join(&mut self) {
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// A shard being written by a writer thread.
struct WritingShard {
    index: usize,
    writer: SerializedFileWriter<HashingWriter<ShardFile>>,
    /// `<shard>.tmp`, and the shard's final path.
    paths: (PathBuf, PathBuf),
}

impl WritingShard {
    /// Drop an unfinished shard: it never stays behind, under any name.
    fn discard(self) {
        let (tmp, _) = self.paths.clone();
        drop(self);
        let _ = fs::remove_file(tmp);
    }
}

impl WriterContext {
    /// The writer thread: shards one after the other, as the planner sends them.
    fn run(&self, rx: Receiver<WriterMsg>, done: Sender<Completion>) {
        let mut open: Option<WritingShard> = None;
        for msg in rx {
            let report = match msg {
                WriterMsg::Open { index } => self.on_open(&mut open, index),
                WriterMsg::RowGroup(chunks) => self.on_row_group(&mut open, chunks),
                WriterMsg::Close { planned } => self.on_close(&mut open, planned),
            };
            if let Some(report) = report {
                let _ = done.send(report);
            }
        }
        // The planner stopped (finished, failed or interrupted): an open shard is dropped.
        if let Some(s) = open {
            s.discard();
        }
    }

    /// Start shard `index` (dropping one left open); a report only if that fails.
    fn on_open(&self, open: &mut Option<WritingShard>, index: usize) -> Option<Completion> {
        if let Some(s) = open.take() {
            s.discard();
        }
        match self.open(index) {
            Ok(s) => {
                *open = Some(s);
                None
            }
            Err(error) => Some(Completion::Failed { error }),
        }
    }

    /// Append a row group to the open shard; on failure the shard is dropped and reported.
    fn on_row_group(
        &self,
        open: &mut Option<WritingShard>,
        chunks: Vec<ArrowColumnChunk>,
    ) -> Option<Completion> {
        let s = open.as_mut()?;
        let e = self.append(s, chunks).err()?;
        let s = open.take().expect("open");
        let index = s.index;
        s.discard();
        let error = self.at(index, e);
        Some(Completion::Failed { error })
    }

    /// Finalise the open shard and report how that went.
    fn on_close(&self, open: &mut Option<WritingShard>, planned: u64) -> Option<Completion> {
        let s = open.take()?;
        let index = s.index;
        let tmp = s.paths.0.clone();
        Some(match self.close(s, planned) {
            Ok((sha256, bytes)) => Completion::Finalised {
                index,
                sha256,
                bytes,
            },
            Err(e) => {
                let _ = fs::remove_file(tmp);
                Completion::Failed {
                    error: self.at(index, e),
                }
            }
        })
    }

    fn open(&self, index: usize) -> Result<WritingShard, SinkError> {
        let final_path = self.root.join(shard_name(&self.split, index));
        let dir = final_path.parent().expect("shard path has a parent");
        fs::create_dir_all(dir).map_err(io_err("creating directory", dir))?;
        let tmp = temp_path(&final_path);
        let file = ShardFile::create(&tmp).map_err(io_err("creating", &tmp))?;
        let paths = (tmp, final_path);
        let descr = parquet_schema(&self.schema, &self.props)?;
        let writer = SerializedFileWriter::new(
            HashingWriter::new(file),
            descr.root_schema_ptr(),
            Arc::clone(&self.props),
        );
        let writer = match writer {
            Ok(w) => w,
            Err(e) => {
                let _ = fs::remove_file(&paths.0);
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
        match e {
            SinkError::Parquet(p) => {
                let tmp = temp_path(&self.root.join(shard_name(&self.split, index)));
                // parquet-rs reports write errors of the underlying file as `External`.
                SinkError::Io {
                    op: "writing",
                    path: tmp,
                    source: io::Error::other(p.to_string()),
                }
            }
            e => e,
        }
    }

    fn append(&self, s: &mut WritingShard, chunks: Vec<ArrowColumnChunk>) -> Result<(), SinkError> {
        let mut rg = s.writer.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut rg)?;
        }
        rg.close()?;
        stall_point(&|| format!("shard-bytes:{}:{}", s.index, s.writer.bytes_written()));
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
        let (file, sha256, bytes) = hashing.finish();
        if bytes > self.max_bytes {
            // The footer bound was wrong: refuse rather than break the contract silently.
            return Err(self.internal(
                s.index,
                format!("{bytes} bytes exceed --shard-size {}", self.max_bytes),
            ));
        }
        let (tmp, final_path) = &s.paths;
        let file = file.finish().map_err(io_err("writing", tmp))?;
        file.sync_all().map_err(io_err("fsync", tmp))?;
        drop(file);
        stall_point(&|| format!("shard-rename:{}", s.index));
        fs::rename(tmp, final_path).map_err(io_err("renaming into place", final_path))?;
        sync_dir(final_path.parent().expect("has parent"))?;
        stall_point(&|| format!("shard-renamed:{}", s.index));
        Ok((sha256, bytes))
    }

    fn internal(&self, index: usize, message: String) -> SinkError {
        SinkError::Io {
            op: "checking shard size of",
            path: PathBuf::from(shard_name(&self.split, index)),
            source: io::Error::other(format!("{message} (please report this)")),
        }
    }
}
