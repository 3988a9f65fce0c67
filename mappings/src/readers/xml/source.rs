//! The bytes quick-xml reads: counted (offsets, newlines), kept per event, and clipped.
//!
//! quick-xml holds a whole event (a text node, a tag, a CDATA section) in memory before it
//! hands it over. To bound what one record can cost, [`Tracked`] lexes the bytes before
//! quick-xml sees them and **hides** the part of a data run beyond `max_record_bytes`: text
//! between tags, an attribute value, a CDATA section's content. The markup around a run is
//! never touched, so the document keeps its structure; the run's visible part is its
//! start, and a [`Clip`] records what was hidden (its bytes, its newlines) at the position
//! of the next visible byte, so that lines and lengths stay exact. The reader is told that
//! the event it just read was clipped, and quarantines the record that holds it.
//!
//! A comment, a processing instruction or a tag (outside its attribute values) longer than
//! the limit is not data and cannot be clipped without changing the document: it refuses
//! the file ([`Oversized`]).

use std::collections::VecDeque;
use std::io::{self, BufRead, Read};

use super::super::count_newlines;

/// Markup or a comment longer than the limit: the file is refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} starting at line {line} is longer than {max} bytes (max_record_bytes): it is \
     not data, so it cannot be set aside, and the file is refused"
)]
pub(super) struct Oversized {
    /// What is too long: "a comment", "a tag"…
    pub what: &'static str,
    /// The line it starts on.
    pub line: u64,
    /// The limit.
    pub max: usize,
}

/// Bytes hidden from quick-xml, accounted for when it reads past their place.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Clip {
    /// The visible offset of the first byte shown after them.
    at: u64,
    bytes: u64,
    newlines: u64,
    /// Bytes shown that the source does not have: the `]]` written anew to end a clipped
    /// CDATA section.
    added: u64,
}

/// A buffered reader for quick-xml that counts what it consumes, keeps the bytes of the
/// current event (cleared by the caller before each event) and clips long data runs.
pub(super) struct Tracked<R> {
    inner: R,
    input: Box<[u8]>,
    /// What quick-xml sees of the last input read, from `start` on.
    visible: Vec<u8>,
    start: usize,
    /// Visible bytes consumed so far.
    pub offset: u64,
    /// Newlines among the bytes consumed so far, hidden ones included.
    pub newlines: u64,
    /// Hidden bytes read past so far.
    pub hidden: u64,
    /// Bytes shown that the source does not have, read past so far.
    added: u64,
    /// Whether hidden bytes were read past since the caller last cleared it.
    pub clipped: bool,
    /// The visible bytes consumed since the caller last cleared it.
    pub event: Vec<u8>,
    lexer: Lexer,
    clips: VecDeque<Clip>,
}

impl<R> Tracked<R> {
    /// Wraps `inner`, nothing consumed yet; data runs past `max` bytes are clipped.
    pub fn new(inner: R, max: usize) -> Self {
        Tracked {
            inner,
            input: vec![0; 64 * 1024].into_boxed_slice(),
            visible: Vec::with_capacity(64 * 1024),
            start: 0,
            offset: 0,
            newlines: 0,
            hidden: 0,
            added: 0,
            clipped: false,
            event: Vec::new(),
            lexer: Lexer::new(max),
            clips: VecDeque::new(),
        }
    }

    /// The offset in the source (hidden bytes included) of the next byte to consume.
    pub fn source_offset(&self) -> u64 {
        self.offset + self.hidden - self.added
    }
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let count = available.len().min(out.len());
        out[..count].copy_from_slice(&available[..count]);
        self.consume(count);
        Ok(count)
    }
}

impl<R: Read> BufRead for Tracked<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.start >= self.visible.len() {
            let read = self.inner.read(&mut self.input)?;
            self.visible.clear();
            self.start = 0;
            if read == 0 {
                self.lexer.flush(self.offset, &mut self.clips);
                self.read_past_clips();
                break;
            }
            let base = self.offset;
            (self.lexer)
                .filter(
                    &self.input[..read],
                    base,
                    &mut self.visible,
                    &mut self.clips,
                )
                .map_err(|oversized| io::Error::new(io::ErrorKind::InvalidData, oversized))?;
        }
        Ok(&self.visible[self.start..])
    }

    fn consume(&mut self, amount: usize) {
        let end = (self.start + amount).min(self.visible.len());
        let consumed = &self.visible[self.start..end];
        self.newlines += count_newlines(consumed);
        self.event.extend_from_slice(consumed);
        self.offset += consumed.len() as u64;
        self.start = end;
        self.read_past_clips();
    }
}

impl<R> Tracked<R> {
    /// Accounts for the hidden bytes placed up to the consumed offset.
    fn read_past_clips(&mut self) {
        while let Some(clip) = self.clips.front().filter(|c| c.at <= self.offset) {
            self.newlines += clip.newlines;
            self.hidden += clip.bytes;
            self.added += clip.added;
            self.clipped = true;
            self.clips.pop_front();
        }
    }
}

/// Where the lexer is in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// Just after `<`.
    Open,
    /// After `<!` and this many bytes of `[CDATA[`.
    Bang(usize),
    /// After `<!-`.
    BangDash,
    /// In a comment, after this many `-` in a row.
    Comment(u8),
    /// In a CDATA section, after this many `]` in a row.
    CData(u8),
    /// In a processing instruction, just after a `?` or not.
    Instruction(bool),
    /// In a tag (or a declaration), in the attribute value opened by this quote or not.
    Tag(Option<u8>),
}

/// The lexer that decides what quick-xml sees (see the module documentation).
#[derive(Debug)]
struct Lexer {
    max: usize,
    state: State,
    /// Length of the current run: data (text, value, CDATA), comment or instruction.
    run: u64,
    /// Length of the current tag outside its attribute values.
    tag: u64,
    /// The line the current construct started on, for [`Oversized`].
    started: u64,
    /// Newlines in the source so far.
    line: u64,
    /// Hidden bytes not yet placed in the visible stream.
    pending: Option<Clip>,
}

const CDATA: &[u8] = b"[CDATA[";

impl Lexer {
    fn new(max: usize) -> Self {
        Lexer {
            max,
            state: State::Text,
            run: 0,
            tag: 0,
            started: 1,
            line: 0,
            pending: None,
        }
    }

    /// Appends to `out` what quick-xml sees of `input`, whose first visible byte will be at
    /// offset `base + out.len()`; hidden runs go to `clips`.
    fn filter(
        &mut self,
        input: &[u8],
        base: u64,
        out: &mut Vec<u8>,
        clips: &mut VecDeque<Clip>,
    ) -> Result<(), Oversized> {
        for &byte in input {
            match self.step(byte)? {
                Shown::Byte => {
                    self.place(base + out.len() as u64, clips);
                    out.push(byte);
                }
                Shown::Hidden => {
                    let pending = self.pending.get_or_insert_with(Clip::default);
                    pending.bytes += 1;
                    pending.newlines += u64::from(byte == b'\n');
                }
                Shown::CDataEnd => {
                    self.pending.get_or_insert_with(Clip::default).added += 2;
                    self.place(base + out.len() as u64, clips);
                    out.extend_from_slice(b"]]>");
                }
            }
            self.line += u64::from(byte == b'\n');
        }
        Ok(())
    }

    /// At the end of the input: hidden bytes not followed by any are placed at its end.
    fn flush(&mut self, end: u64, clips: &mut VecDeque<Clip>) {
        self.place(end, clips);
    }

    /// Places the pending hidden bytes before the visible byte at offset `at`.
    fn place(&mut self, at: u64, clips: &mut VecDeque<Clip>) {
        if let Some(clip) = self.pending.take() {
            clips.push_back(Clip { at, ..clip });
        }
    }

    /// Moves over one source byte and says how it is shown.
    fn step(&mut self, byte: u8) -> Result<Shown, Oversized> {
        let (next, shown) = match self.state {
            State::Text if byte == b'<' => {
                self.started = self.line + 1;
                self.tag = 0;
                (State::Open, Shown::Byte)
            }
            State::Text => (State::Text, self.data()),
            State::Open => {
                self.run = 0;
                let next = match byte {
                    b'!' => State::Bang(0),
                    b'?' => State::Instruction(false),
                    _ => State::Tag(None),
                };
                (next, Shown::Byte)
            }
            State::Bang(0) if byte == b'-' => (State::BangDash, Shown::Byte),
            State::Bang(matched) if byte == CDATA[matched] => match matched + 1 {
                done if done == CDATA.len() => (State::CData(0), Shown::Byte),
                more => (State::Bang(more), Shown::Byte),
            },
            State::BangDash if byte == b'-' => (State::Comment(0), Shown::Byte),
            State::Bang(_) | State::BangDash => (State::Tag(None), Shown::Byte),
            State::Comment(dashes) => {
                self.not_data("a comment")?;
                match byte {
                    b'>' if dashes >= 2 => (self.end_run(), Shown::Byte),
                    b'-' => (State::Comment(dashes.saturating_add(1)), Shown::Byte),
                    _ => (State::Comment(0), Shown::Byte),
                }
            }
            State::Instruction(question) => {
                self.not_data("a processing instruction")?;
                match byte {
                    b'>' if question => (self.end_run(), Shown::Byte),
                    _ => (State::Instruction(byte == b'?'), Shown::Byte),
                }
            }
            State::CData(brackets) => match byte {
                b'>' if brackets >= 2 => {
                    let clipped = self.run > self.max as u64;
                    self.run = 0;
                    match clipped {
                        true => (State::Text, Shown::CDataEnd),
                        false => (State::Text, Shown::Byte),
                    }
                }
                b']' => (State::CData(brackets.saturating_add(1)), self.data()),
                _ => (State::CData(0), self.data()),
            },
            State::Tag(None) => match byte {
                b'>' => (self.end_run(), Shown::Byte),
                b'"' | b'\'' => {
                    self.run = 0;
                    (State::Tag(Some(byte)), Shown::Byte)
                }
                _ => {
                    self.tag += 1;
                    if self.tag > self.max as u64 {
                        return Err(self.oversized("a tag"));
                    }
                    (State::Tag(None), Shown::Byte)
                }
            },
            State::Tag(Some(quote)) if byte == quote => (State::Tag(None), Shown::Byte),
            State::Tag(Some(quote)) => (State::Tag(Some(quote)), self.data()),
        };
        self.state = next;
        Ok(shown)
    }

    /// A byte of a data run: shown up to the limit, hidden past it.
    fn data(&mut self) -> Shown {
        self.run += 1;
        match self.run > self.max as u64 {
            true => Shown::Hidden,
            false => Shown::Byte,
        }
    }

    /// A byte of a comment or an instruction: refused past the limit.
    fn not_data(&mut self, what: &'static str) -> Result<(), Oversized> {
        self.run += 1;
        match self.run > self.max as u64 {
            true => Err(self.oversized(what)),
            false => Ok(()),
        }
    }

    /// The end of a construct: text follows.
    fn end_run(&mut self) -> State {
        self.run = 0;
        State::Text
    }

    fn oversized(&self, what: &'static str) -> Oversized {
        Oversized {
            what,
            line: self.started,
            max: self.max,
        }
    }
}

/// How a source byte is shown to quick-xml.
enum Shown {
    Byte,
    Hidden,
    /// The `>` that ends a clipped CDATA section: `]]>` is shown (its `]]` were hidden).
    CDataEnd,
}
