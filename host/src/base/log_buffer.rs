//! Where the log's lines go: appended to a buffer in memory, and written out by a thread of its
//! own every few milliseconds (at once when the buffer holds much), in as few writes as it can.
//! A line costs its caller a lock and a copy, never a system call or a wake-up of another
//! thread: the log line of every request is on the request's path. Nothing is dropped: past
//! [`MAX_HELD`] bytes a caller waits for the writer to make room, and the guard writes out
//! what is held when it is dropped.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// How long a line waits at most before it is written.
const EVERY: Duration = Duration::from_millis(10);
/// Held bytes that wake the writer before its time.
const WAKE_AT: usize = 256 << 10;
/// Held bytes past which callers wait for the writer.
const MAX_HELD: usize = 16 << 20;

struct Shared {
    held: Mutex<Held>,
    /// Wakes the writer early.
    full: Condvar,
    /// Wakes callers waiting for room.
    room: Condvar,
}

#[derive(Default)]
struct Held {
    bytes: Vec<u8>,
    closed: bool,
}

/// The writer side of the log, for `tracing_subscriber::fmt`'s `with_writer`.
#[derive(Clone)]
pub struct LogBuffer(Arc<Shared>);

/// Writes out what is held, and stops the writer, when dropped.
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LogBuffer {
    /// A buffer written to `out` by a thread named `name`.
    pub fn new(name: &str, mut out: impl Write + Send + 'static) -> (LogBuffer, LogGuard) {
        let shared = Arc::new(Shared { held: Mutex::new(Held::default()), full: Condvar::new(), room: Condvar::new() });
        let writer = shared.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut spare = Vec::new();
                loop {
                    let closed = {
                        let mut held = writer.held.lock();
                        // A write every EVERY at most, unless much is held: lines come in batches.
                        if held.bytes.len() < WAKE_AT && !held.closed {
                            writer.full.wait_for(&mut held, EVERY);
                        }
                        std::mem::swap(&mut held.bytes, &mut spare);
                        held.closed
                    };
                    writer.room.notify_all();
                    if !spare.is_empty() {
                        let _ = out.write_all(&spare).and_then(|()| out.flush());
                        spare.clear();
                    }
                    if closed {
                        let rest = std::mem::take(&mut writer.held.lock().bytes);
                        let _ = out.write_all(&rest).and_then(|()| out.flush());
                        return;
                    }
                }
            })
            .expect("a thread for the log");
        (LogBuffer(shared.clone()), LogGuard { shared, thread: Some(thread) })
    }
}

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        (&*self).write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Write for &LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut held = self.0.held.lock();
        while held.bytes.len() >= MAX_HELD && !held.closed {
            self.0.full.notify_one();
            self.0.room.wait(&mut held);
        }
        let before = held.bytes.len();
        held.bytes.extend_from_slice(bytes);
        if before < WAKE_AT && held.bytes.len() >= WAKE_AT {
            self.0.full.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.held.lock().closed = true;
        self.shared.full.notify_one();
        self.shared.room.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` whose bytes the test can read.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_of_every_thread_is_written_whole_and_in_its_threads_order() {
        let sink = Sink::default();
        let (buffer, guard) = LogBuffer::new("test-log", sink.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut buffer = buffer.clone();
                std::thread::spawn(move || {
                    for i in 0..50_000 {
                        buffer.write_all(format!("thread {t} line {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().clone()).unwrap();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let (t, i) = line.strip_prefix("thread ").and_then(|l| l.split_once(" line ")).unwrap();
            let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[t], "thread {t}'s lines out of order");
            next[t] += 1;
        }
        assert_eq!(next, [50_000; 4]);
    }

    #[test]
    fn a_line_is_written_within_the_interval_without_more_lines_behind_it() {
        let sink = Sink::default();
        let (mut buffer, _guard) = LogBuffer::new("test-log", sink.clone());
        buffer.write_all(b"alone\n").unwrap();
        let started = std::time::Instant::now();
        while sink.0.lock().is_empty() {
            assert!(started.elapsed() < Duration::from_secs(5), "the line was never written");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(sink.0.lock().as_slice(), b"alone\n");
    }
}
