// catoptc's native runtime for Rust. `catoptc compile --target rust` copies this file unchanged
// into every generated crate as src/runtime.rs: edit it here (native/rust/src/runtime.rs in the
// catoptc sources), never in a generated crate. `cargo test` in native/rust/ tests it on its own.

//! The plan-independent runtime of the generated crate (std only): CRC32C, the schema record
//! wire format, the delta-sync frame layout, and the ADMM coordinator.
//!
//! Everything here mirrors the Python reference (`catopt_dsl.wire`, `catopt_dsl.sync.frame`,
//! `catopt_dsl.solver.coordinator`) operation by operation, so that a plan solved here takes the
//! same iterations and ends with the same status as `catoptc solve`.

use std::fmt;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a record or frame was rejected: one variant per Python `WireError` subclass, named as the
/// class is without `Error` (`{:?}` prints that name), so all three languages report one set of
/// kinds (docs/protocol.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireErrorKind {
    /// The input ends before the structure it declares.
    Truncated,
    /// The CRC32C trailer does not match.
    Checksum,
    /// The input does not start with the expected magic bytes.
    BadMagic,
    /// A format version this codec does not speak.
    Version,
    /// A declared length disagrees with the input.
    Length,
    /// A frame's declared payload exceeds the receiver's cap (refused before anything is read).
    TooLarge,
    /// Structurally invalid or non-canonical content.
    Malformed,
    /// A frame whose message-type byte names no known message.
    UnknownMessageType,
    /// A record for another schema, or a field whose dtype/shape contradicts the schema.
    SchemaMismatch,
    /// A required field (one without a default) is absent.
    MissingField,
    /// A value cannot be encoded (wrong length, too large).
    Encode,
}

/// A codec error: its kind and a message naming the offending part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub kind: WireErrorKind,
    pub message: String,
}

impl WireError {
    pub fn new(kind: WireErrorKind, message: impl Into<String>) -> Self {
        WireError { kind, message: message.into() }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for WireError {}

// ---------------------------------------------------------------------------------------------
// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven
// ---------------------------------------------------------------------------------------------

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

/// Continue a CRC32C over `data` (start with `crc = 0`); the same convention as the `crc32c`
/// Python package's `crc32c(data, value=crc)`.
pub fn crc32c_update(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &byte in data {
        c = CRC_TABLE[((c ^ byte as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// CRC32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_update(0, data)
}

// ---------------------------------------------------------------------------------------------
// Embedded data (little-endian blobs -> values, bit-exact)
// ---------------------------------------------------------------------------------------------

/// Little-endian f64 data (an `include_bytes!` blob) as values, every bit kept.
pub fn blob_f64(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_bits(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])))
        .collect()
}

/// Little-endian i64 data as values.
pub fn blob_i64(bytes: &[u8]) -> Vec<i64> {
    bytes.chunks_exact(8).map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect()
}

/// Bool data (one byte each, 0 or 1) as values.
pub fn blob_bool(bytes: &[u8]) -> Vec<bool> {
    bytes.iter().map(|&b| b != 0).collect()
}

// ---------------------------------------------------------------------------------------------
// Schema records ("CATR"), see docs/protocol.md
// ---------------------------------------------------------------------------------------------

pub const RECORD_MAGIC: [u8; 4] = *b"CATR";
pub const RECORD_FORMAT_VERSION: u8 = 1;
/// The smallest possible record: empty name, no fields.
pub const MIN_RECORD_SIZE: usize = 8 + 6 + 4;
pub const DT_F64: u8 = 1;
pub const DT_I64: u8 = 2;
pub const DT_BOOL: u8 = 3;
pub const DT_UTF8: u8 = 4;
/// The most dims an array may have (numpy's limit: no encoder writes more).
pub const MAX_NDIM: usize = 64;

fn item_size(code: u8) -> Option<usize> {
    match code {
        DT_F64 | DT_I64 => Some(8),
        DT_BOOL | DT_UTF8 => Some(1),
        _ => None,
    }
}

/// Builds one record: header, then fields in declaration order, then the CRC trailer.
pub struct RecordWriter {
    buf: Vec<u8>,
}

impl RecordWriter {
    /// Start a record of schema `name` version `version` carrying `field_count` fields.
    pub fn new(name: &str, version: u32, field_count: u16) -> Result<Self, WireError> {
        let name_len = u16::try_from(name.len())
            .map_err(|_| WireError::new(WireErrorKind::Encode, "schema name longer than 65535 bytes"))?;
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&RECORD_MAGIC);
        buf.push(RECORD_FORMAT_VERSION);
        buf.push(0);
        buf.extend_from_slice(&name_len.to_le_bytes());
        buf.extend_from_slice(name.as_bytes());
        buf.extend_from_slice(&version.to_le_bytes());
        buf.extend_from_slice(&field_count.to_le_bytes());
        Ok(RecordWriter { buf })
    }

    fn field_header(&mut self, index: u16, code: u8, dims: &[u32], len: usize, what: &str) -> Result<(), WireError> {
        let want: usize = dims.iter().map(|&d| d as usize).product();
        if len != want {
            return Err(WireError::new(
                WireErrorKind::Encode,
                format!("{}: {} values, the schema's shape {:?} needs {}", what, len, dims, want),
            ));
        }
        self.buf.extend_from_slice(&index.to_le_bytes());
        self.buf.push(code);
        self.buf.push(dims.len() as u8);
        for d in dims {
            self.buf.extend_from_slice(&d.to_le_bytes());
        }
        Ok(())
    }

    /// Append a float field (`dims` empty for a scalar).
    pub fn f64s(&mut self, index: u16, dims: &[u32], data: &[f64], what: &str) -> Result<(), WireError> {
        self.field_header(index, DT_F64, dims, data.len(), what)?;
        for v in data {
            self.buf.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        Ok(())
    }

    /// Append an int field.
    pub fn i64s(&mut self, index: u16, dims: &[u32], data: &[i64], what: &str) -> Result<(), WireError> {
        self.field_header(index, DT_I64, dims, data.len(), what)?;
        for v in data {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        Ok(())
    }

    /// Append a bool field (one byte each, exactly 0 or 1).
    pub fn bools(&mut self, index: u16, dims: &[u32], data: &[bool], what: &str) -> Result<(), WireError> {
        self.field_header(index, DT_BOOL, dims, data.len(), what)?;
        for &v in data {
            self.buf.push(u8::from(v));
        }
        Ok(())
    }

    /// Append the CRC32C trailer and return the record.
    pub fn finish(mut self) -> Vec<u8> {
        let crc = crc32c(&self.buf);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf
    }
}

/// Bounds-checked cursor: every overrun is a `Truncated` error, never a panic.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], WireError> {
        match self.pos.checked_add(n) {
            Some(stop) if stop <= self.end => {
                let out = &self.buf[self.pos..stop];
                self.pos = stop;
                Ok(out)
            }
            _ => Err(WireError::new(
                WireErrorKind::Truncated,
                format!("{}: needs {} bytes at offset {}, only {} left", what, n, self.pos, self.end - self.pos),
            )),
        }
    }

    fn u8(&mut self, what: &str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, WireError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, WireError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64, WireError> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }
}

/// One field of a parsed record: dtype code, dims and the raw little-endian bytes.
#[derive(Debug, Clone, Copy)]
pub struct RawField<'a> {
    pub code: u8,
    pub dims: &'a [u8],
    pub ndim: usize,
    pub data: &'a [u8],
}

impl RawField<'_> {
    fn dims(&self) -> Vec<u32> {
        self.dims.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    }
}

/// A structurally valid record (CRC and schema name checked) whose fields are not decoded yet.
pub struct RecordView<'a> {
    pub name: &'a str,
    pub version: u32,
    fields: Vec<(u16, RawField<'a>)>,
}

/// Refuse a shape that describes more than `i64::MAX` bytes with its zero dims counted as 1
/// (checked before its data is read): no encoder writes one, and numpy cannot represent it.
fn check_shape(code: u8, dims: &[u8], what: &str) -> Result<(), WireError> {
    let mut n = item_size(code).unwrap_or(1) as u64;
    for c in dims.chunks_exact(4) {
        let d = u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])).max(1);
        n = match n.checked_mul(d) {
            Some(v) if v <= i64::MAX as u64 => v,
            _ => return Err(WireError::new(WireErrorKind::Malformed, format!("{}: shape is too large", what))),
        };
    }
    Ok(())
}

fn check_ndim(ndim: usize, what: &str) -> Result<(), WireError> {
    if ndim > MAX_NDIM {
        return Err(WireError::new(
            WireErrorKind::Malformed,
            format!("{}: {} dims, at most {} are allowed", what, ndim, MAX_NDIM),
        ));
    }
    Ok(())
}

fn check_bools(raw: &[u8], what: &str) -> Result<(), WireError> {
    if raw.iter().any(|&b| b > 1) {
        return Err(WireError::new(WireErrorKind::Malformed, format!("{}: bool byte other than 0 or 1", what)));
    }
    Ok(())
}

fn data_size(code: u8, dims: &[u8]) -> Option<usize> {
    let mut n = item_size(code)?;
    for c in dims.chunks_exact(4) {
        n = n.checked_mul(u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)?;
    }
    Some(n)
}

/// Parse a record for a reader of schema `schema_name` version `schema_version` that knows `known`
/// fields; the checks and their order follow `catopt_dsl.wire.record.decode_record`.
pub fn parse_record<'a>(
    data: &'a [u8],
    schema_name: &str,
    schema_version: u32,
    known: usize,
) -> Result<RecordView<'a>, WireError> {
    let n = data.len();
    if n >= 4 && data[..4] != RECORD_MAGIC {
        return Err(WireError::new(WireErrorKind::BadMagic, "not a schema record (bad magic)"));
    }
    if n < MIN_RECORD_SIZE {
        return Err(WireError::new(
            WireErrorKind::Truncated,
            format!("record of {} bytes is shorter than the minimum {}", n, MIN_RECORD_SIZE),
        ));
    }
    // Structure first (against everything but the trailer), then the CRC: a cut record is
    // reported as truncated, not as a checksum mismatch.
    let mut rd = Cursor { buf: data, pos: 4, end: n - 4 };
    let version = rd.u8("record header")?;
    if version != RECORD_FORMAT_VERSION {
        return Err(WireError::new(
            WireErrorKind::Version,
            format!("record format version {} is not supported (expected {})", version, RECORD_FORMAT_VERSION),
        ));
    }
    let flags = rd.u8("record header")?;
    if flags != 0 {
        return Err(WireError::new(
            WireErrorKind::Malformed,
            format!("record flags {:#x}: no flags are defined", flags),
        ));
    }
    let name_len = rd.u16("record header")? as usize;
    let name = std::str::from_utf8(rd.take(name_len, "schema name")?)
        .map_err(|_| WireError::new(WireErrorKind::Malformed, "schema name: not valid UTF-8"))?;
    let record_version = rd.u32("record header")?;
    let count = rd.u16("record header")?;
    let mut fields = Vec::new();
    for expected in 0..count {
        let index = rd.u16("field header")?;
        let code = rd.u8("field header")?;
        let ndim = rd.u8("field header")? as usize;
        if index != expected {
            return Err(WireError::new(
                WireErrorKind::Malformed,
                format!(
                    "field index {} where {} belongs: a record holds fields 0, 1, 2, ... in order",
                    index, expected
                ),
            ));
        }
        if item_size(code).is_none() || code == DT_UTF8 {
            return Err(WireError::new(
                WireErrorKind::Malformed,
                format!("field {}: unknown dtype code {}", index, code),
            ));
        }
        let what = format!("field {}", index);
        check_ndim(ndim, &what)?;
        let dims = rd.take(4 * ndim, &format!("field {} dims", index))?;
        check_shape(code, dims, &what)?;
        let size = data_size(code, dims).unwrap_or(usize::MAX);
        let raw = rd.take(size, &format!("field {} data", index))?;
        if code == DT_BOOL {
            check_bools(raw, &what)?;
        }
        if (index as usize) < known {
            fields.push((index, RawField { code, dims, ndim, data: raw }));
        } // else: appended by a newer writer, skipped (its size is known from the dims)
    }
    if rd.pos != rd.end {
        return Err(WireError::new(
            WireErrorKind::Length,
            format!("{} unexpected bytes before the checksum", rd.end - rd.pos),
        ));
    }
    let stored = u32::from_le_bytes([data[n - 4], data[n - 3], data[n - 2], data[n - 1]]);
    if crc32c(&data[..n - 4]) != stored {
        return Err(WireError::new(WireErrorKind::Checksum, "record CRC32C mismatch"));
    }
    if name != schema_name {
        return Err(WireError::new(
            WireErrorKind::SchemaMismatch,
            format!("record is for schema {:?}, not {:?}", name, schema_name),
        ));
    }
    // A writer of the reader's own version wrote exactly the reader's fields (the canonical form);
    // across versions a reader defaults the fields it lacks and skips the ones it does not know.
    let count = usize::from(count);
    if record_version == schema_version && count != known {
        return Err(WireError::new(
            WireErrorKind::SchemaMismatch,
            format!(
                "a v{} record of {:?} holds {} fields, but v{} has {}: a writer of the reader's own version writes exactly its fields",
                record_version, schema_name, count, schema_version, known
            ),
        ));
    }
    Ok(RecordView { name, version: record_version, fields })
}

impl<'a> RecordView<'a> {
    fn raw(&self, index: u16, code: u8, dims: &[u32], what: &str) -> Result<Option<RawField<'a>>, WireError> {
        let Some(&(_, raw)) = self.fields.iter().find(|(i, _)| *i == index) else {
            return Ok(None);
        };
        if raw.code != code || raw.ndim != dims.len() || raw.dims() != dims {
            return Err(WireError::new(
                WireErrorKind::SchemaMismatch,
                format!(
                    "{}: record has dtype {} shape {:?}, schema says dtype {} shape {:?}",
                    what,
                    raw.code,
                    raw.dims(),
                    code,
                    dims
                ),
            ));
        }
        Ok(Some(raw))
    }

    /// Float field `index` (None when the writer did not send it).
    pub fn f64s(&self, index: u16, dims: &[u32], what: &str) -> Result<Option<Vec<f64>>, WireError> {
        Ok(self.raw(index, DT_F64, dims, what)?.map(|r| blob_f64(r.data)))
    }

    /// Int field `index`.
    pub fn i64s(&self, index: u16, dims: &[u32], what: &str) -> Result<Option<Vec<i64>>, WireError> {
        Ok(self.raw(index, DT_I64, dims, what)?.map(|r| blob_i64(r.data)))
    }

    /// Bool field `index` (its bytes were checked to be 0 or 1 by `parse_record`).
    pub fn bools(&self, index: u16, dims: &[u32], what: &str) -> Result<Option<Vec<bool>>, WireError> {
        Ok(self.raw(index, DT_BOOL, dims, what)?.map(|r| blob_bool(r.data)))
    }
}

/// The value of a decoded field, or the error for a required field the record lacks.
pub fn required<T>(value: Option<T>, what: &str) -> Result<T, WireError> {
    value.ok_or_else(|| {
        WireError::new(WireErrorKind::MissingField, format!("{}: required field absent from the record", what))
    })
}

/// The single element of a scalar field's values; None unless there is exactly one (a decoded
/// scalar field always has one, but the values may come from anywhere: this never panics).
#[must_use]
pub fn scalar<T: Copy>(values: &[T]) -> Option<T> {
    match values {
        [v] => Some(*v),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Delta-sync frames ("CATF"), the layout of catopt_dsl.sync.frame
// ---------------------------------------------------------------------------------------------

pub const FRAME_MAGIC: [u8; 4] = *b"CATF";
pub const PROTOCOL_VERSION: u8 = 1;
pub const FRAME_HEADER_SIZE: usize = 80;
/// Message types 1..=7: Join, Leave, Delta, Broadcast, Ack, Snapshot, SnapshotRequest.
pub const MAX_MSG_TYPE: u8 = 7;
/// Default cap on a frame's declared payload length.
pub const DEFAULT_MAX_PAYLOAD: usize = 256 * 1024 * 1024;

/// The fixed 80-byte frame header (everything but magic and protocol version).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FrameHeader {
    pub msg_type: u8,
    pub spec_hash: [u8; 32],
    pub schema_id: u32,
    pub schema_version: u32,
    pub sender: u32,
    pub epoch: u64,
    pub seq: u64,
    pub round: u64,
}

/// One payload entry: a named array (dtype code, dims, raw little-endian data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameEntry {
    pub name: String,
    pub code: u8,
    pub dims: Vec<u32>,
    pub data: Vec<u8>,
}

impl FrameEntry {
    /// A float entry (`dims` empty for a scalar).
    pub fn f64s(name: &str, dims: &[u32], values: &[f64]) -> Self {
        FrameEntry {
            name: name.to_string(),
            code: DT_F64,
            dims: dims.to_vec(),
            data: values.iter().flat_map(|v| v.to_bits().to_le_bytes()).collect(),
        }
    }

    /// The entry's floats (None unless it is a float entry).
    pub fn as_f64s(&self) -> Option<Vec<f64>> {
        (self.code == DT_F64).then(|| blob_f64(&self.data))
    }
}

/// A decoded frame: header plus entries sorted by the UTF-8 bytes of their names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    pub header: FrameHeader,
    pub entries: Vec<FrameEntry>,
}

impl Frame {
    /// Canonical bytes: entries sorted by name, zero padding to 8-byte data alignment.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut entries: Vec<&FrameEntry> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        for pair in entries.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(WireError::new(WireErrorKind::Encode, format!("duplicate entry {:?}", pair[0].name)));
            }
        }
        if !(1..=MAX_MSG_TYPE).contains(&self.header.msg_type) {
            return Err(WireError::new(
                WireErrorKind::Encode,
                format!("unknown message type {}", self.header.msg_type),
            ));
        }
        let mut out = vec![0u8; FRAME_HEADER_SIZE];
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for e in entries {
            let name_len = u16::try_from(e.name.len())
                .ok()
                .filter(|&l| l > 0)
                .ok_or_else(|| WireError::new(WireErrorKind::Encode, "entry names must be 1..65535 bytes"))?;
            let want = data_size(e.code, &e.dims.iter().flat_map(|d| d.to_le_bytes()).collect::<Vec<u8>>());
            if want != Some(e.data.len()) || e.dims.len() > MAX_NDIM {
                return Err(WireError::new(
                    WireErrorKind::Encode,
                    format!("entry {:?}: data does not match its dims", e.name),
                ));
            }
            out.extend_from_slice(&name_len.to_le_bytes());
            out.extend_from_slice(e.name.as_bytes());
            out.push(e.code);
            out.push(e.dims.len() as u8);
            for d in &e.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            while out.len() % 8 != 0 {
                out.push(0);
            }
            out.extend_from_slice(&e.data);
        }
        let payload = out.len() - FRAME_HEADER_SIZE;
        let h = &self.header;
        let mut head = Vec::with_capacity(FRAME_HEADER_SIZE);
        head.extend_from_slice(&FRAME_MAGIC);
        head.push(PROTOCOL_VERSION);
        head.push(h.msg_type);
        head.extend_from_slice(&0u16.to_le_bytes());
        head.extend_from_slice(&h.spec_hash);
        head.extend_from_slice(&h.schema_id.to_le_bytes());
        head.extend_from_slice(&h.schema_version.to_le_bytes());
        head.extend_from_slice(&h.sender.to_le_bytes());
        head.extend_from_slice(&(payload as u32).to_le_bytes());
        head.extend_from_slice(&h.epoch.to_le_bytes());
        head.extend_from_slice(&h.seq.to_le_bytes());
        head.extend_from_slice(&h.round.to_le_bytes());
        out[..FRAME_HEADER_SIZE].copy_from_slice(&head);
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Decode one frame; anything the encoder could not have produced is an error.
    pub fn decode(data: &[u8], max_payload: usize) -> Result<Frame, WireError> {
        let n = data.len();
        if n >= 4 && data[..4] != FRAME_MAGIC {
            return Err(WireError::new(WireErrorKind::BadMagic, "not a frame (bad magic)"));
        }
        if n < 5 {
            return Err(WireError::new(
                WireErrorKind::Truncated,
                format!("frame of {} bytes is shorter than its header", n),
            ));
        }
        if data[4] != PROTOCOL_VERSION {
            return Err(WireError::new(
                WireErrorKind::Version,
                format!("protocol version {} is not supported", data[4]),
            ));
        }
        if n < FRAME_HEADER_SIZE {
            return Err(WireError::new(
                WireErrorKind::Truncated,
                format!("frame of {} bytes is shorter than its header", n),
            ));
        }
        let mut rd = Cursor { buf: data, pos: 5, end: FRAME_HEADER_SIZE };
        let msg_type = rd.u8("frame header")?;
        let flags = rd.u16("frame header")?;
        let mut spec_hash = [0u8; 32];
        spec_hash.copy_from_slice(rd.take(32, "frame header")?);
        let schema_id = rd.u32("frame header")?;
        let schema_version = rd.u32("frame header")?;
        let sender = rd.u32("frame header")?;
        let payload = rd.u32("frame header")? as usize;
        let epoch = rd.u64("frame header")?;
        let seq = rd.u64("frame header")?;
        let round = rd.u64("frame header")?;
        if !(1..=MAX_MSG_TYPE).contains(&msg_type) {
            return Err(WireError::new(
                WireErrorKind::UnknownMessageType,
                format!("unknown message type {}", msg_type),
            ));
        }
        if flags != 0 {
            return Err(WireError::new(
                WireErrorKind::Malformed,
                format!("frame flags {:#x}: none are defined", flags),
            ));
        }
        if payload > max_payload {
            return Err(WireError::new(
                WireErrorKind::TooLarge,
                format!("payload of {} bytes exceeds the cap {}", payload, max_payload),
            ));
        }
        let total = FRAME_HEADER_SIZE + payload + 4;
        if n < total {
            return Err(WireError::new(WireErrorKind::Truncated, format!("frame declares {} bytes, got {}", total, n)));
        }
        if n > total {
            return Err(WireError::new(WireErrorKind::Length, format!("{} trailing bytes after the frame", n - total)));
        }
        let stored = u32::from_le_bytes([data[n - 4], data[n - 3], data[n - 2], data[n - 1]]);
        if crc32c(&data[..n - 4]) != stored {
            return Err(WireError::new(WireErrorKind::Checksum, "frame CRC32C mismatch"));
        }
        // The CRC matched, so the frame is intact: an overrun inside it is a malformed payload.
        let entries = decode_payload(&data[..n - 4]).map_err(|e| match e.kind {
            WireErrorKind::Truncated => WireError::new(WireErrorKind::Malformed, e.message),
            _ => e,
        })?;
        let header = FrameHeader { msg_type, spec_hash, schema_id, schema_version, sender, epoch, seq, round };
        Ok(Frame { header, entries })
    }
}

/// The entries of a frame whose header and CRC passed (`data` is the frame without its trailer).
fn decode_payload(data: &[u8]) -> Result<Vec<FrameEntry>, WireError> {
    let mut rd = Cursor { buf: data, pos: FRAME_HEADER_SIZE, end: data.len() };
    let count = rd.u32("payload entry count")? as usize;
    if count.saturating_mul(5) > rd.end - rd.pos {
        return Err(WireError::new(WireErrorKind::Malformed, "too many entries for the payload length"));
    }
    let mut entries: Vec<FrameEntry> = Vec::new();
    for _ in 0..count {
        let name_len = rd.u16("entry name length")? as usize;
        if name_len == 0 {
            return Err(WireError::new(WireErrorKind::Malformed, "empty payload entry name"));
        }
        let name = std::str::from_utf8(rd.take(name_len, "entry name")?)
            .map_err(|_| WireError::new(WireErrorKind::Malformed, "entry name: not valid UTF-8"))?
            .to_string();
        if let Some(prev) = entries.last() {
            if prev.name.as_bytes() >= name.as_bytes() {
                return Err(WireError::new(WireErrorKind::Malformed, "entries are not sorted by name"));
            }
        }
        let code = rd.u8("entry dtype")?;
        let ndim = rd.u8("entry ndim")? as usize;
        if item_size(code).is_none() {
            return Err(WireError::new(
                WireErrorKind::Malformed,
                format!("entry {:?}: unknown dtype code {}", name, code),
            ));
        }
        let what = format!("entry {:?}", name);
        check_ndim(ndim, &what)?;
        let dims_raw = rd.take(4 * ndim, "entry dims")?;
        check_shape(code, dims_raw, &what)?;
        let pad = (8 - rd.pos % 8) % 8;
        if rd.take(pad, "entry padding")?.iter().any(|&b| b != 0) {
            return Err(WireError::new(WireErrorKind::Malformed, "non-zero padding"));
        }
        let size = data_size(code, dims_raw).unwrap_or(usize::MAX);
        let raw = rd.take(size, "entry data")?;
        if code == DT_BOOL {
            check_bools(raw, &what)?;
        }
        if code == DT_UTF8 && (ndim != 1 || std::str::from_utf8(raw).is_err()) {
            return Err(WireError::new(WireErrorKind::Malformed, "text entry is not 1-d UTF-8"));
        }
        let dims = dims_raw.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        entries.push(FrameEntry { name, code, dims, data: raw.to_vec() });
    }
    if rd.pos != rd.end {
        return Err(WireError::new(WireErrorKind::Malformed, "bytes after the last payload entry"));
    }
    Ok(entries)
}

// ---------------------------------------------------------------------------------------------
// The plan structure the coordinator needs
// ---------------------------------------------------------------------------------------------

/// A coupling limit's sense: `sum(terms) <= rhs`, `>= rhs` or `== rhs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sense {
    Le,
    Ge,
    Eq,
}

/// The closed-form global term of one shared var (`c * sum_squares(v)` or `c * norm1(v)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SharedTerm {
    Free,
    SumSquares(f64),
    Norm1(f64),
}

/// One var of a SharedVariables block (its slice of the block's stacked z).
#[derive(Debug, Clone, PartialEq)]
pub struct SharedVarSpec {
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
    pub term: SharedTerm,
}

/// A SharedVariables block; `closed_form` is false when its z-update needs a user `SharedProx`.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedSpec {
    pub name: &'static str,
    pub n: usize,
    pub vars: Vec<SharedVarSpec>,
    pub closed_form: bool,
}

/// One row block of an object: a consensus link `x[x_offset..+size] == z_shared[var]` or a
/// coupling term `B x + b` (B row-major, `rows x n`).
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Consensus { shared: usize, var: usize, x_offset: usize, size: usize },
    Coupling { coupling: usize, rows: usize, b_mat: Vec<f64>, b_vec: Vec<f64> },
}

impl Block {
    /// Number of rows this block contributes.
    pub fn rows(&self) -> usize {
        match self {
            Block::Consensus { size, .. } => *size,
            Block::Coupling { rows, .. } => *rows,
        }
    }
}

/// One LocalProblem as the coordinator sees it: its stacked size and its row blocks, in the
/// order of `catopt_dsl.solver.layout` (consensus links, then coupling terms).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectSpec {
    pub name: &'static str,
    pub n: usize,
    pub blocks: Vec<Block>,
}

impl ObjectSpec {
    /// Row count r (the length of the centre vector).
    pub fn rows(&self) -> usize {
        self.blocks.iter().map(Block::rows).sum()
    }

    /// `M x + e` (all rows of this object).
    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.rows());
        for b in &self.blocks {
            match b {
                Block::Consensus { x_offset, size, .. } => out.extend_from_slice(&x[*x_offset..*x_offset + *size]),
                Block::Coupling { rows, b_mat, b_vec, .. } => {
                    for r in 0..*rows {
                        let row = &b_mat[r * self.n..(r + 1) * self.n];
                        let dot: f64 = row.iter().zip(x).map(|(m, v)| m * v).sum();
                        out.push(dot + b_vec[r]);
                    }
                }
            }
        }
        out
    }

    /// `M' y` for a row vector `y`.
    pub fn apply_t(&self, y: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.n];
        let mut row0 = 0;
        for b in &self.blocks {
            match b {
                Block::Consensus { x_offset, size, .. } => {
                    for j in 0..*size {
                        out[x_offset + j] += y[row0 + j];
                    }
                }
                Block::Coupling { rows, b_mat, .. } => {
                    for r in 0..*rows {
                        let yr = y[row0 + r];
                        for (o, m) in out.iter_mut().zip(&b_mat[r * self.n..(r + 1) * self.n]) {
                            *o += m * yr;
                        }
                    }
                }
            }
            row0 += b.rows();
        }
        out
    }

    /// The dense `M` (row-major, `rows x n`) and `e`.
    pub fn dense(&self) -> (Vec<f64>, Vec<f64>) {
        let r = self.rows();
        let mut m = vec![0.0; r * self.n];
        let mut e = vec![0.0; r];
        let mut row0 = 0;
        for b in &self.blocks {
            match b {
                Block::Consensus { x_offset, size, .. } => {
                    for j in 0..*size {
                        m[(row0 + j) * self.n + x_offset + j] = 1.0;
                    }
                }
                Block::Coupling { rows, b_mat, b_vec, .. } => {
                    m[row0 * self.n..(row0 + rows) * self.n].copy_from_slice(b_mat);
                    e[row0..row0 + rows].copy_from_slice(b_vec);
                }
            }
            row0 += b.rows();
        }
        (m, e)
    }
}

/// An object's row map `M x + e` as compressed rows: the nonzeros of its blocks in row order,
/// built once. The per-iteration products use it (no allocation, and the zeros of a dense coupling
/// block -- an identity, say -- cost nothing); they add in the order `ObjectSpec`'s would.
#[derive(Debug, Clone, Default)]
struct RowMap {
    n: usize,
    // row k's entries: start[k] .. start[k + 1]
    start: Vec<usize>,
    col: Vec<usize>,
    val: Vec<f64>,
    e: Vec<f64>,
    // Every row picks one column with weight 1 and no column twice (consensus links, identity
    // couplings): then max_j |(M' y)_j| is max_k |y_k|, no product needed.
    selection: bool,
}

impl RowMap {
    fn new(object: &ObjectSpec) -> RowMap {
        let n = object.n;
        let mut m = RowMap { n, start: vec![0], ..RowMap::default() };
        for b in &object.blocks {
            match b {
                Block::Consensus { x_offset, size, .. } => {
                    for j in 0..*size {
                        m.col.push(x_offset + j);
                        m.val.push(1.0);
                        m.e.push(0.0);
                        m.start.push(m.col.len());
                    }
                }
                Block::Coupling { rows, b_mat, b_vec, .. } => {
                    for r in 0..*rows {
                        for j in 0..n {
                            let v = b_mat[r * n + j];
                            if v != 0.0 {
                                m.col.push(j);
                                m.val.push(v);
                            }
                        }
                        m.e.push(b_vec[r]);
                        m.start.push(m.col.len());
                    }
                }
            }
        }
        m.selection = m.is_selection();
        m
    }

    /// `A` (`rows x n` row-major) as compressed rows, `e` zero.
    fn from_dense(a: &[f64], rows: usize, n: usize) -> RowMap {
        let mut m = RowMap { n, start: vec![0], ..RowMap::default() };
        if a.len() == rows * n {
            for i in 0..rows {
                for (j, &v) in a[i * n..(i + 1) * n].iter().enumerate() {
                    if v != 0.0 {
                        m.col.push(j);
                        m.val.push(v);
                    }
                }
                m.e.push(0.0);
                m.start.push(m.col.len());
            }
        }
        m.selection = m.is_selection();
        m
    }

    fn is_selection(&self) -> bool {
        let mut hit = vec![false; self.n];
        for k in 0..self.e.len() {
            let p = self.start[k];
            if self.start[k + 1] != p + 1 || self.val[p] != 1.0 || self.col[p] >= self.n || hit[self.col[p]] {
                return false;
            }
            hit[self.col[p]] = true;
        }
        true
    }

    fn rows(&self) -> usize {
        self.e.len()
    }

    /// `out = M x + e` (`rows()` values).
    fn apply_into(&self, x: &[f64], out: &mut [f64]) {
        if self.selection {
            // row k's one entry is col[k], weight 1
            for ((o, &c), e) in out[..self.e.len()].iter_mut().zip(&self.col).zip(&self.e) {
                *o = x[c] + e;
            }
            return;
        }
        for (k, o) in out[..self.e.len()].iter_mut().enumerate() {
            let mut dot = 0.0;
            for p in self.start[k]..self.start[k + 1] {
                dot += self.val[p] * x[self.col[p]];
            }
            *o = dot + self.e[k];
        }
    }

    /// `out = M' y` (`n` values).
    fn apply_t_into(&self, y: &[f64], out: &mut [f64]) {
        out[..self.n].fill(0.0);
        if self.selection {
            for (&c, yk) in self.col.iter().zip(&y[..self.e.len()]) {
                out[c] += yk;
            }
            return;
        }
        for (k, &yk) in y[..self.e.len()].iter().enumerate() {
            for p in self.start[k]..self.start[k + 1] {
                out[self.col[p]] += self.val[p] * yk;
            }
        }
    }
}

/// A coupling (sharing) limit: `sum of its terms <sense> rhs`, elementwise.
#[derive(Debug, Clone, PartialEq)]
pub struct CouplingSpec {
    pub name: &'static str,
    pub sense: Sense,
    pub rhs: Vec<f64>,
}

/// Everything the coordinator needs to know about one plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanSpec {
    pub name: &'static str,
    pub shared: Vec<SharedSpec>,
    pub objects: Vec<ObjectSpec>,
    pub couplings: Vec<CouplingSpec>,
}

// ---------------------------------------------------------------------------------------------
// Solver interfaces
// ---------------------------------------------------------------------------------------------

/// How a solve ended (the Python `STATUSES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Optimal,
    Infeasible,
    Unbounded,
    MaxIterations,
    LocalSolverFailed,
}

impl Status {
    /// The status as the Python reference spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Optimal => "optimal",
            Status::Infeasible => "infeasible",
            Status::Unbounded => "unbounded",
            Status::MaxIterations => "max_iterations",
            Status::LocalSolverFailed => "local_solver_failed",
        }
    }
}

/// A local (or shared) step that could not produce a point.
#[derive(Debug, Clone, PartialEq)]
pub struct StepFailure {
    pub status: Status,
    pub message: String,
}

impl fmt::Display for StepFailure {
    /// `<status>: <message>` (the status as `Status::as_str` spells it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.as_str(), self.message)
    }
}

impl std::error::Error for StepFailure {}

/// The x-update an object must provide:
/// `x = argmin_x f(x) + rho/2 ||M x - centre||^2` subject to the object's constraints, where
/// `M` is the object's row map (`ObjectSpec::dense`, `apply`, `apply_t`).
pub trait LocalSolver {
    fn prox(&mut self, centre: &[f64], rho: f64) -> Result<Vec<f64>, StepFailure>;
    /// The same x-update written into `x` (resized as needed; its old values mean nothing). The
    /// coordinator calls this one; the default calls `prox`. A solver that keeps its buffers (the
    /// generated `QpSolver`) overrides it so that a settled iteration allocates nothing.
    fn prox_into(&mut self, centre: &[f64], rho: f64, x: &mut Vec<f64>) -> Result<(), StepFailure> {
        *x = self.prox(centre, rho)?;
        Ok(())
    }
    /// The local objective f(x) in minimise form (reported, summed into the plan objective).
    fn objective(&self, x: &[f64]) -> f64;
    /// Each coordinate's bounds `(lo, hi)` (infinite where none) when every constraint row of the
    /// object's set bounds one coordinate: the plan-level infeasibility check supports such sets
    /// exactly (`sum_j c_j (c_j > 0 ? lo_j : hi_j)`). None, the default: the solver cannot say,
    /// and a plan that involves it is not certified.
    fn coordinate_bounds(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        None
    }
    /// The generated QP solver this solver is, if the coordinator may step it directly: hand it
    /// its centre in place, let it write its own rows and trust its x to be finite (it checks
    /// every point it returns). Only `QpSolver` answers `Some`; every other solver keeps this
    /// default, and the coordinator calls its `prox_into` and checks its x.
    fn generated_qp(&mut self) -> Option<&mut QpSolver> {
        None
    }
}

/// A user z-update for a shared block that has no closed form:
/// `z = argmin g(z) + rho/2 sum_v N_v ||z_v - m_v||^2` subject to the block's constraints.
pub trait SharedProx {
    fn prox(&mut self, means: &[Vec<f64>], counts: &[usize], rho: f64, z_prev: &[f64])
        -> Result<Vec<f64>, StepFailure>;
    /// g(z).
    fn value(&self, z: &[f64]) -> f64;
}

/// Solve `a x = b` (row-major `n x n`) by Gaussian elimination with partial pivoting.
pub fn dense_solve(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Option<Vec<f64>> {
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))?;
        if a[pivot * n + col] == 0.0 {
            return None;
        }
        if pivot != col {
            for k in 0..n {
                a.swap(pivot * n + k, col * n + k);
            }
            b.swap(pivot, col);
        }
        for row in col + 1..n {
            let factor = a[row * n + col] / a[col * n + col];
            if factor != 0.0 {
                for k in col..n {
                    a[row * n + k] -= factor * a[col * n + k];
                }
                b[row] -= factor * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let mut s = b[row];
        for k in row + 1..n {
            s -= a[row * n + k] * x[k];
        }
        x[row] = s / a[row * n + row];
    }
    Some(x)
}

/// The closed-form prox of a quadratic `f(x) = 1/2 x'Px + q'x + c` (no constraints):
/// `(P + rho M'M) x = rho M'(centre) - q`.
#[derive(Debug, Clone)]
pub struct QuadraticSolver {
    pub p: Vec<f64>,
    pub q: Vec<f64>,
    pub c: f64,
    n: usize,
    mtm: Vec<f64>,
    object: ObjectSpec,
}

impl QuadraticSolver {
    pub fn new(object: &ObjectSpec, p: Vec<f64>, q: Vec<f64>, c: f64) -> Self {
        let n = object.n;
        let r = object.rows();
        let (m, _) = object.dense();
        let mut mtm = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                mtm[i * n + j] = (0..r).map(|k| m[k * n + i] * m[k * n + j]).sum();
            }
        }
        QuadraticSolver { p, q, c, n, mtm, object: object.clone() }
    }
}

impl LocalSolver for QuadraticSolver {
    fn prox(&mut self, centre: &[f64], rho: f64) -> Result<Vec<f64>, StepFailure> {
        let n = self.n;
        let a: Vec<f64> = self.p.iter().zip(&self.mtm).map(|(p, m)| p + rho * m).collect();
        let b: Vec<f64> = self.object.apply_t(centre).iter().zip(&self.q).map(|(d, q)| rho * d - q).collect();
        dense_solve(a, b, n).ok_or_else(|| StepFailure {
            status: Status::LocalSolverFailed,
            message: format!("object `{}`: singular prox system", self.object.name),
        })
    }

    fn objective(&self, x: &[f64]) -> f64 {
        let n = self.n;
        let mut quad = 0.0;
        for i in 0..n {
            let px: f64 = (0..n).map(|j| self.p[i * n + j] * x[j]).sum();
            quad += x[i] * px;
        }
        let lin: f64 = self.q.iter().zip(x).map(|(q, v)| q * v).sum();
        0.5 * quad + lin + self.c
    }
}

// ---------------------------------------------------------------------------------------------
// The coordinator (catopt_dsl/solver/coordinator.py, line by line)
// ---------------------------------------------------------------------------------------------

const RHO_MIN: f64 = 1e-6;
const RHO_MAX: f64 = 1e6;
const RHO_MOVE: f64 = 5.0;
const TINY: f64 = 1e-12;
const CURVATURE_BAND: f64 = 1.9;
const MIN_CORRELATION: f64 = 0.2;
const SECANT_FLOOR: f64 = 1e-9;

/// ADMM settings (the defaults of `catopt_dsl.solver.SolveOptions`).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub max_iter: usize,
    pub eps_abs: f64,
    pub eps_rel: f64,
    pub rho: f64,
    pub alpha: f64,
    pub adaptive_rho: bool,
    pub adaptive_rho_interval: usize,
    /// How often (iterations) a settled dual increment is tried as a certificate that the plan's
    /// links cannot all hold (0: never); the reference's default.
    pub infeasibility_check_interval: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_iter: 10000,
            eps_abs: 1e-5,
            eps_rel: 1e-5,
            rho: 1.0,
            alpha: 1.6,
            adaptive_rho: true,
            adaptive_rho_interval: 10,
            infeasibility_check_interval: 25,
        }
    }
}

/// One iteration's bookkeeping (the Python `Broadcast` minus the centres).
#[derive(Debug, Clone, PartialEq)]
pub struct Iterate {
    pub iteration: usize,
    pub rho: f64,
    pub r_prim: f64,
    pub r_dual: f64,
    pub eps_prim: f64,
    pub eps_dual: f64,
    /// The plan objective at this iterate; NaN where `solve` did not need it (it enters the
    /// stopping test only once both residuals pass, so the solve asks its solvers only then).
    pub objective: f64,
    pub converged: bool,
    pub rho_changed: bool,
}

/// The outcome of `Coordinator::solve`: its status says whether x means anything.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a solve's status (optimal or not) is only in its result"]
pub struct SolveResult {
    pub status: Status,
    /// Plan objective (minimise form); None unless optimal or max_iterations.
    pub objective: Option<f64>,
    pub iterations: usize,
    pub primal_residual: Option<f64>,
    pub dual_residual: Option<f64>,
    /// Stacked x per object, in plan order.
    pub x: Vec<Vec<f64>>,
    /// Stacked z per shared block, in plan order.
    pub z: Vec<Vec<f64>>,
    pub rho: f64,
    pub message: String,
}

/// Holds z, the coupling copies y, the scaled duals u and rho; decides stopping.
pub struct Coordinator {
    pub plan: PlanSpec,
    pub opts: Options,
    pub rho: f64,
    pub t: Vec<f64>,
    pub u: Vec<f64>,
    pub z: Vec<Vec<f64>>,
    pub iteration: usize,
    pub last: Option<Iterate>,
    object_rows: Vec<usize>,
    e: Vec<Vec<f64>>,
    // (shared, var) -> global row starts of every consensus block linked to it (object order)
    consensus_index: Vec<Vec<Vec<usize>>>,
    // coupling -> global row starts of its terms (object order)
    term_index: Vec<Vec<usize>>,
    proxes: Vec<Option<Box<dyn SharedProx>>>,
    total_rows: usize,
    maps: Vec<RowMap>,
    // every object's RowMap is a selection
    all_selection: bool,
    counts: Vec<Vec<usize>>,
    // Every object's e end to end (row order); 1.0 on coupling rows (the gap sum's weights) and
    // whether there are any; per coupling, whether its terms' rows are one block, term after
    // term (the stride loops of the sharing update).
    e_flat: Vec<f64>,
    coupling_mask: Vec<f64>,
    has_coupling_rows: bool,
    cp_stride: Vec<bool>,
    scratch: Scratch,
    cert: CertState,
}

/// An object's solver in the coordinator's own loop: the generated QP solver, stepped in place
/// from the flat centres, or any other, through `LocalSolver`.
enum Slot<'a> {
    Qp(&'a mut QpSolver),
    User(&'a mut dyn LocalSolver),
}

/// Where an iteration's local objectives come from: given (`update`), or asked of the solvers
/// only where the stopping test needs them (`solve`).
enum Objectives<'s, 'a> {
    Given(&'s [f64]),
    Ask(&'s [Slot<'a>]),
}

/// The maxima and the gap sum of an iteration's row pass.
#[derive(Default)]
struct RowSums {
    r_prim: f64,
    a_max: f64,
    t_max: f64,
    dt_max: f64,
    u_max: f64,
    gap: f64,
}

/// The row pass of an iteration: the dual update, the next prox centres `t - u - e`, the
/// residuals and their scales, and the first-order objective error on the coupling rows,
/// `sum (u (a - t))` over them (`mask` is 1 there). Specialised so the loop carries no test:
/// `SEL` (every map a selection: the dual residual's maxima are row maxima, dt is not kept) and
/// `CP` (some rows are coupling rows: the gap sum runs).
#[allow(clippy::too_many_arguments)]
fn finish_rows<const SEL: bool, const CP: bool>(
    a: &[f64],
    t: &[f64],
    t_old: &[f64],
    h: &[f64],
    u: &mut [f64],
    dt: &mut [f64],
    mask: &[f64],
    e: &[f64],
    centre: &mut [f64],
) -> RowSums {
    let n = a.len();
    let (t, t_old, h, u, mask, e, centre) =
        (&t[..n], &t_old[..n], &h[..n], &mut u[..n], &mask[..n], &e[..n], &mut centre[..n]);
    let dt = if SEL { &mut dt[..0] } else { &mut dt[..n] };
    let mut s = RowSums::default();
    for k in 0..n {
        let (tk, ak) = (t[k], a[k]);
        let uk = u[k] + h[k] - tk;
        u[k] = uk;
        centre[k] = tk - uk - e[k];
        let res = ak - tk;
        s.r_prim = fmax(s.r_prim, res.abs());
        s.a_max = fmax(s.a_max, ak.abs());
        s.t_max = fmax(s.t_max, tk.abs());
        let dk = tk - t_old[k];
        if SEL {
            s.dt_max = fmax(s.dt_max, dk.abs());
            s.u_max = fmax(s.u_max, uk.abs());
        } else {
            dt[k] = dk;
        }
        if CP {
            s.gap += mask[k] * (uk * res);
        }
    }
    s
}

/// The buffers of one `Coordinator::update`, sized once in `Coordinator::new`: an iteration
/// allocates nothing (they are swapped or overwritten, never regrown).
#[derive(Default)]
struct Scratch {
    a: Vec<f64>,
    t_old: Vec<f64>,
    yhat: Vec<f64>,
    h: Vec<f64>,
    v: Vec<f64>,
    dt: Vec<f64>,
    // The previous iteration's rows a and multiplier estimate yhat (the curvature secant), kept
    // when this iteration is a checkpoint.
    has_secant: bool,
    secant_a: Vec<f64>,
    secant_y: Vec<f64>,
    col: Vec<f64>,
    cp_sum: Vec<f64>,
    cp_shift: Vec<f64>,
    means: Vec<Vec<Vec<f64>>>,
    // the prox centres t - u - e of every row, kept by the row pass (the coordinator's loop hands
    // each generated QP solver its slice)
    centre: Vec<f64>,
}

fn norm2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// The secant curvature ||delta yhat|| / ||delta a|| of two iterations, or None when the secant
/// is rounding, not correlated, or out of range (as `catopt_dsl.solver.rho.secant_curvature`).
fn secant_curvature(a_prev: &[f64], y_prev: &[f64], a: &[f64], yhat: &[f64]) -> Option<f64> {
    // One pass, no temporaries: each sum runs in index order, as norm2 over the differences would.
    let (mut inner, mut sda, mut sdy) = (0.0, 0.0, 0.0);
    for k in 0..a.len() {
        let (da, dy) = (a[k] - a_prev[k], yhat[k] - y_prev[k]);
        inner += dy * da;
        sda += da * da;
        sdy += dy * dy;
    }
    let (nda, ndy): (f64, f64) = (f64::sqrt(sda), f64::sqrt(sdy));
    if !(nda.is_finite() && ndy.is_finite()) {
        return None;
    }
    if nda <= SECANT_FLOOR * norm2(a).max(1.0) || ndy <= SECANT_FLOOR * norm2(yhat).max(1.0) {
        return None;
    }
    if -inner < MIN_CORRELATION * nda * ndy {
        return None;
    }
    let kappa = ndy / nda;
    if kappa < RHO_MIN || kappa > RHO_MAX {
        return None;
    }
    Some(kappa)
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m: f64, x| m.max(x.abs()))
}

/// The larger of `a` and `b`, `a` unless `a < b` (C++'s `std::max`: one machine instruction, and
/// the same as `f64::max` where `a` is not NaN, as in every running maximum here).
#[inline]
fn fmax(a: f64, b: f64) -> f64 {
    if a < b {
        b
    } else {
        a
    }
}

/// `v` clipped to `[lo, hi]` as C++'s `std::min(std::max(v, lo), hi)`: NaN stays NaN (so a step's
/// finiteness test sees it), unlike `f64::clamp`'s panics and `f64::max`'s NaN-dropping.
#[inline]
fn clip(v: f64, lo: f64, hi: f64) -> f64 {
    let a = if v < lo { lo } else { v };
    if hi < a {
        hi
    } else {
        a
    }
}

impl Coordinator {
    /// A coordinator for `plan`; shared blocks without a closed form need `set_shared_prox`.
    pub fn new(plan: PlanSpec, opts: Options) -> Self {
        let mut object_rows = Vec::new();
        let mut e = Vec::new();
        let mut consensus_index: Vec<Vec<Vec<usize>>> =
            plan.shared.iter().map(|s| vec![Vec::new(); s.vars.len()]).collect();
        let mut term_index = vec![Vec::new(); plan.couplings.len()];
        let mut offset = 0;
        let mut maps = Vec::new();
        for o in &plan.objects {
            object_rows.push(offset);
            let map = RowMap::new(o);
            e.push(map.e.clone());
            maps.push(map);
            let mut local = 0;
            for b in &o.blocks {
                match b {
                    Block::Consensus { shared, var, .. } => consensus_index[*shared][*var].push(offset + local),
                    Block::Coupling { coupling, .. } => term_index[*coupling].push(offset + local),
                }
                local += b.rows();
            }
            offset += local;
        }
        let z = plan.shared.iter().map(|s| vec![0.0; s.n]).collect();
        let proxes = plan.shared.iter().map(|_| None).collect();
        let counts: Vec<Vec<usize>> = consensus_index.iter().map(|vars| vars.iter().map(Vec::len).collect()).collect();
        let widest = plan.objects.iter().map(|o| o.n).max().unwrap_or(0);
        let coupling_rows = plan.couplings.iter().map(|c| c.rhs.len()).max().unwrap_or(0);
        let mut coupling_mask = vec![0.0; offset];
        let mut has_coupling_rows = false;
        let mut cp_stride = Vec::new();
        for (starts, cp) in term_index.iter().zip(&plan.couplings) {
            let m = cp.rhs.len();
            for &start in starts {
                coupling_mask[start..start + m].fill(1.0);
                has_coupling_rows = true;
            }
            cp_stride.push(!starts.is_empty() && starts.iter().enumerate().all(|(i, &s)| s == starts[0] + i * m));
        }
        let e_flat = e.concat();
        let rows = vec![0.0; offset];
        let scratch = Scratch {
            a: rows.clone(),
            t_old: rows.clone(),
            yhat: rows.clone(),
            h: rows.clone(),
            v: rows.clone(),
            dt: rows.clone(),
            has_secant: false,
            secant_a: rows.clone(),
            secant_y: rows,
            col: vec![0.0; widest],
            cp_sum: vec![0.0; coupling_rows],
            cp_shift: vec![0.0; coupling_rows],
            means: plan.shared.iter().map(|s| s.vars.iter().map(|v| vec![0.0; v.size]).collect()).collect(),
            centre: vec![0.0; offset],
        };
        let mut c = Coordinator {
            rho: opts.rho,
            plan,
            opts,
            t: vec![0.0; offset],
            u: vec![0.0; offset],
            z,
            iteration: 0,
            last: None,
            object_rows,
            e,
            consensus_index,
            term_index,
            proxes,
            total_rows: offset,
            all_selection: maps.iter().all(|m| m.selection),
            maps,
            counts,
            e_flat,
            coupling_mask,
            has_coupling_rows,
            cp_stride,
            scratch,
            cert: CertState::default(),
        };
        c.sync_consensus_targets();
        c
    }

    /// Use `prox` for shared block `block` (required for blocks without a closed form).
    pub fn set_shared_prox(&mut self, block: usize, prox: Box<dyn SharedProx>) {
        self.proxes[block] = Some(prox);
    }

    fn sync_consensus_targets(&mut self) {
        for (s, blk) in self.plan.shared.iter().enumerate() {
            for (v, var) in blk.vars.iter().enumerate() {
                for &start in &self.consensus_index[s][v] {
                    self.t[start..start + var.size].copy_from_slice(&self.z[s][var.offset..var.offset + var.size]);
                }
            }
        }
    }

    /// Whether iteration `k` is an adaptive-rho checkpoint: 1, 2, 4, 8, ... below the interval,
    /// then every interval (as the Python reference).
    fn checkpoint(&self, k: usize) -> bool {
        let interval = self.opts.adaptive_rho_interval;
        interval > 0 && (k % interval == 0 || (k < interval && k.is_power_of_two()))
    }

    fn rows_of(&self, i: usize) -> std::ops::Range<usize> {
        // object i's rows end where object i + 1's start (the last object's at total_rows)
        self.object_rows[i]..self.object_rows.get(i + 1).copied().unwrap_or(self.total_rows)
    }

    /// The centres `d_i = t_i - u_i - e_i`, one per object.
    pub fn centres(&self) -> Vec<Vec<f64>> {
        let mut out = vec![Vec::new(); self.plan.objects.len()];
        self.centres_into(&mut out);
        out
    }

    fn centres_into(&self, out: &mut [Vec<f64>]) {
        for (i, d) in out.iter_mut().enumerate() {
            let start = self.object_rows[i];
            let e = &self.e[i];
            d.resize(e.len(), 0.0);
            for k in 0..e.len() {
                d[k] = self.t[start + k] - self.u[start + k] - e[k];
            }
        }
    }

    /// The flat centres `t - u - e` of every row (after a change of rho rescaled u).
    fn centres_flat(&self, centre: &mut [f64]) {
        let n = self.total_rows;
        let (t, u, e) = (&self.t[..n], &self.u[..n], &self.e_flat[..n]);
        for (k, c) in centre[..n].iter_mut().enumerate() {
            *c = t[k] - u[k] - e[k];
        }
    }

    /// The sum of the local objectives at xs; `Err` names an object whose value is not finite.
    fn local_objectives(&self, xs: &[Vec<f64>], slots: &[Slot<'_>]) -> Result<f64, StepFailure> {
        let mut f = 0.0;
        for (i, slot) in slots.iter().enumerate() {
            let fi = match slot {
                Slot::Qp(q) => q.objective(&xs[i]),
                Slot::User(s) => s.objective(&xs[i]),
            };
            if !fi.is_finite() {
                return Err(StepFailure {
                    status: Status::LocalSolverFailed,
                    message: format!(
                        "object `{}`: the local solver returned a non-finite objective value (NaN or Inf)",
                        self.plan.objects[i].name
                    ),
                });
            }
            f += fi;
        }
        Ok(f)
    }

    /// max |rho (M' v1)_j| and max |rho (M' v2)_j| over every object's columns, in one pass and
    /// without allocating (`col`: at least the widest object's n).
    fn mt_max_abs(&self, v1: &[f64], v2: &[f64], rho: f64, col: &mut [f64]) -> (f64, f64) {
        let (mut m1, mut m2) = (0.0f64, 0.0f64);
        for (i, o) in self.maps.iter().enumerate() {
            let r = self.rows_of(i);
            o.apply_t_into(&v1[r.clone()], col);
            for c in &col[..o.n] {
                m1 = m1.max((c * rho).abs());
            }
            o.apply_t_into(&v2[r], col);
            for c in &col[..o.n] {
                m2 = m2.max((c * rho).abs());
            }
        }
        (m1, m2)
    }

    /// g(z) of every shared block at the current z (the shared part of the plan objective).
    #[must_use]
    pub fn shared_value(&self) -> f64 {
        (0..self.plan.shared.len()).map(|s| self.g_value(s)).sum()
    }

    fn g_value(&self, s: usize) -> f64 {
        if let Some(p) = &self.proxes[s] {
            return p.value(&self.z[s]);
        }
        let mut g = 0.0;
        for var in &self.plan.shared[s].vars {
            let zv = &self.z[s][var.offset..var.offset + var.size];
            g += match var.term {
                SharedTerm::Free => 0.0,
                SharedTerm::SumSquares(c) => c * zv.iter().map(|x| x * x).sum::<f64>(),
                SharedTerm::Norm1(c) => c * zv.iter().map(|x| x.abs()).sum::<f64>(),
            };
        }
        g
    }

    fn z_update(&mut self, s: usize, v: &[f64], means: &mut [Vec<f64>], rho: f64) -> Result<(), StepFailure> {
        let blk = &self.plan.shared[s];
        let counts = &self.counts[s];
        for (vi, m) in means.iter_mut().enumerate() {
            let size = blk.vars[vi].size;
            let index = &self.consensus_index[s][vi];
            m.fill(0.0);
            for &start in index {
                for (mj, vj) in m.iter_mut().zip(&v[start..start + size]) {
                    *mj += vj;
                }
            }
            if !index.is_empty() {
                let count = index.len() as f64;
                for mj in m.iter_mut() {
                    *mj /= count;
                }
            }
        }
        if let Some(p) = self.proxes[s].as_mut() {
            self.z[s] = p.prox(means, counts, rho, &self.z[s])?;
            return Ok(());
        }
        if !blk.closed_form {
            return Err(StepFailure {
                status: Status::LocalSolverFailed,
                message: format!("shared block `{}` has no closed-form z-update: supply a SharedProx", blk.name),
            });
        }
        for (vi, var) in blk.vars.iter().enumerate() {
            let rho_n = rho * counts[vi] as f64;
            let m = &means[vi];
            let zv = &mut self.z[s][var.offset..var.offset + var.size];
            match var.term {
                SharedTerm::SumSquares(c) => {
                    for (zj, x) in zv.iter_mut().zip(m) {
                        *zj = if 2.0 * c + rho_n == 0.0 { 0.0 } else { rho_n * x / (2.0 * c + rho_n) };
                    }
                }
                SharedTerm::Norm1(c) => {
                    for (zj, &x) in zv.iter_mut().zip(m) {
                        *zj = if rho_n == 0.0 {
                            0.0
                        } else {
                            let sign = if x > 0.0 {
                                1.0
                            } else if x < 0.0 {
                                -1.0
                            } else {
                                0.0
                            };
                            sign * (x.abs() - c / rho_n).max(0.0)
                        };
                    }
                }
                SharedTerm::Free if counts[vi] > 0 => zv.copy_from_slice(m),
                SharedTerm::Free => continue, // unlinked and free: keep the previous value
            }
        }
        Ok(())
    }

    /// One iteration from every object's new x and local objective (plan order).
    pub fn update(&mut self, xs: &[Vec<f64>], objectives: &[f64]) -> Result<Iterate, StepFailure> {
        // The buffers leave self for the iteration (the borrow checker's way to lend them) and
        // always come back, whatever the outcome.
        let mut sc = std::mem::take(&mut self.scratch);
        for (i, o) in self.maps.iter().enumerate() {
            o.apply_into(&xs[i], &mut sc.a[self.rows_of(i)]);
        }
        let out = self.advance_rows(&mut sc, xs, Objectives::Given(objectives));
        self.scratch = sc;
        out
    }

    /// The iteration from the rows `sc.a` (already `M x + e` of every object's x).
    fn advance_rows(
        &mut self,
        sc: &mut Scratch,
        xs: &[Vec<f64>],
        objectives: Objectives<'_, '_>,
    ) -> Result<Iterate, StepFailure> {
        self.iteration += 1;
        // A non-finite value must never reach z or u: it ends the solve naming the object. The
        // generated QP solver checks every point it returns.
        for (i, o) in self.plan.objects.iter().enumerate() {
            let (bad_x, bad_f) = match objectives {
                Objectives::Given(f) => (!xs[i].iter().all(|x| x.is_finite()), !f[i].is_finite()),
                Objectives::Ask(slots) => match slots[i] {
                    Slot::Qp(_) => continue,
                    Slot::User(_) => (!xs[i].iter().all(|x| x.is_finite()), false),
                },
            };
            if bad_x || bad_f {
                let what = if bad_x { "a non-finite value in x" } else { "a non-finite objective value" };
                return Err(StepFailure {
                    status: Status::LocalSolverFailed,
                    message: format!("object `{}`: the local solver returned {} (NaN or Inf)", o.name, what),
                });
            }
        }
        let nrows = self.total_rows;
        let a = &sc.a;
        let rho = self.rho;
        let alpha = self.opts.alpha;
        // The secant of a checkpoint needs this iteration's and the previous one's (a, yhat): yhat
        // is formed, and kept, only around checkpoints (the rule's result is the same as keeping
        // both every iteration).
        let check_now = self.opts.adaptive_rho && self.checkpoint(self.iteration);
        let check_next = self.opts.adaptive_rho && self.checkpoint(self.iteration + 1);
        let had_secant = sc.has_secant;
        let need_yhat = check_now || check_next;
        // Every row is a consensus row (rewritten from z by sync_consensus_targets) or a coupling
        // row (rewritten below): t is overwritten whole, so the previous targets are kept by a swap.
        std::mem::swap(&mut self.t, &mut sc.t_old);
        let (to, uv) = (&sc.t_old[..nrows], &self.u[..nrows]);
        if need_yhat {
            // yhat = rho (a - t + u): minus the row gradient of the objectives at the new x.
            for (k, y) in sc.yhat[..nrows].iter_mut().enumerate() {
                *y = rho * ((a[k] - to[k]) + uv[k]);
            }
        }
        for (k, (hk, vk)) in sc.h[..nrows].iter_mut().zip(&mut sc.v[..nrows]).enumerate() {
            let x = alpha * a[k] + (1.0 - alpha) * to[k];
            *hk = x;
            *vk = x + uv[k];
        }
        let (t_old, yhat, h, v) = (&sc.t_old, &sc.yhat, &sc.h, &sc.v);
        // consensus z-update
        for s in 0..self.plan.shared.len() {
            self.z_update(s, v, &mut sc.means[s], rho)?;
        }
        self.sync_consensus_targets();
        // sharing y-update: Euclidean projection of the term copies onto {sum y in K}
        for (c, cp) in self.plan.couplings.iter().enumerate() {
            let starts = &self.term_index[c];
            if starts.is_empty() {
                continue;
            }
            let m = cp.rhs.len();
            let s = &mut sc.cp_sum[..m];
            let terms = starts.len();
            let stride = self.cp_stride[c];
            if stride {
                // The terms' rows are one block, term after term: column sums with a fixed stride
                // (the same additions in the same order as term by term).
                let vb = &v[starts[0]..starts[0] + terms * m];
                for (j, sj) in s.iter_mut().enumerate() {
                    let mut acc = 0.0;
                    for i in 0..terms {
                        acc += vb[i * m + j];
                    }
                    *sj = acc;
                }
            } else {
                s.fill(0.0);
                for &start in starts {
                    for (sj, vj) in s.iter_mut().zip(&v[start..start + m]) {
                        *sj += vj;
                    }
                }
            }
            let count = terms as f64;
            let shift = &mut sc.cp_shift[..m];
            for j in 0..m {
                let (sj, r) = (s[j], cp.rhs[j]);
                let p = match cp.sense {
                    Sense::Le => sj.min(r),
                    Sense::Ge => sj.max(r),
                    Sense::Eq => r,
                };
                shift[j] = (p - sj) / count;
            }
            if stride {
                let vb = &v[starts[0]..starts[0] + terms * m];
                let tb = &mut self.t[starts[0]..starts[0] + terms * m];
                for (j, &sj) in shift.iter().enumerate() {
                    for i in 0..terms {
                        tb[i * m + j] = vb[i * m + j] + sj;
                    }
                }
            } else {
                for &start in starts {
                    for j in 0..m {
                        self.t[start + j] = v[start + j] + shift[j];
                    }
                }
            }
        }
        // One pass over the rows: the dual update, the next centres, the residuals (infinity norms)
        // and their scales, and the first-order objective error on the coupling rows,
        // |y'(a - t)| with y = rho u (as the reference).
        let (t, u, mask, e, centre) = (&self.t, &mut self.u, &self.coupling_mask, &self.e_flat, &mut sc.centre);
        let dt = &mut sc.dt;
        let sums = match (self.all_selection, self.has_coupling_rows) {
            (true, true) => finish_rows::<true, true>(&a[..nrows], t, t_old, h, u, dt, mask, e, centre),
            (true, false) => finish_rows::<true, false>(&a[..nrows], t, t_old, h, u, dt, mask, e, centre),
            (false, true) => finish_rows::<false, true>(&a[..nrows], t, t_old, h, u, dt, mask, e, centre),
            (false, false) => finish_rows::<false, false>(&a[..nrows], t, t_old, h, u, dt, mask, e, centre),
        };
        let r_prim = sums.r_prim;
        let (r_dual, dual_scale) = if self.all_selection {
            // M' only places each row in its own column: the column maxima are the row maxima
            // (and max |rho x| is rho max |x|: rounding is monotone).
            (rho * sums.dt_max, rho * sums.u_max)
        } else {
            self.mt_max_abs(&sc.dt, &self.u, rho, &mut sc.col)
        };
        let prim_scale = fmax(sums.a_max, sums.t_max);
        let eps_prim = self.opts.eps_abs + self.opts.eps_rel * prim_scale;
        let eps_dual = self.opts.eps_abs + self.opts.eps_rel * dual_scale;
        // The objective enters the stopping test only through eps_gap, which matters only once
        // both residuals pass: with no objectives given it is asked of the solvers then (and at
        // the end of a solve), not every iteration. Until then it is NaN.
        let objective = match objectives {
            Objectives::Given(f) => {
                let mut f_sum = 0.0;
                for fi in f {
                    f_sum += fi;
                }
                f_sum + self.shared_value()
            }
            Objectives::Ask(slots) if r_prim <= eps_prim && r_dual <= eps_dual => {
                self.local_objectives(xs, slots)? + self.shared_value()
            }
            Objectives::Ask(_) => f64::NAN,
        };
        let gap_est = rho * sums.gap;
        let eps_gap =
            if objective.is_finite() { 0.1 * (self.opts.eps_abs + self.opts.eps_rel * objective.abs()) } else { 0.0 };
        let converged = r_prim <= eps_prim && r_dual <= eps_dual && gap_est.abs() <= eps_gap;
        let mut rho_changed = false;
        let interval = self.opts.adaptive_rho_interval;
        if check_now && !converged {
            let kappa = if had_secant { secant_curvature(&sc.secant_a, &sc.secant_y, a, yhat) } else { None };
            let rho_new = match kappa {
                // The curvature rule: move to kappa when rho is outside [kappa / band, band * kappa].
                Some(k) => {
                    if k / CURVATURE_BAND <= rho && rho <= k * CURVATURE_BAND {
                        rho
                    } else {
                        k
                    }
                }
                // Residual balancing where the secant says nothing.
                None => {
                    let ratio = (r_prim / prim_scale.max(TINY)) / (r_dual / dual_scale.max(TINY)).max(TINY);
                    let mut r = (rho * ratio.max(0.0).sqrt()).clamp(RHO_MIN, RHO_MAX);
                    // Early checkpoints only raise rho: the scaled duals are still near zero there.
                    if self.iteration < interval && r < rho {
                        r = rho;
                    }
                    if r > RHO_MOVE * rho || r < rho / RHO_MOVE {
                        r
                    } else {
                        rho
                    }
                }
            };
            if rho_new != rho {
                let scale = rho / rho_new;
                for u in self.u.iter_mut() {
                    *u *= scale;
                }
                self.centres_flat(&mut sc.centre);
                self.rho = rho_new;
                rho_changed = true;
            }
        }
        if check_next {
            sc.secant_a.copy_from_slice(a);
            sc.secant_y.copy_from_slice(yhat);
        }
        sc.has_secant = check_next;
        let it = Iterate {
            iteration: self.iteration,
            rho: self.rho,
            r_prim,
            r_dual,
            eps_prim,
            eps_dual,
            objective,
            converged,
            rho_changed,
        };
        self.last = Some(it.clone());
        Ok(it)
    }

    /// Run ADMM to a status with one local solver per object (plan order).
    pub fn solve(&mut self, solvers: &mut [Box<dyn LocalSolver>]) -> SolveResult {
        let nobj = self.plan.objects.len();
        let xs: Vec<Vec<f64>> = self.plan.objects.iter().map(|o| vec![0.0; o.n]).collect();
        if solvers.len() != nobj {
            let msg = format!("{} local solvers for {} objects", solvers.len(), nobj);
            return self.result(Status::LocalSolverFailed, None, 0, xs, msg);
        }
        // The generated QP solver of the plan's own object takes its centre straight from the
        // flat centres and writes its rows itself; any other solver goes through LocalSolver.
        // Its data (public, but not changed while the solve holds it) is checked here, once: a
        // solver whose data is bad goes the general way and reports it at its first step.
        let fast: Vec<bool> = solvers
            .iter_mut()
            .zip(&self.plan.objects)
            .map(|(s, o)| match s.generated_qp() {
                Some(q) => q.object == *o && q.ready().is_ok(),
                None => false,
            })
            .collect();
        let mut slots = Vec::with_capacity(nobj);
        for (i, (s, fast)) in solvers.iter_mut().zip(fast).enumerate() {
            if !fast {
                slots.push(Slot::User(s.as_mut()));
                continue;
            }
            match s.generated_qp() {
                Some(q) => slots.push(Slot::Qp(q)),
                None => {
                    let msg = format!("object `{}`: its solver stopped being a QpSolver", self.plan.objects[i].name);
                    return self.result(Status::LocalSolverFailed, None, 0, xs, msg);
                }
            }
        }
        let mut sc = std::mem::take(&mut self.scratch);
        let out = self.solve_with(&mut sc, &mut slots, xs);
        self.scratch = sc;
        out
    }

    fn solve_with(&mut self, sc: &mut Scratch, slots: &mut [Slot<'_>], mut xs: Vec<Vec<f64>>) -> SolveResult {
        // Points live across iterations. Each object writes into its spare buffer, swapped with
        // its point once the size is checked (a bad step leaves the previous point in place).
        let mut spare = xs.clone();
        self.centres_flat(&mut sc.centre);
        for k in 1..=self.opts.max_iter {
            for (i, slot) in slots.iter_mut().enumerate() {
                let rows = self.rows_of(i);
                let step = match slot {
                    Slot::Qp(q) => {
                        q.coordinator_step(&sc.centre[rows.clone()], self.rho, &mut spare[i], &mut sc.a[rows])
                    }
                    Slot::User(s) => {
                        let out = s.prox_into(&sc.centre[rows.clone()], self.rho, &mut spare[i]);
                        if out.is_ok() && spare[i].len() == self.plan.objects[i].n {
                            self.maps[i].apply_into(&spare[i], &mut sc.a[rows]);
                        }
                        out
                    }
                };
                match step {
                    Ok(()) if spare[i].len() == self.plan.objects[i].n => std::mem::swap(&mut xs[i], &mut spare[i]),
                    Ok(()) => {
                        let msg = format!(
                            "object `{}`: prox returned {} values, expected {}",
                            self.plan.objects[i].name,
                            spare[i].len(),
                            self.plan.objects[i].n
                        );
                        return self.result(Status::LocalSolverFailed, None, k, xs, msg);
                    }
                    Err(f) => return self.result(f.status, None, k, xs, f.message),
                }
            }
            let rho_used = self.rho;
            let it = match self.advance_rows(sc, &xs, Objectives::Ask(slots)) {
                Ok(it) => it,
                Err(f) => return self.result(f.status, None, k, xs, f.message),
            };
            if it.converged {
                return self.result(Status::Optimal, Some(it.objective), k, xs, String::new());
            }
            if let Some(message) = self.check_infeasible(&sc.h, slots, rho_used, it.rho_changed) {
                return self.result(Status::Infeasible, None, k, xs, message);
            }
        }
        // The last iterate's objective, asked of the solvers if the loop did not need it.
        let mut objective = self.last.as_ref().map(|l| l.objective);
        if objective.is_some_and(f64::is_nan) {
            match self.local_objectives(&xs, slots) {
                Ok(f) => objective = Some(f + self.shared_value()),
                Err(f) => return self.result(f.status, None, self.opts.max_iter, xs, f.message),
            }
        }
        if let (Some(last), Some(f)) = (self.last.as_mut(), objective) {
            last.objective = f;
        }
        let msg = format!("no convergence within {} iterations", self.opts.max_iter);
        self.result(Status::MaxIterations, objective, self.opts.max_iter, xs, msg)
    }

    /// The plan-level infeasibility check of an iteration (see `certify_infeasible`): the dual
    /// increments of the iterations before and at every `infeasibility_check_interval`-th are
    /// kept, and a settled one is tried as a certificate (again later, with a doubling backoff,
    /// when it proves nothing). The proof's message when it holds.
    fn check_infeasible(&mut self, h: &[f64], slots: &[Slot<'_>], rho_used: f64, rho_changed: bool) -> Option<String> {
        let every = self.opts.infeasibility_check_interval;
        let k = self.iteration;
        if every == 0 || ((k + 1) % every != 0 && k % every != 0) {
            return None;
        }
        // dy = y_k - y_{k-1} with y = rho u, the unscaled duals: rho (h - t) of this iteration (a
        // rho change rescales u, not y). A pair straddling a rho change is not compared.
        let st = &mut self.cert;
        std::mem::swap(&mut st.dy_prev, &mut st.dy_last);
        st.has_prev = st.has_last;
        st.dy_last.clear();
        st.dy_last.extend(h.iter().zip(&self.t).map(|(h, t)| rho_used * (h - t)));
        st.has_last = true;
        if rho_changed {
            st.has_last = false;
            st.has_prev = false;
        }
        if k % every != 0 || k < st.next_try.max(every) {
            return None;
        }
        let bounds: Vec<Option<(Vec<f64>, Vec<f64>)>> = slots
            .iter()
            .map(|slot| match slot {
                Slot::Qp(q) => q.coordinate_bounds(),
                Slot::User(s) => s.coordinate_bounds(),
            })
            .collect();
        let inputs = CertInputs {
            plan: &self.plan,
            maps: &self.maps,
            object_rows: &self.object_rows,
            term_index: &self.term_index,
            consensus_index: &self.consensus_index,
            shared_free: self.plan.shared.iter().zip(&self.proxes).all(|(b, p)| b.closed_form && p.is_none()),
            eps_abs: self.opts.eps_abs,
            iteration: k,
        };
        match certify_infeasible(&inputs, &self.cert, &bounds) {
            Certificate::Proven(message) => Some(message),
            Certificate::Unsettled => None,
            Certificate::Unproven => {
                let st = &mut self.cert;
                st.failures += 1;
                st.next_try = k + every * (1usize << st.failures.min(10));
                None
            }
        }
    }

    fn result(
        &self,
        status: Status,
        objective: Option<f64>,
        iterations: usize,
        x: Vec<Vec<f64>>,
        message: String,
    ) -> SolveResult {
        SolveResult {
            status,
            objective,
            iterations,
            primal_residual: self.last.as_ref().map(|l| l.r_prim),
            dual_residual: self.last.as_ref().map(|l| l.r_dual),
            x,
            z: self.z.clone(),
            rho: self.rho,
            message,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Local QPs (the generated x-update of every object whose IR analysis says QP)
// ---------------------------------------------------------------------------------------------

/// A local QP: `f(x) = 1/2 x'Px + q'x + r` subject to `l <= A x <= u` (`P` row-major `n x n`, `A`
/// row-major `m x n`). Equality rows have `l == u`, one-sided rows an infinite bound: the
/// equalities, the bounds and the general inequalities of the object's IR analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct QpData {
    pub p: Vec<f64>,
    pub q: Vec<f64>,
    pub r: f64,
    pub a: Vec<f64>,
    pub l: Vec<f64>,
    pub u: Vec<f64>,
}

impl QpData {
    /// The number of constraint rows m.
    #[must_use]
    pub fn rows(&self) -> usize {
        self.l.len()
    }
}

/// A dense LU factorisation with partial pivoting: factor once, solve many right-hand sides.
#[derive(Debug, Clone, Default)]
struct Lu {
    n: usize,
    a: Vec<f64>,
    perm: Vec<usize>,
}

impl Lu {
    /// None when a pivot is zero to rounding (relative to the matrix's largest entry).
    fn factor(a: Vec<f64>, n: usize) -> Option<Lu> {
        let mut lu = Lu::default();
        if lu.factor_from(&a, n) {
            Some(lu)
        } else {
            None
        }
    }

    /// The same from `src` (`n x n` row-major), reusing this factor's storage (refactorising
    /// allocates nothing once it has grown to the largest n); false when singular to rounding.
    fn factor_from(&mut self, src: &[f64], n: usize) -> bool {
        let a = &mut self.a;
        a.clear();
        a.extend_from_slice(&src[..n * n]);
        let perm = &mut self.perm;
        perm.clear();
        perm.extend(0..n);
        let scale = max_abs(a).max(TINY);
        for col in 0..n {
            // The first largest entry (as the C++ runtime picks it).
            let mut pivot = col;
            for i in col + 1..n {
                if a[i * n + col].abs() > a[pivot * n + col].abs() {
                    pivot = i;
                }
            }
            if !(a[pivot * n + col].abs() > 1e-13 * scale) {
                return false;
            }
            if pivot != col {
                for k in 0..n {
                    a.swap(pivot * n + k, col * n + k);
                }
                perm.swap(pivot, col);
            }
            let d = a[col * n + col];
            for row in col + 1..n {
                let factor = a[row * n + col] / d;
                a[row * n + col] = factor;
                if factor != 0.0 {
                    for k in col + 1..n {
                        a[row * n + k] -= factor * a[col * n + k];
                    }
                }
            }
        }
        self.n = n;
        true
    }

    /// The inverse (row-major `n x n`) into `inv`, row by row so every inner loop is an
    /// independent axpy (no chain of dependent divisions as in n solves): X = L^-1 P, then
    /// inv = U^-1 X in place. A step that reuses a factor many times multiplies by it.
    fn invert_into(&self, inv: &mut Vec<f64>) {
        let (n, a) = (self.n, &self.a);
        inv.clear();
        inv.resize(n * n, 0.0);
        for i in 0..n {
            inv[i * n + self.perm[i]] = 1.0;
            for k in 0..i {
                let l = a[i * n + k];
                if l == 0.0 {
                    continue;
                }
                let (head, tail) = inv.split_at_mut(i * n);
                for (xi, xk) in tail[..n].iter_mut().zip(&head[k * n..(k + 1) * n]) {
                    *xi -= l * xk;
                }
            }
        }
        for i in (0..n).rev() {
            for k in i + 1..n {
                let r = a[i * n + k];
                if r == 0.0 {
                    continue;
                }
                let (head, tail) = inv.split_at_mut(k * n);
                for (xi, xk) in head[i * n..(i + 1) * n].iter_mut().zip(&tail[..n]) {
                    *xi -= r * xk;
                }
            }
            let d = a[i * n + i];
            for xi in &mut inv[i * n..(i + 1) * n] {
                *xi /= d;
            }
        }
    }

    fn solve(&self, b: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut x: Vec<f64> = self.perm.iter().map(|&i| b[i]).collect();
        for row in 0..n {
            let mut s = x[row];
            for k in 0..row {
                s -= self.a[row * n + k] * x[k];
            }
            x[row] = s;
        }
        for row in (0..n).rev() {
            let mut s = x[row];
            for k in row + 1..n {
                s -= self.a[row * n + k] * x[k];
            }
            x[row] = s / self.a[row * n + row];
        }
        x
    }
}

/// The inverse of the symmetric positive definite `a` (`n x n` row-major) into `inv`, through
/// Cholesky; false (nothing to use) unless every pivot is above 1e-13 of a's largest entry (as
/// `Lu`) and the inverse is finite.
fn spd_inverse(a: &[f64], n: usize, inv: &mut Vec<f64>, work: &mut Vec<f64>) -> bool {
    // A = L L', then W = L^-1 and A^-1 = W'W: n^3/6 multiply-adds apiece. One n x n scratch: L in
    // the lower triangle; W' (row p holds W[k][p], k >= p) takes the upper triangle and the
    // diagonal column by column, once L's entries there are no longer read.
    work.clear();
    work.resize(n * n, 0.0);
    inv.clear();
    inv.resize(n * n, 0.0);
    let l = &mut work[..];
    // A positive definite matrix's largest entry is on its diagonal (|a_ij| <= sqrt(a_ii a_jj)),
    // and one that is not fails a pivot whatever the scale.
    let scale = (0..n).fold(0.0, |acc, j| fmax(acc, a[j * n + j].abs()));
    let floor = 1e-13 * fmax(scale, TINY);
    for j in 0..n {
        let mut d = a[j * n + j];
        for v in &l[j * n..j * n + j] {
            d -= v * v;
        }
        if !(d > floor) {
            return false;
        }
        let root = d.sqrt();
        l[j * n + j] = root;
        for i in j + 1..n {
            let (head, tail) = l.split_at_mut(i * n);
            let (lj, li) = (&head[j * n..j * n + j], &mut tail[..n]);
            let mut s = a[i * n + j];
            for (x, y) in li[..j].iter().zip(lj) {
                s -= x * y;
            }
            li[j] = s / root;
        }
    }
    for j in 0..n {
        // Column j of W: W[j][j] = 1 / L[j][j], W[i][j] = -(sum_{k=j}^{i-1} L[i][k] W[k][j]) /
        // L[i][i], written to row j of the scratch (entries i > j, then the diagonal: later
        // columns read neither L[j][j] nor anything right of it in row j).
        let wjj = 1.0 / l[j * n + j];
        for i in j + 1..n {
            let (head, tail) = l.split_at_mut(i * n);
            let (wt, li) = (&mut head[j * n..(j + 1) * n], &tail[..n]);
            let mut s = li[j] * wjj;
            for (x, y) in li[j + 1..i].iter().zip(&wt[j + 1..i]) {
                s += x * y;
            }
            wt[i] = -s / li[i];
        }
        l[j * n + j] = wjj;
    }
    // A^-1[p][q] = sum_{k >= q} W[k][p] W[k][q] (q >= p): rows p and q of W' from column q on.
    let mut nonfinite = 0.0; // x - x: 0 for a finite x, NaN otherwise
    for p in 0..n {
        for q in p..n {
            let mut s = 0.0;
            for (x, y) in l[p * n + q..(p + 1) * n].iter().zip(&l[q * n + q..(q + 1) * n]) {
                s += x * y;
            }
            inv[p * n + q] = s;
            inv[q * n + p] = s;
            nonfinite += s - s;
        }
    }
    nonfinite == 0.0
}

/// `sol = c0 + G c`, G column by column (`g[c * k + i]`, k = sol's length): four columns per pass
/// over sol (one load and store of sol[i] per four multiply-adds), then two, then one, adding in
/// the order of the plain column loop (so the sums round the same).
fn affine_point(sol: &mut [f64], c0: &[f64], g: &[f64], centre: &[f64]) {
    let k = sol.len();
    let r = centre.len();
    let mut c = 0;
    while c + 4 <= r {
        let (d0, d1, d2, d3) = (centre[c], centre[c + 1], centre[c + 2], centre[c + 3]);
        let cols = &g[c * k..(c + 4) * k];
        let (g0, rest) = cols.split_at(k);
        let (g1, rest) = rest.split_at(k);
        let (g2, g3) = rest.split_at(k);
        // the first pass starts from c0, the others from sol
        if c == 0 {
            for ((((s, &a), &b0), &b1), (&b2, &b3)) in sol.iter_mut().zip(c0).zip(g0).zip(g1).zip(g2.iter().zip(g3)) {
                let mut v = a;
                v += b0 * d0;
                v += b1 * d1;
                v += b2 * d2;
                v += b3 * d3;
                *s = v;
            }
        } else {
            for (((s, &b0), &b1), (&b2, &b3)) in sol.iter_mut().zip(g0).zip(g1).zip(g2.iter().zip(g3)) {
                let mut v = *s;
                v += b0 * d0;
                v += b1 * d1;
                v += b2 * d2;
                v += b3 * d3;
                *s = v;
            }
        }
        c += 4;
    }
    if c == 0 {
        sol.copy_from_slice(&c0[..k]);
    }
    while c + 2 <= r {
        let (d0, d1) = (centre[c], centre[c + 1]);
        let (g0, g1) = g[c * k..(c + 2) * k].split_at(k);
        for ((s, &b0), &b1) in sol.iter_mut().zip(g0).zip(g1) {
            let mut v = *s;
            v += b0 * d0;
            v += b1 * d1;
            *s = v;
        }
        c += 2;
    }
    if c < r {
        let dc = centre[c];
        for (s, &b) in sol.iter_mut().zip(&g[c * k..(c + 1) * k]) {
            *s += b * dc;
        }
    }
}

const QP_SIGMA: f64 = 1e-6;
const QP_ALPHA: f64 = 1.6;
const QP_EQ_SCALE: f64 = 1e3;
const QP_RHO0: f64 = 0.1;
const QP_EPS: f64 = 1e-9;
const QP_POLISH_BELOW: f64 = 1e-4;
const QP_CERT_EPS: f64 = 1e-6;
const QP_CHECK_EVERY: usize = 5;
const QP_ADAPT_EVERY: usize = 25;
/// Inner iterations before a prox step gives up (a step never hangs).
pub const QP_MAX_ITER: usize = 20000;
/// Active-set corrections a QP prox step tries before its inner ADMM: each one adds the rows the
/// failed KKT solve violates and drops the multipliers of the wrong sign (a primal-dual active-set
/// step), which settles a changed active set in one or two solves where ADMM takes dozens.
pub const QP_GUESS_STEPS: usize = 4;

/// The x-update of a local QP: `argmin f(x) + rho/2 ||M x - centre||^2` over `l <= A x <= u`.
///
/// Exact: the step is the solution of the KKT system of an active set, accepted only when every
/// inactive row is within its bounds and every multiplier has the right sign. The guess is the
/// previous step's active set (near convergence a step is one product with a cached inverse),
/// then up to `QP_GUESS_STEPS` corrections of it; when those fail, OSQP's ADMM (Stellato et al. 2020), warm-started from the previous x, z and y, finds
/// the active set, and its certificates prove a local constraint set empty (`infeasible`) or the
/// local problem unbounded below. Matrices are factorised once per rho (and active set); a
/// settled step allocates nothing.
#[derive(Debug, Clone)]
pub struct QpSolver {
    pub data: QpData,
    object: ObjectSpec,
    map: RowMap,
    // A and P as compressed rows (e unused)
    a_rows: RowMap,
    p_rows: RowMap,
    // P and M'M diagonal and A one coordinate per row (separable), and every Q_jj > 0 at this
    // rho (separable_now): the step is separable_step's closed form.
    separable: bool,
    separable_now: bool,
    n: usize,
    m: usize,
    mtm: Vec<f64>,
    rho: f64,
    qmat: Vec<f64>,
    eq: Vec<bool>,
    x: Vec<f64>,
    z: Vec<f64>,
    y: Vec<f64>,
    active: Vec<i8>,
    // The KKT system of the active set kkt_active (valid when has_kkt): its factor and inverse.
    has_kkt: bool,
    kkt_active: Vec<i8>,
    kkt_lu: Lu,
    kkt_buf: Vec<f64>,
    kkt_inv: Vec<f64>,
    kkt_bound: Vec<f64>,
    // Cholesky's scratch (the KKT inverse when no row is active)
    chol: Vec<f64>,
    // The cached KKT point as an affine map of the prox centre c (fixed while rho and the active
    // set are): sol = aff_c0 + G c, G stored column by column (aff_g[c * k + i]), so a settled
    // step is k x r multiply-adds over contiguous columns and needs neither p nor M'c.
    aff_c0: Vec<f64>,
    aff_g: Vec<f64>,
    // 1 / Q_jj at this rho (separable_now), and whether z, y and active lag behind x (a separable
    // step updates only x; settle_separable_state catches them up when a step needs them).
    sep_inv: Vec<f64>,
    sep_stale: bool,
    // M is the identity (the centre is x's own coordinates) and each coordinate's bounds
    // (-inf / inf where no row bounds it): direct_step's data.
    identity_map: bool,
    sep_lo: Vec<f64>,
    sep_hi: Vec<f64>,
    // What the last polish left: whether its KKT solve produced a point (sol, ax) and the
    // tolerances it judged that point by (for next_active_set).
    polish_solved: bool,
    tol_p: f64,
    tol_d: f64,
    // scratch of a step (no allocation once warm)
    w: Vec<usize>,
    sol: Vec<f64>,
    ax: Vec<f64>,
    // the prox's linear term p = q - rho M' centre (formed only by the steps that need it)
    pbuf: Vec<f64>,
    act_try: Vec<i8>,
    checked: bool,
    admm: Option<(f64, Lu)>,
    rho_in: f64,
    /// Inner ADMM iterations over all steps (the exact active-set solves not counted).
    pub inner_iterations: usize,
}

fn mat_vec(a: &[f64], x: &[f64], rows: usize, n: usize) -> Vec<f64> {
    (0..rows).map(|i| a[i * n..(i + 1) * n].iter().zip(x).map(|(m, v)| m * v).sum()).collect()
}

fn mat_t_vec(a: &[f64], y: &[f64], rows: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n];
    for i in 0..rows {
        if y[i] != 0.0 {
            for (o, m) in out.iter_mut().zip(&a[i * n..(i + 1) * n]) {
                *o += m * y[i];
            }
        }
    }
    out
}

impl QpSolver {
    /// Panics never: data of the wrong size is reported by `check`.
    #[must_use]
    pub fn new(object: &ObjectSpec, data: QpData) -> Self {
        let n = object.n;
        let r = object.rows();
        let (m_dense, _) = object.dense();
        let mut mtm = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                mtm[i * n + j] = (0..r).map(|k| m_dense[k * n + i] * m_dense[k * n + j]).sum();
            }
        }
        let m = data.rows();
        let eq: Vec<bool> = data.l.iter().zip(&data.u).map(|(l, u)| l == u).collect();
        let active = eq.iter().map(|&e| i8::from(e)).collect();
        let a_rows = RowMap::from_dense(&data.a, m, n);
        // Separable: P and M'M diagonal, each row of A bounds one coordinate (weight 1, no
        // coordinate twice). Then the prox splits into one clipped scalar per coordinate.
        let mut separable = data.p.len() == n * n && a_rows.rows() == m && a_rows.selection;
        let (mut sep_lo, mut sep_hi) = (vec![f64::NEG_INFINITY; n], vec![f64::INFINITY; n]);
        if separable {
            for i in 0..m.min(data.u.len()) {
                sep_lo[a_rows.col[i]] = data.l[i];
                sep_hi[a_rows.col[i]] = data.u[i];
            }
        }
        let map = RowMap::new(object);
        let identity_map = map.selection && map.rows() == n && (0..n).all(|k| map.col[k] == k && map.e[k] == 0.0);
        let r = map.rows();
        for i in 0..n {
            for j in 0..n {
                if separable && i != j && (data.p[i * n + j] != 0.0 || mtm[i * n + j] != 0.0) {
                    separable = false;
                }
            }
        }
        QpSolver {
            object: object.clone(),
            map,
            a_rows,
            separable,
            separable_now: false,
            p_rows: RowMap::from_dense(&data.p, n, n),
            n,
            m,
            mtm,
            rho: f64::NAN,
            qmat: Vec::new(),
            eq,
            x: vec![0.0; n],
            z: vec![0.0; m],
            y: vec![0.0; m],
            active,
            has_kkt: false,
            kkt_active: Vec::with_capacity(m),
            kkt_lu: Lu::default(),
            kkt_buf: Vec::with_capacity((n + m) * (n + m)),
            kkt_inv: Vec::with_capacity((n + m) * (n + m)),
            kkt_bound: Vec::with_capacity(n + m),
            chol: Vec::new(),
            aff_c0: Vec::with_capacity(n + m),
            aff_g: Vec::with_capacity((n + m) * r),
            sep_inv: vec![0.0; n],
            sep_stale: false,
            identity_map,
            sep_lo,
            sep_hi,
            polish_solved: false,
            tol_p: 0.0,
            tol_d: 0.0,
            w: Vec::with_capacity(m),
            sol: Vec::with_capacity(n + m),
            ax: vec![0.0; m],
            pbuf: vec![0.0; n],
            act_try: vec![0; m],
            checked: false,
            admm: None,
            rho_in: QP_RHO0,
            inner_iterations: 0,
            data,
        }
    }

    /// Whether the data has the object's sizes (`Err` names what is wrong).
    pub fn check(&self) -> Result<(), StepFailure> {
        let (n, m, d) = (self.n, self.m, &self.data);
        if d.p.len() != n * n || d.q.len() != n || d.a.len() != m * n || d.l.len() != m || d.u.len() != m {
            return Err(self.failure(Status::LocalSolverFailed, "QP data of the wrong size".to_string()));
        }
        if d.l.iter().zip(&d.u).any(|(l, u)| l.is_nan() || u.is_nan() || l > u) {
            return Err(self.failure(Status::Infeasible, "a constraint row has its lower bound above its upper".into()));
        }
        Ok(())
    }

    fn failure(&self, status: Status, what: String) -> StepFailure {
        StepFailure { status, message: format!("object `{}`: {}", self.object.name, what) }
    }

    fn set_rho(&mut self, rho: f64) {
        if rho == self.rho {
            return;
        }
        self.qmat.clear();
        self.qmat.extend(self.data.p.iter().zip(&self.mtm).map(|(p, m)| p + rho * m));
        self.rho = rho;
        self.has_kkt = false;
        self.admm = None;
        let n = self.n;
        self.separable_now = self.separable && (0..n).all(|j| self.qmat[j * (n + 1)] > 0.0);
        if self.separable_now {
            for j in 0..n {
                self.sep_inv[j] = 1.0 / self.qmat[j * (n + 1)];
            }
        }
    }

    /// A separable strictly convex QP: each coordinate's minimiser `-p_j / Q_jj` clipped to its
    /// row's bounds is the exact solution (the KKT point of the active set the clipping picks,
    /// with the multiplier `-(Q_jj x_j + p_j)` of the right sign by construction). Only x follows
    /// the step; the rest of the state a polish leaves (z, y, the active set) is rebuilt from it,
    /// by settle_separable_state, only if a later step is not separable. False (the general step
    /// reports it) when a value is not finite.
    fn separable_step(&mut self, x: &mut Vec<f64>) -> bool {
        let (n, m) = (self.n, self.m);
        x.resize(n, 0.0);
        for ((xj, pj), inv) in x.iter_mut().zip(&self.pbuf[..n]).zip(&self.sep_inv[..n]) {
            *xj = -pj * inv;
        }
        // One row per bounded coordinate (a selection: no coordinate twice); an equality row has
        // lo == hi. NaN stays NaN through the clip.
        for i in 0..m {
            let j = self.a_rows.col[i];
            x[j] = clip(x[j], self.data.l[i], self.data.u[i]);
        }
        if !x.iter().all(|v| v.is_finite()) {
            return false;
        }
        self.x.copy_from_slice(x);
        self.sep_stale = true;
        true
    }

    /// The separable step from the centre directly when M is the identity: `x_j = clip(-(q_j -
    /// rho c_j) / Q_jj)` with each coordinate's own bounds (separable_step's values, no p). False
    /// when a value is not finite.
    #[inline]
    fn direct_step(&mut self, centre: &[f64], rho: f64, x: &mut Vec<f64>) -> bool {
        self.direct_step_rows::<false>(centre, rho, x, &mut [])
    }

    /// direct_step, writing the rows (x itself: M = I, e = 0) too when `ROWS`.
    #[inline]
    fn direct_step_rows<const ROWS: bool>(
        &mut self,
        centre: &[f64],
        rho: f64,
        x: &mut Vec<f64>,
        rows: &mut [f64],
    ) -> bool {
        let n = self.n;
        x.resize(n, 0.0);
        let (q, inv, lo, hi) = (&self.data.q[..n], &self.sep_inv[..n], &self.sep_lo[..n], &self.sep_hi[..n]);
        let (c, xw) = (&centre[..n], &mut self.x[..n]);
        let rows = if ROWS { &mut rows[..n] } else { &mut rows[..0] };
        let mut finite = true;
        for j in 0..n {
            let v = clip(-(q[j] - rho * c[j]) * inv[j], lo[j], hi[j]);
            finite &= v.is_finite();
            x[j] = v;
            xw[j] = v;
            if ROWS {
                rows[j] = v;
            }
        }
        self.sep_stale = true;
        finite
    }

    /// After separable steps (which keep only x): the active set and z the clip picked, as a
    /// warm start for a step that is not separable (exact; the multipliers are left at zero:
    /// every later step verifies its own).
    fn settle_separable_state(&mut self) {
        if !self.sep_stale {
            return;
        }
        self.sep_stale = false;
        self.a_rows.apply_into(&self.x, &mut self.ax);
        for i in 0..self.m {
            let (ax, lo, hi) = (self.ax[i], self.data.l[i], self.data.u[i]);
            self.z[i] = clip(ax, lo, hi);
            self.y[i] = 0.0;
            self.active[i] = if self.eq[i] || ax >= hi {
                1
            } else if ax <= lo {
                -1
            } else {
                0
            };
        }
        self.polish_solved = false;
    }

    /// p = q - rho M' centre (the prox centre enters only the linear term).
    fn compute_p(&mut self, centre: &[f64], rho: f64) {
        let p = &mut self.pbuf;
        p.resize(self.n, 0.0);
        self.map.apply_t_into(centre, p);
        for (pi, qi) in p.iter_mut().zip(&self.data.q) {
            *pi = qi - rho * *pi;
        }
    }

    /// The KKT solution for active set `act` (-1 lower, +1 upper, 0 inactive) at this centre into
    /// `x`, if it verifies (pbuf must hold p when the QP has rows: their tolerances scale with it).
    /// Allocation-free: a settled step is this function with a cached affine map, k x r
    /// multiply-adds with the centre.
    fn polish(&mut self, centre: &[f64], act: &[i8], x: &mut Vec<f64>) -> bool {
        let (n, m, r) = (self.n, self.m, self.map.rows());
        self.polish_solved = false;
        // (compared element by element: a slice `==` calls memcmp even for no rows, at a cost
        // out of proportion to a settled step)
        let same_set = self.kkt_active.len() == act.len() && self.kkt_active.iter().zip(act).all(|(a, b)| a == b);
        if !(self.has_kkt && same_set) {
            // w (the active rows) and kkt_bound belong to the cached system: rebuilt with it.
            self.has_kkt = false;
            self.w.clear();
            for (i, &a) in act.iter().enumerate().take(m) {
                if a != 0 {
                    self.w.push(i);
                }
            }
            let k = n + self.w.len();
            let kkt = &mut self.kkt_buf;
            kkt.clear();
            kkt.resize(k * k, 0.0);
            for i in 0..n {
                kkt[i * k..i * k + n].copy_from_slice(&self.qmat[i * n..(i + 1) * n]);
            }
            for (j, &row) in self.w.iter().enumerate() {
                for c in 0..n {
                    let v = self.data.a[row * n + c];
                    kkt[(n + j) * k + c] = v;
                    kkt[c * k + n + j] = v;
                }
            }
            // No active rows: K = P + rho M'M, positive definite for a QP the checker accepted,
            // and its inverse through Cholesky costs n^3/2 multiply-adds against LU's 4n^3/3. LU
            // (with pivoting) takes what Cholesky refuses.
            if !(self.w.is_empty() && spd_inverse(&self.kkt_buf, k, &mut self.kkt_inv, &mut self.chol)) {
                if !self.kkt_lu.factor_from(&self.kkt_buf, k) {
                    return false;
                }
                self.kkt_lu.invert_into(&mut self.kkt_inv);
            }
            // sol = K^-1 [-p; b_w] with p = q - rho M'c: the active bounds' part K^-1 [0; b_w] and
            // -K^-1 [q; 0] are fixed while the set is (aff_c0), the centre enters through
            // G = rho K^-1[:, :n] M' (kkt_bound keeps the bounds' part for next_active_set).
            self.kkt_bound.clear();
            self.aff_c0.clear();
            let q = &self.data.q[..n];
            for i in 0..k {
                let row = &self.kkt_inv[i * k..(i + 1) * k];
                let mut acc = 0.0;
                for (j, &w) in self.w.iter().enumerate() {
                    acc += row[n + j] * if act[w] > 0 { self.data.u[w] } else { self.data.l[w] };
                }
                self.kkt_bound.push(acc);
                let mut sq = 0.0;
                for (a, b) in row[..n].iter().zip(q) {
                    sq += a * b;
                }
                self.aff_c0.push(acc - sq);
            }
            // G's column c is rho K^-1[:, :n] times M's row c: M's nonzeros only (a consensus row
            // is one unit entry, so its column is a scaled column of the inverse).
            self.aff_g.clear();
            self.aff_g.resize(r * k, 0.0);
            for c in 0..r {
                let gc = &mut self.aff_g[c * k..(c + 1) * k];
                for e in self.map.start[c]..self.map.start[c + 1] {
                    let (j, v) = (self.map.col[e], self.rho * self.map.val[e]);
                    for (i, g) in gc.iter_mut().enumerate() {
                        *g += v * self.kkt_inv[i * k + j];
                    }
                }
            }
            self.has_kkt = true;
            self.kkt_active.clear();
            self.kkt_active.extend_from_slice(act);
        }
        let k = n + self.w.len();
        // Without rows the point is x itself: written in place.
        let sol: &mut [f64] = if m == 0 {
            x.resize(n, 0.0);
            &mut x[..]
        } else {
            self.sol.resize(k, 0.0);
            &mut self.sol[..k]
        };
        affine_point(sol, &self.aff_c0[..k], &self.aff_g[..r * k], &centre[..r]);
        if m == 0 {
            // No rows: the KKT point is the step, nothing to verify. x - x is 0 for a finite x
            // and NaN otherwise: one sum tells.
            let nonfinite = sol.iter().fold(0.0, |acc, v| acc + (v - v));
            self.polish_solved = nonfinite == 0.0;
            return self.polish_solved;
        }
        if !self.sol.iter().all(|v| v.is_finite()) {
            return false;
        }
        let lam_max = self.sol[n..].iter().fold(0.0f64, |acc, v| fmax(acc, v.abs()));
        self.a_rows.apply_into(&self.sol, &mut self.ax);
        let ax_max = self.ax.iter().fold(0.0f64, |acc, v| acc.max(v.abs()));
        let tol_p = QP_EPS * (1.0 + ax_max);
        let tol_d = QP_EPS * (1.0 + fmax(lam_max, max_abs(&self.pbuf)));
        self.polish_solved = true;
        self.tol_p = tol_p;
        self.tol_d = tol_d;
        // Active rows (in order, as w lists them) need a multiplier of the right sign, inactive
        // ones a point within their bounds.
        let (lo, hi) = (&self.data.l, &self.data.u);
        let mut j = n;
        for i in 0..m {
            if act[i] != 0 {
                let lam = self.sol[j];
                j += 1;
                if !self.eq[i] && ((act[i] > 0 && lam < -tol_d) || (act[i] < 0 && lam > tol_d)) {
                    return false;
                }
            } else if self.ax[i] < lo[i] - tol_p || self.ax[i] > hi[i] + tol_p {
                return false;
            }
        }
        let mut j = n;
        for i in 0..m {
            self.z[i] = self.ax[i].max(lo[i]).min(hi[i]);
            self.y[i] = if act[i] != 0 {
                j += 1;
                self.sol[j - 1]
            } else {
                0.0
            };
        }
        self.active.copy_from_slice(act);
        x.clear();
        x.extend_from_slice(&self.sol[..n]);
        true
    }

    /// From the last polish's point (of the set `act`): inactive rows it violates join at the
    /// violated bound, then active inequality rows whose multiplier has the wrong sign leave.
    /// False when nothing would change (the failure was not of this kind).
    fn next_active_set(&self, act: &mut [i8]) -> bool {
        if !self.polish_solved {
            return false;
        }
        let mut changed = false;
        for i in 0..self.m {
            if act[i] != 0 {
                continue;
            }
            if self.ax[i] < self.data.l[i] - self.tol_p {
                act[i] = -1;
                changed = true;
            } else if self.ax[i] > self.data.u[i] + self.tol_p {
                act[i] = 1;
                changed = true;
            }
        }
        for (j, &row) in self.w.iter().enumerate() {
            let lam = self.sol[self.n + j];
            if !self.eq[row] && ((act[row] > 0 && lam < -self.tol_d) || (act[row] < 0 && lam > self.tol_d)) {
                act[row] = 0;
                changed = true;
            }
        }
        changed
    }

    /// One prox step from `centre`: the separable closed forms, the previous active set, its
    /// corrections, then ADMM.
    fn prox_step(&mut self, centre: &[f64], rho: f64, x: &mut Vec<f64>) -> Result<(), StepFailure> {
        if self.identity_map && self.separable_now && self.direct_step(centre, rho, x) {
            return Ok(());
        }
        self.general_step(centre, rho, x)
    }

    /// prox_step past the direct separable step (not inlined: a settled direct step's caller
    /// stays small).
    #[inline(never)]
    fn general_step(&mut self, centre: &[f64], rho: f64, x: &mut Vec<f64>) -> Result<(), StepFailure> {
        // p serves the separable step, the rows' tolerances and the inner ADMM: a QP without rows
        // whose KKT map is cached never needs it.
        let has_p = self.separable_now || self.m > 0;
        if has_p {
            self.compute_p(centre, rho);
        }
        if self.separable_now && self.separable_step(x) {
            return Ok(());
        }
        self.settle_separable_state();
        let mut act = std::mem::take(&mut self.act_try);
        act.clear();
        act.extend_from_slice(&self.active);
        let mut done = self.polish(centre, &act, x);
        let mut step = 0;
        while !done && step < QP_GUESS_STEPS && self.next_active_set(&mut act) {
            done = self.polish(centre, &act, x);
            step += 1;
        }
        self.act_try = act;
        if done {
            // x (the inner ADMM's warm start) follows every step; x has n values after a polish.
            self.x.copy_from_slice(x);
            return Ok(());
        }
        if !has_p {
            self.compute_p(centre, rho);
        }
        *x = self.admm_solve(centre)?;
        Ok(())
    }

    /// The sizes compared every step (the data is public), the bounds scanned once.
    fn ready(&mut self) -> Result<(), StepFailure> {
        let d = &self.data;
        let (n, m) = (self.n, self.m);
        let sizes = d.p.len() == n * n && d.q.len() == n && d.a.len() == m * n && d.l.len() == m && d.u.len() == m;
        if !(self.checked && sizes) {
            self.check()?;
            self.checked = true;
        }
        Ok(())
    }

    /// `prox_into` for the coordinator's own loop (which called `ready` before its first step and
    /// holds the solver throughout): the centre as this object's slice of the coordinator's
    /// centres (`object.rows()` values, its object being the plan's), and the object's rows
    /// `M x + e` written to `rows` (`object.rows()` values).
    #[inline]
    fn coordinator_step(
        &mut self,
        centre: &[f64],
        rho: f64,
        x: &mut Vec<f64>,
        rows: &mut [f64],
    ) -> Result<(), StepFailure> {
        if rho != self.rho {
            self.set_rho(rho);
        }
        if self.identity_map {
            // M = I, e = 0: the rows are x (written by the direct step as it goes)
            if self.separable_now && self.direct_step_rows::<true>(centre, rho, x, rows) {
                return Ok(());
            }
            self.general_step(centre, rho, x)?;
            rows[..self.n].copy_from_slice(&x[..self.n]);
        } else {
            self.prox_step(centre, rho, x)?;
            self.map.apply_into(x, rows);
        }
        Ok(())
    }

    fn rho_row(&self, i: usize) -> f64 {
        if self.eq[i] {
            QP_EQ_SCALE * self.rho_in
        } else if self.data.l[i].is_infinite() && self.data.u[i].is_infinite() {
            1e-6
        } else {
            self.rho_in
        }
    }

    fn admm_factor(&mut self) -> Option<()> {
        if matches!(&self.admm, Some((r, _)) if *r == self.rho_in) {
            return Some(());
        }
        let (n, m) = (self.n, self.m);
        let mut k = self.qmat.clone();
        for i in 0..n {
            k[i * n + i] += QP_SIGMA;
        }
        for row in 0..m {
            let rr = self.rho_row(row);
            let a = &self.data.a[row * n..(row + 1) * n];
            for i in 0..n {
                if a[i] != 0.0 {
                    for j in 0..n {
                        k[i * n + j] += rr * a[i] * a[j];
                    }
                }
            }
        }
        self.admm = Some((self.rho_in, Lu::factor(k, n)?));
        Some(())
    }

    /// OSQP's ADMM from the warm x, z, y; polishes once the residuals are small.
    fn admm_solve(&mut self, centre: &[f64]) -> Result<Vec<f64>, StepFailure> {
        let (n, m) = (self.n, self.m);
        let p = self.pbuf.clone();
        let p = &p[..];
        let (l, u) = (self.data.l.clone(), self.data.u.clone());
        let mut x = self.x.clone();
        let mut z: Vec<f64> = self.z.iter().zip(l.iter().zip(&u)).map(|(v, (lo, hi))| v.max(*lo).min(*hi)).collect();
        let mut y = self.y.clone();
        let mut last_polish: Option<Vec<i8>> = None;
        for it in 1..=QP_MAX_ITER {
            self.inner_iterations += 1;
            if self.admm_factor().is_none() {
                return Err(self.failure(Status::LocalSolverFailed, "singular inner system".into()));
            }
            let rvec: Vec<f64> = (0..m).map(|i| self.rho_row(i)).collect();
            let w: Vec<f64> = (0..m).map(|i| rvec[i] * z[i] - y[i]).collect();
            let atw = mat_t_vec(&self.data.a, &w, m, n);
            let rhs: Vec<f64> = (0..n).map(|i| QP_SIGMA * x[i] - p[i] + atw[i]).collect();
            let xt = self.admm.as_ref().map(|(_, lu)| lu.solve(&rhs)).unwrap_or_default();
            let zt = mat_vec(&self.data.a, &xt, m, n);
            let x_new: Vec<f64> = (0..n).map(|i| QP_ALPHA * xt[i] + (1.0 - QP_ALPHA) * x[i]).collect();
            let mut dy = vec![0.0; m];
            for i in 0..m {
                let zr = QP_ALPHA * zt[i] + (1.0 - QP_ALPHA) * z[i];
                let zn = (zr + y[i] / rvec[i]).max(l[i]).min(u[i]);
                dy[i] = rvec[i] * (zr - zn);
                y[i] += dy[i];
                z[i] = zn;
            }
            let dx: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
            x = x_new;
            if x.iter().chain(&y).any(|v| !v.is_finite()) {
                return Err(self.failure(Status::LocalSolverFailed, "the inner solve diverged (NaN or Inf)".into()));
            }
            if it % QP_CHECK_EVERY != 0 && it != QP_MAX_ITER {
                continue;
            }
            let ax = mat_vec(&self.data.a, &x, m, n);
            let qx = mat_vec(&self.qmat, &x, n, n);
            let aty = mat_t_vec(&self.data.a, &y, m, n);
            let r_prim = ax.iter().zip(&z).fold(0.0, |acc: f64, (a, b)| acc.max((a - b).abs()));
            let r_dual = (0..n).fold(0.0, |acc: f64, i| acc.max((qx[i] + p[i] + aty[i]).abs()));
            let prim_scale = max_abs(&ax).max(max_abs(&z));
            let dual_scale = max_abs(&qx).max(max_abs(&aty)).max(max_abs(p));
            let loose =
                r_prim <= QP_POLISH_BELOW * (1.0 + prim_scale) && r_dual <= QP_POLISH_BELOW * (1.0 + dual_scale);
            if loose {
                let act: Vec<i8> = (0..m)
                    .map(|i| {
                        if self.eq[i] || u[i] - z[i] < y[i] / rvec[i] {
                            1
                        } else if z[i] - l[i] < -y[i] / rvec[i] {
                            -1
                        } else {
                            0
                        }
                    })
                    .collect();
                if last_polish.as_ref() != Some(&act) {
                    let mut xp = Vec::with_capacity(n);
                    if self.polish(centre, &act, &mut xp) {
                        self.x = xp.clone();
                        return Ok(xp);
                    }
                    last_polish = Some(act);
                }
            }
            if r_prim <= QP_EPS * (1.0 + prim_scale) && r_dual <= QP_EPS * (1.0 + dual_scale) {
                self.x = x.clone();
                self.z = z;
                self.y = y;
                return Ok(x);
            }
            if self.primal_infeasible(&dy) {
                return Err(self.failure(
                    Status::Infeasible,
                    "its constraints have no point (a Farkas certificate of the local QP was verified)".into(),
                ));
            }
            if self.dual_infeasible(&dx, p) {
                return Err(self.failure(
                    Status::LocalSolverFailed,
                    "its objective is unbounded below over its own constraints, along a direction no row sees: \
                     the plan is unbounded if it is feasible"
                        .into(),
                ));
            }
            if it % QP_ADAPT_EVERY == 0 {
                let ratio = (r_prim / prim_scale.max(TINY)) / (r_dual / dual_scale.max(TINY)).max(TINY);
                let next = (self.rho_in * ratio.max(0.0).sqrt()).clamp(1e-6, 1e6);
                if next > 5.0 * self.rho_in || next < self.rho_in / 5.0 {
                    self.rho_in = next;
                }
            }
        }
        Err(self.failure(
            Status::LocalSolverFailed,
            format!("the local QP did not converge in {} inner iterations", QP_MAX_ITER),
        ))
    }

    /// OSQP's primal infeasibility test on the dual increment: `A' dy = 0` and `u'dy+ + l'dy- < 0`.
    fn primal_infeasible(&self, dy: &[f64]) -> bool {
        let norm = max_abs(dy);
        if !(norm > TINY) {
            return false;
        }
        let eps = QP_CERT_EPS * norm;
        let mut support = 0.0;
        for i in 0..self.m {
            let (lo, hi) = (self.data.l[i], self.data.u[i]);
            if dy[i] > eps {
                if hi.is_infinite() {
                    return false;
                }
                support += hi * dy[i];
            } else if dy[i] < -eps {
                if lo.is_infinite() {
                    return false;
                }
                support += lo * dy[i];
            }
        }
        let aty = mat_t_vec(&self.data.a, dy, self.m, self.n);
        max_abs(&aty) <= eps && support < -eps
    }

    /// OSQP's dual infeasibility test on the primal increment: `Q dx = 0`, `p'dx < 0`, `A dx` in
    /// the recession cone of the rows.
    fn dual_infeasible(&self, dx: &[f64], p: &[f64]) -> bool {
        let norm = max_abs(dx);
        if !(norm > TINY) {
            return false;
        }
        let eps = QP_CERT_EPS * norm;
        let slope: f64 = p.iter().zip(dx).map(|(a, b)| a * b).sum();
        if slope >= -eps || max_abs(&mat_vec(&self.qmat, dx, self.n, self.n)) > eps {
            return false;
        }
        let adx = mat_vec(&self.data.a, dx, self.m, self.n);
        (0..self.m).all(|i| {
            (self.data.u[i].is_infinite() || adx[i] <= eps) && (self.data.l[i].is_infinite() || adx[i] >= -eps)
        })
    }
}

impl LocalSolver for QpSolver {
    fn coordinate_bounds(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        let d = &self.data;
        if !(self.a_rows.rows() == self.m && self.a_rows.selection && d.l.len() == self.m && d.u.len() == self.m) {
            return None;
        }
        let mut lo = vec![f64::NEG_INFINITY; self.n];
        let mut hi = vec![f64::INFINITY; self.n];
        for i in 0..self.m {
            lo[self.a_rows.col[i]] = d.l[i];
            hi[self.a_rows.col[i]] = d.u[i];
        }
        Some((lo, hi))
    }

    fn prox(&mut self, centre: &[f64], rho: f64) -> Result<Vec<f64>, StepFailure> {
        let mut x = Vec::new();
        self.prox_into(centre, rho, &mut x)?;
        Ok(x)
    }

    fn prox_into(&mut self, centre: &[f64], rho: f64, x: &mut Vec<f64>) -> Result<(), StepFailure> {
        self.ready()?;
        self.set_rho(rho);
        if centre.len() != self.map.rows() {
            return Err(self.failure(Status::LocalSolverFailed, "a prox centre of the wrong size".into()));
        }
        self.prox_step(centre, rho, x)
    }

    fn generated_qp(&mut self) -> Option<&mut QpSolver> {
        Some(self)
    }

    fn objective(&self, x: &[f64]) -> f64 {
        // Called every iteration: P's nonzeros only (in the order of the dense sum), no
        // temporaries (the sums run in the order of the C++ runtime).
        let n = self.n.min(x.len());
        let (mut quad, mut lin) = (0.0, 0.0);
        // Compressed rows pay when P is mostly zeros (a diagonal, say); a dense P is summed densely.
        if n == self.n && self.p_rows.rows() == self.n && self.data.q.len() == n && 2 * self.p_rows.val.len() <= n * n {
            let pm = &self.p_rows;
            for i in 0..n {
                let mut px = 0.0;
                for k in pm.start[i]..pm.start[i + 1] {
                    px += pm.val[k] * x[pm.col[k]];
                }
                quad += x[i] * px;
                lin += self.data.q[i] * x[i];
            }
            return 0.5 * quad + lin + self.data.r;
        }
        for i in 0..n {
            let mut px = 0.0;
            for j in 0..n {
                px += self.data.p[i * self.n + j] * x[j];
            }
            quad += x[i] * px;
            lin += self.data.q[i] * x[i];
        }
        0.5 * quad + lin + self.data.r
    }
}

/// The objects that need a user `LocalSolver` (their x-update is not a QP) and got none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSolvers {
    pub objects: Vec<&'static str>,
}

impl fmt::Display for MissingSolvers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.objects.iter().map(|n| format!("`{}`", n)).collect();
        write!(
            f,
            "no native solver for {}: not a QP (quadratic objective, linear constraints); give each a LocalSolver",
            names.join(", ")
        )
    }
}

impl std::error::Error for MissingSolvers {}

/// One solver per object: the generated QP solver where `local[i]` holds QP data, else the
/// user's `user[i]` (which overrides a QP too). `Err` names every object left without one.
pub fn local_solvers(
    plan: &PlanSpec,
    local: Vec<Option<QpData>>,
    mut user: Vec<Option<Box<dyn LocalSolver>>>,
) -> Result<Vec<Box<dyn LocalSolver>>, MissingSolvers> {
    user.resize_with(plan.objects.len(), || None);
    let mut local = local;
    local.resize_with(plan.objects.len(), || None);
    let mut out: Vec<Box<dyn LocalSolver>> = Vec::new();
    let mut missing = Vec::new();
    for ((o, qp), mine) in plan.objects.iter().zip(local).zip(user) {
        match (mine, qp) {
            (Some(s), _) => out.push(s),
            (None, Some(d)) => out.push(Box::new(QpSolver::new(o, d))),
            (None, None) => missing.push(o.name),
        }
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(MissingSolvers { objects: missing })
    }
}

// ---------------------------------------------------------------------------------------------
// The reported solution (the JSON contract of `catoptc solve --json`)
// ---------------------------------------------------------------------------------------------

/// One variable of the report: its name, offset in the stacked vector and shape.
#[derive(Debug, Clone, PartialEq)]
pub struct VarInfo {
    pub name: &'static str,
    pub offset: usize,
    pub shape: Vec<usize>,
}

/// What `solve --json` reports, in its order: objects (plan index, vars sorted by name) in
/// natural order, and the shared blocks the plan reports (block index, vars).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSpec {
    pub objects: Vec<(usize, Vec<VarInfo>)>,
    pub shared: Vec<(usize, Vec<VarInfo>)>,
}

/// A finished native solve: the coordinator's result, the glued point and its objective.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a solve's status (optimal or not) is only in its result"]
pub struct PlanSolution {
    pub result: SolveResult,
    /// Every object's x with consensus-linked entries set to their shared value.
    pub x: Vec<Vec<f64>>,
    /// The plan objective at the glued point (None unless optimal or max_iterations).
    pub objective: Option<f64>,
    pub seconds: f64,
}

/// Every object's x with its consensus-linked entries replaced by the shared value (the colimit
/// `catopt_dsl.solver.glue` reports): one consistent point whose objective error is second order.
#[must_use]
pub fn glue(plan: &PlanSpec, x: &[Vec<f64>], z: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut out = x.to_vec();
    for (o, xo) in plan.objects.iter().zip(out.iter_mut()) {
        for b in &o.blocks {
            if let Block::Consensus { shared, var, x_offset, size } = b {
                let v = &plan.shared[*shared].vars[*var];
                if let (Some(zs), true) = (z.get(*shared), xo.len() >= x_offset + size) {
                    xo[*x_offset..x_offset + size].copy_from_slice(&zs[v.offset..v.offset + size]);
                }
            }
        }
    }
    out
}

/// Run ADMM on `plan` with one solver per object; the result glued as `catoptc solve` reports it.
pub fn solve_plan(plan: PlanSpec, solvers: &mut [Box<dyn LocalSolver>], opts: Options) -> PlanSolution {
    let start = std::time::Instant::now();
    let mut c = Coordinator::new(plan, opts);
    let result = c.solve(solvers);
    let has_point = matches!(result.status, Status::Optimal | Status::MaxIterations) && result.objective.is_some();
    let x = if has_point { glue(&c.plan, &result.x, &result.z) } else { result.x.clone() };
    let objective = if has_point && solvers.len() == x.len() {
        let f: f64 = solvers.iter().zip(&x).map(|(s, xi)| s.objective(xi)).sum();
        Some(f + c.shared_value())
    } else {
        None
    };
    PlanSolution { result, x, objective, seconds: start.elapsed().as_secs_f64() }
}

/// A JSON string literal.
#[must_use]
pub fn json_str(text: &str) -> String {
    let mut out = String::from("\"");
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// -- plan-level infeasibility (the Farkas certificate) ----------------------------------------

/// The outcome of one certificate check.
enum Certificate {
    /// No settled candidate: nothing was tried.
    Unsettled,
    /// A candidate that proved nothing (tried again later, with a backoff).
    Unproven,
    /// Proven: the `infeasible` message.
    Proven(String),
}

/// The dual increments of the two latest recorded iterations, and when to try next.
#[derive(Default)]
struct CertState {
    dy_last: Vec<f64>,
    dy_prev: Vec<f64>,
    has_last: bool,
    has_prev: bool,
    next_try: usize,
    failures: usize,
}

/// Rows of a sparse matrix over the certificate's parameters.
type SparseRows = Vec<Vec<(usize, f64)>>;

/// `v - C'w` with `C C' w = C v` (conjugate gradients; `C C'` may be singular, `C v` is in its
/// range): the projection of v onto null(C).
fn project_null(c: &SparseRows, v: &mut [f64]) {
    let m = c.len();
    if m == 0 {
        return;
    }
    let mut tmp = vec![0.0; v.len()];
    let apply = |input: &[f64], out: &mut [f64], tmp: &mut [f64]| {
        tmp.iter_mut().for_each(|x| *x = 0.0);
        for (row, &w) in c.iter().zip(input) {
            for &(j, a) in row {
                tmp[j] += a * w;
            }
        }
        for (row, o) in c.iter().zip(out.iter_mut()) {
            *o = row.iter().map(|&(j, a)| a * tmp[j]).sum();
        }
    };
    let mut w = vec![0.0; m];
    let mut r: Vec<f64> = c.iter().map(|row| row.iter().map(|&(j, a)| a * v[j]).sum()).collect();
    let mut d = r.clone();
    let mut ad = vec![0.0; m];
    let mut rs: f64 = r.iter().map(|x| x * x).sum();
    let stop = 1e-30 * rs.max(1.0);
    let mut it = 0;
    while it < 10 * m + 100 && rs > stop {
        it += 1;
        apply(&d, &mut ad, &mut tmp);
        let dad: f64 = d.iter().zip(&ad).map(|(a, b)| a * b).sum();
        if !(dad > 0.0) {
            break;
        }
        let alpha = rs / dad;
        let mut next = 0.0;
        for i in 0..m {
            w[i] += alpha * d[i];
            r[i] -= alpha * ad[i];
            next += r[i] * r[i];
        }
        for i in 0..m {
            d[i] = r[i] + (next / rs) * d[i];
        }
        rs = next;
    }
    for (row, &wi) in c.iter().zip(&w) {
        for &(j, a) in row {
            v[j] -= a * wi;
        }
    }
}

/// What a certificate check reads of the coordinator.
struct CertInputs<'a> {
    plan: &'a PlanSpec,
    maps: &'a [RowMap],
    object_rows: &'a [usize],
    term_index: &'a [Vec<usize>],
    consensus_index: &'a [Vec<Vec<usize>>],
    /// shared blocks whose z-update is closed-form and not a user prox (their sets are everything)
    shared_free: bool,
    eps_abs: f64,
    iteration: usize,
}

/// Primal infeasibility of the plan's links (Banjac et al., JOTA 2019; the reference's rule,
/// `catopt_dsl/solver/certificate.py`, for the sets this runtime can support exactly). The
/// settled dual increment is projected onto the structure every proof needs -- one multiplier
/// per coupling component shared by its terms, in the sense's dual cone; consensus multipliers
/// summing to zero over each shared var's links (closed-form blocks have no constraint, so any
/// other sum has no finite bound); each object's `M'lambda` zero on the coordinates its set
/// leaves free both ways -- and then checked exactly:
/// `sum_i min over object i's set of lambda_i'(M_i x + e_i) > sum_c lambda_c' rhs_c`.
/// `bounds[i]`: object i's coordinate bounds (None: it cannot support one; see
/// `LocalSolver::coordinate_bounds`).
fn certify_infeasible(inp: &CertInputs<'_>, state: &CertState, bounds: &[Option<(Vec<f64>, Vec<f64>)>]) -> Certificate {
    if !state.has_last || !state.has_prev {
        return Certificate::Unsettled;
    }
    let mut size: f64 = 0.0;
    let mut moved: f64 = 0.0;
    for (a, b) in state.dy_last.iter().zip(&state.dy_prev) {
        size = size.max(a.abs());
        moved = moved.max((a - b).abs());
    }
    if !size.is_finite() || size <= inp.eps_abs || moved > 1e-3 * size {
        return Certificate::Unsettled;
    }
    let plan = inp.plan;
    if !inp.shared_free {
        return Certificate::Unproven;
    }
    let nobj = plan.objects.len();
    for i in 0..nobj {
        if inp.maps[i].rows() > 0 && bounds.get(i).map_or(true, |b| b.is_none()) {
            return Certificate::Unproven;
        }
    }
    let dy = &state.dy_last;
    // Parameters: one per coupling component (its terms share it), one per consensus row.
    let mut param = vec![0usize; dy.len()];
    let mut cone: Vec<i8> = Vec::new(); // 1: >= 0 (<=), -1: <= 0 (>=), 0: free
    let mut theta: Vec<f64> = Vec::new();
    let mut coupling_params: Vec<Vec<usize>> = vec![Vec::new(); plan.couplings.len()];
    for (c, cp) in plan.couplings.iter().enumerate() {
        let starts = &inp.term_index[c];
        if starts.is_empty() {
            continue;
        }
        for j in 0..cp.rhs.len() {
            let mut mean = 0.0;
            for &start in starts {
                param[start + j] = theta.len();
                mean += dy[start + j];
            }
            coupling_params[c].push(theta.len());
            theta.push(mean / starts.len() as f64 / size);
            cone.push(match cp.sense {
                Sense::Le => 1,
                Sense::Ge => -1,
                Sense::Eq => 0,
            });
        }
    }
    let mut constraints: SparseRows = Vec::new();
    for (s, blk) in plan.shared.iter().enumerate() {
        for (v, var) in blk.vars.iter().enumerate() {
            let index = &inp.consensus_index[s][v];
            if index.is_empty() {
                continue;
            }
            for j in 0..var.size {
                let mut row = Vec::with_capacity(index.len());
                for &start in index {
                    param[start + j] = theta.len();
                    row.push((theta.len(), 1.0));
                    theta.push(dy[start + j] / size);
                    cone.push(0);
                }
                constraints.push(row);
            }
        }
    }
    for (i, map) in inp.maps.iter().enumerate() {
        let Some((lo, hi)) = bounds.get(i).and_then(|b| b.as_ref()) else { continue };
        let mut cols: SparseRows = vec![Vec::new(); map.n];
        for k in 0..map.rows() {
            for p in map.start[k]..map.start[k + 1] {
                cols[map.col[p]].push((param[inp.object_rows[i] + k], map.val[p]));
            }
        }
        for (j, col) in cols.into_iter().enumerate() {
            if lo[j].is_infinite() && hi[j].is_infinite() && !col.is_empty() {
                constraints.push(col);
            }
        }
    }
    // Alternate: the subspace, then the cones (as the reference).
    for _ in 0..20 {
        project_null(&constraints, &mut theta);
        let (mut change, mut top) = (0.0f64, 0.0f64);
        for (x, &k) in theta.iter_mut().zip(&cone) {
            let clipped = match k {
                1 => x.max(0.0),
                -1 => x.min(0.0),
                _ => *x,
            };
            change = change.max((clipped - *x).abs());
            top = top.max(clipped.abs());
            *x = clipped;
        }
        if change <= 1e-13 * top.max(1.0) {
            break;
        }
    }
    let top = theta.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if !(top > 0.0) || !top.is_finite() {
        return Certificate::Unproven;
    }
    for x in theta.iter_mut() {
        *x /= top;
        if x.abs() < 1e-12 {
            *x = 0.0; // rounding left by the projection
        }
    }
    // The bound: sup of lambda't over the shared sets (couplings only: the consensus sums are zero).
    let mut bound = 0.0;
    let mut through: Vec<String> = Vec::new();
    for (c, cp) in plan.couplings.iter().enumerate() {
        let mut any = false;
        for (j, &p) in coupling_params[c].iter().enumerate() {
            bound += theta[p] * cp.rhs[j];
            any = any || theta[p] != 0.0;
        }
        if any {
            through.push(format!("coupling `{}`", cp.name));
        }
    }
    for (s, blk) in plan.shared.iter().enumerate() {
        for (v, var) in blk.vars.iter().enumerate() {
            let any =
                inp.consensus_index[s][v].iter().any(|&start| (0..var.size).any(|j| theta[param[start + j]] != 0.0));
            if any {
                through.push(format!("consensus on `{}.{}`", blk.name, var.name));
            }
        }
    }
    // The objects' supports: min over each set of lambda_i'(M_i x + e_i), exact for coordinate bounds.
    let mut total = 0.0;
    let mut involved: Vec<&str> = Vec::new();
    for (i, map) in inp.maps.iter().enumerate() {
        let r = map.rows();
        let Some((lo, hi)) = bounds.get(i).and_then(|b| b.as_ref()) else { continue };
        if r == 0 {
            continue;
        }
        let lam: Vec<f64> = (0..r).map(|k| theta[param[inp.object_rows[i] + k]]).collect();
        if lam.iter().all(|&l| l == 0.0) {
            continue;
        }
        let mut c = vec![0.0; map.n];
        map.apply_t_into(&lam, &mut c);
        let mut support: f64 = lam.iter().zip(&map.e).map(|(l, e)| l * e).sum();
        for (j, &cj) in c.iter().enumerate() {
            if cj.abs() <= 1e-12 {
                continue;
            }
            let bound_j = if cj > 0.0 { lo[j] } else { hi[j] };
            if bound_j.is_infinite() {
                return Certificate::Unproven; // unbounded below along coordinate j: no proof
            }
            support += cj * bound_j;
        }
        total += support;
        involved.push(plan.objects[i].name);
    }
    if involved.is_empty() {
        return Certificate::Unproven;
    }
    let gap = total - bound;
    if !(gap > 1e-6 * 1.0f64.max(total.abs()).max(bound.abs())) {
        return Certificate::Unproven;
    }
    let mut asked: Vec<String> = involved.iter().take(5).map(|n| format!("`{n}`")).collect::<Vec<_>>();
    let mut asked_text = asked.join(", ");
    if involved.len() > 5 {
        asked_text += &format!(" and {} more", involved.len() - 5);
    }
    asked.clear();
    let through_text = if through.is_empty() { "its links".to_string() } else { through.join(", ") };
    Certificate::Proven(format!(
        "the plan is infeasible through {} (certificate verified at iteration {}: min over the local sets of \
         lambda'(rows) = {} > sup over the shared sets = {}); objects involved: {}",
        through_text,
        inp.iteration,
        fmt_g6(total),
        fmt_g6(bound),
        asked_text
    ))
}

/// `v` as C's `%.6g` (and Python's `:.6g`): six significant digits, trailing zeros dropped,
/// scientific below 1e-4 and from 1e6 on.
fn fmt_g6(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "nan".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let sci = format!("{v:.5e}"); // rounded to six digits: its exponent decides the style
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", trim(mantissa), sign, exp.abs())
    } else {
        trim(&format!("{:.*}", (5 - exp) as usize, v))
    }
}

/// A JSON number (`null` for NaN and infinities, as the Python contract).
#[must_use]
pub fn json_f64(v: f64) -> String {
    if v.is_finite() {
        format!("{:?}", v)
    } else {
        "null".to_string()
    }
}

fn json_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "null".to_string(), json_f64)
}

fn json_nested(data: &[f64], shape: &[usize]) -> String {
    match shape.split_first() {
        None => data.first().map_or_else(|| "null".to_string(), |v| json_f64(*v)),
        Some((&d, rest)) => {
            let step: usize = rest.iter().product();
            let parts: Vec<String> = (0..d).map(|i| json_nested(&data[i * step..(i + 1) * step], rest)).collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

fn json_vars(values: &[f64], vars: &[VarInfo]) -> String {
    let parts: Vec<String> = vars
        .iter()
        .map(|v| {
            let size: usize = v.shape.iter().product();
            let slice = values.get(v.offset..v.offset + size).unwrap_or(&[]);
            format!("{}: {}", json_str(v.name), json_nested(slice, &v.shape))
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

impl PlanSolution {
    /// The `catoptc solve --json` object (keys sorted; values reported only for a status with a
    /// point; no prices, local-solver summary or membership: those are the Python runtimes').
    #[must_use]
    pub fn to_json(&self, plan: &PlanSpec, report: &ReportSpec) -> String {
        let r = &self.result;
        let has_point = matches!(r.status, Status::Optimal | Status::MaxIterations);
        let (objects, shared) = if has_point {
            let o: Vec<String> = report
                .objects
                .iter()
                .filter_map(|(i, vars)| {
                    let name = plan.objects.get(*i)?.name;
                    Some(format!("{}: {}", json_str(name), json_vars(self.x.get(*i)?, vars)))
                })
                .collect();
            let s: Vec<String> = report
                .shared
                .iter()
                .filter_map(|(i, vars)| {
                    let name = plan.shared.get(*i)?.name;
                    Some(format!("{}: {}", json_str(name), json_vars(r.z.get(*i)?, vars)))
                })
                .collect();
            (format!("{{{}}}", o.join(", ")), format!("{{{}}}", s.join(", ")))
        } else {
            ("null".to_string(), "null".to_string())
        };
        format!(
            "{{\"dual_residual\": {}, \"iterations\": {}, \"local_solvers\": null, \"membership\": null, \
             \"message\": {}, \"objective\": {}, \"objects\": {}, \"prices\": {{}}, \"primal_residual\": {}, \
             \"shared\": {}, \"solve_time_s\": {}, \"status\": {}, \"warnings\": []}}",
            json_opt(r.dual_residual),
            r.iterations,
            json_str(&r.message),
            json_opt(self.objective),
            objects,
            json_opt(r.primal_residual),
            shared,
            json_f64(self.seconds),
            json_str(r.status.as_str()),
        )
    }
}
