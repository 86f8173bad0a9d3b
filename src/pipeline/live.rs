//! Live capture on a thread that only copies: packets leave libpcap's ring as fast
//! as the kernel fills it, into batches on a bounded queue, and the calling thread
//! decodes them (and writes records, or feeds the TUI). A slow decoder, output or
//! TUI fills the queue first, then the kernel ring (`-B`), and only then does the
//! kernel drop packets, which are counted and reported as before.

use crate::capture::{self, CaptureError, Flow, Hooks, LiveOptions, Packet, SourceStats};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::Duration;

/// A batch goes to the decoder once it holds this many packets or bytes, or when
/// libpcap has nothing more to give (so an idle link delays nothing).
const BATCH_PACKETS: usize = 512;
const BATCH_BYTES: usize = 256 << 10;
/// Batches waiting for the decoder, at most: 16 MiB of full ones (more with frames
/// near the snaplen), besides the kernel ring (-B, 32 MiB by default).
const QUEUE: usize = 64;

/// Packets copied out of the ring, and a drop report after them.
#[derive(Default)]
struct Copied {
    bytes: Vec<u8>,
    /// (time, link type, length of the copy, length on the wire)
    heads: Vec<(i64, i32, u32, u32)>,
    drops: Option<(u64, u64)>,
}

/// Captures on a thread of its own until `stop` is set or `on_packet` breaks; the
/// packets and drop reports (`hooks.on_drops`) reach this thread, in order, and
/// `hooks.on_idle` is called here whenever no batch came for 100 ms. The
/// figures are those of the packets handed to `on_packet`, with libpcap's final drop
/// count.
pub fn read_live(
    opts: LiveOptions<'_>,
    hooks: Hooks<'_>,
    stop: &AtomicBool,
    on_packet: &mut dyn FnMut(Packet<'_>) -> Flow,
) -> Result<SourceStats, CaptureError> {
    // The capture thread's own stop: set by a signal (`stop`) or by the consumer.
    let halt = AtomicBool::new(false);
    let (tx, rx) = sync_channel::<Copied>(QUEUE);
    let (back, empty) = std::sync::mpsc::channel::<Copied>();
    // Drop reports are the consumer's; opening (dropping privileges) the capture's.
    let Hooks {
        after_open,
        on_drops,
        mut on_idle,
    } = hooks;
    std::thread::scope(|s| {
        let halt = &halt;
        let capturing = s.spawn(move || {
            let cur = RefCell::new(Copied::default());
            // Hands the batch over; waits while the queue is full, so the ring (not
            // this process's memory) absorbs a slow decoder.
            let send = || {
                let mut cur = cur.borrow_mut();
                if cur.heads.is_empty() && cur.drops.is_none() {
                    return;
                }
                let next = empty.try_recv().unwrap_or_default();
                let _ = tx.send(std::mem::replace(&mut *cur, next));
            };
            let r = capture::read_live(
                opts,
                Hooks {
                    after_open,
                    on_drops: &mut |new, total| {
                        cur.borrow_mut().drops = Some((new, total));
                        send();
                    },
                    on_idle: Some(&mut || send()),
                },
                halt,
                &mut |p| {
                    let full = {
                        let mut c = cur.borrow_mut();
                        c.bytes.extend_from_slice(p.data);
                        c.heads
                            .push((p.ts_ns, p.linktype, p.data.len() as u32, p.orig_len));
                        c.heads.len() >= BATCH_PACKETS || c.bytes.len() >= BATCH_BYTES
                    };
                    if full {
                        send();
                    }
                    Flow::Continue(())
                },
            );
            send();
            r
        });
        let mut stats = SourceStats::default();
        // After a break, batches are still taken (and dropped) so the capture thread
        // never waits on a full queue while it stops.
        let mut broken = false;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(mut batch) => {
                    let mut at = 0;
                    for &(ts_ns, linktype, len, orig_len) in &batch.heads {
                        let data = &batch.bytes[at..at + len as usize];
                        at += len as usize;
                        if broken {
                            continue;
                        }
                        stats.packets += 1;
                        stats.bytes += u64::from(len);
                        let p = Packet {
                            ts_ns,
                            linktype,
                            data,
                            orig_len,
                        };
                        if on_packet(p).is_break() {
                            broken = true;
                            halt.store(true, Ordering::Relaxed);
                        }
                    }
                    if let (false, Some((new, total))) = (broken, batch.drops) {
                        on_drops(new, total);
                    }
                    batch.bytes.clear();
                    batch.heads.clear();
                    batch.drops = None;
                    let _ = back.send(batch);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let (false, Some(idle)) = (broken, on_idle.as_mut()) {
                        idle();
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if stop.load(Ordering::Relaxed) {
                halt.store(true, Ordering::Relaxed);
            }
        }
        let captured = capturing
            .join()
            .unwrap_or_else(|_| Err(CaptureError("capture thread panicked".into())))?;
        stats.dropped = captured.dropped;
        Ok(stats)
    })
}
