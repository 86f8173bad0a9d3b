//! Compressed capture files, recognised by their first bytes (not their name, so
//! that standard input and renamed files work): gzip (`.pcap.gz`, `.pcapng.gz`,
//! through flate2's pure-Rust backend) and zstd (`.zst`, through ruzstd, also pure
//! Rust: no C library to build or install). Both read as streams: a pipe is decoded
//! as it arrives, and nothing is held but the decoders' windows.

use std::io::{self, BufRead, BufReader, Read};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression whose magic number `head` starts with.
    pub(crate) fn of(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&GZIP_MAGIC) {
            Some(Compression::Gzip)
        } else if head.starts_with(&ZSTD_MAGIC) {
            Some(Compression::Zstd)
        } else {
            None
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The decompressed stream of `input`.
    pub(crate) fn decoder<'r, R: Read + Send + 'r>(
        self,
        input: R,
    ) -> io::Result<Box<dyn Read + Send + 'r>> {
        Ok(match self {
            // Multi-member: `cat a.gz b.gz` and pigz's output are one stream.
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
            Compression::Zstd => Box::new(ZstdFrames::new(BufReader::new(input))?),
        })
    }
}

/// Every zstd frame of a stream, one after the other (`zstd` writes one; `cat` of
/// two files, or pzstd, gives several).
struct ZstdFrames<R: Read> {
    frame: Option<ruzstd::decoding::StreamingDecoder<BufReader<R>, ruzstd::decoding::FrameDecoder>>,
}

fn zstd_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
}

impl<R: Read> ZstdFrames<R> {
    fn new(input: BufReader<R>) -> io::Result<Self> {
        let frame = ruzstd::decoding::StreamingDecoder::new(input).map_err(zstd_error)?;
        Ok(ZstdFrames { frame: Some(frame) })
    }
}

impl<R: Read> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(frame) = self.frame.as_mut() else {
                return Ok(0);
            };
            let n = frame.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // The frame is done: another may follow.
            let mut input = self.frame.take().expect("checked above").into_inner();
            if input.fill_buf()?.is_empty() {
                return Ok(0);
            }
            self.frame = Some(ruzstd::decoding::StreamingDecoder::new(input).map_err(zstd_error)?);
        }
    }
}
