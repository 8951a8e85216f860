// catoptc's native runtime for C++17: the implementation of catopt_runtime.hpp, copied unchanged
// into every generated project (see the header). It mirrors catopt_dsl.wire,
// catopt_dsl.sync.frame and catopt_dsl.solver.coordinator operation by operation.

#include "catopt_runtime.hpp"

#include <chrono>
#include <cstdio>
#include <limits>
#include <typeinfo>

// Pointers that do not alias (the step's inner loops vectorise without run-time overlap checks):
// GCC, Clang and MSVC all spell it __restrict.
#if defined(__GNUC__) || defined(__clang__) || defined(_MSC_VER)
#define CATOPT_RESTRICT __restrict
#else
#define CATOPT_RESTRICT
#endif

namespace CATOPT_RT_NAMESPACE {
namespace rt {

namespace {

std::array<std::uint32_t, 256> make_crc_table() {
    std::array<std::uint32_t, 256> table{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) {
            c = (c & 1u) ? ((c >> 1) ^ 0x82F63B78u) : (c >> 1);
        }
        table[i] = c;
    }
    return table;
}

const std::array<std::uint32_t, 256>& crc_table() {
    static const std::array<std::uint32_t, 256> table = make_crc_table();
    return table;
}

void put_u16(Bytes& out, std::uint16_t v) {
    out.push_back(static_cast<std::uint8_t>(v & 0xFFu));
    out.push_back(static_cast<std::uint8_t>(v >> 8));
}

void put_u32(Bytes& out, std::uint32_t v) {
    for (int k = 0; k < 4; ++k) out.push_back(static_cast<std::uint8_t>((v >> (8 * k)) & 0xFFu));
}

void put_u64(Bytes& out, std::uint64_t v) {
    for (int k = 0; k < 8; ++k) out.push_back(static_cast<std::uint8_t>((v >> (8 * k)) & 0xFFu));
}

std::uint64_t get_u64(const std::uint8_t* p) {
    std::uint64_t v = 0;
    for (int k = 7; k >= 0; --k) v = (v << 8) | p[k];
    return v;
}

std::uint32_t get_u32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
           (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

std::size_t item_size(std::uint8_t code) {
    switch (code) {
        case DT_F64:
        case DT_I64: return 8;
        case DT_BOOL:
        case DT_UTF8: return 1;
        default: return 0;
    }
}

/// Strict UTF-8 validation (what Python's bytes.decode("utf-8") accepts).
bool valid_utf8(const std::uint8_t* s, std::size_t n) {
    std::size_t i = 0;
    while (i < n) {
        const std::uint8_t c = s[i];
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        }
        if ((c & 0xE0u) == 0xC0u) {
            len = 2;
            cp = c & 0x1Fu;
        } else if ((c & 0xF0u) == 0xE0u) {
            len = 3;
            cp = c & 0x0Fu;
        } else if ((c & 0xF8u) == 0xF0u) {
            len = 4;
            cp = c & 0x07u;
        } else
            return false;
        if (n - i < len) return false;
        for (std::size_t k = 1; k < len; ++k) {
            if ((s[i + k] & 0xC0u) != 0x80u) return false;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

/// Bounds-checked cursor: every overrun throws Truncated.
struct Cursor {
    const std::uint8_t* buf;
    std::size_t pos;
    std::size_t end;

    const std::uint8_t* take(std::size_t n, const std::string& what) {
        if (n > end - pos) {
            throw WireError(WireErrorKind::Truncated, what + ": needs " + std::to_string(n) + " bytes at offset " +
                                                          std::to_string(pos) + ", only " + std::to_string(end - pos) +
                                                          " left");
        }
        const std::uint8_t* out = buf + pos;
        pos += n;
        return out;
    }
    std::uint8_t u8(const std::string& what) { return *take(1, what); }
    std::uint16_t u16(const std::string& what) {
        const std::uint8_t* p = take(2, what);
        return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
    }
    std::uint32_t u32(const std::string& what) { return get_u32(take(4, what)); }
    std::uint64_t u64(const std::string& what) { return get_u64(take(8, what)); }
};

/// Byte size of data with `code` and dims (little-endian u32s); SIZE_MAX on overflow.
std::size_t data_size(std::uint8_t code, const std::uint8_t* dims, std::size_t ndim) {
    std::size_t n = item_size(code);
    for (std::size_t k = 0; k < ndim; ++k) {
        const std::size_t d = get_u32(dims + 4 * k);
        if (d != 0 && n > SIZE_MAX / d) return SIZE_MAX;
        n *= d;
    }
    return n;
}

void check_ndim(std::size_t ndim, const std::string& what) {
    if (ndim > MAX_NDIM) {
        throw WireError(WireErrorKind::Malformed, what + ": " + std::to_string(ndim) + " dims, at most " +
                                                      std::to_string(MAX_NDIM) + " are allowed");
    }
}

/// Refuse a shape that describes more than INT64_MAX bytes with its zero dims counted as 1 (checked
/// before its data is read): no encoder writes one, and numpy cannot represent it.
void check_shape(std::uint8_t code, const std::uint8_t* dims, std::size_t ndim, const std::string& what) {
    const std::uint64_t limit = static_cast<std::uint64_t>(INT64_MAX);
    std::uint64_t n = item_size(code);
    for (std::size_t k = 0; k < ndim; ++k) {
        const std::uint64_t d = std::max<std::uint64_t>(get_u32(dims + 4 * k), 1);
        if (n > limit / d) throw WireError(WireErrorKind::Malformed, what + ": shape is too large");
        n *= d;
    }
}

void check_bools(const std::uint8_t* raw, std::size_t size, const std::string& what) {
    for (std::size_t j = 0; j < size; ++j) {
        if (raw[j] > 1) throw WireError(WireErrorKind::Malformed, what + ": bool byte other than 0 or 1");
    }
}

std::size_t product(const Dims& dims) {
    std::size_t n = 1;
    for (auto d : dims) n *= d;
    return n;
}

double max_abs(const std::vector<double>& v) {
    double m = 0.0;
    for (double x : v) m = std::max(m, std::fabs(x));
    return m;
}

}  // namespace

const char* kind_name(WireErrorKind kind) noexcept {
    switch (kind) {
        case WireErrorKind::Truncated: return "Truncated";
        case WireErrorKind::Checksum: return "Checksum";
        case WireErrorKind::BadMagic: return "BadMagic";
        case WireErrorKind::Version: return "Version";
        case WireErrorKind::Length: return "Length";
        case WireErrorKind::TooLarge: return "TooLarge";
        case WireErrorKind::Malformed: return "Malformed";
        case WireErrorKind::UnknownMessageType: return "UnknownMessageType";
        case WireErrorKind::SchemaMismatch: return "SchemaMismatch";
        case WireErrorKind::MissingField: return "MissingField";
        case WireErrorKind::Encode: return "Encode";
    }
    return "Unknown";
}

WireError::WireError(WireErrorKind kind, const std::string& message)
    : std::runtime_error(std::string(kind_name(kind)) + ": " + message), kind_(kind) {}

std::uint32_t crc32c_update(std::uint32_t crc, const std::uint8_t* data, std::size_t size) noexcept {
    const auto& table = crc_table();
    std::uint32_t c = ~crc;
    for (std::size_t i = 0; i < size; ++i) c = table[(c ^ data[i]) & 0xFFu] ^ (c >> 8);
    return ~c;
}

std::uint32_t crc32c(const std::uint8_t* data, std::size_t size) noexcept { return crc32c_update(0, data, size); }

double f64_from_bits(std::uint64_t bits) noexcept {
    double v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
}

std::uint64_t f64_to_bits(double value) noexcept {
    std::uint64_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
}

std::vector<double> blob_f64(const std::uint64_t* bits, std::size_t count) {
    std::vector<double> out(count);
    for (std::size_t i = 0; i < count; ++i) out[i] = f64_from_bits(bits[i]);
    return out;
}

// -- records ----------------------------------------------------------------------------------

RecordWriter::RecordWriter(const std::string& name, std::uint32_t version, std::uint16_t field_count) {
    if (name.size() > 0xFFFFu) throw WireError(WireErrorKind::Encode, "schema name longer than 65535 bytes");
    buf_ = {'C', 'A', 'T', 'R', RECORD_FORMAT_VERSION, 0};
    put_u16(buf_, static_cast<std::uint16_t>(name.size()));
    buf_.insert(buf_.end(), name.begin(), name.end());
    put_u32(buf_, version);
    put_u16(buf_, field_count);
}

void RecordWriter::field_header(std::uint16_t index, std::uint8_t code, const Dims& dims, std::size_t count,
                                const char* what) {
    if (count != product(dims)) {
        throw WireError(WireErrorKind::Encode, std::string(what) + ": " + std::to_string(count) +
                                                   " values, the schema's shape needs " +
                                                   std::to_string(product(dims)));
    }
    put_u16(buf_, index);
    buf_.push_back(code);
    buf_.push_back(static_cast<std::uint8_t>(dims.size()));
    for (auto d : dims) put_u32(buf_, d);
}

void RecordWriter::f64s(std::uint16_t index, const Dims& dims, const std::vector<double>& data, const char* what) {
    field_header(index, DT_F64, dims, data.size(), what);
    for (double v : data) put_u64(buf_, f64_to_bits(v));
}

void RecordWriter::i64s(std::uint16_t index, const Dims& dims, const std::vector<std::int64_t>& data,
                        const char* what) {
    field_header(index, DT_I64, dims, data.size(), what);
    for (std::int64_t v : data) put_u64(buf_, static_cast<std::uint64_t>(v));
}

void RecordWriter::bools(std::uint16_t index, const Dims& dims, const std::vector<bool>& data, const char* what) {
    field_header(index, DT_BOOL, dims, data.size(), what);
    for (bool v : data) buf_.push_back(v ? 1 : 0);
}

Bytes RecordWriter::finish() {
    Bytes out = buf_;
    put_u32(out, crc32c(out.data(), out.size()));
    return out;
}

RecordView parse_record(const std::uint8_t* data, std::size_t n, const std::string& schema_name,
                        std::uint32_t schema_version, std::size_t known) {
    static const std::uint8_t magic[4] = {'C', 'A', 'T', 'R'};
    if (n >= 4 && std::memcmp(data, magic, 4) != 0)
        throw WireError(WireErrorKind::BadMagic, "not a schema record (bad magic)");
    if (n < MIN_RECORD_SIZE) {
        throw WireError(
            WireErrorKind::Truncated,
            "record of " + std::to_string(n) + " bytes is shorter than the minimum " + std::to_string(MIN_RECORD_SIZE));
    }
    // Structure first, then the CRC: a cut record is reported as truncated.
    Cursor rd{data, 4, n - 4};
    const std::uint8_t version = rd.u8("record header");
    if (version != RECORD_FORMAT_VERSION) {
        throw WireError(WireErrorKind::Version,
                        "record format version " + std::to_string(version) + " is not supported");
    }
    const std::uint8_t flags = rd.u8("record header");
    if (flags != 0)
        throw WireError(WireErrorKind::Malformed, "record flags " + std::to_string(flags) + ": none are defined");
    const std::uint16_t name_len = rd.u16("record header");
    const std::uint8_t* name = rd.take(name_len, "schema name");
    if (!valid_utf8(name, name_len)) throw WireError(WireErrorKind::Malformed, "schema name: not valid UTF-8");
    RecordView view;
    view.name.assign(reinterpret_cast<const char*>(name), name_len);
    view.version = rd.u32("record header");
    const std::uint16_t count = rd.u16("record header");
    for (std::uint16_t expected = 0; expected < count; ++expected) {
        const std::uint16_t index = rd.u16("field header");
        const std::uint8_t code = rd.u8("field header");
        const std::uint8_t ndim = rd.u8("field header");
        if (index != expected) {
            throw WireError(WireErrorKind::Malformed, "field index " + std::to_string(index) + " where " +
                                                          std::to_string(expected) +
                                                          " belongs: a record holds fields 0, 1, 2, ... in order");
        }
        if (item_size(code) == 0 || code == DT_UTF8) {
            throw WireError(WireErrorKind::Malformed,
                            "field " + std::to_string(index) + ": unknown dtype code " + std::to_string(code));
        }
        const std::string what = "field " + std::to_string(index);
        check_ndim(ndim, what);
        const std::uint8_t* dims = rd.take(4u * ndim, what + " dims");
        check_shape(code, dims, ndim, what);
        const std::size_t size = data_size(code, dims, ndim);
        const std::uint8_t* raw = rd.take(size, what + " data");
        if (code == DT_BOOL) check_bools(raw, size, what);
        if (index < known) {
            Dims d;
            for (std::size_t j = 0; j < ndim; ++j) d.push_back(get_u32(dims + 4 * j));
            view.fields.push_back(RecordView::Raw{index, code, d, raw, size});
        }  // else: appended by a newer writer, skipped using its dims
    }
    if (rd.pos != rd.end) {
        throw WireError(WireErrorKind::Length,
                        std::to_string(rd.end - rd.pos) + " unexpected bytes before the checksum");
    }
    if (crc32c(data, n - 4) != get_u32(data + n - 4))
        throw WireError(WireErrorKind::Checksum, "record CRC32C mismatch");
    if (view.name != schema_name) {
        throw WireError(WireErrorKind::SchemaMismatch,
                        "record is for schema \"" + view.name + "\", not \"" + schema_name + "\"");
    }
    // A writer of the reader's own version wrote exactly the reader's fields (the canonical form);
    // across versions a reader defaults the fields it lacks and skips the ones it does not know.
    if (view.version == schema_version && count != known) {
        throw WireError(WireErrorKind::SchemaMismatch,
                        "a v" + std::to_string(view.version) + " record of " + schema_name + " holds " +
                            std::to_string(count) + " fields, but v" + std::to_string(schema_version) + " has " +
                            std::to_string(known) + ": a writer of the reader's own version writes exactly its fields");
    }
    return view;
}

const RecordView::Raw* RecordView::raw(std::uint16_t index, std::uint8_t code, const Dims& dims,
                                       const char* what) const {
    for (const auto& r : fields) {
        if (r.index != index) continue;
        if (r.code != code || r.dims != dims) {
            throw WireError(WireErrorKind::SchemaMismatch,
                            std::string(what) + ": record dtype/shape contradicts the schema");
        }
        return &r;
    }
    return nullptr;
}

bool RecordView::f64s(std::uint16_t index, const Dims& dims, const char* what, std::vector<double>& out) const {
    const Raw* r = raw(index, DT_F64, dims, what);
    if (r == nullptr) return false;
    out.resize(r->size / 8);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = f64_from_bits(get_u64(r->data + 8 * i));
    return true;
}

bool RecordView::i64s(std::uint16_t index, const Dims& dims, const char* what, std::vector<std::int64_t>& out) const {
    const Raw* r = raw(index, DT_I64, dims, what);
    if (r == nullptr) return false;
    out.resize(r->size / 8);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::int64_t>(get_u64(r->data + 8 * i));
    return true;
}

bool RecordView::bools(std::uint16_t index, const Dims& dims, const char* what, std::vector<bool>& out) const {
    const Raw* r = raw(index, DT_BOOL, dims, what);
    if (r == nullptr) return false;
    out.assign(r->size, false);  // every byte is 0 or 1 (checked by parse_record)
    for (std::size_t i = 0; i < r->size; ++i) out[i] = r->data[i] == 1;
    return true;
}

void missing(const char* what) {
    throw WireError(WireErrorKind::MissingField, std::string(what) + ": required field absent from the record");
}

// -- frames -----------------------------------------------------------------------------------

bool FrameHeader::operator==(const FrameHeader& o) const {
    return msg_type == o.msg_type && spec_hash == o.spec_hash && schema_id == o.schema_id &&
           schema_version == o.schema_version && sender == o.sender && epoch == o.epoch && seq == o.seq &&
           round == o.round;
}

FrameEntry FrameEntry::f64s(const std::string& name, const Dims& dims, const std::vector<double>& values) {
    FrameEntry e;
    e.name = name;
    e.code = DT_F64;
    e.dims = dims;
    for (double v : values) put_u64(e.data, f64_to_bits(v));
    return e;
}

std::vector<double> FrameEntry::as_f64s() const {
    std::vector<double> out;
    if (code != DT_F64) return out;
    for (std::size_t i = 0; i + 8 <= data.size(); i += 8) out.push_back(f64_from_bits(get_u64(data.data() + i)));
    return out;
}

bool FrameEntry::operator==(const FrameEntry& o) const {
    return name == o.name && code == o.code && dims == o.dims && data == o.data;
}

Bytes Frame::encode() const {
    if (header.msg_type < 1 || header.msg_type > MAX_MSG_TYPE) {
        throw WireError(WireErrorKind::Encode, "unknown message type " + std::to_string(header.msg_type));
    }
    std::vector<const FrameEntry*> sorted;
    for (const auto& e : entries) sorted.push_back(&e);
    std::sort(sorted.begin(), sorted.end(), [](const FrameEntry* a, const FrameEntry* b) { return a->name < b->name; });
    Bytes out(FRAME_HEADER_SIZE, 0);
    put_u32(out, static_cast<std::uint32_t>(sorted.size()));
    for (std::size_t i = 0; i < sorted.size(); ++i) {
        const FrameEntry& e = *sorted[i];
        if (i > 0 && sorted[i - 1]->name == e.name) throw WireError(WireErrorKind::Encode, "duplicate entry " + e.name);
        if (e.name.empty() || e.name.size() > 0xFFFFu)
            throw WireError(WireErrorKind::Encode, "entry names must be 1..65535 bytes");
        if (item_size(e.code) == 0 || e.dims.size() > MAX_NDIM ||
            product(e.dims) * item_size(e.code) != e.data.size()) {
            throw WireError(WireErrorKind::Encode, "entry " + e.name + ": data does not match its dims");
        }
        put_u16(out, static_cast<std::uint16_t>(e.name.size()));
        out.insert(out.end(), e.name.begin(), e.name.end());
        out.push_back(e.code);
        out.push_back(static_cast<std::uint8_t>(e.dims.size()));
        for (auto d : e.dims) put_u32(out, d);
        while (out.size() % 8 != 0) out.push_back(0);
        out.insert(out.end(), e.data.begin(), e.data.end());
    }
    Bytes head = {'C', 'A', 'T', 'F', PROTOCOL_VERSION, header.msg_type, 0, 0};
    head.insert(head.end(), header.spec_hash.begin(), header.spec_hash.end());
    put_u32(head, header.schema_id);
    put_u32(head, header.schema_version);
    put_u32(head, header.sender);
    put_u32(head, static_cast<std::uint32_t>(out.size() - FRAME_HEADER_SIZE));
    put_u64(head, header.epoch);
    put_u64(head, header.seq);
    put_u64(head, header.round);
    std::copy(head.begin(), head.end(), out.begin());
    put_u32(out, crc32c(out.data(), out.size()));
    return out;
}

Frame Frame::decode(const std::uint8_t* data, std::size_t n, std::size_t max_payload) {
    static const std::uint8_t magic[4] = {'C', 'A', 'T', 'F'};
    if (n >= 4 && std::memcmp(data, magic, 4) != 0) throw WireError(WireErrorKind::BadMagic, "not a frame (bad magic)");
    if (n < 5) throw WireError(WireErrorKind::Truncated, "frame shorter than its header");
    if (data[4] != PROTOCOL_VERSION) throw WireError(WireErrorKind::Version, "protocol version not supported");
    if (n < FRAME_HEADER_SIZE) throw WireError(WireErrorKind::Truncated, "frame shorter than its header");
    Cursor rd{data, 5, FRAME_HEADER_SIZE};
    Frame f;
    f.header.msg_type = rd.u8("frame header");
    const std::uint16_t flags = rd.u16("frame header");
    const std::uint8_t* hash = rd.take(32, "frame header");
    std::copy(hash, hash + 32, f.header.spec_hash.begin());
    f.header.schema_id = rd.u32("frame header");
    f.header.schema_version = rd.u32("frame header");
    f.header.sender = rd.u32("frame header");
    const std::size_t payload = rd.u32("frame header");
    f.header.epoch = rd.u64("frame header");
    f.header.seq = rd.u64("frame header");
    f.header.round = rd.u64("frame header");
    if (f.header.msg_type < 1 || f.header.msg_type > MAX_MSG_TYPE) {
        throw WireError(WireErrorKind::UnknownMessageType, "unknown message type " + std::to_string(f.header.msg_type));
    }
    if (flags != 0) throw WireError(WireErrorKind::Malformed, "frame flags: none are defined");
    if (payload > max_payload) throw WireError(WireErrorKind::TooLarge, "declared payload exceeds the cap");
    const std::size_t total = FRAME_HEADER_SIZE + payload + 4;
    if (n < total)
        throw WireError(WireErrorKind::Truncated,
                        "frame declares " + std::to_string(total) + " bytes, got " + std::to_string(n));
    if (n > total) throw WireError(WireErrorKind::Length, std::to_string(n - total) + " bytes after the frame");
    if (crc32c(data, n - 4) != get_u32(data + n - 4)) throw WireError(WireErrorKind::Checksum, "frame CRC32C mismatch");
    Cursor body{data, FRAME_HEADER_SIZE, n - 4};
    try {
        const std::size_t count = body.u32("payload entry count");
        if (count > (body.end - body.pos) / 5)
            throw WireError(WireErrorKind::Malformed, "too many entries for the payload");
        for (std::size_t k = 0; k < count; ++k) {
            FrameEntry e;
            const std::uint16_t name_len = body.u16("entry name length");
            if (name_len == 0) throw WireError(WireErrorKind::Malformed, "empty payload entry name");
            const std::uint8_t* name = body.take(name_len, "entry name");
            e.name.assign(reinterpret_cast<const char*>(name), name_len);
            if (!f.entries.empty() && !(f.entries.back().name < e.name)) {
                throw WireError(WireErrorKind::Malformed, "entries must be sorted by name, without duplicates");
            }
            if (!valid_utf8(name, name_len)) throw WireError(WireErrorKind::Malformed, "entry name is not valid UTF-8");
            e.code = body.u8("entry dtype");
            const std::uint8_t ndim = body.u8("entry ndim");
            if (item_size(e.code) == 0)
                throw WireError(WireErrorKind::Malformed, "unknown dtype code " + std::to_string(e.code));
            const std::string what = "entry " + e.name;
            check_ndim(ndim, what);
            const std::uint8_t* dims = body.take(4u * ndim, "entry dims");
            check_shape(e.code, dims, ndim, what);
            for (std::size_t j = 0; j < ndim; ++j) e.dims.push_back(get_u32(dims + 4 * j));
            const std::size_t pad = (8 - body.pos % 8) % 8;
            const std::uint8_t* padding = body.take(pad, "entry padding");
            for (std::size_t j = 0; j < pad; ++j) {
                if (padding[j] != 0) throw WireError(WireErrorKind::Malformed, "non-zero padding");
            }
            const std::size_t size = data_size(e.code, dims, ndim);
            const std::uint8_t* raw = body.take(size, "entry data");
            if (e.code == DT_BOOL) check_bools(raw, size, what);
            if (e.code == DT_UTF8 && (ndim != 1 || !valid_utf8(raw, size))) {
                throw WireError(WireErrorKind::Malformed, "text entry is not 1-d UTF-8");
            }
            e.data.assign(raw, raw + size);
            f.entries.push_back(std::move(e));
        }
    } catch (const WireError& err) {
        // The CRC matched, so the frame is intact: an overrun inside it is a malformed payload.
        if (err.kind() == WireErrorKind::Truncated) throw WireError(WireErrorKind::Malformed, err.what());
        throw;
    }
    if (body.pos != body.end) throw WireError(WireErrorKind::Malformed, "bytes after the last payload entry");
    return f;
}

// -- plan structure ---------------------------------------------------------------------------

Block Block::consensus(std::size_t shared, std::size_t var, std::size_t x_offset, std::size_t size) {
    Block b;
    b.kind = BlockKind::Consensus;
    b.shared = shared;
    b.var = var;
    b.x_offset = x_offset;
    b.size = size;
    return b;
}

Block Block::coupling_term(std::size_t coupling, std::size_t rows, std::vector<double> b_mat,
                           std::vector<double> b_vec) {
    Block b;
    b.kind = BlockKind::Coupling;
    b.coupling = coupling;
    b.rows = rows;
    b.b_mat = std::move(b_mat);
    b.b_vec = std::move(b_vec);
    return b;
}

std::size_t ObjectSpec::rows() const {
    std::size_t r = 0;
    for (const auto& b : blocks) r += b.row_count();
    return r;
}

std::vector<double> ObjectSpec::apply(const std::vector<double>& x) const {
    std::vector<double> out;
    out.reserve(rows());
    for (const auto& b : blocks) {
        if (b.kind == BlockKind::Consensus) {
            for (std::size_t j = 0; j < b.size; ++j) out.push_back(x[b.x_offset + j]);
        } else {
            for (std::size_t r = 0; r < b.rows; ++r) {
                double dot = 0.0;
                for (std::size_t j = 0; j < n; ++j) dot += b.b_mat[r * n + j] * x[j];
                out.push_back(dot + b.b_vec[r]);
            }
        }
    }
    return out;
}

std::vector<double> ObjectSpec::apply_t(const std::vector<double>& y) const {
    std::vector<double> out(n, 0.0);
    std::size_t row0 = 0;
    for (const auto& b : blocks) {
        if (b.kind == BlockKind::Consensus) {
            for (std::size_t j = 0; j < b.size; ++j) out[b.x_offset + j] += y[row0 + j];
        } else {
            for (std::size_t r = 0; r < b.rows; ++r) {
                for (std::size_t j = 0; j < n; ++j) out[j] += b.b_mat[r * n + j] * y[row0 + r];
            }
        }
        row0 += b.row_count();
    }
    return out;
}

RowMap::RowMap(const ObjectSpec& object) : n(object.n) {
    start.push_back(0);
    for (const auto& b : object.blocks) {
        if (b.kind == BlockKind::Consensus) {
            for (std::size_t j = 0; j < b.size; ++j) {
                col.push_back(b.x_offset + j);
                val.push_back(1.0);
                e.push_back(0.0);
                start.push_back(col.size());
            }
        } else {
            for (std::size_t r = 0; r < b.rows; ++r) {
                for (std::size_t j = 0; j < n; ++j) {
                    const double v = b.b_mat[r * n + j];
                    if (v == 0.0) continue;
                    col.push_back(j);
                    val.push_back(v);
                }
                e.push_back(b.b_vec[r]);
                start.push_back(col.size());
            }
        }
    }
    selection = is_selection();
}

bool RowMap::is_selection() const {
    std::vector<bool> hit(n, false);
    for (std::size_t k = 0; k < e.size(); ++k) {
        const std::size_t p = start[k];
        if (start[k + 1] != p + 1 || val[p] != 1.0 || col[p] >= n || hit[col[p]]) return false;
        hit[col[p]] = true;
    }
    return true;
}

RowMap RowMap::from_dense(const std::vector<double>& a, std::size_t rows, std::size_t n) {
    RowMap out;
    out.n = n;
    out.start.push_back(0);
    if (a.size() == rows * n) {
        for (std::size_t i = 0; i < rows; ++i) {
            for (std::size_t j = 0; j < n; ++j) {
                const double v = a[i * n + j];
                if (v == 0.0) continue;
                out.col.push_back(j);
                out.val.push_back(v);
            }
            out.e.push_back(0.0);
            out.start.push_back(out.col.size());
        }
    }
    out.selection = out.is_selection();
    return out;
}

void RowMap::apply_into(const double* x, double* out) const {
    const std::size_t rows = e.size();
    if (selection) {  // row k's one entry is col[k], weight 1
        const std::size_t* c = col.data();
        const double* ev = e.data();
        for (std::size_t k = 0; k < rows; ++k) out[k] = x[c[k]] + ev[k];
        return;
    }
    for (std::size_t k = 0; k < rows; ++k) {
        double dot = 0.0;
        for (std::size_t p = start[k]; p < start[k + 1]; ++p) dot += val[p] * x[col[p]];
        out[k] = dot + e[k];
    }
}

void RowMap::apply_t_into(const double* y, double* out) const {
    for (std::size_t j = 0; j < n; ++j) out[j] = 0.0;
    const std::size_t rows = e.size();
    if (selection) {
        const std::size_t* c = col.data();
        for (std::size_t k = 0; k < rows; ++k) out[c[k]] += y[k];
        return;
    }
    for (std::size_t k = 0; k < rows; ++k) {
        const double yk = y[k];
        for (std::size_t p = start[k]; p < start[k + 1]; ++p) out[col[p]] += val[p] * yk;
    }
}

void ObjectSpec::dense(std::vector<double>& m, std::vector<double>& e) const {
    const std::size_t r = rows();
    m.assign(r * n, 0.0);
    e.assign(r, 0.0);
    std::size_t row0 = 0;
    for (const auto& b : blocks) {
        if (b.kind == BlockKind::Consensus) {
            for (std::size_t j = 0; j < b.size; ++j) m[(row0 + j) * n + b.x_offset + j] = 1.0;
        } else {
            std::copy(b.b_mat.begin(), b.b_mat.end(), m.begin() + static_cast<std::ptrdiff_t>(row0 * n));
            std::copy(b.b_vec.begin(), b.b_vec.end(), e.begin() + static_cast<std::ptrdiff_t>(row0));
        }
        row0 += b.row_count();
    }
}

// -- solving ----------------------------------------------------------------------------------

const char* status_name(Status status) noexcept {
    switch (status) {
        case Status::Optimal: return "optimal";
        case Status::Infeasible: return "infeasible";
        case Status::Unbounded: return "unbounded";
        case Status::MaxIterations: return "max_iterations";
        case Status::LocalSolverFailed: return "local_solver_failed";
    }
    return "unknown";
}

StepError::StepError(Status status, const std::string& message) : std::runtime_error(message), status_(status) {}

bool dense_solve(std::vector<double> a, std::vector<double> b, std::size_t n, std::vector<double>& x) {
    for (std::size_t col = 0; col < n; ++col) {
        std::size_t pivot = col;
        for (std::size_t i = col + 1; i < n; ++i) {
            if (std::fabs(a[i * n + col]) > std::fabs(a[pivot * n + col])) pivot = i;
        }
        if (a[pivot * n + col] == 0.0) return false;
        if (pivot != col) {
            for (std::size_t k = 0; k < n; ++k) std::swap(a[pivot * n + k], a[col * n + k]);
            std::swap(b[pivot], b[col]);
        }
        for (std::size_t row = col + 1; row < n; ++row) {
            const double factor = a[row * n + col] / a[col * n + col];
            if (factor != 0.0) {
                for (std::size_t k = col; k < n; ++k) a[row * n + k] -= factor * a[col * n + k];
                b[row] -= factor * b[col];
            }
        }
    }
    x.assign(n, 0.0);
    for (std::size_t row = n; row-- > 0;) {
        double s = b[row];
        for (std::size_t k = row + 1; k < n; ++k) s -= a[row * n + k] * x[k];
        x[row] = s / a[row * n + row];
    }
    return true;
}

QuadraticSolver::QuadraticSolver(const ObjectSpec& object, std::vector<double> p, std::vector<double> q, double c)
    : object_(object), p_(std::move(p)), q_(std::move(q)), c_(c) {
    const std::size_t n = object.n, r = object.rows();
    std::vector<double> m, e;
    object.dense(m, e);
    mtm_.assign(n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < n; ++j) {
            double s = 0.0;
            for (std::size_t k = 0; k < r; ++k) s += m[k * n + i] * m[k * n + j];
            mtm_[i * n + j] = s;
        }
    }
}

std::vector<double> QuadraticSolver::prox(const std::vector<double>& centre, double rho) {
    const std::size_t n = object_.n;
    std::vector<double> a(n * n), b = object_.apply_t(centre), x;
    for (std::size_t i = 0; i < n * n; ++i) a[i] = p_[i] + rho * mtm_[i];
    for (std::size_t i = 0; i < n; ++i) b[i] = rho * b[i] - q_[i];
    if (!dense_solve(a, b, n, x))
        throw StepError(Status::LocalSolverFailed, "object `" + object_.name + "`: singular prox system");
    return x;
}

double QuadraticSolver::objective(const std::vector<double>& x) const {
    const std::size_t n = object_.n;
    double quad = 0.0, lin = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        double px = 0.0;
        for (std::size_t j = 0; j < n; ++j) px += p_[i * n + j] * x[j];
        quad += x[i] * px;
        lin += q_[i] * x[i];
    }
    return 0.5 * quad + lin + c_;
}

// -- the coordinator (catopt_dsl/solver/coordinator.py, line by line) --------------------------

namespace {
constexpr double RHO_MIN = 1e-6, RHO_MAX = 1e6, RHO_MOVE = 5.0, TINY = 1e-12;
constexpr double CURVATURE_BAND = 1.9, MIN_CORRELATION = 0.2, SECANT_FLOOR = 1e-9;

double norm2(const std::vector<double>& v) {
    double s = 0.0;
    for (double x : v) s += x * x;
    return std::sqrt(s);
}

// The secant curvature ||delta yhat|| / ||delta a|| of two iterations, or a negative value when the
// secant is rounding, not correlated, or out of range (as catopt_dsl.solver.rho.secant_curvature).
double secant_curvature(const std::vector<double>& a_prev, const std::vector<double>& y_prev,
                        const std::vector<double>& a, const std::vector<double>& yhat) {
    // One pass, no temporaries: each sum runs in index order, as norm2 over the differences would.
    double inner = 0.0, sda = 0.0, sdy = 0.0;
    for (std::size_t k = 0; k < a.size(); ++k) {
        const double da = a[k] - a_prev[k], dy = yhat[k] - y_prev[k];
        inner += dy * da;
        sda += da * da;
        sdy += dy * dy;
    }
    const double nda = std::sqrt(sda), ndy = std::sqrt(sdy);
    if (!std::isfinite(nda) || !std::isfinite(ndy)) return -1.0;
    if (nda <= SECANT_FLOOR * std::max(norm2(a), 1.0) || ndy <= SECANT_FLOOR * std::max(norm2(yhat), 1.0)) return -1.0;
    if (-inner < MIN_CORRELATION * nda * ndy) return -1.0;
    const double kappa = ndy / nda;
    if (kappa < RHO_MIN || kappa > RHO_MAX) return -1.0;
    return kappa;
}
}  // namespace

Coordinator::Coordinator(PlanSpec plan_in, Options opts_in)
    : plan(std::move(plan_in)), opts(opts_in), rho(opts_in.rho) {
    consensus_index_.resize(plan.shared.size());
    for (std::size_t s = 0; s < plan.shared.size(); ++s) consensus_index_[s].resize(plan.shared[s].vars.size());
    term_index_.resize(plan.couplings.size());
    std::size_t offset = 0;
    for (const auto& o : plan.objects) {
        object_rows_.push_back(offset);
        maps_.emplace_back(o);
        e_.push_back(maps_.back().e);
        all_selection_ = all_selection_ && maps_.back().selection;
        std::size_t local = 0;
        for (const auto& b : o.blocks) {
            if (b.kind == BlockKind::Consensus)
                consensus_index_[b.shared][b.var].push_back(offset + local);
            else
                term_index_[b.coupling].push_back(offset + local);
            local += b.row_count();
        }
        offset += local;
    }
    total_rows_ = offset;
    coupling_mask_.assign(offset, 0.0);
    cp_stride_.assign(plan.couplings.size(), 0);
    for (std::size_t c = 0; c < plan.couplings.size(); ++c) {
        const std::vector<std::size_t>& starts = term_index_[c];
        const std::size_t m = plan.couplings[c].rhs.size();
        bool stride = !starts.empty();
        for (std::size_t i = 0; i < starts.size(); ++i) {
            stride = stride && starts[i] == starts[0] + i * m;
            for (std::size_t j = 0; j < m; ++j) coupling_mask_[starts[i] + j] = 1.0;
            has_coupling_rows_ = true;
        }
        cp_stride_[c] = stride ? 1 : 0;
    }
    t.assign(offset, 0.0);
    u.assign(offset, 0.0);
    e_flat_.reserve(offset);
    for (const auto& e : e_) e_flat_.insert(e_flat_.end(), e.begin(), e.end());
    centre_flat_.assign(offset, 0.0);
    for (const auto& s : plan.shared) z.emplace_back(s.n, 0.0);
    proxes_.resize(plan.shared.size());
    sync_consensus_targets();
    for (auto* buf : {&a_, &t_old_, &yhat_, &h_, &v_, &dt_, &secant_a_, &secant_y_}) buf->assign(offset, 0.0);
    std::size_t widest = 0, coupling_rows = 0;
    for (const auto& o : plan.objects) widest = std::max(widest, o.n);
    for (const auto& cp : plan.couplings) coupling_rows = std::max(coupling_rows, cp.rhs.size());
    col_buf_.assign(widest, 0.0);
    cp_sum_.assign(coupling_rows, 0.0);
    cp_shift_.assign(coupling_rows, 0.0);
    means_.resize(plan.shared.size());
    counts_.resize(plan.shared.size());
    for (std::size_t s = 0; s < plan.shared.size(); ++s) {
        for (std::size_t v = 0; v < plan.shared[s].vars.size(); ++v) {
            means_[s].emplace_back(plan.shared[s].vars[v].size, 0.0);
            counts_[s].push_back(consensus_index_[s][v].size());
        }
    }
}

void Coordinator::set_shared_prox(std::size_t block, std::shared_ptr<SharedProx> prox) {
    proxes_.at(block) = std::move(prox);
}

void Coordinator::sync_consensus_targets() {
    for (std::size_t s = 0; s < plan.shared.size(); ++s) {
        for (std::size_t v = 0; v < plan.shared[s].vars.size(); ++v) {
            const auto& var = plan.shared[s].vars[v];
            for (std::size_t start : consensus_index_[s][v]) {
                for (std::size_t j = 0; j < var.size; ++j) t[start + j] = z[s][var.offset + j];
            }
        }
    }
}

std::vector<std::vector<double>> Coordinator::centres() const {
    std::vector<std::vector<double>> out(plan.objects.size());
    centres_into(out);
    return out;
}

void Coordinator::centres_into(std::vector<std::vector<double>>& out) const {
    for (std::size_t i = 0; i < plan.objects.size(); ++i) {
        const std::size_t start = object_rows_[i];
        const std::vector<double>& e = e_[i];
        const std::size_t r = e.size();
        std::vector<double>& d = out[i];
        if (d.size() != r) d.resize(r);
        const double* tv = t.data() + start;
        const double* uv = u.data() + start;
        const double* ev = e.data();
        double* dv = d.data();
        for (std::size_t k = 0; k < r; ++k) dv[k] = tv[k] - uv[k] - ev[k];
    }
}

void Coordinator::mt_max_abs(const std::vector<double>& v1, const std::vector<double>& v2, double rho_now, double& m1,
                             double& m2) {
    m1 = 0.0;
    m2 = 0.0;
    double* col = col_buf_.data();
    for (std::size_t i = 0; i < plan.objects.size(); ++i) {
        const RowMap& o = maps_[i];
        o.apply_t_into(v1.data() + object_rows_[i], col);
        for (std::size_t j = 0; j < o.n; ++j) m1 = std::max(m1, std::fabs(col[j] * rho_now));
        o.apply_t_into(v2.data() + object_rows_[i], col);
        for (std::size_t j = 0; j < o.n; ++j) m2 = std::max(m2, std::fabs(col[j] * rho_now));
    }
}

double Coordinator::g_value(std::size_t s) const {
    if (proxes_[s]) return proxes_[s]->value(z[s]);
    double g = 0.0;
    for (const auto& var : plan.shared[s].vars) {
        double acc = 0.0;
        for (std::size_t j = 0; j < var.size; ++j) {
            const double x = z[s][var.offset + j];
            if (var.term.kind == TermKind::SumSquares)
                acc += x * x;
            else if (var.term.kind == TermKind::Norm1)
                acc += std::fabs(x);
        }
        g += var.term.kind == TermKind::Free ? 0.0 : var.term.coef * acc;
    }
    return g;
}

void Coordinator::z_update(std::size_t s, const std::vector<double>& v, double rho_now) {
    const auto& blk = plan.shared[s];
    std::vector<std::vector<double>>& means = means_[s];
    const std::vector<std::size_t>& counts = counts_[s];
    for (std::size_t vi = 0; vi < blk.vars.size(); ++vi) {
        const auto& var = blk.vars[vi];
        const auto& index = consensus_index_[s][vi];
        std::vector<double>& m = means[vi];
        std::fill(m.begin(), m.end(), 0.0);
        for (std::size_t start : index) {
            for (std::size_t j = 0; j < var.size; ++j) m[j] += v[start + j];
        }
        if (!index.empty()) {
            for (auto& x : m) x /= static_cast<double>(index.size());
        }
    }
    if (proxes_[s]) {
        z[s] = proxes_[s]->prox(means, counts, rho_now, z[s]);
        return;
    }
    if (!blk.closed_form) {
        throw StepError(Status::LocalSolverFailed,
                        "shared block `" + blk.name + "` has no closed-form z-update: supply a SharedProx");
    }
    for (std::size_t vi = 0; vi < blk.vars.size(); ++vi) {
        const auto& var = blk.vars[vi];
        const double rho_n = rho_now * static_cast<double>(counts[vi]);
        const auto& m = means[vi];
        const double c = var.term.coef;
        for (std::size_t j = 0; j < var.size; ++j) {
            double val;
            if (var.term.kind == TermKind::SumSquares) {
                val = (2.0 * c + rho_n == 0.0) ? 0.0 : rho_n * m[j] / (2.0 * c + rho_n);
            } else if (var.term.kind == TermKind::Norm1) {
                if (rho_n == 0.0) {
                    val = 0.0;
                } else {
                    const double sign = m[j] > 0.0 ? 1.0 : (m[j] < 0.0 ? -1.0 : 0.0);
                    val = sign * std::max(std::fabs(m[j]) - c / rho_n, 0.0);
                }
            } else if (counts[vi] > 0) {
                val = m[j];
            } else {
                continue;  // unlinked and free: keep the previous value
            }
            z[s][var.offset + j] = val;
        }
    }
}

namespace {

struct RowSums {
    double r_prim = 0.0, a_max = 0.0, t_max = 0.0, dt_max = 0.0, u_max = 0.0, gap = 0.0;
};

// The row pass of an iteration, specialised so the loop carries no test: Sel (every map a
// selection: the dual residual's maxima are row maxima, dt is not kept) and Cp (some rows are
// coupling rows: the gap sum runs).
template <bool Sel, bool Cp>
RowSums finish_rows(std::size_t nrows, const double* a, const double* t, const double* t_old, const double* h,
                    double* u, double* dt, const double* mask, const double* e, double* centre) {
    RowSums s;
    for (std::size_t k = 0; k < nrows; ++k) {
        const double tk = t[k], ak = a[k];
        const double uk = u[k] + h[k] - tk;
        u[k] = uk;
        centre[k] = tk - uk - e[k];
        const double res = ak - tk;
        s.r_prim = std::max(s.r_prim, std::fabs(res));
        s.a_max = std::max(s.a_max, std::fabs(ak));
        s.t_max = std::max(s.t_max, std::fabs(tk));
        const double dk = tk - t_old[k];
        if (Sel) {
            s.dt_max = std::max(s.dt_max, std::fabs(dk));
            s.u_max = std::max(s.u_max, std::fabs(uk));
        } else {
            dt[k] = dk;
        }
        if (Cp) s.gap += mask[k] * (uk * res);
    }
    return s;
}

}  // namespace

Iterate Coordinator::update(const std::vector<std::vector<double>>& xs, const std::vector<double>& objectives) {
    return advance(xs, &objectives, nullptr);
}

double Coordinator::local_objectives(const std::vector<std::vector<double>>& xs,
                                     const std::vector<std::shared_ptr<LocalSolver>>& solvers) const {
    double f = 0.0;
    for (std::size_t i = 0; i < solvers.size(); ++i) {
        const double fi = solvers[i]->objective(xs[i]);
        if (!std::isfinite(fi)) {
            throw StepError(Status::LocalSolverFailed, "object `" + plan.objects[i].name +
                                                           "`: the local solver returned a non-finite objective "
                                                           "value (NaN or Inf)");
        }
        f += fi;
    }
    return f;
}

Iterate Coordinator::advance(const std::vector<std::vector<double>>& xs, const std::vector<double>* objectives,
                             const std::vector<std::shared_ptr<LocalSolver>>* solvers) {
    for (std::size_t i = 0; i < plan.objects.size(); ++i)
        maps_[i].apply_into(xs[i].data(), a_.data() + object_rows_[i]);
    return advance_rows(xs, objectives, solvers);
}

void Coordinator::centres_flat() {
    double* c = centre_flat_.data();
    const double* tv = t.data();
    const double* uv = u.data();
    const double* ev = e_flat_.data();
    for (std::size_t k = 0; k < total_rows_; ++k) c[k] = tv[k] - uv[k] - ev[k];
}

Iterate Coordinator::advance_rows(const std::vector<std::vector<double>>& xs, const std::vector<double>* objectives,
                                  const std::vector<std::shared_ptr<LocalSolver>>* solvers) {
    ++iteration;
    // A non-finite value must never reach z or u: it ends the solve naming the object.
    for (std::size_t i = 0; i < plan.objects.size(); ++i) {
        bool finite = true;
        if (objectives != nullptr || i >= verified_.size() || !verified_[i]) {
            for (double x : xs[i]) finite = finite && std::isfinite(x);
        }
        const bool bad_f = objectives != nullptr && !std::isfinite((*objectives)[i]);
        if (!finite || bad_f) {
            throw StepError(Status::LocalSolverFailed,
                            "object `" + plan.objects[i].name + "`: the local solver returned " +
                                (!finite ? "a non-finite value in x" : "a non-finite objective value") +
                                " (NaN or Inf)");
        }
    }
    const std::size_t nrows = total_rows_;
    // Every vector below is a member sized in the constructor: no allocation per iteration.
    std::vector<double>& a = a_;
    const double rho_now = rho, alpha = opts.alpha;
    // The secant of a checkpoint needs this iteration's and the previous one's (a, yhat): yhat is
    // formed, and kept, only around checkpoints (the rule's result is the same as keeping both
    // every iteration).
    const bool check_now = opts.adaptive_rho && checkpoint(iteration);
    const bool check_next = opts.adaptive_rho && checkpoint(iteration + 1);
    const bool had_secant = has_secant_;
    std::vector<double>& t_old = t_old_;
    std::vector<double>& yhat = yhat_;
    std::vector<double>& h = h_;
    std::vector<double>& v = v_;
    const bool need_yhat = check_now || check_next;
    // Every row is a consensus row (rewritten from z by sync_consensus_targets) or a coupling
    // row (rewritten below): t is overwritten whole, so the previous targets are kept by a swap.
    t.swap(t_old);
    const double* to = t_old.data();
    const double* av = a.data();
    const double* uv = u.data();
    if (need_yhat) {
        // yhat = rho (a - t + u): minus the row gradient of the objectives at the new x.
        for (std::size_t k = 0; k < nrows; ++k) yhat[k] = rho_now * ((av[k] - to[k]) + uv[k]);
    }
    for (std::size_t k = 0; k < nrows; ++k) {
        const double hk = alpha * av[k] + (1.0 - alpha) * to[k];
        h[k] = hk;
        v[k] = hk + uv[k];
    }
    for (std::size_t s = 0; s < plan.shared.size(); ++s) z_update(s, v, rho_now);
    sync_consensus_targets();
    for (std::size_t c = 0; c < plan.couplings.size(); ++c) {
        const auto& starts = term_index_[c];
        if (starts.empty()) continue;
        const auto& cp = plan.couplings[c];
        const std::size_t m = cp.rhs.size();
        std::vector<double>& s = cp_sum_;
        std::vector<double>& shift = cp_shift_;
        const std::size_t terms = starts.size();
        if (cp_stride_[c]) {
            // The terms' rows are one block, term after term: column sums with a fixed stride
            // (the same additions in the same order as term by term).
            const double* vb = v.data() + starts[0];
            for (std::size_t j = 0; j < m; ++j) {
                double acc = 0.0;
                for (std::size_t i = 0; i < terms; ++i) acc += vb[i * m + j];
                s[j] = acc;
            }
        } else {
            std::fill(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(m), 0.0);
            for (std::size_t start : starts) {
                for (std::size_t j = 0; j < m; ++j) s[j] += v[start + j];
            }
        }
        for (std::size_t j = 0; j < m; ++j) {
            const double p = cp.sense == Sense::Le ? std::min(s[j], cp.rhs[j])
                                                   : (cp.sense == Sense::Ge ? std::max(s[j], cp.rhs[j]) : cp.rhs[j]);
            shift[j] = (p - s[j]) / static_cast<double>(terms);
        }
        if (cp_stride_[c]) {
            const double* vb = v.data() + starts[0];
            double* tb = t.data() + starts[0];
            for (std::size_t j = 0; j < m; ++j) {
                const double sj = shift[j];
                for (std::size_t i = 0; i < terms; ++i) tb[i * m + j] = vb[i * m + j] + sj;
            }
        } else {
            for (std::size_t start : starts) {
                for (std::size_t j = 0; j < m; ++j) t[start + j] = v[start + j] + shift[j];
            }
        }
    }
    // One pass over the rows: the dual update, the residuals and their scales, and the
    // first-order objective error on the coupling rows, |y'(a - t)| with y = rho u (as the
    // reference; coupling_mask_ is 1 on coupling rows).
    RowSums sums;
    if (all_selection_) {
        sums = has_coupling_rows_
                   ? finish_rows<true, true>(nrows, av, t.data(), to, h.data(), u.data(), dt_.data(),
                                             coupling_mask_.data(), e_flat_.data(), centre_flat_.data())
                   : finish_rows<true, false>(nrows, av, t.data(), to, h.data(), u.data(), dt_.data(),
                                              coupling_mask_.data(), e_flat_.data(), centre_flat_.data());
    } else {
        sums = has_coupling_rows_
                   ? finish_rows<false, true>(nrows, av, t.data(), to, h.data(), u.data(), dt_.data(),
                                              coupling_mask_.data(), e_flat_.data(), centre_flat_.data())
                   : finish_rows<false, false>(nrows, av, t.data(), to, h.data(), u.data(), dt_.data(),
                                               coupling_mask_.data(), e_flat_.data(), centre_flat_.data());
    }
    const double r_prim = sums.r_prim;
    double r_dual = 0.0, dual_scale = 0.0;
    if (all_selection_) {
        // M' only places each row in its own column: the column maxima are the row maxima (and
        // max |rho x| is rho max |x|: rounding is monotone).
        r_dual = rho_now * sums.dt_max;
        dual_scale = rho_now * sums.u_max;
    } else {
        mt_max_abs(dt_, u, rho_now, r_dual, dual_scale);
    }
    const double prim_scale = std::max(sums.a_max, sums.t_max);
    const double eps_prim = opts.eps_abs + opts.eps_rel * prim_scale;
    const double eps_dual = opts.eps_abs + opts.eps_rel * dual_scale;
    // The objective enters the stopping test only through eps_gap, which matters only once both
    // residuals pass: with no objectives given it is asked of the solvers then (and at the end
    // of a solve), not every iteration. Until then it is NaN.
    Iterate it;
    it.objective = std::numeric_limits<double>::quiet_NaN();
    if (objectives != nullptr || (r_prim <= eps_prim && r_dual <= eps_dual)) {
        double f_sum = 0.0;
        if (objectives != nullptr) {
            for (double f : *objectives) f_sum += f;
        } else {
            f_sum = local_objectives(xs, *solvers);
        }
        it.objective = f_sum + shared_value();
    }
    const double gap_est = rho_now * sums.gap;
    const double eps_gap =
        std::isfinite(it.objective) ? 0.1 * (opts.eps_abs + opts.eps_rel * std::fabs(it.objective)) : 0.0;
    const bool converged = r_prim <= eps_prim && r_dual <= eps_dual && std::fabs(gap_est) <= eps_gap;
    const std::size_t interval = opts.adaptive_rho_interval;
    if (check_now && !converged) {
        const double kappa = had_secant ? secant_curvature(secant_a_, secant_y_, a, yhat) : -1.0;
        double rho_new = rho_now;
        if (kappa > 0.0) {
            // The curvature rule: move to kappa when rho is outside [kappa / band, band * kappa].
            if (!(kappa / CURVATURE_BAND <= rho_now && rho_now <= kappa * CURVATURE_BAND)) rho_new = kappa;
        } else {
            // Residual balancing where the secant says nothing.
            const double ratio =
                (r_prim / std::max(prim_scale, TINY)) / std::max(r_dual / std::max(dual_scale, TINY), TINY);
            double r = std::min(std::max(rho_now * std::sqrt(std::max(ratio, 0.0)), RHO_MIN), RHO_MAX);
            // Early checkpoints only raise rho: the scaled duals are still near zero there.
            if (iteration < interval && r < rho_now) r = rho_now;
            if (r > RHO_MOVE * rho_now || r < rho_now / RHO_MOVE) rho_new = r;
        }
        if (rho_new != rho_now) {
            const double scale = rho_now / rho_new;
            for (auto& x : u) x *= scale;
            centres_flat();
            rho = rho_new;
            it.rho_changed = true;
        }
    }
    if (check_next) {
        secant_a_ = a;
        secant_y_ = yhat;
    }
    has_secant_ = check_next;
    it.iteration = iteration;
    it.rho = rho;
    it.r_prim = r_prim;
    it.r_dual = r_dual;
    it.eps_prim = eps_prim;
    it.eps_dual = eps_dual;
    it.converged = converged;
    last = it;
    has_last = true;
    return it;
}

bool Coordinator::checkpoint(std::size_t k) const {
    // Checkpoints 1, 2, 4, 8, ... below the interval, then every interval (as the Python reference).
    const std::size_t interval = opts.adaptive_rho_interval;
    return interval > 0 && (k % interval == 0 || (k < interval && (k & (k - 1)) == 0));
}

void Coordinator::record_dual_increment(double rho_used, bool rho_changed) {
    // dy = y_k - y_{k-1} with y = rho u, the unscaled duals: rho (h - t) of this iteration (a rho
    // change rescales u, not y). A pair straddling a rho change is not compared.
    dy_prev_.swap(dy_last_);
    has_dy_prev_ = has_dy_last_;
    dy_last_.resize(total_rows_);
    for (std::size_t k = 0; k < total_rows_; ++k) dy_last_[k] = rho_used * (h_[k] - t[k]);
    has_dy_last_ = true;
    if (rho_changed) has_dy_last_ = has_dy_prev_ = false;
}

namespace {

// Rows of a sparse matrix over the certificate's parameters.
using SparseRows = std::vector<std::vector<std::pair<std::size_t, double>>>;

// v - C'w with C C' w = C v (conjugate gradients; C C' may be singular, C v is in its range):
// the projection of v onto null(C).
void project_null(const SparseRows& c, std::vector<double>& v) {
    const std::size_t m = c.size();
    if (m == 0) return;
    const std::size_t p = v.size();
    std::vector<double> tmp(p), w(m, 0.0), r(m), d(m), ad(m);
    auto apply = [&](const std::vector<double>& in, std::vector<double>& out) {  // out = C C' in
        std::fill(tmp.begin(), tmp.end(), 0.0);
        for (std::size_t i = 0; i < m; ++i) {
            for (const auto& [j, a] : c[i]) tmp[j] += a * in[i];
        }
        for (std::size_t i = 0; i < m; ++i) {
            double s = 0.0;
            for (const auto& [j, a] : c[i]) s += a * tmp[j];
            out[i] = s;
        }
    };
    for (std::size_t i = 0; i < m; ++i) {
        double s = 0.0;
        for (const auto& [j, a] : c[i]) s += a * v[j];
        r[i] = s;
    }
    d = r;
    double rs = 0.0;
    for (double x : r) rs += x * x;
    const double stop = 1e-30 * std::max(rs, 1.0);
    for (std::size_t it = 0; it < 10 * m + 100 && rs > stop; ++it) {
        apply(d, ad);
        double dad = 0.0;
        for (std::size_t i = 0; i < m; ++i) dad += d[i] * ad[i];
        if (!(dad > 0.0)) break;
        const double alpha = rs / dad;
        double next = 0.0;
        for (std::size_t i = 0; i < m; ++i) {
            w[i] += alpha * d[i];
            r[i] -= alpha * ad[i];
            next += r[i] * r[i];
        }
        for (std::size_t i = 0; i < m; ++i) d[i] = r[i] + (next / rs) * d[i];
        rs = next;
    }
    for (std::size_t i = 0; i < m; ++i) {
        for (const auto& [j, a] : c[i]) v[j] -= a * w[i];
    }
}

}  // namespace

bool Coordinator::certify_infeasible(const std::vector<QpSolver*>& fast, std::string& message) {
    // Primal infeasibility of the plan's links (Banjac et al., JOTA 2019; the reference's rule,
    // catopt_dsl/solver/certificate.py, for the sets the native runtime can support exactly).
    // The settled dual increment is projected onto the structure every proof needs -- one
    // lambda per coupling component shared by its terms, in the sense's dual cone; consensus
    // lambdas summing to zero over each shared var's links (closed-form blocks have no
    // constraint, so any other sum has no finite bound); each object's M'lambda zero on the
    // coordinates its set leaves free both ways -- and then checked exactly:
    //   sum_i min over object i's set of lambda_i'(M_i x + e_i) > sum_c lambda_c' rhs_c.
    // Objects are supported when they are generated QPs whose rows each bound one coordinate;
    // anything else (general rows, user solvers, user shared proxes) leaves the status alone.
    message.clear();
    if (!has_dy_last_ || !has_dy_prev_) return false;
    double size = 0.0, moved = 0.0;
    for (std::size_t k = 0; k < total_rows_; ++k) {
        size = std::max(size, std::fabs(dy_last_[k]));
        moved = std::max(moved, std::fabs(dy_last_[k] - dy_prev_[k]));
    }
    if (!std::isfinite(size) || size <= opts.eps_abs || moved > 1e-3 * size) return false;
    message = "unsettled";  // from here on a failure counts as a tried candidate
    for (std::size_t s = 0; s < plan.shared.size(); ++s) {
        if (!plan.shared[s].closed_form || proxes_[s]) return false;
    }
    const std::size_t nobj = plan.objects.size();
    std::vector<std::vector<double>> lo(nobj), hi(nobj);
    for (std::size_t i = 0; i < nobj; ++i) {
        if (maps_[i].rows() == 0) continue;
        if (i >= fast.size() || fast[i] == nullptr || !fast[i]->coordinate_bounds(lo[i], hi[i])) return false;
    }
    // Parameters: one per coupling component (its terms share it), one per consensus row.
    const std::size_t nrows = total_rows_;
    std::vector<std::size_t> param(nrows, 0);
    std::vector<int> cone;  // +1: >= 0 (<=), -1: <= 0 (>=), 0: free
    std::vector<double> theta;
    std::vector<std::vector<std::size_t>> coupling_params(plan.couplings.size());
    for (std::size_t c = 0; c < plan.couplings.size(); ++c) {
        const auto& starts = term_index_[c];
        if (starts.empty()) continue;
        const auto& cp = plan.couplings[c];
        for (std::size_t j = 0; j < cp.rhs.size(); ++j) {
            double mean = 0.0;
            for (std::size_t start : starts) {
                param[start + j] = theta.size();
                mean += dy_last_[start + j];
            }
            coupling_params[c].push_back(theta.size());
            theta.push_back(mean / static_cast<double>(starts.size()) / size);
            cone.push_back(cp.sense == Sense::Le ? 1 : (cp.sense == Sense::Ge ? -1 : 0));
        }
    }
    SparseRows constraints;
    for (std::size_t s = 0; s < plan.shared.size(); ++s) {
        for (std::size_t v = 0; v < plan.shared[s].vars.size(); ++v) {
            const auto& index = consensus_index_[s][v];
            for (std::size_t j = 0; j < plan.shared[s].vars[v].size && !index.empty(); ++j) {
                constraints.emplace_back();
                for (std::size_t start : index) {
                    param[start + j] = theta.size();
                    constraints.back().emplace_back(theta.size(), 1.0);
                    theta.push_back(dy_last_[start + j] / size);
                    cone.push_back(0);
                }
            }
        }
    }
    for (std::size_t i = 0; i < nobj; ++i) {
        const RowMap& map = maps_[i];
        if (map.rows() == 0) continue;
        std::vector<std::vector<std::pair<std::size_t, double>>> cols(map.n);
        for (std::size_t k = 0; k < map.rows(); ++k) {
            for (std::size_t p = map.start[k]; p < map.start[k + 1]; ++p) {
                cols[map.col[p]].emplace_back(param[object_rows_[i] + k], map.val[p]);
            }
        }
        for (std::size_t j = 0; j < map.n; ++j) {
            if (std::isinf(lo[i][j]) && std::isinf(hi[i][j]) && !cols[j].empty()) constraints.push_back(cols[j]);
        }
    }
    // Alternate: the subspace, then the cones (as the reference).
    for (std::size_t round = 0; round < 20; ++round) {
        project_null(constraints, theta);
        double change = 0.0, top = 0.0;
        for (std::size_t p = 0; p < theta.size(); ++p) {
            const double clipped =
                cone[p] > 0 ? std::max(theta[p], 0.0) : (cone[p] < 0 ? std::min(theta[p], 0.0) : theta[p]);
            change = std::max(change, std::fabs(clipped - theta[p]));
            top = std::max(top, std::fabs(clipped));
            theta[p] = clipped;
        }
        if (change <= 1e-13 * std::max(1.0, top)) break;
    }
    double top = 0.0;
    for (double x : theta) top = std::max(top, std::fabs(x));
    if (!(top > 0.0) || !std::isfinite(top)) return false;
    for (double& x : theta) {
        x /= top;
        if (std::fabs(x) < 1e-12) x = 0.0;  // rounding left by the projection
    }
    // The bound: sup of lambda't over the shared sets (couplings only: the consensus sums are zero).
    double bound = 0.0;
    std::string through;
    for (std::size_t c = 0; c < plan.couplings.size(); ++c) {
        bool any = false;
        for (std::size_t j = 0; j < coupling_params[c].size(); ++j) {
            const double l = theta[coupling_params[c][j]];
            bound += l * plan.couplings[c].rhs[j];
            any = any || l != 0.0;
        }
        if (any) through += std::string(through.empty() ? "" : ", ") + "coupling `" + plan.couplings[c].name + "`";
    }
    for (std::size_t s = 0; s < plan.shared.size(); ++s) {
        for (std::size_t v = 0; v < plan.shared[s].vars.size(); ++v) {
            bool any = false;
            for (std::size_t start : consensus_index_[s][v]) {
                for (std::size_t j = 0; j < plan.shared[s].vars[v].size; ++j)
                    any = any || theta[param[start + j]] != 0.0;
            }
            if (any) {
                through += std::string(through.empty() ? "" : ", ") + "consensus on `" + plan.shared[s].name + "." +
                           plan.shared[s].vars[v].name + "`";
            }
        }
    }
    // The objects' supports: min over each set of lambda_i'(M_i x + e_i), exact for coordinate bounds.
    double total = 0.0;
    std::string asked;
    std::size_t named = 0, involved = 0;
    std::vector<double> lam, c;
    for (std::size_t i = 0; i < nobj; ++i) {
        const RowMap& map = maps_[i];
        const std::size_t r = map.rows();
        if (r == 0) continue;
        lam.assign(r, 0.0);
        bool any = false;
        for (std::size_t k = 0; k < r; ++k) {
            lam[k] = theta[param[object_rows_[i] + k]];
            any = any || lam[k] != 0.0;
        }
        if (!any) continue;
        c.assign(map.n, 0.0);
        map.apply_t_into(lam.data(), c.data());
        double support = 0.0;
        for (std::size_t k = 0; k < r; ++k) support += lam[k] * map.e[k];
        for (std::size_t j = 0; j < map.n; ++j) {
            const double cj = std::fabs(c[j]) <= 1e-12 ? 0.0 : c[j];
            if (cj == 0.0) continue;
            const double bound_j = cj > 0.0 ? lo[i][j] : hi[i][j];
            if (std::isinf(bound_j)) return false;  // unbounded below along coordinate j: no proof
            support += cj * bound_j;
        }
        total += support;
        ++involved;
        if (named < 5) asked += std::string(named++ ? ", " : "") + "`" + plan.objects[i].name + "`";
    }
    if (involved == 0) return false;
    if (involved > named) asked += " and " + std::to_string(involved - named) + " more";
    const double gap = total - bound;
    if (!(gap > 1e-6 * std::max({1.0, std::fabs(total), std::fabs(bound)}))) return false;
    char nums[96];
    std::snprintf(nums, sizeof nums, "%.6g > sup over the shared sets = %.6g", total, bound);
    message = "the plan is infeasible through " + (through.empty() ? std::string("its links") : through) +
              " (certificate verified at iteration " + std::to_string(iteration) +
              ": min over the local sets of lambda'(rows) = " + nums + "); objects involved: " + asked;
    return true;
}

SolveResult Coordinator::result(Status status, bool has_objective, double objective, std::size_t iterations,
                                std::vector<std::vector<double>> x, std::string message) const {
    SolveResult r;
    r.status = status;
    r.has_objective = has_objective;
    r.objective = objective;
    r.iterations = iterations;
    r.has_residuals = has_last;
    r.primal_residual = has_last ? last.r_prim : 0.0;
    r.dual_residual = has_last ? last.r_dual : 0.0;
    r.x = std::move(x);
    r.z = z;
    r.rho = rho;
    r.message = std::move(message);
    return r;
}

SolveResult Coordinator::solve(const std::vector<std::shared_ptr<LocalSolver>>& solvers) {
    const std::size_t nobj = plan.objects.size();
    std::vector<std::vector<double>> xs;
    for (const auto& o : plan.objects) xs.emplace_back(o.n, 0.0);
    if (solvers.size() != nobj) {
        return result(Status::LocalSolverFailed, false, 0.0, 0, xs,
                      std::to_string(solvers.size()) + " local solvers for " + std::to_string(nobj) + " objects");
    }
    // Centres, points and objectives live across iterations; a step writes into them in place.
    // Each object writes into its spare buffer, swapped with its point once the size is checked
    // (a bad step leaves the previous point in place).
    // The generated QpSolver (exactly that type: a subclass may step differently) takes its
    // centre straight from the flat centres and writes its rows itself; any other solver gets
    // its centre as a vector and its rows are formed here.
    std::vector<QpSolver*> fast(nobj, nullptr);
    verified_.assign(nobj, 0);
    for (std::size_t i = 0; i < nobj; ++i) {
        LocalSolver* solver = solvers[i].get();
        if (solver != nullptr && typeid(*solver) == typeid(QpSolver)) {
            fast[i] = static_cast<QpSolver*>(solver);
            verified_[i] = 1;
        }
    }
    std::vector<std::vector<double>> cs(nobj);
    std::vector<std::vector<double>> spare = xs;
    centres_flat();
    for (std::size_t k = 1; k <= opts.max_iter; ++k) {
        try {
            for (std::size_t i = 0; i < nobj; ++i) {
                const std::size_t row0 = object_rows_[i];
                if (fast[i] != nullptr) {
                    fast[i]->step(centre_flat_.data() + row0, rho, spare[i], a_.data() + row0);
                    xs[i].swap(spare[i]);
                    continue;
                }
                const std::size_t r = e_[i].size();
                cs[i].assign(centre_flat_.begin() + static_cast<std::ptrdiff_t>(row0),
                             centre_flat_.begin() + static_cast<std::ptrdiff_t>(row0 + r));
                solvers[i]->prox_into(cs[i], rho, spare[i]);
                if (spare[i].size() != plan.objects[i].n) {
                    throw StepError(Status::LocalSolverFailed,
                                    "object `" + plan.objects[i].name + "`: prox returned the wrong size");
                }
                xs[i].swap(spare[i]);
                maps_[i].apply_into(xs[i].data(), a_.data() + row0);
            }
            const double rho_used = rho;
            const Iterate it = advance_rows(xs, nullptr, &solvers);
            if (it.converged) return result(Status::Optimal, true, it.objective, k, xs, "");
            const std::size_t every = opts.infeasibility_check_interval;
            if (every > 0 && ((iteration + 1) % every == 0 || iteration % every == 0)) {
                record_dual_increment(rho_used, it.rho_changed);
                std::string why;
                if (iteration % every == 0 && iteration >= std::max(cert_next_try_, every)) {
                    if (certify_infeasible(fast, why)) return result(Status::Infeasible, false, 0.0, k, xs, why);
                    if (!why.empty()) {  // a candidate that proved nothing: try again later
                        ++cert_failures_;
                        cert_next_try_ =
                            iteration + every * (std::size_t{1} << std::min<std::size_t>(cert_failures_, 10));
                    }
                }
            }
        } catch (const StepError& err) {
            return result(err.status(), false, 0.0, k, xs, err.what());
        }
    }
    double objective = 0.0;
    if (has_last) {
        try {
            objective = std::isnan(last.objective) ? local_objectives(xs, solvers) + shared_value() : last.objective;
        } catch (const StepError& err) {
            return result(err.status(), false, 0.0, opts.max_iter, xs, err.what());
        }
        last.objective = objective;
    }
    return result(Status::MaxIterations, has_last, objective, opts.max_iter, xs,
                  "no convergence within " + std::to_string(opts.max_iter) + " iterations");
}

// -- local QPs --------------------------------------------------------------------------------
namespace {

constexpr double QP_SIGMA = 1e-6;
constexpr double QP_ALPHA = 1.6;
constexpr double QP_EQ_SCALE = 1e3;
constexpr double QP_RHO0 = 0.1;
constexpr double QP_EPS = 1e-9;
constexpr double QP_POLISH_BELOW = 1e-4;
constexpr double QP_CERT_EPS = 1e-6;
constexpr double QP_TINY = 1e-12;
constexpr std::size_t QP_CHECK_EVERY = 5;
constexpr std::size_t QP_ADAPT_EVERY = 25;

std::vector<double> mat_vec(const std::vector<double>& a, const std::vector<double>& x, std::size_t rows,
                            std::size_t n) {
    std::vector<double> out(rows, 0.0);
    for (std::size_t i = 0; i < rows; ++i) {
        double s = 0.0;
        for (std::size_t j = 0; j < n; ++j) s += a[i * n + j] * x[j];
        out[i] = s;
    }
    return out;
}

std::vector<double> mat_t_vec(const std::vector<double>& a, const std::vector<double>& y, std::size_t rows,
                              std::size_t n) {
    std::vector<double> out(n, 0.0);
    for (std::size_t i = 0; i < rows; ++i) {
        if (y[i] == 0.0) continue;
        for (std::size_t j = 0; j < n; ++j) out[j] += a[i * n + j] * y[i];
    }
    return out;
}

double clip(double v, double lo, double hi) { return std::min(std::max(v, lo), hi); }

}  // namespace

namespace {

bool spd_inverse(const double* a, std::size_t n, std::vector<double>& inv, std::vector<double>& work) {
    // A = L L' (refused unless every pivot is above 1e-13 of A's largest entry, as Lu), then
    // W = L^-1 and A^-1 = W'W: n^3/6 multiply-adds apiece. One n x n scratch: L in the lower
    // triangle; W' (row p holds W[k][p], k >= p) takes the upper triangle and the diagonal
    // column by column, once L's entries there are no longer read.
    // Every entry read below is written first: the buffers are only sized.
    work.resize(n * n);
    inv.resize(n * n);
    double* l = work.data();
    // A positive definite matrix's largest entry is on its diagonal (|a_ij| <= sqrt(a_ii a_jj)),
    // and one that is not fails a pivot whatever the scale.
    double scale = 0.0;
    for (std::size_t j = 0; j < n; ++j) scale = std::max(scale, std::fabs(a[j * n + j]));
    const double floor = 1e-13 * std::max(scale, QP_TINY);
    for (std::size_t j = 0; j < n; ++j) {
        const double* lj = l + j * n;
        double d = a[j * n + j];
        for (std::size_t k = 0; k < j; ++k) d -= lj[k] * lj[k];
        if (!(d > floor)) return false;
        const double root = std::sqrt(d);
        l[j * n + j] = root;
        for (std::size_t i = j + 1; i < n; ++i) {
            const double* li = l + i * n;
            double s = a[i * n + j];
            for (std::size_t k = 0; k < j; ++k) s -= li[k] * lj[k];
            l[i * n + j] = s / root;
        }
    }
    for (std::size_t j = 0; j < n; ++j) {
        // Column j of W: W[j][j] = 1 / L[j][j], W[i][j] = -(sum_{k=j}^{i-1} L[i][k] W[k][j]) / L[i][i],
        // written to row j of the scratch (entries i > j, then the diagonal: later columns read
        // neither L[j][j] nor anything right of it in row j).
        double* wt = l + j * n;
        const double wjj = 1.0 / wt[j];
        for (std::size_t i = j + 1; i < n; ++i) {
            const double* li = l + i * n;
            double s = li[j] * wjj;
            for (std::size_t k = j + 1; k < i; ++k) s += li[k] * wt[k];
            wt[i] = -s / li[i];
        }
        wt[j] = wjj;
    }
    // A^-1[p][q] = sum_{k >= q} W[k][p] W[k][q] (q >= p): rows p and q of W' from column q on.
    double* out = inv.data();
    double nonfinite = 0.0;  // x - x: 0 for a finite x, NaN otherwise
    for (std::size_t p = 0; p < n; ++p) {
        const double* wp = l + p * n;
        for (std::size_t q = p; q < n; ++q) {
            const double* wq = l + q * n;
            double s = 0.0;
            for (std::size_t k = q; k < n; ++k) s += wp[k] * wq[k];
            out[p * n + q] = s;
            out[q * n + p] = s;
            nonfinite += s - s;
        }
    }
    return nonfinite == 0.0;
}

}  // namespace

bool Lu::factor(std::vector<double> a, std::size_t n) { return factor_from(a.data(), n); }

bool Lu::factor_from(const double* src, std::size_t n) {
    // Works in this factor's own storage (kept across calls: refactorising allocates nothing once
    // the storage has grown to the largest n); n_ is set only on success.
    std::vector<double>& a = a_;
    std::vector<std::size_t>& perm = perm_;
    a.assign(src, src + n * n);
    perm.resize(n);
    const double scale = std::max(max_abs(a), QP_TINY);
    for (std::size_t i = 0; i < n; ++i) perm[i] = i;
    for (std::size_t col = 0; col < n; ++col) {
        std::size_t pivot = col;
        for (std::size_t i = col + 1; i < n; ++i) {
            if (std::fabs(a[i * n + col]) > std::fabs(a[pivot * n + col])) pivot = i;
        }
        if (!(std::fabs(a[pivot * n + col]) > 1e-13 * scale)) return false;
        if (pivot != col) {
            for (std::size_t k = 0; k < n; ++k) std::swap(a[pivot * n + k], a[col * n + k]);
            std::swap(perm[pivot], perm[col]);
        }
        const double d = a[col * n + col];
        for (std::size_t row = col + 1; row < n; ++row) {
            const double factor = a[row * n + col] / d;
            a[row * n + col] = factor;
            if (factor != 0.0) {
                for (std::size_t k = col + 1; k < n; ++k) a[row * n + k] -= factor * a[col * n + k];
            }
        }
    }
    n_ = n;
    return true;
}

void Lu::invert_into(std::vector<double>& inv) {
    // Row by row, so every inner loop is an independent axpy over a row (no chain of dependent
    // divisions as in n separate solves): X = L^-1 P first, then inv = U^-1 X in place.
    const std::size_t n = n_;
    const double* a = a_.data();
    inv.assign(n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
        double* xi = &inv[i * n];
        xi[perm_[i]] = 1.0;
        for (std::size_t k = 0; k < i; ++k) {
            const double l = a[i * n + k];
            if (l == 0.0) continue;
            const double* xk = &inv[k * n];
            for (std::size_t j = 0; j < n; ++j) xi[j] -= l * xk[j];
        }
    }
    for (std::size_t i = n; i-- > 0;) {
        double* xi = &inv[i * n];
        for (std::size_t k = i + 1; k < n; ++k) {
            const double r = a[i * n + k];
            if (r == 0.0) continue;
            const double* xk = &inv[k * n];
            for (std::size_t j = 0; j < n; ++j) xi[j] -= r * xk[j];
        }
        const double d = a[i * n + i];
        for (std::size_t j = 0; j < n; ++j) xi[j] /= d;
    }
}

std::vector<double> Lu::solve(const std::vector<double>& b) const {
    std::vector<double> x(n_);
    solve_into(b.data(), x.data());
    return x;
}

void Lu::solve_into(const double* b, double* x) const {
    const std::size_t n = n_;
    for (std::size_t i = 0; i < n; ++i) x[i] = b[perm_[i]];
    for (std::size_t row = 0; row < n; ++row) {
        double s = x[row];
        for (std::size_t k = 0; k < row; ++k) s -= a_[row * n + k] * x[k];
        x[row] = s;
    }
    for (std::size_t row = n; row-- > 0;) {
        double s = x[row];
        for (std::size_t k = row + 1; k < n; ++k) s -= a_[row * n + k] * x[k];
        x[row] = s / a_[row * n + row];
    }
}

QpSolver::QpSolver(const ObjectSpec& object, QpData data)
    : object_(object),
      map_(object),
      data_(std::move(data)),
      n_(object.n),
      m_(data_.rows()),
      rho_(std::numeric_limits<double>::quiet_NaN()),
      rho_in_(QP_RHO0) {
    std::vector<double> m_dense, e;
    object_.dense(m_dense, e);
    const std::size_t r = object_.rows();
    mtm_.assign(n_ * n_, 0.0);
    for (std::size_t i = 0; i < n_; ++i) {
        for (std::size_t j = 0; j < n_; ++j) {
            double s = 0.0;
            for (std::size_t k = 0; k < r; ++k) s += m_dense[k * n_ + i] * m_dense[k * n_ + j];
            mtm_[i * n_ + j] = s;
        }
    }
    eq_.resize(m_);
    active_.resize(m_);
    for (std::size_t i = 0; i < m_ && i < data_.u.size(); ++i) {
        eq_[i] = data_.l[i] == data_.u[i];
        active_[i] = eq_[i] ? 1 : 0;
    }
    x_.assign(n_, 0.0);
    z_.assign(m_, 0.0);
    y_.assign(m_, 0.0);
    // The step's scratch at its largest (KKT of n + m rows), so no step grows it.
    w_.reserve(m_);
    p_.assign(n_, 0.0);
    kkt_bound_.reserve(n_ + m_);
    sol_.reserve(n_ + m_);
    ax_.assign(m_, 0.0);
    kkt_buf_.reserve((n_ + m_) * (n_ + m_));
    kkt_inv_.reserve((n_ + m_) * (n_ + m_));
    aff_c0_.reserve(n_ + m_);
    aff_g_.reserve((n_ + m_) * r);
    sep_inv_.assign(n_, 0.0);
    act_try_.assign(m_, 0);
    // A and P as compressed rows (when their sizes are right; check() reports it otherwise).
    a_rows_ = RowMap::from_dense(data_.a, m_, n_);
    p_rows_ = RowMap::from_dense(data_.p, n_, n_);
    // Separable: P and M'M diagonal, each row of A bounds one coordinate (weight 1, no coordinate
    // twice). Then the prox splits into one clipped scalar per coordinate (see separable_step).
    identity_map_ = map_.selection && map_.rows() == n_;
    for (std::size_t k = 0; k < map_.rows() && identity_map_; ++k) identity_map_ = map_.col[k] == k && e[k] == 0.0;
    separable_ = data_.p.size() == n_ * n_ && a_rows_.rows() == m_ && a_rows_.selection;
    sep_lo_.assign(n_, -std::numeric_limits<double>::infinity());
    sep_hi_.assign(n_, std::numeric_limits<double>::infinity());
    if (separable_) {
        for (std::size_t i = 0; i < m_ && i < data_.u.size(); ++i) {
            sep_lo_[a_rows_.col[i]] = data_.l[i];
            sep_hi_[a_rows_.col[i]] = data_.u[i];
        }
    }
    for (std::size_t i = 0; i < n_ && separable_; ++i) {
        for (std::size_t j = 0; j < n_; ++j) {
            if (i != j && (data_.p[i * n_ + j] != 0.0 || mtm_[i * n_ + j] != 0.0)) separable_ = false;
        }
    }
}

bool QpSolver::coordinate_bounds(std::vector<double>& lo, std::vector<double>& hi) const {
    if (!(a_rows_.rows() == m_ && a_rows_.selection) || data_.l.size() != m_ || data_.u.size() != m_) return false;
    lo.assign(n_, -std::numeric_limits<double>::infinity());
    hi.assign(n_, std::numeric_limits<double>::infinity());
    for (std::size_t i = 0; i < m_; ++i) {
        lo[a_rows_.col[i]] = data_.l[i];
        hi[a_rows_.col[i]] = data_.u[i];
    }
    return true;
}

void QpSolver::fail(Status status, const std::string& what) const {
    throw StepError(status, "object `" + object_.name + "`: " + what);
}

void QpSolver::check() {
    // The data never changes after construction: once it has passed, a step skips the scan.
    if (checked_) return;
    const QpData& d = data_;
    if (d.p.size() != n_ * n_ || d.q.size() != n_ || d.a.size() != m_ * n_ || d.u.size() != m_) {
        fail(Status::LocalSolverFailed, "QP data of the wrong size");
    }
    for (std::size_t i = 0; i < m_; ++i) {
        if (std::isnan(d.l[i]) || std::isnan(d.u[i]) || d.l[i] > d.u[i]) {
            fail(Status::Infeasible, "a constraint row has its lower bound above its upper");
        }
    }
    checked_ = true;
}

void QpSolver::set_rho(double rho) {
    if (rho == rho_) return;
    qmat_.resize(n_ * n_);
    for (std::size_t k = 0; k < n_ * n_; ++k) qmat_[k] = data_.p[k] + rho * mtm_[k];
    rho_ = rho;
    separable_now_ = separable_;
    for (std::size_t j = 0; j < n_ && separable_now_; ++j) separable_now_ = qmat_[j * (n_ + 1)] > 0.0;
    if (separable_now_) {
        for (std::size_t j = 0; j < n_; ++j) sep_inv_[j] = 1.0 / qmat_[j * (n_ + 1)];
    }
    has_kkt_ = false;
    has_admm_ = false;
}

bool QpSolver::polish(const double* centre, const std::vector<signed char>& act, std::vector<double>& x) {
    // Allocation-free: a settled step is this function with a cached affine map, k x r
    // multiply-adds with the centre.
    polish_solved_ = false;
    const std::size_t n = n_, m = m_, r = map_.rows();
    if (!(has_kkt_ && kkt_active_ == act)) {
        // w_ (the active rows) and kkt_bound_ belong to the cached system: rebuilt with it.
        has_kkt_ = false;
        w_.clear();
        for (std::size_t i = 0; i < m; ++i) {
            if (act[i] != 0) w_.push_back(i);
        }
        const std::size_t k = n + w_.size();
        std::vector<double>& kkt = kkt_buf_;
        kkt.assign(k * k, 0.0);
        for (std::size_t i = 0; i < n; ++i) {
            for (std::size_t j = 0; j < n; ++j) kkt[i * k + j] = qmat_[i * n + j];
        }
        for (std::size_t j = 0; j < w_.size(); ++j) {
            for (std::size_t c = 0; c < n; ++c) {
                const double v = data_.a[w_[j] * n + c];
                kkt[(n + j) * k + c] = v;
                kkt[c * k + n + j] = v;
            }
        }
        // No active rows: K = P + rho M'M, positive definite for a QP the checker accepted, and
        // its inverse through Cholesky costs n^3/2 multiply-adds against LU's 4n^3/3. LU (with
        // pivoting) takes what Cholesky refuses.
        if (!(w_.empty() && spd_inverse(kkt.data(), k, kkt_inv_, chol_))) {
            if (!kkt_.factor_from(kkt.data(), k)) return false;
            kkt_.invert_into(kkt_inv_);
        }
        // sol = K^-1 [-p; b_w] with p = q - rho M'c: the active bounds' part K^-1 [0; b_w] and
        // -K^-1 [q; 0] are fixed while the set is (aff_c0_), the centre enters through
        // G = rho K^-1[:, :n] M' (kkt_bound_ keeps the bounds' part for next_active_set).
        kkt_bound_.assign(k, 0.0);
        aff_c0_.assign(k, 0.0);
        aff_g_.assign(r * k, 0.0);
        const double* q = data_.q.data();
        for (std::size_t i = 0; i < k; ++i) {
            const double* row = &kkt_inv_[i * k];
            double s = 0.0;
            for (std::size_t j = 0; j < w_.size(); ++j) {
                const std::size_t w = w_[j];
                s += row[n + j] * (act[w] > 0 ? data_.u[w] : data_.l[w]);
            }
            kkt_bound_[i] = s;
            double sq = 0.0;
            for (std::size_t j = 0; j < n; ++j) sq += row[j] * q[j];
            aff_c0_[i] = s - sq;
        }
        // G's column c is rho K^-1[:, :n] times M's row c: M's nonzeros only (a consensus row is
        // one unit entry, so its column is a scaled column of the inverse).
        for (std::size_t c = 0; c < r; ++c) {
            double* gc = &aff_g_[c * k];
            for (std::size_t p = map_.start[c]; p < map_.start[c + 1]; ++p) {
                const std::size_t j = map_.col[p];
                const double v = rho_ * map_.val[p];
                for (std::size_t i = 0; i < k; ++i) gc[i] += v * kkt_inv_[i * k + j];
            }
        }
        has_kkt_ = true;
        kkt_active_ = act;
    }
    const std::size_t k = n + w_.size();
    sol_.resize(k);
    // Without rows the point is x itself: written in place (x is the caller's buffer, never
    // the solver's own data, so nothing below aliases).
    if (m == 0 && x.size() != n) x.resize(n);
    double* CATOPT_RESTRICT sol = m == 0 ? x.data() : sol_.data();
    const double* CATOPT_RESTRICT g = aff_g_.data();
    const double* CATOPT_RESTRICT cv = centre;
    const double* CATOPT_RESTRICT c0 = aff_c0_.data();
    // Four columns per pass over sol (one load and store of sol[i] per four multiply-adds, in
    // the order of the plain column loop, so the sums round the same).
    std::size_t c = 0;
    for (; c + 4 <= r; c += 4, g += 4 * k) {
        const double d0 = cv[c], d1 = cv[c + 1], d2 = cv[c + 2], d3 = cv[c + 3];
        const double* CATOPT_RESTRICT g1 = g + k;
        const double* CATOPT_RESTRICT g2 = g + 2 * k;
        const double* CATOPT_RESTRICT g3 = g + 3 * k;
        for (std::size_t i = 0; i < k; ++i) {
            double s = c == 0 ? c0[i] : sol[i];
            s += g[i] * d0;
            s += g1[i] * d1;
            s += g2[i] * d2;
            s += g3[i] * d3;
            sol[i] = s;
        }
    }
    if (c == 0) {
        for (std::size_t i = 0; i < k; ++i) sol[i] = c0[i];
    }
    for (; c + 2 <= r; c += 2, g += 2 * k) {
        const double d0 = cv[c], d1 = cv[c + 1];
        const double* CATOPT_RESTRICT g1 = g + k;
        for (std::size_t i = 0; i < k; ++i) {
            double s = sol[i];
            s += g[i] * d0;
            s += g1[i] * d1;
            sol[i] = s;
        }
    }
    if (c < r) {
        const double dc = cv[c];
        for (std::size_t i = 0; i < k; ++i) sol[i] += g[i] * dc;
    }
    if (m == 0) {  // no rows: the KKT point is the step, nothing to verify
        // x - x is 0 for a finite x and NaN otherwise: one sum tells.
        double nonfinite = 0.0;
        for (std::size_t i = 0; i < n; ++i) nonfinite += sol[i] - sol[i];
        polish_solved_ = nonfinite == 0.0;
        return polish_solved_;
    }
    bool finite = true;
    for (std::size_t i = 0; i < k; ++i) finite = finite && std::isfinite(sol[i]);
    if (!finite) return false;
    double lam_max = 0.0;
    for (std::size_t i = n; i < k; ++i) lam_max = std::max(lam_max, std::fabs(sol[i]));
    a_rows_.apply_into(sol_.data(), ax_.data());
    double ax_max = 0.0;
    const double* ax = ax_.data();
    for (std::size_t i = 0; i < m; ++i) ax_max = std::max(ax_max, std::fabs(ax[i]));
    const double tol_p = QP_EPS * (1.0 + ax_max);
    const double tol_d = QP_EPS * (1.0 + std::max(lam_max, max_abs(p_)));
    polish_solved_ = true;
    tol_p_ = tol_p;
    tol_d_ = tol_d;
    // Active rows (in order, as w_ lists them) need a multiplier of the right sign, inactive
    // ones a point within their bounds.
    const double* lo = data_.l.data();
    const double* hi = data_.u.data();
    for (std::size_t i = 0, j = n; i < m; ++i) {
        if (act[i] != 0) {
            const double lam = sol_[j++];
            if (!eq_[i] && ((act[i] > 0 && lam < -tol_d) || (act[i] < 0 && lam > tol_d))) return false;
        } else if (ax_[i] < lo[i] - tol_p || ax_[i] > hi[i] + tol_p) {
            return false;
        }
    }
    for (std::size_t i = 0, j = n; i < m; ++i) {
        z_[i] = clip(ax_[i], lo[i], hi[i]);
        y_[i] = act[i] != 0 ? sol_[j++] : 0.0;
    }
    if (&act != &active_) active_ = act;
    if (x.size() != n) x.resize(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = sol_[i];
    return true;
}

bool QpSolver::separable_step(std::vector<double>& x) {
    // A separable strictly convex QP: each coordinate's minimiser -p_j / Q_jj clipped to its row's
    // bounds is the exact solution (the KKT point of the active set the clipping picks, with the
    // multiplier -(Q_jj x_j + p_j) of the right sign by construction). Only x_ follows the step;
    // the rest of the state a polish leaves (z, y, the active set) is rebuilt from it, by
    // settle_separable_state, only if a later step is not separable.
    const std::size_t n = n_, m = m_;
    if (x.size() != n) x.resize(n);
    const double* pv = p_.data();
    const double* inv = sep_inv_.data();
    const double* lo = data_.l.data();
    const double* hi = data_.u.data();
    const std::size_t* col = a_rows_.col.data();
    double* xv = x.data();
    for (std::size_t j = 0; j < n; ++j) xv[j] = -pv[j] * inv[j];
    // One row per bounded coordinate (a selection: no coordinate twice); an equality row has
    // lo == hi. NaN stays NaN through the clip.
    for (std::size_t i = 0; i < m; ++i) {
        const std::size_t j = col[i];
        xv[j] = std::min(std::max(xv[j], lo[i]), hi[i]);
    }
    bool finite = true;
    for (std::size_t j = 0; j < n; ++j) finite = finite && std::isfinite(xv[j]);
    if (!finite) return false;  // the general step reports it
    for (std::size_t j = 0; j < n; ++j) x_[j] = xv[j];
    sep_stale_ = true;
    return true;
}

void QpSolver::settle_separable_state() {
    // The separable step's active set and point, from x_ (exact: the clip picked them); its
    // multipliers are left at zero (a warm start only: every later step verifies its own).
    if (!sep_stale_) return;
    sep_stale_ = false;
    a_rows_.apply_into(x_.data(), ax_.data());
    for (std::size_t i = 0; i < m_; ++i) {
        z_[i] = clip(ax_[i], data_.l[i], data_.u[i]);
        y_[i] = 0.0;
        active_[i] = eq_[i] ? 1 : (ax_[i] >= data_.u[i] ? 1 : (ax_[i] <= data_.l[i] ? -1 : 0));
    }
    polish_solved_ = false;
}

bool QpSolver::next_active_set(std::vector<signed char>& act) const {
    // From the last polish's point (of the set `act`): inactive rows it violates join at the
    // violated bound, then active inequality rows whose multiplier has the wrong sign leave.
    // False when nothing would change (the failure was not of this kind).
    if (!polish_solved_) return false;
    bool changed = false;
    for (std::size_t i = 0; i < m_; ++i) {
        if (act[i] != 0) continue;
        if (ax_[i] < data_.l[i] - tol_p_) {
            act[i] = -1;
            changed = true;
        } else if (ax_[i] > data_.u[i] + tol_p_) {
            act[i] = 1;
            changed = true;
        }
    }
    for (std::size_t j = 0; j < w_.size(); ++j) {
        const std::size_t row = w_[j];
        const double lam = sol_[n_ + j];
        if (!eq_[row] && ((act[row] > 0 && lam < -tol_d_) || (act[row] < 0 && lam > tol_d_))) {
            act[row] = 0;
            changed = true;
        }
    }
    return changed;
}

double QpSolver::rho_row(std::size_t i) const {
    if (eq_[i]) return QP_EQ_SCALE * rho_in_;
    if (std::isinf(data_.l[i]) && std::isinf(data_.u[i])) return 1e-6;
    return rho_in_;
}

bool QpSolver::admm_factor() {
    if (has_admm_ && admm_rho_ == rho_in_) return true;
    has_admm_ = false;
    std::vector<double> k = qmat_;
    for (std::size_t i = 0; i < n_; ++i) k[i * n_ + i] += QP_SIGMA;
    for (std::size_t row = 0; row < m_; ++row) {
        const double rr = rho_row(row);
        const double* a = &data_.a[row * n_];
        for (std::size_t i = 0; i < n_; ++i) {
            if (a[i] == 0.0) continue;
            for (std::size_t j = 0; j < n_; ++j) k[i * n_ + j] += rr * a[i] * a[j];
        }
    }
    if (!admm_.factor(std::move(k), n_)) return false;
    has_admm_ = true;
    admm_rho_ = rho_in_;
    return true;
}

std::vector<double> QpSolver::admm_solve(const double* centre, const std::vector<double>& p) {
    const std::vector<double>& l = data_.l;
    const std::vector<double>& u = data_.u;
    std::vector<double> x = x_, y = y_, z(m_);
    for (std::size_t i = 0; i < m_; ++i) z[i] = clip(z_[i], l[i], u[i]);
    bool has_last_polish = false;
    std::vector<signed char> last_polish;
    std::vector<double> rvec(m_), w(m_), rhs(n_), x_new(n_), dy(m_), dx(n_);
    for (std::size_t it = 1; it <= QP_MAX_ITER; ++it) {
        ++inner_iterations;
        if (!admm_factor()) fail(Status::LocalSolverFailed, "singular inner system");
        for (std::size_t i = 0; i < m_; ++i) {
            rvec[i] = rho_row(i);
            w[i] = rvec[i] * z[i] - y[i];
        }
        const std::vector<double> atw = mat_t_vec(data_.a, w, m_, n_);
        for (std::size_t i = 0; i < n_; ++i) rhs[i] = QP_SIGMA * x[i] - p[i] + atw[i];
        const std::vector<double> xt = admm_.solve(rhs);
        const std::vector<double> zt = mat_vec(data_.a, xt, m_, n_);
        for (std::size_t i = 0; i < n_; ++i) x_new[i] = QP_ALPHA * xt[i] + (1.0 - QP_ALPHA) * x[i];
        for (std::size_t i = 0; i < m_; ++i) {
            const double zr = QP_ALPHA * zt[i] + (1.0 - QP_ALPHA) * z[i];
            const double zn = clip(zr + y[i] / rvec[i], l[i], u[i]);
            dy[i] = rvec[i] * (zr - zn);
            y[i] += dy[i];
            z[i] = zn;
        }
        bool finite = true;
        for (std::size_t i = 0; i < n_; ++i) {
            dx[i] = x_new[i] - x[i];
            x[i] = x_new[i];
            finite = finite && std::isfinite(x[i]);
        }
        for (double v : y) finite = finite && std::isfinite(v);
        if (!finite) fail(Status::LocalSolverFailed, "the inner solve diverged (NaN or Inf)");
        if (it % QP_CHECK_EVERY != 0 && it != QP_MAX_ITER) continue;
        const std::vector<double> ax = mat_vec(data_.a, x, m_, n_);
        const std::vector<double> qx = mat_vec(qmat_, x, n_, n_);
        const std::vector<double> aty = mat_t_vec(data_.a, y, m_, n_);
        double r_prim = 0.0, r_dual = 0.0;
        for (std::size_t i = 0; i < m_; ++i) r_prim = std::max(r_prim, std::fabs(ax[i] - z[i]));
        for (std::size_t i = 0; i < n_; ++i) r_dual = std::max(r_dual, std::fabs(qx[i] + p[i] + aty[i]));
        const double prim_scale = std::max(max_abs(ax), max_abs(z));
        const double dual_scale = std::max(std::max(max_abs(qx), max_abs(aty)), max_abs(p));
        if (r_prim <= QP_POLISH_BELOW * (1.0 + prim_scale) && r_dual <= QP_POLISH_BELOW * (1.0 + dual_scale)) {
            std::vector<signed char> act(m_, 0);
            for (std::size_t i = 0; i < m_; ++i) {
                if (eq_[i] || u[i] - z[i] < y[i] / rvec[i]) {
                    act[i] = 1;
                } else if (z[i] - l[i] < -y[i] / rvec[i]) {
                    act[i] = -1;
                }
            }
            if (!(has_last_polish && last_polish == act)) {
                std::vector<double> xp;
                if (polish(centre, act, xp)) {
                    x_ = xp;
                    return xp;
                }
                has_last_polish = true;
                last_polish = act;
            }
        }
        if (r_prim <= QP_EPS * (1.0 + prim_scale) && r_dual <= QP_EPS * (1.0 + dual_scale)) {
            x_ = x;
            z_ = z;
            y_ = y;
            return x;
        }
        if (primal_infeasible(dy)) {
            fail(Status::Infeasible,
                 "its constraints have no point (a Farkas certificate of the local QP was verified)");
        }
        if (dual_infeasible(dx, p)) {
            fail(Status::LocalSolverFailed,
                 "its objective is unbounded below over its own constraints, along a direction no row sees: the plan "
                 "is unbounded if it is feasible");
        }
        if (it % QP_ADAPT_EVERY == 0) {
            const double ratio =
                (r_prim / std::max(prim_scale, QP_TINY)) / std::max(r_dual / std::max(dual_scale, QP_TINY), QP_TINY);
            const double next = clip(rho_in_ * std::sqrt(std::max(ratio, 0.0)), 1e-6, 1e6);
            if (next > 5.0 * rho_in_ || next < rho_in_ / 5.0) rho_in_ = next;
        }
    }
    fail(Status::LocalSolverFailed,
         "the local QP did not converge in " + std::to_string(QP_MAX_ITER) + " inner iterations");
}

bool QpSolver::primal_infeasible(const std::vector<double>& dy) const {
    const double norm = max_abs(dy);
    if (!(norm > QP_TINY)) return false;
    const double eps = QP_CERT_EPS * norm;
    double support = 0.0;
    for (std::size_t i = 0; i < m_; ++i) {
        if (dy[i] > eps) {
            if (std::isinf(data_.u[i])) return false;
            support += data_.u[i] * dy[i];
        } else if (dy[i] < -eps) {
            if (std::isinf(data_.l[i])) return false;
            support += data_.l[i] * dy[i];
        }
    }
    return max_abs(mat_t_vec(data_.a, dy, m_, n_)) <= eps && support < -eps;
}

bool QpSolver::dual_infeasible(const std::vector<double>& dx, const std::vector<double>& p) const {
    const double norm = max_abs(dx);
    if (!(norm > QP_TINY)) return false;
    const double eps = QP_CERT_EPS * norm;
    double slope = 0.0;
    for (std::size_t i = 0; i < n_; ++i) slope += p[i] * dx[i];
    if (slope >= -eps || max_abs(mat_vec(qmat_, dx, n_, n_)) > eps) return false;
    const std::vector<double> adx = mat_vec(data_.a, dx, m_, n_);
    for (std::size_t i = 0; i < m_; ++i) {
        if (!std::isinf(data_.u[i]) && adx[i] > eps) return false;
        if (!std::isinf(data_.l[i]) && adx[i] < -eps) return false;
    }
    return true;
}

std::vector<double> QpSolver::prox(const std::vector<double>& centre, double rho) {
    std::vector<double> x;
    prox_into(centre, rho, x);
    return x;
}

void QpSolver::compute_p(const double* centre, double rho) {
    // The prox centre enters only the linear term: p = q - rho M' centre.
    double* pv = p_.data();
    const double* q = data_.q.data();
    map_.apply_t_into(centre, pv);
    for (std::size_t i = 0; i < n_; ++i) pv[i] = q[i] - rho * pv[i];
}

bool QpSolver::direct_step(const double* centre, double rho, std::vector<double>& x) {
    // separable_step with p = q - rho c formed per coordinate (M is the identity) and the
    // row-by-row clip done per coordinate (one row per coordinate at most): the same values.
    const std::size_t n = n_;
    if (x.size() != n) x.resize(n);
    const double* q = data_.q.data();
    const double* inv = sep_inv_.data();
    const double* lo = sep_lo_.data();
    const double* hi = sep_hi_.data();
    double* xv = x.data();
    double* xw = x_.data();
    bool finite = true;
    for (std::size_t j = 0; j < n; ++j) {
        const double v = std::min(std::max(-(q[j] - rho * centre[j]) * inv[j], lo[j]), hi[j]);
        finite = finite && std::isfinite(v);
        xv[j] = v;
        xw[j] = v;
    }
    sep_stale_ = true;
    return finite;
}

void QpSolver::prox_into(const std::vector<double>& centre, double rho, std::vector<double>& x) {
    check();
    set_rho(rho);
    if (centre.size() != map_.rows()) fail(Status::LocalSolverFailed, "a prox centre of the wrong size");
    prox_step(centre.data(), rho, x);
}

void QpSolver::step(const double* centre, double rho, std::vector<double>& x, double* rows) {
    check();
    if (rho != rho_) set_rho(rho);
    prox_step(centre, rho, x);
    if (identity_map_) {  // M = I, e = 0: the rows are x
        const double* xv = x.data();
        for (std::size_t j = 0; j < n_; ++j) rows[j] = xv[j];
    } else {
        map_.apply_into(x.data(), rows);
    }
}

void QpSolver::prox_step(const double* centre, double rho, std::vector<double>& x) {
    if (identity_map_ && separable_now_ && direct_step(centre, rho, x)) return;
    // p serves the separable step, the rows' tolerances and the inner ADMM: a QP without rows
    // whose KKT map is cached never needs it.
    const bool has_p = separable_now_ || m_ > 0;
    if (has_p) compute_p(centre, rho);
    if (separable_now_ && separable_step(x)) return;
    settle_separable_state();
    // x_ (the inner ADMM's warm start) follows every step; x has n values after a polish.
    if (polish(centre, active_, x)) {
        for (std::size_t i = 0; i < n_; ++i) x_[i] = x[i];
        return;
    }
    act_try_ = active_;
    for (std::size_t step = 0; step < QP_GUESS_STEPS && next_active_set(act_try_); ++step) {
        if (polish(centre, act_try_, x)) {
            for (std::size_t i = 0; i < n_; ++i) x_[i] = x[i];
            return;
        }
    }
    if (!has_p) compute_p(centre, rho);
    x = admm_solve(centre, p_);
}

double QpSolver::objective(const std::vector<double>& x) const {
    // Called every iteration: P's nonzeros only (in the order of the dense sum), the bounds
    // hoisted out of the loops.
    const std::size_t n = std::min(n_, x.size());
    const double* xv = x.data();
    double quad = 0.0, lin = 0.0;
    // Compressed rows pay when P is mostly zeros (a diagonal, say); a dense P is summed densely.
    if (n == n_ && p_rows_.rows() == n_ && 2 * p_rows_.val.size() <= n_ * n_) {
        const std::size_t* start = p_rows_.start.data();
        const std::size_t* col = p_rows_.col.data();
        const double* val = p_rows_.val.data();
        const double* q = data_.q.data();
        for (std::size_t i = 0; i < n; ++i) {
            double px = 0.0;
            for (std::size_t k = start[i]; k < start[i + 1]; ++k) px += val[k] * xv[col[k]];
            quad += xv[i] * px;
            lin += q[i] * xv[i];
        }
        return 0.5 * quad + lin + data_.r;
    }
    for (std::size_t i = 0; i < n; ++i) {
        const double* row = &data_.p[i * n_];
        double px = 0.0;
        for (std::size_t j = 0; j < n; ++j) px += row[j] * xv[j];
        quad += xv[i] * px;
        lin += data_.q[i] * xv[i];
    }
    return 0.5 * quad + lin + data_.r;
}

double Coordinator::shared_value() const {
    double g = 0.0;
    for (std::size_t s = 0; s < plan.shared.size(); ++s) g += g_value(s);
    return g;
}

// -- plan-level solve and the JSON report -----------------------------------------------------
namespace {

std::string missing_message(const std::vector<std::string>& objects) {
    std::string names;
    for (std::size_t i = 0; i < objects.size(); ++i) names += (i ? ", `" : "`") + objects[i] + "`";
    return "no native solver for " + names +
           ": not a QP (quadratic objective, linear constraints); give each a LocalSolver";
}

std::string json_opt(bool has, double v) { return has ? json_f64(v) : "null"; }

std::string json_nested(const double* data, std::size_t count, const std::vector<std::size_t>& shape, std::size_t dim) {
    if (dim == shape.size()) return count ? json_f64(data[0]) : "null";
    std::size_t step = 1;
    for (std::size_t k = dim + 1; k < shape.size(); ++k) step *= shape[k];
    std::string out = "[";
    for (std::size_t i = 0; i < shape[dim]; ++i) {
        if (i) out += ", ";
        out += (i + 1) * step <= count ? json_nested(data + i * step, step, shape, dim + 1) : "null";
    }
    return out + "]";
}

std::string json_vars(const std::vector<double>& values, const std::vector<VarInfo>& vars) {
    std::string out = "{";
    for (std::size_t k = 0; k < vars.size(); ++k) {
        const VarInfo& v = vars[k];
        std::size_t size = 1;
        for (std::size_t d : v.shape) size *= d;
        if (k) out += ", ";
        const bool fits = v.offset + size <= values.size();
        out += json_str(v.name) + ": " +
               (fits ? json_nested(values.data() + v.offset, size, v.shape, 0) : std::string("null"));
    }
    return out + "}";
}

}  // namespace

MissingSolvers::MissingSolvers(std::vector<std::string> objects)
    : std::runtime_error(missing_message(objects)), objects_(std::move(objects)) {}

std::vector<std::shared_ptr<LocalSolver>> local_solvers(const PlanSpec& plan,
                                                        const std::vector<std::optional<QpData>>& local,
                                                        std::vector<std::shared_ptr<LocalSolver>> user) {
    std::vector<std::shared_ptr<LocalSolver>> out;
    std::vector<std::string> missing;
    for (std::size_t i = 0; i < plan.objects.size(); ++i) {
        if (i < user.size() && user[i]) {
            out.push_back(user[i]);
        } else if (i < local.size() && local[i]) {
            out.push_back(std::make_shared<QpSolver>(plan.objects[i], *local[i]));
        } else {
            missing.push_back(plan.objects[i].name);
        }
    }
    if (!missing.empty()) throw MissingSolvers(std::move(missing));
    return out;
}

std::vector<std::vector<double>> glue(const PlanSpec& plan, const std::vector<std::vector<double>>& x,
                                      const std::vector<std::vector<double>>& z) {
    std::vector<std::vector<double>> out = x;
    for (std::size_t i = 0; i < plan.objects.size() && i < out.size(); ++i) {
        for (const Block& b : plan.objects[i].blocks) {
            if (b.kind != BlockKind::Consensus || b.shared >= z.size()) continue;
            const SharedVarSpec& v = plan.shared[b.shared].vars[b.var];
            if (out[i].size() < b.x_offset + b.size || z[b.shared].size() < v.offset + b.size) continue;
            for (std::size_t j = 0; j < b.size; ++j) out[i][b.x_offset + j] = z[b.shared][v.offset + j];
        }
    }
    return out;
}

PlanSolution solve_plan(const PlanSpec& plan, const std::vector<std::shared_ptr<LocalSolver>>& solvers,
                        const Options& opts) {
    const auto start = std::chrono::steady_clock::now();
    Coordinator c(plan, opts);
    PlanSolution out;
    out.result = c.solve(solvers);
    const Status st = out.result.status;
    const bool has_point = (st == Status::Optimal || st == Status::MaxIterations) && out.result.has_objective;
    out.x = has_point ? glue(plan, out.result.x, out.result.z) : out.result.x;
    if (has_point && solvers.size() == out.x.size()) {
        double f = 0.0;
        for (std::size_t i = 0; i < solvers.size(); ++i) f += solvers[i]->objective(out.x[i]);
        out.objective = f + c.shared_value();
    }
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
}

std::string json_str(const std::string& text) {
    std::string out = "\"";
    for (char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (ch == '"') {
            out += "\\\"";
        } else if (ch == '\\') {
            out += "\\\\";
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
            out += buf;
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

std::string json_f64(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

std::string PlanSolution::to_json(const PlanSpec& plan, const ReportSpec& report) const {
    const SolveResult& r = result;
    const bool has_point = r.status == Status::Optimal || r.status == Status::MaxIterations;
    std::string objects = "null", shared = "null";
    if (has_point) {
        objects = "{";
        for (std::size_t k = 0; k < report.objects.size(); ++k) {
            const std::size_t i = report.objects[k].first;
            if (i >= plan.objects.size() || i >= x.size()) continue;
            if (objects.size() > 1) objects += ", ";
            objects += json_str(plan.objects[i].name) + ": " + json_vars(x[i], report.objects[k].second);
        }
        objects += "}";
        shared = "{";
        for (std::size_t k = 0; k < report.shared.size(); ++k) {
            const std::size_t i = report.shared[k].first;
            if (i >= plan.shared.size() || i >= r.z.size()) continue;
            if (shared.size() > 1) shared += ", ";
            shared += json_str(plan.shared[i].name) + ": " + json_vars(r.z[i], report.shared[k].second);
        }
        shared += "}";
    }
    return "{\"dual_residual\": " + json_opt(r.has_residuals, r.dual_residual) +
           ", \"iterations\": " + std::to_string(r.iterations) +
           ", \"local_solvers\": null, \"membership\": null, \"message\": " + json_str(r.message) +
           ", \"objective\": " + json_opt(objective.has_value(), objective.value_or(0.0)) +
           ", \"objects\": " + objects +
           ", \"prices\": {}, \"primal_residual\": " + json_opt(r.has_residuals, r.primal_residual) +
           ", \"shared\": " + shared + ", \"solve_time_s\": " + json_f64(seconds) +
           ", \"status\": " + json_str(status_name(r.status)) + ", \"warnings\": []}";
}

}  // namespace rt
}  // namespace CATOPT_RT_NAMESPACE
