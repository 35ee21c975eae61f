//! [`Batch`]: the frames one connection's task gathers for its next write.
//!
//! Small frames are copied side by side into a buffer of the batch's own;
//! large ones, on a socket that takes vectored writes, are not copied at
//! all: the batch holds the frame every spoke shares, and one `writev`
//! hands the kernel the copied run and the shared frames together, in
//! order. A socket that does not take vectored writes gets every frame
//! copied, and one contiguous write.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;

use crate::hub::Outgoing;

/// A frame at least this long is written from where it is, not copied.
pub(crate) const SHARED_FRAME_MIN: usize = 1024;

/// At most this many slices in one vectored write.
pub(crate) const MAX_SLICES: usize = 64;

/// The most bytes, copied and shared together, gathered for one write.
pub(crate) const MAX_BYTES: usize = 256 * 1024;

#[derive(Default)]
pub(crate) struct Batch {
    /// The frames, in order.
    pieces: VecDeque<Piece>,
    /// The bytes of the copied frames.
    copied: Vec<u8>,
    /// How much of the first piece the socket has taken already.
    first_written: usize,
    /// Bytes not yet written.
    len: usize,
}

enum Piece {
    /// A run of copied frames: `copied[start..end]`.
    Copied { start: usize, end: usize },
    /// A frame shared with every spoke it goes to.
    Shared(Arc<Outgoing>),
}

impl Batch {
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes not yet written.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes copied into the batch since it was last empty, written or not:
    /// what the copies cost in memory.
    pub(crate) fn copied_len(&self) -> usize {
        self.copied.len()
    }

    /// The number of pieces: a write takes at most [`MAX_SLICES`] of them.
    pub(crate) fn pieces(&self) -> usize {
        self.pieces.len()
    }

    /// Appends a copy of `bytes`.
    pub(crate) fn copy(&mut self, bytes: &[u8]) {
        let start = self.copied.len();
        self.copied.extend_from_slice(bytes);
        let end = self.copied.len();
        self.len += bytes.len();
        match self.pieces.back_mut() {
            // Right after the run before it: the same run.
            Some(Piece::Copied { end: last, .. }) if *last == start => *last = end,
            _ => self.pieces.push_back(Piece::Copied { start, end }),
        }
    }

    /// Appends a frame shared with other spokes, without copying it.
    pub(crate) fn share(&mut self, out: Arc<Outgoing>) {
        self.len += out.frame.as_bytes().len();
        self.pieces.push_back(Piece::Shared(out));
    }

    /// What is left to write, if it is all in one piece (most writes at a
    /// modest rate): then no slices are set up for it.
    pub(crate) fn single(&self) -> Option<&[u8]> {
        match self.pieces.len() {
            1 => Some(&self.bytes(&self.pieces[0])[self.first_written..]),
            _ => None,
        }
    }

    /// Fills `slices` with what is left to write, in order; returns how many.
    pub(crate) fn slices<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (piece, slot) in self.pieces.iter().zip(slices.iter_mut()) {
            let bytes = self.bytes(piece);
            *slot = IoSlice::new(if n == 0 { &bytes[self.first_written..] } else { bytes });
            n += 1;
        }
        n
    }

    /// The socket took the first `written` bytes: they leave the batch.
    pub(crate) fn advance(&mut self, mut written: usize) {
        self.len -= written;
        while written > 0 {
            let Some(first) = self.pieces.front() else { break };
            let left = self.bytes(first).len() - self.first_written;
            if written < left {
                self.first_written += written;
                break;
            }
            written -= left;
            self.pieces.pop_front();
            self.first_written = 0;
        }
        if self.pieces.is_empty() {
            self.copied.clear();
        }
    }

    /// Forgets everything gathered.
    pub(crate) fn clear(&mut self) {
        self.pieces.clear();
        self.copied.clear();
        self.first_written = 0;
        self.len = 0;
    }

    fn bytes<'a>(&'a self, piece: &'a Piece) -> &'a [u8] {
        match piece {
            Piece::Copied { start, end } => &self.copied[*start..*end],
            Piece::Shared(out) => out.frame.as_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FrameKind;
    use crate::event::Event;

    fn shared(text: &str) -> Arc<Outgoing> {
        Arc::new(Outgoing::encode(&Event::new("t", text, ()), None, FrameKind::Text).unwrap())
    }

    /// What a socket that takes `chunk` bytes at a time receives.
    fn drain(batch: &mut Batch, chunk: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        while !batch.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let n = batch.slices(&mut slices);
            let mut taken = 0;
            for slice in &slices[..n] {
                let take = slice.len().min(chunk - taken);
                wire.extend_from_slice(&slice[..take]);
                taken += take;
                if taken == chunk {
                    break;
                }
            }
            batch.advance(taken);
        }
        wire
    }

    #[test]
    fn copied_and_shared_frames_go_out_in_order_whatever_the_socket_takes_at_a_time() {
        let (a, b) = (shared("a"), shared("b"));
        for chunk in [1, 3, 7, 64, 10_000] {
            let mut batch = Batch::default();
            batch.copy(b"12");
            batch.copy(b"34");
            batch.share(a.clone());
            batch.copy(b"5");
            batch.share(b.clone());
            assert_eq!(batch.pieces(), 4, "adjacent copies are one run");
            let mut expected = b"1234".to_vec();
            expected.extend_from_slice(a.frame.as_bytes());
            expected.extend_from_slice(b"5");
            expected.extend_from_slice(b.frame.as_bytes());
            assert_eq!(batch.len(), expected.len());
            assert_eq!(drain(&mut batch, chunk), expected, "{chunk} bytes at a time");
            assert_eq!((batch.len(), batch.pieces(), batch.copied_len()), (0, 0, 0));
        }
    }

    #[test]
    fn what_is_added_after_a_partial_write_follows_what_was_left() {
        let mut batch = Batch::default();
        batch.copy(b"abcdef");
        batch.advance(4);
        batch.copy(b"gh");
        assert_eq!(drain(&mut batch, 100), b"efgh");
    }
}
